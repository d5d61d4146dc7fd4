"""What users' functions leave and answer through the server's worker pool: results kept with
@compute_result until their input changes, @lru_cache statistics in function_stats, writes
through the `cache` argument, results that cannot be sent, and workers replaced across a
restart of the server."""
from __future__ import annotations

import functools
import json
import pathlib

import pandas as pd
import pytest
import requests

import aside
from frame_data import arrow_frame
from helpers import (assert_error, cached_keys, install, ok, parquet_bytes, put_sor,
                     unsandboxed)


# -- helpers -------------------------------------------------------------------------------------

def read_json(server, key: str):
    return ok(server.get(function="read", path=key, **{"return": "data"}))


def generation(server, key: str) -> int:
    stats = ok(server.get(function="cache_head", path=key))
    (entry,) = stats["entries"]
    return entry["generation"]


def pid_alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    status = pathlib.Path(f"/proc/{pid}/status")
    try:
        text = status.read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return "\nState:\tZ" not in text


PID = '''
    import os
    def main(cache):
        return os.getpid()
'''


# -- 3. @compute_result through the server's pool ------------------------------------------------

COMPUTED = '''
    import aside

    @aside.compute_result
    def main(cache, key, runs: str):
        """Per-group sums of x; each run leaves a line in the file `runs`."""
        with open(runs, "a") as f:
            f.write("ran\\n")
        df = cache[key]
        return df.groupby("g", as_index=False)["x"].sum()
'''


def group_sums(df: pd.DataFrame) -> pd.DataFrame:
    return df.groupby("g", as_index=False)["x"].sum()


def test_compute_result_is_served_from_the_cache_until_its_input_is_updated(make_server,
                                                                            tmp_path):
    server = make_server(env=unsandboxed(ASIDE_FUNCTION_WORKERS="1"))
    install(server.functions, "sums", COMPUTED)
    runs = tmp_path / "runs.txt"
    before = pd.DataFrame({"g": ["a", "b", "a", "c", "b"], "x": [1, 2, 3, 4, 5]})
    put_sor(server, "t.parquet", parquet_bytes(before))

    def call() -> pd.DataFrame:
        r = server.get(function="sums", key="t.parquet", runs=str(runs), format="arrow")
        assert r.status_code == 200, r.text
        return arrow_frame(r.content)

    def run_count() -> int:
        return len(runs.read_text().splitlines()) if runs.exists() else 0

    pd.testing.assert_frame_equal(call(), group_sums(before))       # a miss: it runs
    assert run_count() == 1
    pd.testing.assert_frame_equal(call(), group_sums(before))       # a hit: it does not
    assert run_count() == 1
    stats = ok(server.get(function="function_stats"))
    assert stats["results"] == {"sums.main": {"hits": 1, "misses": 1}}

    # the dependency document (the result's info) names the input and its generation
    deps_keys = [k for k in cached_keys(server)
                 if k.startswith("results/sums-") and k.endswith(".deps.json")]
    assert len(deps_keys) == 1
    deps = read_json(server, deps_keys[0])
    assert deps["function"] == "sums.main"
    assert deps["args"] == {"key": "t.parquet", "runs": str(runs)}
    assert deps["inputs"] == {"t.parquet": generation(server, "t.parquet")}
    assert deps["result"] == deps_keys[0][:-len(".deps.json")] + ".parquet"
    assert deps["result"] in cached_keys(server)
    assert not (server.sor / "results").exists()                    # results are only cached

    # the system of record changes and the cache is told: the next call computes again
    after = pd.DataFrame({"g": ["a", "c", "c", "d"], "x": [10, 20, 30, 40]})
    put_sor(server, "t.parquet", parquet_bytes(after))
    old_generation = deps["inputs"]["t.parquet"]
    ok(server.get(function="update", path="t.parquet"))
    assert generation(server, "t.parquet") != old_generation
    pd.testing.assert_frame_equal(call(), group_sums(after))
    assert run_count() == 2
    pd.testing.assert_frame_equal(call(), group_sums(after))
    assert run_count() == 2
    stats = ok(server.get(function="function_stats"))
    assert stats["results"] == {"sums.main": {"hits": 2, "misses": 2}}
    deps = read_json(server, deps_keys[0])
    assert deps["inputs"] == {"t.parquet": generation(server, "t.parquet")}


# -- 4. @lru_cache statistics --------------------------------------------------------------------

