"""Times to live, pins and explicit eviction over HTTP.

expire / persist / ttl give a key a time to live, remove it and tell what is left; a key whose
time ran out is gone from memory, disk and telemetry (a key of the system of record is fetched
again on the next read; a collection is gone for good, restarts included). pin keeps a value in
memory whatever else is read, within the memory budget (507 "full" past it); unpin gives it back
to the eviction policy; evict drops a value from memory and keeps its file. The settings
ASIDE_DEFAULT_TTL, ASIDE_POLICY=lfu and ASIDE_FSYNC are checked at start.
"""
from __future__ import annotations

import datetime
import time

import pytest
import requests

from helpers import assert_error, cached_keys, disk_values, entry, ok, put_sor, telemetry

DEADLINE_S = 30.0           # housekeeping removes an expired key within about a second
CLOCK_SLACK_S = 0.01        # expiry times are written with millisecond precision
DOWN_TTL_S = 3.0            # a time to live that runs out while the server is down
POLL_S = 0.05
KIB = 1024
FILE_BYTES = 200 * KIB


def call(server, function: str, key: str | None = None, **params) -> requests.Response:
    if key is not None:
        params["key"] = key
    return server.get(function=function, **params)


def read(server, key: str) -> dict:
    return ok(call(server, "read", key))


def entries(server) -> dict:
    return {e["path"]: e for e in telemetry(server)["entries"]}


def ttl(server, key: str):
    return ok(call(server, "ttl", key))


def parse_time(text: str) -> float:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def wait_until_gone(server, key: str) -> bool:
    """Poll the key list (bounded) until key is not cached."""
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        if key not in cached_keys(server):
            return True
        time.sleep(POLL_S)
    return False


def wait_for_expirations(server, count: int) -> int:
    """Poll telemetry (bounded) until count expirations were removed; the last figure seen.
    A key whose time ran out is never listed or served, and housekeeping removes it (and
    counts it) within about a second."""
    deadline = time.monotonic() + DEADLINE_S
    seen = telemetry(server)["expirations"]
    while seen < count and time.monotonic() < deadline:
        time.sleep(POLL_S)
        seen = telemetry(server)["expirations"]
    return seen


def sor_files(server, count: int, prefix: str = "f", size: int = FILE_BYTES) -> list[str]:
    keys = []
    for i in range(count):
        key = f"{prefix}{i}.bin"
        put_sor(server, key, bytes([i + 1]) * size)
        keys.append(key)
    return keys


def kill_while_the_times_run_out(server, expires: list[str]) -> None:
    """Kill the server while every time in `expires` is still to come (checked: the test is
    about times that run out while it is down), wait until they all passed, start it again."""
    times = [parse_time(e) for e in expires]
    server.kill()
    assert time.time() < min(times), "the times ran out before the kill: raise DOWN_TTL_S"
    time.sleep(max(times) - time.time() + 0.2)
    server.start()


# -- expire, persist, ttl ---------------------------------------------------------------------

def test_expire_sets_a_time_to_live_that_ttl_reports_and_persist_removes(server):
    put_sor(server, "doc.json", '{"a": 1}')
    read(server, "doc.json")
    assert ok(call(server, "list_push", "l", value=1)) == 1
    for key in ("doc.json", "l"):
        assert ttl(server, key) is None
        assert entry(server, key)["expires"] is None
        before = time.time()
        answer = ok(call(server, "expire", key, seconds=30))
        assert answer["result"] == "success"
        expires = parse_time(answer["expires"])
        assert before + 29 <= expires <= time.time() + 31
        left = ttl(server, key)
        assert isinstance(left, float) and 0 < left <= 30
        assert abs(parse_time(entry(server, key)["expires"]) - expires) < 1
        assert ok(call(server, "persist", key)) == {"result": "success"}
        assert ttl(server, key) is None
        assert entry(server, key)["expires"] is None
    # a fraction of a second, and a POST body with a JSON number: the time it sets is read from
    # the answer (a ttl asked for later may find the key already gone on a loaded machine)
    for seconds, r in ((2.5, lambda: server.post({"function": "expire", "key": "l",
                                                   "seconds": 2.5})),
                       (0.5, lambda: call(server, "expire", "l", seconds="0.5"))):
        before = time.time()
        answer = ok(r())
        after = time.time()
        assert answer["result"] == "success"
        expires = parse_time(answer["expires"])
        assert before + seconds - CLOCK_SLACK_S <= expires <= after + seconds + CLOCK_SLACK_S


