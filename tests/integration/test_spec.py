"""The data spec (ASIDE_SPEC / --spec): checked at start with line-numbered errors, preloaded on a
thread pool with progress in telemetry, shown by function=spec, reloaded by function=reload_spec
and SIGHUP without dropping cached data, SQL views materialised and refreshed when an input
changes, and functions registered from the system of record."""
from __future__ import annotations

import os
import signal
import textwrap
import time

import pandas as pd
import pytest

from helpers import REPO, assert_error, cached_keys, entry, ok, parquet_bytes, put_sor, telemetry

WAIT_S = 30.0      # every wait below is bounded by this
POLL_S = 0.05


def write_spec(server, text: str) -> str:
    path = server.root / "spec.yaml"
    path.write_text(textwrap.dedent(text).lstrip())
    return str(path)


def start_with_spec(make_server, text: str, files: dict | None = None, flag: bool = False):
    """A server whose system of record holds files, started with the spec text."""
    server = make_server(start=False)
    for rel, data in (files or {}).items():
        put_sor(server, rel, data)
    path = write_spec(server, text)
    if flag:
        server.args += ["--spec", path]
    else:
        server.env["ASIDE_SPEC"] = path
    return server.start()


def refused_start(make_server, text: str, flag: bool = False) -> str:
    """Start a server on a bad spec: it must exit with status 2; returns its log."""
    server = make_server(start=False)
    path = write_spec(server, text)
    if flag:
        server.args += ["--spec", path]
    else:
        server.env["ASIDE_SPEC"] = path
    with pytest.raises(RuntimeError):
        server.start()
    assert server.proc.wait(timeout=WAIT_S) == 2
    server.log.close()
    server.proc = None
    return server.log_text()


def until(check, what: str):
    """Poll check() until it returns something truthy (bounded); returns it."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(POLL_S)
    raise AssertionError(f"gave up waiting for {what}")


def preload_finished(server, run: int = 1) -> dict:
    """The preload's progress once run number `run` is over."""
    def finished():
        p = telemetry(server)["preload"]
        return p if p["run"] >= run and p["state"] in ("done", "failed") else None
    return until(finished, f"preload run {run} to finish")


def rows(server, key: str) -> list:
    return ok(server.get(function="head", path=key, n="100"))


# -- validation at start ----------------------------------------------------------------------

@pytest.mark.parametrize("text, where, what", [
    ("version: 1\ndatasets:\n  - key: a.json\n    tll: 1h\n", ":4:5:", 'unknown field "tll"'),
    ("version: 1\ndatasets:\n  - key: a.parquet\n    columns: {x: float}\n", ":4:18:",
     'unknown dtype "float"'),
    ("version: 1\ndatasets:\n  - key: a.json\n   bad: [\n", ":4:4:", "invalid YAML"),
    ("version: 1\ndatasets:\n  - key: ../outside.json\n", ":3:10:", "not a valid key"),
    ("version: 1\ndatasets:\n  - key: t.parquet\nviews:\n  - name: t.parquet\n"
     "    query: SELECT 1\n", ":5:11:", "also a key of the dataset at line 3"),
])
def test_a_bad_spec_refuses_to_start_with_its_line_and_column(make_server, text, where, what):
    log = refused_start(make_server, text)
    line = next(l for l in log.splitlines() if "bad spec" in l)
    assert "spec.yaml" + where in line and what in line, log
    assert "listening" not in log


def test_the_spec_flag_works_as_the_variable_and_a_missing_file_is_refused(make_server, tmp_path):
    log = refused_start(make_server, "version: 2\n", flag=True)
    assert "spec.yaml:1:10: version 2 is not known" in log
    server = make_server(start=False, env={"ASIDE_SPEC": str(tmp_path / "absent.yaml")})
    with pytest.raises(RuntimeError):
        server.start()
    assert server.proc.wait(timeout=WAIT_S) == 2
    server.log.close()
    server.proc = None
    assert "absent.yaml: cannot open the spec" in server.log_text()


# -- preloading --------------------------------------------------------------------------------

