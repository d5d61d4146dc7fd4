"""Users' functions through HTTP: NAME.py files with def main(cache, **kwargs), run by the
server's pool of worker processes, isolated from the server and from each other."""
from __future__ import annotations

import io
import json
import pathlib
import shutil
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pyarrow as pa
import pytest

from helpers import REPO, assert_error, install, ok, put_sor, unsandboxed

EXAMPLES = REPO / "functions"


def create(server, name: str, source: str):
    return server.get(function="function_create", function_name=name,
                      function_body=textwrap.dedent(source))


def functions_stats(server) -> dict:
    r = server.get(function="cache_head")
    assert r.status_code == 200, r.text
    return r.json()["return"]["value"]["functions"]


@pytest.fixture
def examples(server):
    for path in EXAMPLES.glob("*.py"):
        shutil.copy(path, server.functions / path.name)
    return server


def test_the_examples_answer_as_the_original_called_them(examples):
    s = examples
    assert ok(s.get(function="echo", message="hello")) == "hello"
    n = ok(s.get(function="random_number", start="3", stop="9"))
    assert isinstance(n, int) and 3 <= n <= 9
    digits = ok(s.get(function="pi", significant_digits="12"))
    assert str(digits).replace(".", "").startswith("31415926535")
    q = ok(s.get(function="query", q="abc"))
    assert "abc" in json.dumps(q)


def test_get_values_become_numbers_unless_annotated_str_and_post_keeps_json(server):
    install(server.functions, "kinds", '''
        def main(cache, a, b: str, c=None):
            return {"a": [type(a).__name__, a], "b": [type(b).__name__, b], "c": c}
    ''')
    got = ok(server.get(function="kinds", a="42", b="7"))
    assert got["a"] == ["int", 42] and got["b"] == ["str", "7"]
    got = ok(server.get(function="kinds", a="2.5", b="x"))
    assert got["a"] == ["float", 2.5]
    got = ok(server.post({"function": "kinds", "a": [1, 2], "b": "y", "c": {"k": True}}))
    assert got == {"a": ["list", [1, 2]], "b": ["str", "y"], "c": {"k": True}}


def test_the_cache_argument_reads_frames_and_json_and_loads_on_a_miss(server):
    df = pd.DataFrame({"x": [1, 2, 3], "g": ["a", "b", "a"]})
    out = io.BytesIO()
    df.to_parquet(out)
    put_sor(server, "t.parquet", out.getvalue())
    put_sor(server, "doc.json", '{"n": 5}')
    install(server.functions, "use_cache", '''
        def main(cache, key):
            frame = cache[key]
            return {"rows": len(frame), "sum": int(frame["x"].sum()),
                    "doc": cache["doc.json"]["n"], "has": "doc.json" in cache}
    ''')
    got = ok(server.get(function="use_cache", key="t.parquet"))
    assert got == {"rows": 3, "sum": 6, "doc": 5, "has": True}


def test_a_frame_result_comes_back_like_a_frame_function_answer(server):
    install(server.functions, "make_frame", '''
        import pandas as pd
        def main(cache, n):
            return pd.DataFrame({"i": list(range(n)), "sq": [i * i for i in range(n)]})
    ''')
    assert ok(server.get(function="make_frame", n="3")) == [
        {"i": 0, "sq": 0}, {"i": 1, "sq": 1}, {"i": 2, "sq": 4}]
    r = server.get(function="make_frame", n="4", format="arrow")
    assert r.status_code == 200, r.text
    got = pa.ipc.open_stream(r.content).read_pandas()
    pd.testing.assert_frame_equal(got, pd.DataFrame({"i": range(4), "sq": [0, 1, 4, 9]}))


def test_create_call_replace_call_delete(server):
    assert ok(create(server, "greet", '''
        def main(cache, name):
            return "hello " + name
    ''')) == {"result": "success", "function": "greet"}
    assert ok(server.get(function="greet", name="ada")) == "hello ada"
    create(server, "greet", '''
        def main(cache, name):
            return "bonjour " + name
    ''')
    assert ok(server.get(function="greet", name="ada")) == "bonjour ada"
    listed = ok(server.get(function="functions"))
    assert any(f["name"] == "greet" and "name" in f["signature"] for f in listed)
    assert ok(server.get(function="function_delete", function_name="greet"))
    assert_error(server.get(function="greet", name="ada"), 404)
    assert_error(server.get(function="function_delete", function_name="greet"), 404)


def test_a_syntax_error_is_400_with_pythons_message_and_saves_nothing(server):
    err = assert_error(create(server, "broken", "def main(cache:\n    return 1\n"), 400)
    assert "line" in err["message"].lower() or "syntax" in err["message"].lower()
    assert not (server.functions / "broken.py").exists()
    assert_error(create(server, "read", "def main(cache):\n    return 1\n"), 409)
    assert_error(create(server, "not-an-identifier", "def main(cache):\n    return 1\n"), 400)


