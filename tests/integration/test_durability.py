"""Durability of what the server alone holds (collections and their journal).

The promise: every change is written to the operating system before it is acknowledged, so a
killed process loses nothing it acknowledged, whatever the fsync policy; what was in flight when
it died is applied whole or not at all; a journal damaged at its end (a torn write, garbage)
is cut and the server starts with everything before the damage; the journal compacts itself
as it grows, and a crash after a compaction restores the same values.
"""
from __future__ import annotations

import json
import re
import threading
import time

import pytest
import requests

from helpers import API, assert_error, op, op_value, telemetry

POLICIES = ["always", "everysec", "never"]
THREADS = 4
OPS_PER_THREAD = 400          # an upper bound: the kill comes long before
KILL_AFTER_ACKS = 240         # acknowledged operations (all threads) before the kill
STORM_DEADLINE_S = 30.0
POLL_S = 0.02
ELEMENT = re.compile(r"^t(\d+)-(\d+)-[a-z]{24}$")
PAD = "abcdefghijklmnopqrstuvwx"  # 24 letters: a torn element would not match ELEMENT


def journal_path(server):
    return server.cache / ".aside" / "journal"


class Storm:
    """THREADS writers pushing to a list, incrementing a counter and setting map fields, each
    recording what was acknowledged (200) and what was in flight when the server went away;
    one reader checking that every read is whole, valid JSON of the right shape."""

    def __init__(self, server) -> None:
        self.server = server
        self.lock = threading.Lock()
        self.acked_elements: set[str] = set()
        self.acked_fields: dict[str, dict] = {}
        self.acked_increments = 0
        self.inflight_elements: set[str] = set()
        self.inflight_fields: dict[str, dict] = {}
        self.inflight_increments = 0
        self.failures: list[str] = []
        self.reads = 0
        self.stop = threading.Event()

    def acks(self) -> int:
        with self.lock:
            return len(self.acked_elements) + len(self.acked_fields) + self.acked_increments

    def write(self, t: int) -> None:
        with requests.Session() as session:
            for i in range(OPS_PER_THREAD):
                if self.stop.is_set():
                    return
                kind = i % 3
                element = f"t{t}-{i}-{PAD}"
                field = {"t": t, "i": i, "pad": PAD * 4}
                try:
                    if kind == 0:
                        r = op(self.server, "list_push", "storm-list", session=session, value=element)
                    elif kind == 1:
                        r = op(self.server, "counter_increment", "storm-counter", session=session)
                    else:
                        r = op(self.server, "map_set", "storm-map", session=session, field=element,
                               value=field)
                except requests.RequestException:
                    with self.lock:  # sent, never answered: in flight when the server died
                        if kind == 0:
                            self.inflight_elements.add(element)
                        elif kind == 1:
                            self.inflight_increments += 1
                        else:
                            self.inflight_fields[element] = field
                    return
                if r.status_code != 200:
                    with self.lock:
                        self.failures.append(f"{r.status_code} {r.text[:200]}")
                    return
                with self.lock:
                    if kind == 0:
                        self.acked_elements.add(element)
                    elif kind == 1:
                        self.acked_increments += 1
                    else:
                        self.acked_fields[element] = field

    def read(self) -> None:
        with requests.Session() as session:
            while not self.stop.is_set():
                try:
                    lst = session.get(self.server.api, params={
                        "function": "read", "key": "storm-list", "return": "data"}, timeout=30)
                    mp = session.get(self.server.api, params={
                        "function": "map_all", "key": "storm-map"}, timeout=30)
                except requests.RequestException:
                    return
                for r, shape in ((lst, list), (mp, dict)):
                    if r.status_code == 404:  # not created yet
                        continue
                    try:
                        got = r.json()["return"]["value"]
                    except ValueError:
                        got = None
                    if r.status_code != 200 or not isinstance(got, shape):
                        with self.lock:
                            self.failures.append(f"read: {r.status_code} {r.text[:200]}")
                        return
                    items = got if shape is list else list(got)
                    if not all(isinstance(x, str) and ELEMENT.match(x) for x in items):
                        with self.lock:
                            self.failures.append(f"read a torn element: {items[:5]}")
                        return
                with self.lock:
                    self.reads += 1