FILES = {
    "sales.json": '{"total": 3}',
    "logs/a.json": '{"a": 1}',
    "logs/b.json": '{"b": 22}',
    "logs/skip.csv": "x\n1\n",              # not *.json
    "logs/deep/c.json": '{"c": 3}',         # "*" stays within a folder
    "raw/2024/x.bin": b"\x00" * 1000,
    "raw/2024/m/y.bin": b"\x01" * 2000,     # a prefix takes every key under it
    "raw/2023/z.bin": b"\x02" * 10,
}
SPEC = """
    version: 1
    preload_threads: 2
    datasets:
      - key: sales.json
      - glob: "logs/*.json"
      - prefix: raw/2024/
"""
PRELOADED = ["logs/a.json", "logs/b.json", "raw/2024/m/y.bin", "raw/2024/x.bin", "sales.json"]


def test_preload_loads_a_key_a_glob_and_a_prefix_and_telemetry_shows_it_done(make_server):
    server = start_with_spec(make_server, SPEC, FILES)
    p = preload_finished(server)
    sizes = sum(len(FILES[k]) for k in PRELOADED)
    assert p["state"] == "done", p
    assert p["items"] == {"done": 5, "failed": 0, "total": 5}
    assert p["bytes"] == {"done": sizes, "total": sizes}
    assert p["eta_seconds"] == 0 and p["rate_bytes_per_second"] > 0 and p["errors"] == []
    assert sorted(cached_keys(server)) == PRELOADED
    assert all(entry(server, k)["tier"] == "memory" for k in PRELOADED)
    r = ok(server.get(path="logs/b.json"))
    assert r["source"] == "memory"
    log = server.log_text()
    assert "preload: done" in log and "5 items loaded, 0 failed" in log


def test_a_dtype_mismatch_is_reported_and_the_key_is_not_kept(make_server):
    frame = pd.DataFrame({"region": ["n", "s"], "amount": [1, 2]})   # amount is int64
    server = start_with_spec(make_server, """
        version: 1
        datasets:
          - key: sales.parquet
            columns: {region: object, amount: float64}
          - key: other.parquet
            columns: {missing: int64}
          - key: good.parquet
            columns: {amount: int64}
    """, {"sales.parquet": parquet_bytes(frame, index=False), "other.parquet": parquet_bytes(frame, index=False),
          "good.parquet": parquet_bytes(frame, index=False)})
    p = preload_finished(server)
    assert p["state"] == "failed"
    assert p["items"] == {"done": 1, "failed": 2, "total": 3}
    errors = " | ".join(p["errors"])
    assert 'sales.parquet: column "amount": expected dtype float64, found int64' in errors
    assert 'other.parquet: column "missing" (int64) is missing' in errors
    assert cached_keys(server) == ["good.parquet"]
    assert 'preload: sales.parquet: column "amount": expected dtype float64, found int64' in \
        server.log_text()


def test_a_missing_key_and_an_empty_glob_are_reported(make_server):
    server = start_with_spec(make_server, """
        version: 1
        datasets:
          - key: absent.json
          - glob: "none/*.csv"
    """)
    p = preload_finished(server)
    assert p["state"] == "failed" and p["items"]["failed"] == 1 and p["warnings"] == 1
    assert any(e.startswith("absent.json: ") for e in p["errors"])
    assert any("none/*.csv (line 4): matches no object" in e for e in p["errors"])
    assert ok(server.get(function="stats_cache")) == []


def test_pin_and_ttl_are_applied_to_preloaded_keys(make_server):
    server = start_with_spec(make_server, """
        version: 1
        datasets:
          - key: hot.json
            pin: true
            ttl: 1h
          - key: cold.json
    """, {"hot.json": "[1]", "cold.json": "[2]"})
    p = preload_finished(server)
    assert p["state"] == "done" and p["warnings"] == 0, p
    hot, cold = entry(server, "hot.json"), entry(server, "cold.json")
    assert hot["pinned"] is True and hot["expires"] is not None
    assert cold["pinned"] is False and cold["expires"] is None


def test_without_a_spec_the_spec_functions_are_404_and_telemetry_has_no_preload(server):
    assert_error(server.get(function="spec"), 404, "no_spec")
    assert_error(server.get(function="reload_spec"), 404, "no_spec")
    assert telemetry(server)["preload"] is None


# -- function=spec and reloads --------------------------------------------------------------------

def test_function_spec_shows_the_spec_in_force(make_server):
    server = start_with_spec(make_server, """
        version: 1
        defaults: {ttl: 15m}
        datasets:
          - key: sales.json
            revalidate: 90
    """, {"sales.json": "{}"})
    got = ok(server.get(function="spec"))
    assert got["path"].endswith("spec.yaml") and got["reloads"] == 0
    assert got["loaded_at"].endswith("Z")
    d = got["spec"]["datasets"][0]
    assert d["key"] == "sales.json" and d["line"] == 4
    assert d["ttl_seconds"] == 900 and d["revalidate_seconds"] == 90 and d["preload"] is True