@pytest.mark.parametrize("seconds", ["0", "-1", "-0.5", "abc", "", "nan", "inf", "1e400",
                                     "5s", None])
def test_expire_needs_a_positive_number_of_seconds(server, seconds):
    ok(call(server, "list_push", "l", value=1))
    params = {} if seconds is None else {"seconds": seconds}
    assert_error(call(server, "expire", "l", **params), 400, "bad_request")
    assert ttl(server, "l") is None  # unchanged


def test_expire_ttl_and_persist_of_a_key_not_cached_are_404(server):
    put_sor(server, "in-sor-only.json", "{}")  # in the system of record, not in the cache
    for key in ("nothing", "in-sor-only.json"):
        assert_error(call(server, "expire", key, seconds=10), 404)
        assert_error(call(server, "ttl", key), 404)
        assert_error(call(server, "persist", key), 404)
    assert cached_keys(server) == []
    assert_error(call(server, "expire", None, seconds=10), 400)
    assert_error(call(server, "ttl", None), 400)


def test_a_key_with_a_time_to_live_of_a_second_disappears(server):
    put_sor(server, "brief.json", '{"b": 1}')
    assert read(server, "brief.json")["source"] == "sor"
    ok(call(server, "map_set", "brief-map", field="a", value=1))
    ok(call(server, "expire", "brief.json", seconds=1))
    ok(call(server, "expire", "brief-map", seconds=1))
    ok(call(server, "list_push", "stays", value=1))
    assert wait_until_gone(server, "brief.json")
    assert wait_until_gone(server, "brief-map")
    assert wait_for_expirations(server, 2) == 2
    v = telemetry(server)
    assert sorted(e["path"] for e in v["entries"]) == ["stays"]
    assert disk_values(server) == []
    assert_error(call(server, "read", "brief-map"), 404)
    assert ok(call(server, "map_all", "brief-map")) == {}
    # the key of the system of record is fetched again, with no time to live now
    fetches = telemetry(server)["sor_fetches"]
    assert read(server, "brief.json")["source"] == "sor"
    assert telemetry(server)["sor_fetches"] == fetches + 1
    assert ttl(server, "brief.json") is None
    # the collection stays gone after a restart and after a crash
    server.restart()
    assert "brief-map" not in cached_keys(server)
    server.restart_after_kill()
    assert sorted(cached_keys(server)) == ["brief.json", "stays"]
    assert ok(call(server, "map_length", "brief-map")) == 0


def test_a_collection_that_expires_while_the_server_is_down_stays_gone(make_server):
    server = make_server()
    ok(call(server, "list_push", "l", value="a"))
    expires = [ok(call(server, "expire", "l", seconds=DOWN_TTL_S))["expires"]]
    ok(call(server, "list_push", "l", value="b"))  # journaled after the time to live
    ok(call(server, "counter_increment", "n"))
    expires.append(ok(call(server, "expire", "n", seconds=DOWN_TTL_S))["expires"])
    ok(call(server, "counter_increment", "n"))
    kill_while_the_times_run_out(server, expires)
    assert_error(call(server, "read", "l"), 404)
    assert ok(call(server, "list_range", "l")) == []
    assert ok(call(server, "counter_get", "n")) == 0
    assert cached_keys(server) == []
    server.restart()
    assert cached_keys(server) == []


def test_the_key_list_never_names_a_key_whose_time_ran_out(make_server):
    server = make_server()
    put_sor(server, "f.json", "{}")
    read(server, "f.json")
    ok(call(server, "list_push", "l", value=1))
    expires = [ok(call(server, "expire", key, seconds=DOWN_TTL_S))["expires"]
               for key in ("f.json", "l")]
    kill_while_the_times_run_out(server, expires)
    # asked at once, before any housekeeping: neither is listed, as neither would be served
    assert cached_keys(server) == []
    assert telemetry(server)["entries"] == []


