"""The disk tier across restarts and crashes."""
from __future__ import annotations

import base64
import os
import shutil
import threading
import time

import pytest
import requests

from helpers import (assert_error, cached_keys, disk_sidecars, disk_tmp_files, disk_values,
                      put_sor, telemetry)


def read_raw(server, key):
    r = server.get(path=key, format="raw")
    assert r.status_code == 200, r.text
    return r.content, r.headers["X-Aside-Source"]


def fill(server, files):
    for key, data in files.items():
        put_sor(server, key, data)
        content, source = read_raw(server, key)
        assert content == data and source == "sor"


FILES = {
    "one.json": b'{"one": [1, 2, 3]}',
    "two.bin": bytes(range(256)) * 64,
    "deep/er/three.csv": b"a,b\n1,2\n",
}


def test_values_survive_a_restart_with_identical_bytes(server):
    fill(server, FILES)
    server.restart()
    assert cached_keys(server) == sorted(FILES)
    v = telemetry(server)
    assert v["keys"] == 3 and v["sor_fetches"] == 0
    assert v["disk"]["used_bytes"] == sum(map(len, FILES.values()))
    assert {e["tier"] for e in v["entries"]} == {"disk"}
    for key, data in FILES.items():
        assert read_raw(server, key) == (data, "disk")
        assert read_raw(server, key) == (data, "memory")
    r = server.get(path="two.bin", **{"return": "data"})
    assert base64.b64decode(r.json()["return"]["value"]) == FILES["two.bin"]
    v = telemetry(server)
    assert v["sor_fetches"] == 0 and v["misses"] == 0 and v["hits"] == 7
    assert {e["tier"] for e in v["entries"]} == {"memory"}


def test_values_survive_a_restart_even_when_the_sor_loses_them(server):
    fill(server, FILES)
    for key in FILES:
        (server.sor / key).unlink()
    server.restart()
    for key, data in FILES.items():
        assert read_raw(server, key) == (data, "disk")


def test_meta_read_after_restart_reports_disk_then_memory(server):
    put_sor(server, "m.json", "{}")
    server.get(path="m.json")
    server.restart()
    assert server.get(path="m.json").json()["return"]["value"]["source"] == "disk"
    assert server.get(path="m.json").json()["return"]["value"]["source"] == "memory"


def test_cached_keys_are_served_from_disk_after_sigkill(server):
    fill(server, FILES)
    server.kill()
    server.start()
    assert cached_keys(server) == sorted(FILES)
    for key, data in FILES.items():
        assert read_raw(server, key) == (data, "disk")
    assert telemetry(server)["sor_fetches"] == 0
    assert disk_tmp_files(server) == []


# The kill comes once KILL_AFTER_LOADS of HEAVY_KEYS loads are done: loads finished and loads
# to come on either side of it, on however fast or slow a machine.
HEAVY_KEYS = 200
KILL_AFTER_LOADS = 10