def test_reload_loads_a_new_dataset_without_dropping_cached_keys(make_server):
    server = start_with_spec(make_server, "version: 1\ndatasets:\n  - key: a.json\n",
                             {"a.json": "[1]", "b.json": "[2]", "c.json": "[3]"})
    preload_finished(server)
    assert ok(server.get(path="b.json"))["source"] == "sor"   # cached by a client
    write_spec(server, """
        version: 1
        datasets:
          - key: c.json
    """)
    got = ok(server.get(function="reload_spec"))
    assert got["result"] == "success"
    assert got["datasets"] == {"added": 1, "changed": 0, "removed": 1, "unchanged": 0}
    p = preload_finished(server, run=2)
    assert p["items"] == {"done": 1, "failed": 0, "total": 1} and p["reloads"] == 1
    assert sorted(cached_keys(server)) == ["a.json", "b.json", "c.json"]
    for key in ("a.json", "b.json", "c.json"):
        assert ok(server.get(path=key))["source"] == "memory"
    assert ok(server.get(function="spec"))["spec"]["datasets"][0]["key"] == "c.json"


def test_a_bad_reload_keeps_the_spec_in_force_and_answers_400_with_the_line(make_server):
    server = start_with_spec(make_server, "version: 1\ndatasets:\n  - key: a.json\n",
                             {"a.json": "[1]"})
    preload_finished(server)
    write_spec(server, "version: 1\ndatasets:\n  - key: a.json\n    ttl: soon\n")
    err = assert_error(server.get(function="reload_spec"), 400, "bad_spec")
    assert "spec.yaml:4:10: ttl:" in err["message"] and "not a duration" in err["message"]
    got = ok(server.get(function="spec"))
    assert got["reloads"] == 0 and got["spec"]["datasets"][0]["ttl_seconds"] is None
    assert cached_keys(server) == ["a.json"]
    assert "reload refused, the spec in force stays: " in server.log_text()


def test_sighup_reloads_the_spec_and_a_bad_one_is_logged(make_server):
    server = start_with_spec(make_server, "version: 1\n", {"new.json": "[7]"})
    write_spec(server, "version: 1\ndatasets:\n  - key: new.json\n")
    server.proc.send_signal(signal.SIGHUP)
    until(lambda: "new.json" in cached_keys(server), "the SIGHUP reload to load new.json")
    assert ok(server.get(function="spec"))["reloads"] == 1
    write_spec(server, "version: 1\ndatasets: [\n")
    server.proc.send_signal(signal.SIGHUP)
    until(lambda: "reload on SIGHUP refused" in server.log_text(), "the refusal in the log")
    assert "spec.yaml:3:1: invalid YAML" in server.log_text()
    assert ok(server.get(function="spec"))["reloads"] == 1
    assert ok(server.get(path="new.json"))["source"] == "memory"


# -- views ---------------------------------------------------------------------------------------

VIEW_SPEC = """
    version: 1
    datasets:
      - key: sales.parquet
    views:
      - name: totals.parquet
        query: >-
          SELECT region, sum(amount) AS total FROM "sales.parquet"
          GROUP BY region ORDER BY region
"""


def sales(north: int, south: int) -> bytes:
    return parquet_bytes(pd.DataFrame({"region": ["north", "south", "north"],
                                 "amount": [north, south, 0]}), index=False)


def totals_are(server, north: int, south: int):
    expected = [{"region": "north", "total": north}, {"region": "south", "total": south}]
    return lambda: "totals.parquet" in cached_keys(server) and \
        rows(server, "totals.parquet") == expected


def test_a_view_is_materialised_and_refreshed_when_its_input_is_put(make_server):
    server = start_with_spec(make_server, VIEW_SPEC, {"sales.parquet": sales(5, 7)})
    until(totals_are(server, 5, 7), "the view to be materialised")
    r = server.call("POST", params={"function": "put", "key": "sales.parquet"},
                    data=sales(50, 70))
    assert r.status_code == 200, r.text
    until(totals_are(server, 50, 70), "the view to be refreshed after a put")
    views = telemetry(server)["preload"]["views"]
    assert views["materialised"] == 1 and views["refreshed"] >= 1 and views["failed"] == 0
    assert "view totals.parquet refreshed" in server.log_text()


