"""Users' functions through the server, beyond the basics: registering from an S3 system of
record, the Python client's view of function calls and their errors, results kept with
@compute_result and statistics of @lru_cache through the server's worker pool, writes through
the `cache` argument, results that cannot be sent, the listing of a folder with a broken file,
and workers across a restart of the server."""
from __future__ import annotations

import functools
import inspect
import json
import pathlib
import textwrap

import pandas as pd
import pytest
import requests

pytest.register_assert_rewrite("s3_fixtures")

import aside  # noqa: E402
from helpers import (assert_error, cached_keys, install, ok, parquet_bytes,  # noqa: E402
                     put_sor)
from frame_data import arrow_frame  # noqa: E402

pytest_plugins = ["s3_fixtures"]


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


# -- 1. function_register from an S3 system of record --------------------------------------------

TWICE_S3 = "def main(cache, x):\n    \"\"\"From the bucket.\"\"\"\n    return 2 * x\n"
TWICE_SD = "def main(cache, x):\n    return 3 * x\n"


def test_register_fetches_the_function_file_from_the_bucket_and_installs_it(s3, s3_server):
    # the server reads the key AWS_FUNCTION_DIR/NAME.py (default functions/) through the
    # system of record; the bucket holds keys under AWS_DATA_DIR, as every other key
    s3.put("functions/twice.py", TWICE_S3)
    put_sor(s3_server, "functions/twice.py", TWICE_SD)   # the directory's copy: not the default
    got = ok(s3_server.get(function="function_register", path="twice.py"))
    assert got == {"result": "success", "function": "twice"}
    assert (s3_server.functions / "twice.py").read_text() == TWICE_S3
    assert ok(s3_server.get(function="twice", x="21")) == 42
    listed = {f["name"]: f for f in ok(s3_server.get(function="functions"))}
    assert listed["twice"]["signature"] == "(cache, x)"
    assert listed["twice"]["doc"] == "From the bucket."

    # registering again fetches the bucket's current object, not a cached copy
    s3.put("functions/twice.py", "def main(cache, x):\n    return 20 * x\n")
    assert ok(s3_server.get(function="function_register", path="twice.py"))
    assert ok(s3_server.get(function="twice", x="2")) == 40


def test_register_with_storage_sd_reads_the_directory_instead_of_the_bucket(s3, s3_server):
    s3.put("functions/twice.py", TWICE_S3)
    put_sor(s3_server, "functions/twice.py", TWICE_SD)
    assert ok(s3_server.get(function="function_register", path="twice.py", storage="sd"))
    assert ok(s3_server.get(function="twice", x="5")) == 15
    assert ok(s3_server.get(function="function_register", path="twice.py", storage="s3"))
    assert ok(s3_server.get(function="twice", x="5")) == 10


def test_register_of_a_file_missing_from_the_bucket_is_404_and_installs_nothing(s3, s3_server):
    s3.put("functions/other.py", TWICE_S3)
    assert_error(s3_server.get(function="function_register", path="absent.py"), 404)
    assert not (s3_server.functions / "absent.py").exists()
    assert_error(s3_server.get(function="absent"), 404, "unknown_function")


def test_register_of_a_syntax_error_in_the_bucket_is_400_and_installs_nothing(s3, s3_server):
    s3.put("functions/broken.py", "def main(cache, x:\n    return x\n")
    err = assert_error(s3_server.get(function="function_register", path="broken.py"), 400)
    assert err["type"] == "SyntaxError"
    assert "line 1" in err["message"]
    assert sorted(p.name for p in s3_server.functions.iterdir()) == []   # no temporary left
    assert_error(s3_server.get(function="broken", x="1"), 404, "unknown_function")
    assert all(f["name"] != "broken" for f in ok(s3_server.get(function="functions")))

    # a file without main is refused the same way
    s3.put("functions/nomain.py", "def helper(cache):\n    return 1\n")
    err = assert_error(s3_server.get(function="function_register", path="nomain.py"), 400)
    assert "main" in err["message"]
    assert not (s3_server.functions / "nomain.py").exists()


# -- 2. through the Python client ----------------------------------------------------------------

@pytest.fixture
def client(server):
    with aside.connect(server.base) as c:
        yield c


def test_client_call_passes_get_values_and_a_post_body_of_json_values(server, client):
    install(server.functions, "echo", '''
        def main(cache, message):
            return message
    ''')
    install(server.functions, "kinds", '''
        def main(cache, **kwargs):
            return {k: [type(v).__name__, v] for k, v in sorted(kwargs.items())}
    ''')
    assert client.call("echo", message="hi") == "hi"
    assert client.call("echo", message="0042") == 42          # a GET value that looks numeric
    body = {"data": {"function": "kinds", "a": [1, 2.5, None], "b": {"k": True}, "c": "7"}}
    got = client.call("kinds", body=json.dumps(body).encode())
    assert got == {"a": ["list", [1, 2.5, None]], "b": ["dict", {"k": True}], "c": ["str", "7"]}