def run_storm_and_kill(server) -> Storm:
    storm = Storm(server)
    writers = [threading.Thread(target=storm.write, args=(t,)) for t in range(THREADS)]
    reader = threading.Thread(target=storm.read)
    for thread in writers + [reader]:
        thread.start()
    deadline = time.monotonic() + STORM_DEADLINE_S
    while storm.acks() < KILL_AFTER_ACKS and time.monotonic() < deadline and \
            any(w.is_alive() for w in writers):
        time.sleep(POLL_S)
    server.kill()  # in the middle of the storm: the writers are still sending
    for thread in writers:
        thread.join(timeout=STORM_DEADLINE_S)
    storm.stop.set()
    reader.join(timeout=STORM_DEADLINE_S)
    assert not any(t.is_alive() for t in writers + [reader]), "a client thread did not end"
    return storm


@pytest.mark.parametrize("policy", POLICIES)
def test_a_kill_during_a_write_storm_loses_nothing_acknowledged(make_server, policy):
    server = make_server(env={"ASIDE_FSYNC": policy})
    storm = run_storm_and_kill(server)
    assert storm.failures == []
    assert storm.acks() >= KILL_AFTER_ACKS // 2, "the storm hardly ran before the kill"
    assert storm.reads > 0
    server.start()

    elements = op_value(server, "list_range", "storm-list")
    assert all(isinstance(e, str) and ELEMENT.match(e) for e in elements)  # each whole
    assert len(elements) == len(set(elements))                              # none twice
    assert storm.acked_elements <= set(elements)                            # none lost
    assert set(elements) <= storm.acked_elements | storm.inflight_elements  # none invented
    # each writer's elements are in the order that writer pushed them
    for t in range(THREADS):
        mine = [int(ELEMENT.match(e).group(2)) for e in elements if e.startswith(f"t{t}-")]
        assert mine == sorted(mine)

    counter = op_value(server, "counter_get", "storm-counter")
    assert storm.acked_increments <= counter <= \
        storm.acked_increments + storm.inflight_increments

    fields = op_value(server, "map_all", "storm-map")
    for name, field in storm.acked_fields.items():
        assert fields.get(name) == field
    for name, field in fields.items():
        assert name in storm.acked_fields or storm.inflight_fields.get(name) == field

    # the journal goes on from a record boundary: later changes survive another crash
    assert op_value(server, "list_push", "storm-list", value=f"t9-0-{PAD}") == len(elements) + 1
    assert op_value(server, "counter_increment", "storm-counter") == counter + 1
    server.restart_after_kill()
    assert op_value(server, "list_range", "storm-list") == elements + [f"t9-0-{PAD}"]
    assert op_value(server, "counter_get", "storm-counter") == counter + 1
    assert op_value(server, "map_all", "storm-map") == fields


@pytest.mark.parametrize("policy", POLICIES)
def test_the_fsync_policy_is_accepted_as_a_flag_too(make_server, policy):
    server = make_server(args=[f"--fsync={policy}"])
    assert op_value(server, "counter_increment", "c", by=5) == 5
    server.restart_after_kill()
    assert op_value(server, "counter_get", "c") == 5


def make_values(server) -> dict:
    op_value(server, "list_push", "l", values=["a", "b", "c"])
    op_value(server, "set_add", "s", values=[1, 2, 3])
    op_value(server, "map_set", "m", fields={"x": 1, "y": [2]})
    op_value(server, "counter_increment", "n", by=42)
    op_value(server, "json_set", "d.json", pointer="", value={"doc": True})
    return {"l": ["a", "b", "c"], "s": [1, 2, 3], "m": {"x": 1, "y": [2]}, "n": 42,
            "d.json": {"doc": True}}


def assert_values(server, want: dict) -> None:
    for key, content in want.items():
        r = server.get(function="read", key=key, **{"return": "data"})
        assert r.status_code == 200, (key, r.text)
        assert r.json()["return"]["value"] == content, key