def test_a_time_to_live_survives_a_restart_and_a_crash(server):
    put_sor(server, "kept.json", "[1, 2]")
    read(server, "kept.json")
    ok(call(server, "set_add", "kept-set", values="[1, 2]"))
    ok(call(server, "expire", "kept.json", seconds=3600))
    ok(call(server, "expire", "kept-set", seconds=3600))
    ok(call(server, "set_add", "kept-set", value=3))
    ok(call(server, "counter_increment", "no-ttl"))
    expires = {k: entry(server, k)["expires"] for k in ("kept.json", "kept-set")}
    server.restart()
    for key in ("kept.json", "kept-set"):
        assert 3500 < ttl(server, key) <= 3600
        assert abs(parse_time(entry(server, key)["expires"]) - parse_time(expires[key])) < 0.01
    assert ttl(server, "no-ttl") is None
    server.restart_after_kill()
    for key in ("kept.json", "kept-set"):
        assert 3500 < ttl(server, key) <= 3600
    assert ok(call(server, "set_members", "kept-set")) == [1, 2, 3]
    assert read(server, "kept.json")["source"] == "disk"
    # a compaction keeps the collection's time to live
    ok(call(server, "compact"))
    server.restart_after_kill()
    assert 3500 < ttl(server, "kept-set") <= 3600


def test_the_default_time_to_live_applies_to_loaded_keys_and_collections(make_server):
    server = make_server(env={"ASIDE_DEFAULT_TTL": "3600"})
    put_sor(server, "loaded.json", "{}")
    read(server, "loaded.json")
    ok(call(server, "list_push", "made", value=1))
    ok(call(server, "counter_increment", "counted"))
    r = server.call("POST", params={"function": "put", "key": "put.bin"}, data=b"bytes")
    assert r.status_code == 200, r.text
    for key in ("loaded.json", "made", "counted", "put.bin"):
        assert 3500 < ttl(server, key) <= 3600, key
        assert entry(server, key)["expires"] is not None
    # persist takes a key out of the default
    ok(call(server, "persist", "made"))
    assert ttl(server, "made") is None


def test_an_edit_keeps_the_time_to_live_of_a_json_document(server):
    put_sor(server, "t.json", '{"a": 1}')
    read(server, "t.json")
    ok(call(server, "expire", "t.json", seconds=3600))
    assert ok(call(server, "json_set", "t.json", pointer="/b", value=2)) == {"result": "success"}
    assert entry(server, "t.json")["cache_only"]
    left = ttl(server, "t.json")
    assert left is not None and 3500 < left <= 3600
    server.restart()
    assert ok(call(server, "json_get", "t.json")) == {"a": 1, "b": 2}
    left = ttl(server, "t.json")
    assert left is not None and 3500 < left <= 3600


def test_a_short_default_time_to_live_empties_the_cache(make_server):
    server = make_server(args=["--default-ttl=1"])
    put_sor(server, "a.json", "{}")
    read(server, "a.json")
    ok(call(server, "map_set", "m", field="f", value=1))
    assert wait_until_gone(server, "a.json") and wait_until_gone(server, "m")
    assert wait_for_expirations(server, 2) == 2
    assert disk_values(server) == []


# -- pins -------------------------------------------------------------------------------------

def pinned_server(make_server):
    return make_server(env={"ASIDE_MEMORY_LIMIT": "1MiB"})


def test_a_pinned_key_stays_in_memory_while_the_others_are_evicted(make_server):
    server = pinned_server(make_server)
    keys = sor_files(server, 8)
    assert ok(call(server, "pin", keys[0])) == {"result": "success"}  # loads it first
    e = entry(server, keys[0])
    assert e["pinned"] and e["tier"] == "memory" and not e["cache_only"]
    assert telemetry(server)["pinned_bytes"] >= FILE_BYTES
    for _ in range(3):
        for key in keys[1:]:
            read(server, key)
    v = telemetry(server)
    assert v["evictions"]["memory"] > 0
    tiers = {e["path"]: e["tier"] for e in v["entries"]}
    assert tiers[keys[0]] == "memory"
    assert list(tiers.values()).count("disk") >= 3  # 1 MiB holds the pin and 4 others at most
    assert read(server, keys[0])["source"] == "memory"
    assert not entry(server, keys[1])["pinned"]


