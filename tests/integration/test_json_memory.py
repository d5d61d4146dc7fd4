"""A JSON document costs what its parsed tree costs, and the server's memory stays within its
budget: a put keeps the document's bytes (validated without building a tree), editing a stored
document counts its tree against ASIDE_MEMORY_LIMIT and is refused with 507 `full`, nothing
changed, when the tree cannot fit.

Memory is the server's peak resident set (VmHWM of /proc/PID/status, reset through clear_refs
before each step). It must stay within the memory limit, plus the request bodies in flight
(ASIDE_MAX_BODIES_IN_FLIGHT), plus a fixed overhead (FIXED_OVERHEAD: the process, its threads
and DuckDB), as README's limits paragraph states.
"""
from __future__ import annotations

import json
import pathlib
import threading

from helpers import API, op, telemetry

MIB = 1 << 20
MEMORY_LIMIT = 64 * MIB
BODIES = 96 * MIB          # three documents fit in flight at once
FIXED_OVERHEAD = 200 * MIB  # the process, its threads and DuckDB: README states this figure
DOC_BYTES = 20 * MIB
ENV = {"ASIDE_MEMORY_LIMIT": "64MiB", "ASIDE_MAX_BODIES_IN_FLIGHT": "96MiB"}


def status_bytes(pid: int, field: str) -> int:
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def reset_peak(pid: int) -> None:
    pathlib.Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := VmRSS


def within_budget(pid: int) -> None:
    peak = status_bytes(pid, "VmHWM")
    bound = MEMORY_LIMIT + BODIES + FIXED_OVERHEAD
    assert peak <= bound, f"peak RSS {peak / MIB:.0f} MiB passes {bound / MIB:.0f} MiB"


def document(size: int) -> bytes:
    """A JSON array of small records, size bytes or a little more: a tree of many nodes."""
    record = json.dumps({"id": 123456, "name": "abcdefgh", "tags": [1, 2, 3], "ok": True},
                        separators=(",", ":")).encode()
    count = size // (len(record) + 1) + 1
    return b"[" + b",".join([record] * count) + b"]"


def stored(server, key: str):
    r = server.get(function="read", key=key, **{"return": "data"})
    assert r.status_code == 200, r.text
    return r.json()["return"]["value"]


def put(server, key: str, body: bytes):
    return server.call("PUT", params={"function": "put", "path": key}, data=body, timeout=120)


def test_a_large_put_keeps_the_bytes_without_a_tree(make_server):
    s = make_server(env=ENV)
    pid = s.proc.pid
    body = document(DOC_BYTES)
    reset_peak(pid)
    r = put(s, "big.json", body)
    assert r.status_code == 200, r.text
    within_budget(pid)
    assert stored(s, "big.json") == json.loads(body)


def test_three_concurrent_large_puts_stay_within_the_budget(make_server):
    s = make_server(env=ENV)
    pid = s.proc.pid
    body = document(DOC_BYTES)
    reset_peak(pid)
    results: list = [None] * 3

    def one(i: int) -> None:
        results[i] = put(s, f"big{i}.json", body).status_code

    threads = [threading.Thread(target=one, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    within_budget(pid)
    assert results == [200] * 3


def test_editing_a_document_too_large_for_the_budget_is_507_and_changes_nothing(make_server):
    s = make_server(env=ENV)
    pid = s.proc.pid
    body = document(DOC_BYTES)
    assert put(s, "big.json", body).status_code == 200
    reset_peak(pid)
    r = op(s, "json_set", "big.json", pointer="/0/name", value="changed")
    within_budget(pid)
    assert r.status_code == 507, r.text
    assert r.json()["error"]["code"] == "full"
    assert stored(s, "big.json") == json.loads(body)


def test_an_edited_document_counts_its_tree(make_server):
    s = make_server(env=ENV)
    pid = s.proc.pid
    body = document(1 * MIB)
    assert put(s, "doc.json", body).status_code == 200
    before = telemetry(s)["memory"]["used_bytes"]
    reset_peak(pid)
    r = op(s, "json_set", "doc.json", pointer="/0/name", value="changed")
    assert r.status_code == 200, r.text
    within_budget(pid)
    used = telemetry(s)["memory"]["used_bytes"]
    # jansson's tree of this document takes more than ten times its text
    assert used - before >= 10 * len(body), (before, used)
    assert stored(s, "doc.json")[0]["name"] == "changed"


def test_a_collection_too_large_for_the_budget_is_507_before_its_tree_is_built(make_server):
    s = make_server(env=ENV)
    pid = s.proc.pid
    body = b"[" + b",".join([b"1"] * (DOC_BYTES // 2)) + b"]"
    reset_peak(pid)
    r = s.call("PUT", params={"function": "put", "path": "big", "type": "list"}, data=body,
               timeout=120)
    within_budget(pid)
    assert r.status_code == 507, r.text
    assert r.json()["error"]["code"] == "full"
    assert telemetry(s)["keys"] == 0


def test_concurrent_edits_of_large_documents_stay_within_the_budget(make_server):
    """Two stored documents each fit the budget when made editable, not both at once: one is
    made editable, the other is answered 503 busy (retry) or 507 full; memory stays bounded."""
    s = make_server(env=ENV)
    pid = s.proc.pid
    body = document(MEMORY_LIMIT // 16 * 2 // 3)  # its tree's estimate: two thirds of the budget
    for i in range(2):
        assert put(s, f"d{i}.json", body).status_code == 200
    reset_peak(pid)
    results: list = [None] * 2

    def edit(i: int) -> None:
        results[i] = op(s, "json_set", f"d{i}.json", pointer="/0/id", value=i)

    threads = [threading.Thread(target=edit, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    within_budget(pid)
    statuses = sorted(r.status_code for r in results)
    assert statuses[0] == 200, [r.text for r in results]
    assert statuses[1] in (503, 507), [r.text for r in results]
    for r in results:
        if r.status_code == 503:
            assert r.json()["error"]["code"] == "busy"
            assert r.headers.get("Retry-After")
    assert used_within_limit(s)


def used_within_limit(s) -> bool:
    t = telemetry(s)
    return t["memory"]["used_bytes"] <= t["memory"]["limit_bytes"]


def test_arguments_too_large_for_the_budget_are_507_and_change_nothing(make_server):
    s = make_server(env=ENV)
    assert op(s, "json_set", "doc.json", pointer="", value={"a": 1}).status_code == 200
    value = json.loads(document(8 * MIB))  # its tree's estimate passes the budget
    r = op(s, "json_set", "doc.json", pointer="/b", value=value)
    assert r.status_code == 507, r.text[:300]
    assert r.json()["error"]["code"] == "full"
    assert stored(s, "doc.json") == {"a": 1}