def restart_with_damage(server, damage: bytes) -> str:
    """Stop, append damage to the journal, start; returns what the start logged."""
    server.stop()
    with open(journal_path(server), "ab") as journal:
        journal.write(damage)
    server.start()
    return server.log_text()[server.log_offset:]


@pytest.mark.parametrize("damage", [
    pytest.param(bytes(range(256)) * 3, id="garbage"),
    # a header with the right magic promising 1000 bytes, and 40 of them: a torn append
    pytest.param(b"ASJ1" + (1000).to_bytes(4, "little") + bytes(8) + b"{" * 40, id="torn"),
    pytest.param(b"ASJ1\x05", id="cut-header"),
])
def test_a_journal_damaged_at_its_end_is_cut_and_the_values_before_survive(make_server, damage):
    server = make_server()
    want = make_values(server)
    size = journal_path(server).stat().st_size
    log = restart_with_damage(server, damage)
    assert re.search(rf"journal: dropping {len(damage)} bytes", log), log
    assert journal_path(server).stat().st_size == size
    assert_values(server, want)
    # appends after the cut replay after a crash
    assert op_value(server, "counter_increment", "n") == 43
    server.restart_after_kill()
    want["n"] = 43
    assert_values(server, want)
    assert "dropping" not in server.log_text()[server.log_offset:]


def test_a_journal_damaged_in_the_middle_keeps_what_precedes_the_damage(make_server):
    server = make_server()
    op_value(server, "counter_increment", "before", by=7)
    middle = journal_path(server).stat().st_size
    op_value(server, "list_push", "damaged", value="x" * 200)
    op_value(server, "counter_increment", "after", by=9)
    server.stop()
    data = bytearray(journal_path(server).read_bytes())
    data[middle + 16 + 50] ^= 0x01  # one bit of the second record's payload
    journal_path(server).write_bytes(bytes(data))
    server.start()
    assert "dropping" in server.log_text()[server.log_offset:]
    assert op_value(server, "counter_get", "before") == 7
    # never a damaged record, and nothing after one
    assert op_value(server, "list_length", "damaged") == 0
    assert op_value(server, "counter_get", "after") == 0
    assert journal_path(server).stat().st_size == middle


COMPACT_AT = 64 * 1024