def test_a_pin_that_does_not_fit_is_507_full_and_changes_nothing(make_server):
    server = pinned_server(make_server)
    keys = sor_files(server, 6)
    for key in keys[:5]:  # 5 x 200 KiB fit in 1 MiB
        ok(call(server, "pin", key))
    before = telemetry(server)
    assert before["pinned_bytes"] >= 5 * FILE_BYTES
    assert_error(call(server, "pin", keys[5]), 507, "full")
    after = telemetry(server)
    assert after["pinned_bytes"] == before["pinned_bytes"]
    assert not entry(server, keys[5])["pinned"]
    assert all(entry(server, key)["pinned"] for key in keys[:5])
    # a value larger than the whole budget cannot be pinned either
    put_sor(server, "huge.bin", b"h" * (2 * 1024 * KIB))
    ok(call(server, "unpin", keys[0]))
    assert_error(call(server, "pin", "huge.bin"), 507, "full")
    assert not entry(server, "huge.bin")["pinned"]
    # and a key nobody has is 404
    assert_error(call(server, "pin", "nowhere.bin"), 404)


def test_unpin_gives_the_value_back_to_eviction(make_server):
    server = pinned_server(make_server)
    keys = sor_files(server, 8)
    ok(call(server, "pin", keys[0]))
    assert ok(call(server, "unpin", keys[0])) == {"result": "success"}
    assert not entry(server, keys[0])["pinned"]
    assert telemetry(server)["pinned_bytes"] == 0
    for _ in range(3):
        for key in keys[1:]:
            read(server, key)
    assert entry(server, keys[0])["tier"] == "disk"
    assert read(server, keys[0])["source"] == "disk"
    assert_error(call(server, "unpin", "nowhere.bin"), 404)


def test_a_pin_survives_a_restart(make_server):
    server = pinned_server(make_server)
    keys = sor_files(server, 8)
    ok(call(server, "pin", keys[0]))
    server.restart()
    assert entry(server, keys[0])["pinned"]
    assert read(server, keys[0])["source"] == "disk"
    for _ in range(3):
        for key in keys[1:]:
            read(server, key)
    assert entry(server, keys[0])["tier"] == "memory"
    assert read(server, keys[0])["source"] == "memory"


def test_collections_count_as_pinned_bytes_and_live_in_memory(server):
    ok(call(server, "list_push", "l", values=str(list(range(100)))))
    e = entry(server, "l")
    assert e["pinned"] and e["cache_only"] and e["expires"] is None
    assert e["tier"] == "memory"
    assert telemetry(server)["pinned_bytes"] > 0
    assert ok(call(server, "pin", "l")) == {"result": "success"}
    assert ok(call(server, "unpin", "l")) == {"result": "success"}
    assert entry(server, "l")["pinned"]  # memory is a collection's home, pin or not


# -- load -------------------------------------------------------------------------------------

def test_load_reads_a_key_through_and_answers_its_meta_like_read(server):
    data = put_sor(server, "w.json", '{"warm": true}')
    meta = ok(call(server, "load", "w.json"))
    assert meta == {"result": "success", "source": "sor", "type": "json", "bytes": len(data)}
    assert entry(server, "w.json")["tier"] == "memory"
    assert disk_values(server) == ["w.json"]
    assert ok(call(server, "load", "w.json"))["source"] == "memory"
    assert read(server, "w.json")["source"] == "memory"
    assert telemetry(server)["sor_fetches"] == 1
    assert_error(call(server, "load", "nowhere.json"), 404)
    assert "nowhere.json" not in cached_keys(server)