def test_client_call_reads_a_frame_result_as_arrow_or_records(server, client):
    install(server.functions, "frame", '''
        import pandas as pd
        def main(cache, n):
            return pd.DataFrame({
                "i": list(range(n)),
                "f": [i / 4 if i % 3 else None for i in range(n)],
                "s": ["v%d" % i if i % 2 else None for i in range(n)],
                "b": [i % 2 == 0 for i in range(n)],
            })
    ''')
    n = 7
    expected = pd.DataFrame({"i": range(n),
                             "f": [i / 4 if i % 3 else None for i in range(n)],
                             "s": ["v%d" % i if i % 2 else None for i in range(n)],
                             "b": [i % 2 == 0 for i in range(n)]})
    body = client.call("frame", n=n, format="arrow")
    assert isinstance(body, bytes)
    pd.testing.assert_frame_equal(arrow_frame(body), expected)
    records = client.call("frame", n=n)
    assert records == json.loads(expected.to_json(orient="records"))


def test_client_raises_typed_errors_for_a_functions_failures(make_server):
    server = make_server(env={"ASIDE_FUNCTION_WORKERS": "2"})
    install(server.functions, "one", "def main(cache, a):\n    return a\n")
    install(server.functions, "fails", "def main(cache, d):\n    return 1 / d\n")
    install(server.functions, "spin", "def main(cache):\n    while True:\n        pass\n")
    with aside.connect(server.base) as client:
        with pytest.raises(aside.NotFound) as e:
            client.call("no_such_function")
        assert (e.value.status, e.value.code) == (404, "unknown_function")

        with pytest.raises(aside.BadRequest) as e:
            client.call("one", a=1, b=2)
        assert e.value.status == 400 and "b" in e.value.message
        with pytest.raises(aside.BadRequest):
            client.call("one")

        with pytest.raises(aside.ServerError) as e:
            client.call("fails", d=0)
        assert type(e.value) is aside.ServerError
        assert (e.value.status, e.value.code) == (500, "function_error")
        assert "division by zero" in e.value.message

        with pytest.raises(aside.Timeout) as e:
            client.call("spin", timeout=1)
        assert (e.value.status, e.value.code) == (504, "timeout")

        assert client.call("fails", d=4) == 0.25          # the pool still answers


def test_client_error_of_a_raising_function_carries_the_exception_type(server, client):
    # the server's answer has the exception's type (error.type); a client user catching
    # ServerError should be able to tell a ValueError from a KeyError
    install(server.functions, "raises", '''
        def main(cache):
            raise LookupError("no row for that id")
    ''')
    r = server.get(function="raises")
    assert assert_error(r, 500)["type"] == "LookupError"
    with pytest.raises(aside.ServerError) as e:
        client.call("raises")
    carried = getattr(e.value, "type", None) == "LookupError" or "LookupError" in str(e.value)
    assert carried, f"the exception type is lost in the client's exception: {e.value!r}"


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
    server = make_server(env={"ASIDE_FUNCTION_WORKERS": "1"})
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


# -- 7. the listing ------------------------------------------------------------------------------

LISTED = {
    "alpha": '''
        def main(cache, q, w=-1, *rest, flag=False, **kwargs):
            """Alpha's summary line.

            More text that is not listed.
            """
            return q
    ''',
    "beta": '''
        """Beta, from the module's docstring."""
        def main(cache, key):
            return key
    ''',
    "gamma": '''
        def main(cache):
            return 1
    ''',
}


def test_functions_lists_each_file_and_a_broken_file_with_its_error(server):
    expected = []
    for name, source in LISTED.items():
        install(server.functions, name, source)
        namespace: dict = {}
        exec(textwrap.dedent(source), namespace)
        doc = inspect.getdoc(namespace["main"]) or namespace.get("__doc__")
        expected.append({"name": name, "signature": str(inspect.signature(namespace["main"])),
                         "doc": doc.splitlines()[0] if doc else None})
    install(server.functions, "broken", "def main(cache):\n    return (1,\n")
    install(server.functions, "nomain", "def helper(cache):\n    return 1\n")
    (server.functions / "notes.txt").write_text("not a function")
    (server.functions / "not-an-identifier.py").write_text("def main(cache):\n    return 1\n")

    listed = ok(server.get(function="functions"))
    assert [f["name"] for f in listed] == ["alpha", "beta", "broken", "gamma", "nomain"]
    by_name = {f["name"]: f for f in listed}
    for want in expected:
        got = by_name[want["name"]]
        assert {k: got[k] for k in ("name", "signature", "doc")} == want
        assert "error" not in got
    assert by_name["broken"]["signature"] is None and by_name["broken"]["error"]
    assert "broken.py" in by_name["broken"]["error"]
    assert by_name["nomain"]["signature"] is None and "main" in by_name["nomain"]["error"]

    err = assert_error(server.get(function="broken"), 500)
    assert err["type"] == "SyntaxError"
    assert "broken.py" in err["message"]
    assert ok(server.get(function="alpha", q="x")) == "x"        # the others still run


# -- 8. across a restart -------------------------------------------------------------------------

def test_workers_are_replaced_across_a_restart_and_reach_the_new_server(make_server):
    server = make_server(env={"ASIDE_FUNCTION_WORKERS": "1"})
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
    assert ok(server.get(function="pid")) == old_pid
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