def test_a_view_is_refreshed_after_an_update_from_the_system_of_record(make_server):
    server = start_with_spec(make_server, VIEW_SPEC, {"sales.parquet": sales(1, 2)})
    until(totals_are(server, 1, 2), "the view to be materialised")
    path = put_sor(server, "sales.parquet", sales(10, 20))
    later = time.time() + 5
    os.utime(server.sor / "sales.parquet", (later, later))   # a new version tag for sure
    assert ok(server.get(function="update", path="sales.parquet"))["revalidated"] is False
    until(totals_are(server, 10, 20), "the view to be refreshed after an update")
    assert path


def test_a_view_whose_query_fails_is_reported_and_the_server_keeps_going(make_server):
    server = start_with_spec(make_server, """
        version: 1
        views:
          - name: broken.parquet
            query: SELECT nonsense FROM "absent.parquet"
    """)
    until(lambda: telemetry(server)["preload"]["views"]["failed"] >= 1, "the view to fail")
    assert "view broken.parquet (line 3): " in server.log_text()
    assert "broken.parquet" not in cached_keys(server)


# -- functions and revalidation ------------------------------------------------------------------

def test_functions_in_the_spec_are_registered_from_the_system_of_record(make_server):
    server = start_with_spec(make_server, """
        version: 1
        functions:
          - twice
          - name: broken
            storage: sd
    """, {"functions/twice.py": "def main(cache, x):\n    return 2 * int(x)\n",
          "functions/broken.py": "def main(cache, x:\n    return x\n"})
    p = preload_finished(server)
    assert p["functions"] == {"registered": 1, "failed": 1}
    assert p["state"] == "failed"
    assert any(e.startswith("function broken (line 4): SyntaxError") for e in p["errors"]), p
    assert ok(server.get(function="twice", x="21")) == 42
    assert not (server.functions / "broken.py").exists()


def test_revalidate_brings_a_change_in_the_system_of_record_into_the_cache(make_server):
    server = start_with_spec(make_server, """
        version: 1
        datasets:
          - glob: "conf/*.json"
            revalidate: 1s
    """, {"conf/a.json": '{"v": 1}'})
    preload_finished(server)
    put_sor(server, "conf/a.json", '{"v": 2, "more": true}')
    later = time.time() + 5
    os.utime(server.sor / "conf/a.json", (later, later))

    def changed():
        r = server.get(path="conf/a.json", **{"return": "data"})
        return ok(r) == {"v": 2, "more": True}
    until(changed, "the revalidation to reload conf/a.json")
    assert "revalidate: conf/a.json changed in the system of record: reloaded" in \
        server.log_text()
    assert telemetry(server)["preload"]["revalidation"]["changed"] >= 1


# -- the example ----------------------------------------------------------------------------------

def test_the_example_spec_preloads_checks_pins_and_materialises(make_server):
    sales = pd.DataFrame({"region": ["north", "south", "north"], "amount": [1.5, 2.0, 3.25],
                          "day": pd.to_datetime(["2024-01-02", "2024-01-03", "2024-02-01"])})
    server = start_with_spec(make_server, (REPO / "examples" / "spec.yaml").read_text(), {
        "sales/2024.parquet": parquet_bytes(sales, index=False), "logs/a.json": "{}", "logs/old/b.json": "{}",
        "raw/2024/x.bin": b"x", "functions/frame_summary.py":
            (REPO / "functions" / "frame_summary.py").read_text()})
    p = preload_finished(server)
    assert p["state"] == "done" and p["warnings"] == 0, p
    assert p["items"] == {"done": 2, "failed": 0, "total": 2}
    assert p["functions"] == {"registered": 1, "failed": 0}
    assert entry(server, "sales/2024.parquet")["pinned"] is True
    assert entry(server, "logs/a.json")["expires"] is not None
    until(lambda: "reports/totals.parquet" in cached_keys(server), "the example's view")
    assert rows(server, "reports/totals.parquet") == [
        {"region": "north", "total": 4.75, "sales": 2}, {"region": "south", "total": 2.0,
                                                        "sales": 1}]
    summary = ok(server.get(function="frame_summary", key="sales/2024.parquet"))
    assert [c["dtype"] for c in summary] == ["object", "float64", "datetime64[ns]"]