def test_the_journal_compacts_itself_and_a_crash_after_restores_the_same(make_server):
    server = make_server(env={"ASIDE_JOURNAL_COMPACT": "64KiB"})
    record = len(json.dumps({"k": "counter", "o": "counter_increment"},
                            separators=(",", ":"))) + 16  # the least one increment writes

    def work(t: int) -> int:
        done = 0
        with requests.Session() as session:
            for i in range(300):
                r = op(server, "counter_increment", "counter", session=session)
                assert r.status_code == 200, r.text
                r = op(server, "list_push", "window", session=session, value=f"{t}-{i}")
                assert r.status_code == 200, r.text
                r = op(server, "list_trim", "window", session=session, start=-10)
                assert r.status_code == 200, r.text
                done += 1
        return done

    results: list[int] = []
    threads = [threading.Thread(target=lambda t=t: results.append(work(t)))
               for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == THREADS
    ops = sum(results)
    appended = ops * 3 * record
    assert appended > 2 * COMPACT_AT

    deadline = time.monotonic() + 10
    while telemetry(server)["log"]["compactions"] == 0 and time.monotonic() < deadline:
        time.sleep(POLL_S)
    log = telemetry(server)["log"]
    assert log["compactions"] > 0
    size = journal_path(server).stat().st_size
    assert size == log["bytes"]
    assert size < appended

    counter = op_value(server, "counter_get", "counter")
    window = op_value(server, "list_range", "window")
    assert counter == ops and len(window) == 10
    server.restart_after_kill()
    assert op_value(server, "counter_get", "counter") == counter
    assert op_value(server, "list_range", "window") == window
    assert journal_path(server).stat().st_size == size


def test_compact_on_demand_answers_the_new_size_of_the_log(server):
    for i in range(200):
        op_value(server, "counter_increment", "n")
        op_value(server, "map_set", "m", field=f"f{i % 5}", value=i)
    before = telemetry(server)["log"]
    r = server.get(function="compact")
    assert r.status_code == 200, r.text
    answer = r.json()["return"]["value"]
    assert answer["result"] == "success"
    assert answer["log_bytes"] == journal_path(server).stat().st_size
    assert answer["log_bytes"] < before["bytes"] / 10
    after = telemetry(server)["log"]
    assert after["compactions"] == before["compactions"] + 1
    assert after["bytes"] == answer["log_bytes"]
    assert not (server.cache / ".aside" / "journal.new").exists()
    server.restart_after_kill()
    assert op_value(server, "counter_get", "n") == 200
    assert op_value(server, "map_all", "m") == {f"f{k}": 195 + k for k in range(5)}


def test_compact_with_nothing_to_keep_empties_the_log(server):
    op_value(server, "list_push", "l", value=1)
    assert server.get(function="delete", key="l").status_code == 200
    r = server.get(function="compact")
    assert r.status_code == 200
    assert r.json()["return"]["value"]["log_bytes"] == 0
    assert journal_path(server).stat().st_size == 0
    server.restart_after_kill()
    assert op_value(server, "list_length", "l") == 0
    assert_error(server.get(function="read", key="l"), 404)


def test_a_compaction_left_unfinished_by_a_crash_is_ignored(make_server):
    server = make_server()
    want = make_values(server)
    server.kill()
    # what a crash in the middle of a compaction leaves: a half-written new journal
    (server.cache / ".aside" / "journal.new").write_bytes(b"ASJ1" + bytes(20))
    server.start()
    assert_values(server, want)
    assert not (server.cache / ".aside" / "journal.new").exists()


def test_compact_answers_over_post_too(server):
    op_value(server, "counter_increment", "n")
    r = server.post({"function": "compact"})
    assert r.status_code == 200, r.text
    assert r.json()["return"]["value"]["log_bytes"] == journal_path(server).stat().st_size
    assert op_value(server, "counter_get", "n") == 1
    assert r.json()["return"]["uri"] == API


def test_changes_waiting_for_the_disk_are_answered_while_compactions_run(make_server):
    """With "always" a change waits for its sync after the cache is unlocked, so compactions
    run between its append and its sync: it must still be answered 200, and be kept."""
    server = make_server(env={"ASIDE_FSYNC": "always"})
    pushes = 150
    stop = threading.Event()
    answers: list[int] = []
    refused: list[str] = []
    compactions = []

    def push(t: int) -> None:
        with requests.Session() as session:
            for i in range(pushes):
                try:
                    r = session.post(server.api, json={"data": {
                        "function": "list_push", "key": f"q{t}", "value": i}}, timeout=10)
                except requests.RequestException as e:
                    refused.append(f"q{t} push {i}: no answer: {e}")
                    return
                answers.append(r.status_code)
                if r.status_code != 200:
                    refused.append(r.text[:300])
                    return

    def compact() -> None:
        with requests.Session() as session:
            while not stop.is_set() and len(compactions) < 5000:
                try:
                    compactions.append(session.get(server.api, params={"function": "compact"},
                                                   timeout=10).status_code)
                except requests.RequestException:
                    compactions.append(0)
                    return

    writers = [threading.Thread(target=push, args=(t,)) for t in range(THREADS)]
    compactor = threading.Thread(target=compact)
    for thread in writers + [compactor]:
        thread.start()
    for thread in writers:
        thread.join(timeout=60)
    stop.set()
    compactor.join(timeout=60)
    # a crash now, before any check: a change stuck waiting would also keep a stop from ending
    server.restart_after_kill()
    assert refused == []
    assert len(answers) == THREADS * pushes
    assert compactions and set(compactions) == {200}
    for t in range(THREADS):
        assert op_value(server, "list_range", f"q{t}") == list(range(pushes))