def test_lru_cache_statistics_are_reported_by_function_stats(make_server):
    server = make_server(env={"ASIDE_FUNCTION_WORKERS": "1"})
    install(server.functions, "memo", '''
        import aside

        @aside.lru_cache(maxsize=2)
        def square(x):
            return x * x

        def main(cache, x):
            return square(x)
    ''')
    calls = [3, 3, 4, 3, 5, 3, 4]
    got = [ok(server.get(function="memo", x=str(x))) for x in calls]
    assert got == [x * x for x in calls]
    # what functools.lru_cache counts for the same calls, in this process
    reference = functools.lru_cache(maxsize=2)(lambda x: x * x)
    for x in calls:
        reference(x)
    info = reference.cache_info()
    stats = ok(server.get(function="function_stats"))
    assert stats["functions"] == {"memo.square": {"hits": info.hits, "misses": info.misses,
                                                  "maxsize": 2, "currsize": info.currsize}}
    assert stats["results"] == {}


# -- 5. writes through the cache argument --------------------------------------------------------

def test_the_cache_argument_puts_and_deletes_without_touching_the_system_of_record(server):
    put_sor(server, "x.json", '{"old": true}')
    assert read_json(server, "x.json") == {"old": True}            # cached from the SOR
    install(server.functions, "writes", '''
        def main(cache, n):
            cache["out.json"] = {"n": n, "squares": [i * i for i in range(n)]}
            del cache["x.json"]
            try:
                del cache["x.json"]
            except KeyError:
                second = "KeyError"
            else:
                second = "deleted twice"
            return {"second": second, "out_cached": "out.json" in cache,
                    "x_cached": "x.json" in cache}
    ''')
    got = ok(server.get(function="writes", n="4"))
    assert got == {"second": "KeyError", "out_cached": True, "x_cached": False}
    keys = cached_keys(server)
    assert "out.json" in keys and "x.json" not in keys
    assert read_json(server, "out.json") == {"n": 4, "squares": [0, 1, 4, 9]}
    assert not (server.sor / "out.json").exists()                  # put: the SOR untouched
    assert (server.sor / "x.json").read_text() == '{"old": true}'  # delete: only the cache


# -- 6. results that cannot be sent --------------------------------------------------------------

def test_a_result_that_cannot_be_sent_is_500_typeerror_and_the_worker_goes_on(make_server):
    server = make_server(env={"ASIDE_FUNCTION_WORKERS": "1"})
    install(server.functions, "pid", PID)
    install(server.functions, "unsendable", '''
        import pandas as pd
        class Thing:
            pass
        def main(cache, kind):
            if kind == "object":
                return Thing()
            if kind == "nested":
                return {"ok": [1, 2], "bad": {"deep": Thing()}}
            return pd.DataFrame({"o": [Thing(), Thing()]})
    ''')
    pid = ok(server.get(function="pid"))
    for kind in ("object", "nested"):
        err = assert_error(server.get(function="unsendable", kind=kind), 500)
        assert err["type"] == "TypeError", err
        assert "cannot return" in err["message"] and "Thing" in err["message"], err
    err = assert_error(server.get(function="unsendable", kind="frame"), 500)
    assert err["type"].startswith("Arrow"), err
    assert ok(server.get(function="pid")) == pid                # the same worker
    stats = ok(server.get(function="cache_head"))["functions"]
    assert stats["crashes"] == 0 and stats["timeouts"] == 0


# -- 8. across a restart -------------------------------------------------------------------------

def test_workers_are_replaced_across_a_restart_and_reach_the_new_server(make_server):
    server = make_server(env=unsandboxed(ASIDE_FUNCTION_WORKERS="1"))
    install(server.functions, "pid", PID)
    install(server.functions, "reads", '''
        import os
        def main(cache, key):
            return {"value": cache[key], "pid": os.getpid()}
    ''')
    put_sor(server, "doc.json", '{"v": 1}')
    first = ok(server.get(function="reads", key="doc.json"))
    assert first["value"] == {"v": 1}
    old_pid = first["pid"]
    assert ok(server.get(function="reads", key="doc.json"))["pid"] == old_pid  # its process
    old_port = server.port

    server.restart()
    assert not pid_alive(old_pid)
    put_sor(server, "doc.json", '{"v": 2}')
    ok(server.get(function="update", path="doc.json"))
    second = ok(server.get(function="reads", key="doc.json"))
    assert second["value"] == {"v": 2}                               # through the new server
    assert second["pid"] != old_pid and pid_alive(second["pid"])
    stats = ok(server.get(function="cache_head"))["functions"]
    assert stats["workers"] == 1 and stats["crashes"] == 0
    if server.port != old_port:                                      # nothing answers there
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{old_port}/cache/api/v1.0/", timeout=5)