def test_sigkill_during_heavy_reading_leaves_a_consistent_tier(server):
    keys = {f"k{i:03}.bin": os.urandom(50_000 + i) for i in range(HEAVY_KEYS)}
    for key, data in keys.items():
        put_sor(server, key, data)
    stop = threading.Event()

    def reader(part):
        with requests.Session() as s:
            for key in part:
                if stop.is_set():
                    return
                try:
                    s.get(server.api, params={"path": key, "format": "raw"}, timeout=5)
                except requests.RequestException:
                    return
    names = sorted(keys)
    threads = [threading.Thread(target=reader, args=(names[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    fetched = 0
    while fetched < KILL_AFTER_LOADS and time.monotonic() < deadline:
        time.sleep(0.01)
        fetched = telemetry(server)["sor_fetches"]
    assert KILL_AFTER_LOADS <= fetched < HEAVY_KEYS, fetched
    server.kill()
    stop.set()
    for t in threads:
        t.join(timeout=10)
    server.start()
    # whatever survived is whole; the rest is fetched again; nothing half-written is served
    assert disk_tmp_files(server) == []
    survivors = cached_keys(server)
    assert disk_values(server) == survivors == disk_sidecars(server)
    for key, data in keys.items():
        content, source = read_raw(server, key)
        assert content == data
        assert source == ("disk" if key in survivors else "sor")


def flip(path):
    data = bytearray(path.read_bytes())
    for i in range(0, len(data), max(1, len(data) // 7)):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    return bytes(data)


@pytest.mark.parametrize("args, size", [([], 4096), (["--memory-limit", "64KiB"], 256 * 1024)],
                         ids=["fits_memory", "larger_than_memory"])
def test_corrupted_disk_file_is_never_served(make_server, args, size):
    server = make_server(args=args)
    good = put_sor(server, "c.bin", os.urandom(size))
    fill(server, {"c.bin": good})
    server.stop()
    bad = flip(server.cache / "c.bin")
    assert len(bad) == len(good) and bad != good
    server.start()
    content, source = read_raw(server, "c.bin")
    assert content == good and source == "sor"
    assert (server.cache / "c.bin").read_bytes() == good
    assert read_raw(server, "c.bin")[0] == good
    assert disk_values(server) == ["c.bin"] and disk_sidecars(server) == ["c.bin"]


@pytest.mark.parametrize("form", ["meta", "data"])
def test_corrupted_json_file_is_never_served_in_an_envelope(server, form):
    good = put_sor(server, "c.json", '{"value": "genuine", "n": 12345}')
    server.get(path="c.json")
    server.stop()
    (server.cache / "c.json").write_bytes(b'{"value": "tampere", "n": 12345}')
    server.start()
    r = server.get(path="c.json", **{"return": form})
    assert r.status_code == 200, r.text
    if form == "data":
        assert r.json()["return"]["value"] == {"value": "genuine", "n": 12345}
    else:
        assert r.json()["return"]["value"]["source"] == "sor"
    assert (server.cache / "c.json").read_bytes() == good


def test_corrupted_file_is_not_served_when_the_sor_lost_it_either(server):
    put_sor(server, "lost.bin", b"x" * 1000)
    server.get(path="lost.bin")
    server.stop()
    flip(server.cache / "lost.bin")
    (server.sor / "lost.bin").unlink()
    server.start()
    assert_error(server.get(path="lost.bin", format="raw"), 404)
    assert cached_keys(server) == []
    assert disk_values(server) == [] and disk_sidecars(server) == []


@pytest.mark.parametrize("keep", [0, 100, 4095])
def test_truncated_disk_file_is_fetched_again(server, keep):
    good = put_sor(server, "t.bin", os.urandom(4096))
    put_sor(server, "ok.bin", b"fine")
    server.get(path="t.bin")
    server.get(path="ok.bin")
    server.stop()
    path = server.cache / "t.bin"
    path.write_bytes(path.read_bytes()[:keep])
    server.start()
    assert read_raw(server, "t.bin") == (good, "sor")
    assert read_raw(server, "ok.bin") == (b"fine", "disk")
    assert (server.cache / "t.bin").read_bytes() == good


def test_grown_disk_file_is_fetched_again(server):
    good = put_sor(server, "g.json", "[1]")
    server.get(path="g.json")
    server.stop()
    with open(server.cache / "g.json", "ab") as f:
        f.write(b", 2]")
    server.start()
    r = server.get(path="g.json", **{"return": "data"})
    assert r.json()["return"]["value"] == [1]
    assert (server.cache / "g.json").read_bytes() == good


def test_stray_file_without_a_sidecar_is_removed_at_start(server):
    put_sor(server, "real.json", "{}")
    server.get(path="real.json")
    server.stop()
    (server.cache / "stray.bin").write_bytes(b"nobody wrote me")
    (server.cache / "dir").mkdir()
    (server.cache / "dir" / "stray.json").write_text("{}")
    put_sor(server, "stray.bin", b"the real one")
    server.start()
    assert disk_values(server) == ["real.json"]
    assert cached_keys(server) == ["real.json"]
    assert read_raw(server, "stray.bin") == (b"the real one", "sor")


def test_sidecar_without_a_value_is_removed_at_start(server):
    put_sor(server, "v.json", "{}")
    server.get(path="v.json")
    server.stop()
    (server.cache / "v.json").unlink()
    server.start()
    assert cached_keys(server) == []
    assert disk_sidecars(server) == []
    assert read_raw(server, "v.json") == (b"{}", "sor")


def test_garbled_sidecar_is_removed_with_its_value_at_start(server):
    put_sor(server, "v.json", "{}")
    server.get(path="v.json")
    server.stop()
    (server.cache / ".aside" / "meta" / "v.json.meta").write_text("this is not a sidecar\n")
    server.start()
    assert cached_keys(server) == []
    assert disk_values(server) == [] and disk_sidecars(server) == []
    assert read_raw(server, "v.json") == (b"{}", "sor")


def test_temporary_files_are_removed_at_start(server):
    put_sor(server, "real.json", "{}")
    server.get(path="real.json")
    server.stop()
    tmp = server.cache / ".aside" / "tmp"
    (tmp / "v.abc123").write_bytes(b"half a value")
    (tmp / "v.zzzzzz").write_bytes(b"")
    server.start()
    assert disk_tmp_files(server) == []
    assert cached_keys(server) == ["real.json"]


def test_delete_is_remembered_across_a_restart(server):
    fill(server, FILES)
    assert server.get(function="delete", path="two.bin").status_code == 200
    server.restart()
    assert cached_keys(server) == ["deep/er/three.csv", "one.json"]
    assert read_raw(server, "two.bin") == (FILES["two.bin"], "sor")


def test_update_is_remembered_across_a_restart(server):
    put_sor(server, "u.json", '{"v": 1}')
    server.get(path="u.json")
    new = put_sor(server, "u.json", '{"v": 2, "more": true}')
    assert server.get(function="update", path="u.json").status_code == 200
    server.kill()
    server.start()
    assert read_raw(server, "u.json") == (new, "disk")


def test_shrunk_disk_limit_evicts_at_start(make_server, tmp_path):
    server = make_server(root=tmp_path / "shrink")
    files = {f"f{i}.bin": os.urandom(16 * 1024) for i in range(10)}
    fill(server, files)
    server.stop()
    server.args = ["--disk-limit", "64KiB"]
    server.start()
    v = telemetry(server)
    assert v["disk"]["used_bytes"] <= 65536
    assert 0 < v["keys"] <= 4
    assert len(disk_values(server)) == v["keys"] == len(disk_sidecars(server))
    for key, data in files.items():
        assert read_raw(server, key)[0] == data


def test_restart_with_an_empty_disk_tier_starts_cold(server):
    fill(server, FILES)
    server.stop()
    shutil.rmtree(server.cache)
    server.cache.mkdir()
    server.start()
    assert cached_keys(server) == []
    for key, data in FILES.items():
        assert read_raw(server, key) == (data, "sor")