def test_register_installs_a_function_from_the_system_of_record(server):
    put_sor(server, "functions/twice.py", "def main(cache, x):\n    return 2 * x\n")
    assert ok(server.get(function="function_register", path="twice.py"))
    assert ok(server.get(function="twice", x="21")) == 42


def test_an_exception_is_500_with_its_type_and_the_users_traceback(server):
    install(server.functions, "fails", '''
        def helper(d):
            return 1 / d
        def main(cache, d):
            return helper(d)
    ''')
    r = server.get(function="fails", d="0")
    err = assert_error(r, 500)
    assert err["type"] == "ZeroDivisionError"
    assert any("fails.py" in line for line in err["traceback"])
    assert all("worker" not in line for line in err["traceback"])
    assert ok(server.get(function="fails", d="4")) == 0.25


def test_a_bad_argument_is_400(server):
    install(server.functions, "one", "def main(cache, a):\n    return a\n")
    assert_error(server.get(function="one"), 400)
    assert_error(server.get(function="one", a="1", b="2"), 400)


# A runaway function's time limit: long enough that the other calls are answered while it runs,
# on a loaded machine too.
SPIN_TIMEOUT_S = 10


def wait_for_file(path: pathlib.Path, timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists():
            return True
        time.sleep(0.02)
    return path.exists()


def test_a_runaway_function_is_stopped_and_others_keep_answering(make_server, tmp_path):
    server = make_server(env=unsandboxed(ASIDE_FUNCTION_WORKERS="2"))
    started = tmp_path / "spin-started"
    install(server.functions, "spin", f"""
        import pathlib
        def main(cache):
            pathlib.Path({str(started)!r}).touch()
            while True:
                pass
    """)
    install(server.functions, "echo", "def main(cache, message):\n    return message\n")
    with ThreadPoolExecutor(max_workers=2) as pool:
        slow = pool.submit(server.get, function="spin", timeout=str(SPIN_TIMEOUT_S))
        # the runaway is observably running before the others are asked
        assert wait_for_file(started), "the runaway function never started"
        quick = [ok(server.get(function="echo", message=str(i))) for i in range(5)]
        assert not slow.done(), "the others were answered only after the runaway ended"
        assert_error(slow.result(), 504, "timeout")
    assert quick == list(range(5))  # numeric-looking GET values arrive as numbers
    assert ok(server.get(function="echo", message="after")) == "after"
    stats = functions_stats(server)
    assert stats["timeouts"] == 1 and stats["started"] >= 2


def test_an_allocation_bomb_hits_the_memory_limit(make_server):
    server = make_server(env={"ASIDE_FUNCTION_MEMORY": "1GiB"})
    install(server.functions, "bomb", "def main(cache):\n    return len(bytearray(8 * 1024 ** 3))\n")
    install(server.functions, "echo", "def main(cache, message):\n    return message\n")
    err = assert_error(server.get(function="bomb"), 507)
    assert err["type"] == "MemoryError"
    assert ok(server.get(function="echo", message="fine")) == "fine"


def test_a_crashing_worker_is_replaced(server):
    install(server.functions, "crash", "import os\ndef main(cache):\n    os.abort()\n")
    install(server.functions, "echo", "def main(cache, message):\n    return message\n")
    err = assert_error(server.get(function="crash"), 500, "worker_died")
    assert "signal 6" in err["message"]
    assert ok(server.get(function="echo", message="alive")) == "alive"
    assert functions_stats(server)["crashes"] == 1


def test_32_concurrent_calls_across_the_pool(make_server):
    server = make_server(env={"ASIDE_FUNCTION_WORKERS": "4", "ASIDE_LOAD_THREADS": "32"})
    install(server.functions, "square", "def main(cache, x):\n    return x * x\n")
    with ThreadPoolExecutor(max_workers=32) as pool:
        got = list(pool.map(lambda i: ok(server.get(function="square", x=str(i))),
                            range(32)))
    assert got == [i * i for i in range(32)]
    assert 1 <= functions_stats(server)["workers"] <= 4


def test_an_unknown_function_is_404(server):
    assert_error(server.get(function="no_such_function"), 404, "unknown_function")
    assert_error(server.get(function="../etc/passwd"), 404)


def test_the_workers_stop_with_the_server(make_server):
    server = make_server(env=unsandboxed())
    install(server.functions, "pid", "import os\ndef main(cache):\n    return os.getpid()\n")
    pid = ok(server.get(function="pid"))
    server.stop()
    assert not pathlib.Path(f"/proc/{pid}").exists()


def test_memoisation_figures_reach_the_telemetry(make_server):
    server = make_server(env={"ASIDE_FUNCTION_WORKERS": "1"})
    install(server.functions, "memo", '''
        import aside

        @aside.lru_cache(maxsize=8)
        def square(x):
            return x * x

        def main(cache, x):
            return square(x)
    ''')
    for x in (3, 3, 3, 4):
        ok(server.get(function="memo", x=str(x)))
    lru = functions_stats(server)["memo"]["lru"]
    (name, figures), = [(k, v) for k, v in lru.items() if k.endswith("square")]
    assert (figures["hits"], figures["misses"], figures["currsize"]) == (2, 2, 2)