def test_update_of_an_edited_json_key_is_409_and_keeps_the_edit(server):
    put_sor(server, "d.json", '{"a": 1}')
    read(server, "d.json")
    ok(server.post({"function": "json_set", "key": "d.json", "pointer": "/b", "value": 2}))
    put_sor(server, "d.json", '{"a": "changed in the system of record"}')
    assert_error(call(server, "update", "d.json"), 409, "conflict")
    r = server.get(function="read", key="d.json", **{"return": "data"})
    assert ok(r) == {"a": 1, "b": 2}


# -- evict ------------------------------------------------------------------------------------

@pytest.mark.parametrize("evict", ["evict", "free"])  # free: the alias
def test_evict_drops_a_value_from_memory_and_keeps_its_file(server, evict):
    data = put_sor(server, "e.json", '{"e": [1, 2, 3]}')
    assert read(server, "e.json")["source"] == "sor"
    assert entry(server, "e.json")["tier"] == "memory"
    assert ok(call(server, evict, "e.json")) == {"result": "success"}
    assert entry(server, "e.json")["tier"] == "disk"
    assert disk_values(server) == ["e.json"]
    fetches = telemetry(server)["sor_fetches"]
    assert read(server, "e.json")["source"] == "disk"
    r = server.get(path="e.json", format="raw")
    assert r.content == data and r.headers["X-Aside-Source"] == "memory"
    assert telemetry(server)["sor_fetches"] == fetches
    # evicting what is on disk only is fine; a key nobody has is 404
    ok(call(server, evict, "e.json"))
    ok(call(server, evict, "e.json"))
    assert_error(call(server, evict, "nowhere.json"), 404)


def test_evict_of_a_collection_or_a_pinned_key_is_409_and_changes_nothing(server):
    ok(call(server, "list_push", "l", values="[1, 2]"))
    assert_error(call(server, "evict", "l"), 409)
    assert ok(call(server, "list_range", "l")) == [1, 2]
    put_sor(server, "p.bin", b"pinned")
    ok(call(server, "pin", "p.bin"))
    assert_error(call(server, "evict", "p.bin"), 409)
    assert entry(server, "p.bin")["tier"] == "memory"
    ok(call(server, "unpin", "p.bin"))
    ok(call(server, "evict", "p.bin"))
    assert entry(server, "p.bin")["tier"] == "disk"


# -- settings ---------------------------------------------------------------------------------

def test_the_lfu_policy_starts_and_serves(make_server):
    server = make_server(env={"ASIDE_POLICY": "lfu", "ASIDE_MEMORY_LIMIT": "1MiB"})
    keys = sor_files(server, 8)
    for key in keys:
        assert read(server, key)["source"] == "sor"
    hot = keys[0]
    for _ in range(5):
        read(server, hot)
    for key in keys[1:]:
        read(server, key)
    v = telemetry(server)
    assert v["evictions"]["memory"] > 0
    assert v["memory"]["used_bytes"] <= v["memory"]["limit_bytes"]
    assert read(server, hot)["source"] == "memory"  # the most used stays
    assert v["sor_fetches"] == len(keys)


@pytest.mark.parametrize("how", ["env", "flag"])
def test_an_invalid_fsync_policy_refuses_to_start_naming_the_setting(make_server, how):
    server = make_server(env={"ASIDE_FSYNC": "sometimes"} if how == "env" else None,
                         args=["--fsync=sometimes"] if how == "flag" else None, start=False)
    with pytest.raises(RuntimeError) as failed:
        server.start()
    message = str(failed.value)
    assert "ASIDE_FSYNC" in message or "--fsync" in message
    assert "sometimes" in message
    assert server.proc.returncode != 0
    server.log.close()
    server.proc = None


@pytest.mark.parametrize("setting,value", [("ASIDE_DEFAULT_TTL", "soon"),
                                           ("ASIDE_JOURNAL_COMPACT", "big")])
def test_other_invalid_settings_refuse_to_start(make_server, setting, value):
    server = make_server(env={setting: value}, start=False)
    with pytest.raises(RuntimeError) as failed:
        server.start()
    assert setting in str(failed.value)
    server.log.close()
    server.proc = None
