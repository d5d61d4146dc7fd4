"""The worker that runs users' functions (python -m aside.worker), driven over its protocol
directly: the test is the server's side of a socketpair whose other end is the worker's fd 3.
A real aside-server holds the cache the functions read and where results are kept."""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import socket
import struct
import subprocess
import sys

import pandas as pd
import pyarrow as pa
import pytest

import aside
from helpers import REPO, install, parquet_bytes, put_sor

EXAMPLES = REPO / "functions"
PROTOCOL_FD = 3
REPLY_TIMEOUT_S = 60.0
EXIT_TIMEOUT_S = 20.0
LENGTH = struct.Struct(">I")


class Worker:
    """One `python -m aside.worker` with fd 3 = our socketpair's other end."""

    def __init__(self, function_dir: pathlib.Path, url: str, log: pathlib.Path) -> None:
        self.sock, child = socket.socketpair()
        env = {k: v for k, v in os.environ.items() if not k.startswith("ASIDE_")}
        env.update({"ASIDE_URL": url, "ASIDE_FUNCTION_DIR": str(function_dir)})
        self.log_path = log
        self.log = open(log, "ab")
        try:
            self.proc = self._spawn(child.fileno(), env)
        finally:
            child.close()
        self.sock.settimeout(REPLY_TIMEOUT_S)
        self.next_id = 1

    def _spawn(self, fd: int, env: dict) -> subprocess.Popen:
        """Popen with `fd` as the child's fd 3: put it there in this process for the time of
        the spawn, then put back whatever fd 3 was."""
        cmd = [sys.executable, "-m", "aside.worker"]
        if fd == PROTOCOL_FD:
            return subprocess.Popen(cmd, env=env, pass_fds=(PROTOCOL_FD,), stdout=self.log,
                                    stderr=subprocess.STDOUT)
        try:
            saved = os.dup(PROTOCOL_FD)
        except OSError:
            saved = None
        os.dup2(fd, PROTOCOL_FD)
        try:
            return subprocess.Popen(cmd, env=env, pass_fds=(PROTOCOL_FD,), stdout=self.log,
                                    stderr=subprocess.STDOUT)
        finally:
            if saved is None:
                os.close(PROTOCOL_FD)
            else:
                os.dup2(saved, PROTOCOL_FD)
                os.close(saved)

    # -- protocol ---------------------------------------------------------------------------
    def send_raw(self, header_bytes: bytes, payload: bytes = b"") -> None:
        self.sock.sendall(LENGTH.pack(len(header_bytes)) + header_bytes + payload)

    def _recv_exact(self, n: int) -> bytes:
        data = bytearray()
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError(f"worker closed the socket; its log:\n{self.log_text()}")
            data += chunk
        return bytes(data)

    def receive(self) -> tuple[dict, bytes]:
        (n,) = LENGTH.unpack(self._recv_exact(LENGTH.size))
        header = json.loads(self._recv_exact(n).decode("utf-8"))
        size = header.get("payload_bytes", 0)
        return header, self._recv_exact(size) if size else b""

    def request(self, op: str, payload: bytes = b"", **fields) -> tuple[dict, bytes]:
        rid = self.next_id
        self.next_id += 1
        header = {"op": op, "id": rid, **fields}
        if payload:
            header["payload_bytes"] = len(payload)
        self.send_raw(json.dumps(header).encode(), payload)
        answer, body = self.receive()
        assert answer["id"] == rid, answer
        return answer, body

    def call(self, function: str, text: bool = False, **args) -> tuple[dict, bytes]:
        return self.request("call", function=function, args=args, text=text)

    def get(self, function: str, **args) -> tuple[dict, bytes]:
        """As a GET: every value a string."""
        return self.call(function, text=True, **{k: str(v) for k, v in args.items()})

    def close(self) -> int:
        self.sock.close()
        code = self.proc.wait(timeout=EXIT_TIMEOUT_S)
        self.log.close()
        return code

    def log_text(self) -> str:
        return self.log_path.read_bytes().decode(errors="replace")


def value(answer: tuple[dict, bytes]):
    header, body = answer
    assert header["ok"] is True and header["kind"] == "json", header
    assert body == b""
    return header["value"]


def frame(answer: tuple[dict, bytes]) -> pd.DataFrame:
    header, body = answer
    assert header["ok"] is True and header["kind"] == "frame", header
    assert header["payload_bytes"] == len(body)
    return pa.ipc.open_stream(body).read_all().to_pandas()


def error(answer: tuple[dict, bytes], status: int, type_name: str | None = None) -> dict:
    header, body = answer
    assert header["ok"] is False, header
    assert body == b""
    err = header["error"]
    assert err["status"] == status, err
    assert isinstance(err["message"], str) and err["message"], err
    assert isinstance(err["traceback"], list), err
    if type_name is not None:
        assert err["type"] == type_name, err
    return err


@pytest.fixture
def worker(server, tmp_path):
    w = Worker(server.functions, server.base, tmp_path / "worker.log")
    yield w
    code = w.close()         # end of file on fd 3: the worker exits 0
    assert code == 0, f"the worker exited with {code}:\n{w.log_text()}"


@pytest.fixture
def client(server):
    with aside.connect(server.base) as c:
        yield c


# -- the calling styles of the original project -------------------------------------------------

def test_the_example_functions_answer_in_the_originals_calling_styles(server, worker, client):
    for path in EXAMPLES.glob("*.py"):
        shutil.copy(path, server.functions / path.name)
    assert value(worker.get("echo", message="hello")) == "hello"
    assert value(worker.call("echo", message={"any": ["json"]})) == {"any": ["json"]}
    n = value(worker.get("random_number", start=3, stop=9))
    assert isinstance(n, int) and 3 <= n <= 9
    assert value(worker.get("pi", significant_digits=12)) == "3.14159265358"
    assert value(worker.call("pi", significant_digits=1)) == "3"
    assert len(value(worker.get("pi", significant_digits=10000))) == 10001
    error(worker.get("pi", significant_digits=10001), 500, "ValueError")
    assert value(worker.get("query", q="abc")) == {"q": "abc", "w": -1}
    assert value(worker.get("query", q="abc", w=3)) == {"q": "abc", "w": 3}
    client.put("t.parquet", pd.DataFrame({"x": [1, None, 3], "s": ["a", "b", None]}))
    assert value(worker.get("cache_stats")) == {"count": 1, "keys": ["t.parquet"]}
    summary = frame(worker.get("frame_summary", key="t.parquet"))
    assert summary.to_dict("records") == [
        {"column": "x", "dtype": "float64", "non_null": 2},
        {"column": "s", "dtype": "object", "non_null": 2}]


def test_get_values_become_numbers_unless_annotated_str(server, worker):
    install(server.functions, "kinds", '''
        def main(cache, a, b: str, c="none"):
            return {"a": [type(a).__name__, a], "b": [type(b).__name__, b],
                    "c": [type(c).__name__, c]}
    ''')
    assert value(worker.get("kinds", a="42", b="7")) == {
        "a": ["int", 42], "b": ["str", "7"], "c": ["str", "none"]}
    assert value(worker.get("kinds", a="-2.5", b="x", c="1e3")) == {
        "a": ["float", -2.5], "b": ["str", "x"], "c": ["float", 1000.0]}
    got = value(worker.get("kinds", a="true", b="1", c="nan"))
    assert got == {"a": ["str", "true"], "b": ["str", "1"], "c": ["str", "nan"]}
    install(server.functions, "annotated_later", '''
        from __future__ import annotations
        def main(cache, zip_code: str, **rest):
            return [zip_code, rest]
    ''')
    assert value(worker.get("annotated_later", zip_code="01234", n="5", s="x")) == [
        "01234", {"n": 5, "s": "x"}]


def test_post_values_arrive_as_the_json_gave_them(server, worker):
    install(server.functions, "kinds", '''
        def main(cache, a, b: str, c=None):
            return {"a": [type(a).__name__, a], "b": [type(b).__name__, b], "c": c}
    ''')
    assert value(worker.call("kinds", a=[1, 2], b="42", c={"k": True})) == {
        "a": ["list", [1, 2]], "b": ["str", "42"], "c": {"k": True}}
    assert value(worker.call("kinds", a="42", b=7)) == {
        "a": ["str", "42"], "b": ["int", 7], "c": None}


# -- results --------------------------------------------------------------------------------------

def test_a_frame_result_is_an_arrow_stream_of_the_frame(server, worker):
    install(server.functions, "make", '''
        import pandas as pd
        import pyarrow as pa
        def main(cache, n, table=False):
            df = pd.DataFrame({"i": list(range(n)), "sq": [i * i for i in range(n)],
                               "s": [str(i) for i in range(n)]}, index=[10 + i for i in range(n)])
            return pa.Table.from_pandas(df, preserve_index=False) if table else df
    ''')
    expected = pd.DataFrame({"i": range(4), "sq": [0, 1, 4, 9], "s": ["0", "1", "2", "3"]})
    pd.testing.assert_frame_equal(frame(worker.get("make", n=4)), expected)
    pd.testing.assert_frame_equal(frame(worker.call("make", n=4, table=True)), expected)
    assert frame(worker.call("make", n=0)).shape == (0, 3)


def test_a_bytes_result_is_the_payload_as_it_is(server, worker):
    install(server.functions, "raw", '''
        def main(cache, n):
            data = bytes(range(256)) * n
            return memoryview(data) if n == 2 else bytearray(data) if n == 3 else data
    ''')
    for n in (0, 1, 2, 3):
        header, body = worker.call("raw", n=n)
        assert set(header["stats"]) == {"functions", "results"}  # a call's figures ride along
        assert header == {"id": header["id"], "ok": True, "kind": "bytes",
                          "payload_bytes": 256 * n, "stats": header["stats"]}
        assert body == bytes(range(256)) * n


def test_json_results_convert_tuples_sets_views_numpy_and_datetimes(server, worker):
    install(server.functions, "mixed", '''
        import datetime
        import numpy as np
        def main(cache):
            d = {"b": 2, "a": 1}
            return {"tuple": (1, "x"), "set": {3, 1, 2}, "keys": d.keys(), "values": d.values(),
                    "items": d.items(), "np": [np.int64(7), np.float32(0.5), np.bool_(True)],
                    "array": np.arange(3), "when": datetime.datetime(2024, 5, 6, 7, 8, 9),
                    "day": datetime.date(2024, 5, 6), "nan": float("nan"), 3: "int key",
                    "text": "é ✓"}
    ''')
    assert value(worker.call("mixed")) == {
        "tuple": [1, "x"], "set": [1, 2, 3], "keys": ["b", "a"], "values": [2, 1],
        "items": [["b", 2], ["a", 1]], "np": [7, 0.5, True], "array": [0, 1, 2],
        "when": "2024-05-06T07:08:09", "day": "2024-05-06", "nan": None, "3": "int key",
        "text": "é ✓"}


def test_a_result_of_another_kind_is_500_cannot_return(server, worker):
    install(server.functions, "gen", '''
        def main(cache, what):
            if what == "generator":
                return (i for i in range(3))
            return [1, object()]
    ''')
    err = error(worker.call("gen", what="generator"), 500, "TypeError")
    assert err["message"] == "cannot return generator"
    err = error(worker.call("gen", what="nested"), 500, "TypeError")
    assert err["message"] == "cannot return object"


# -- errors ---------------------------------------------------------------------------------------

def test_an_unknown_function_is_404(worker):
    error(worker.call("no_such_function"), 404)
    error(worker.call("../etc/passwd"), 404)
    error(worker.call(""), 404)


def test_arguments_that_do_not_fit_main_are_400_with_pythons_message(server, worker):
    install(server.functions, "one", "def main(cache, a):\n    return a\n")
    err = error(worker.get("one"), 400, "TypeError")
    assert "missing a required argument: 'a'" in err["message"]
    err = error(worker.get("one", a=1, b=2), 400, "TypeError")
    assert "unexpected keyword argument 'b'" in err["message"]
    error(worker.call("one", a=1, cache=2), 400, "TypeError")
    install(server.functions, "anything", "def main(cache, **kwargs):\n    return kwargs\n")
    assert value(worker.call("anything", x=1, y=[2])) == {"x": 1, "y": [2]}


def test_an_exception_is_500_with_the_users_frames_only_and_the_worker_goes_on(server, worker):
    install(server.functions, "fails", '''
        def helper(d):
            return 1 / d

        def main(cache, d):
            return helper(d)
    ''')
    err = error(worker.get("fails", d=0), 500, "ZeroDivisionError")
    assert err["message"] == "division by zero"
    assert err["traceback"] == [
        '  File "fails.py", line 6, in main', "    return helper(d)",
        '  File "fails.py", line 3, in helper', "    return 1 / d"]
    assert value(worker.get("fails", d=4)) == 0.25


def test_an_exception_while_loading_the_file_is_500_and_the_file_is_loaded_again(server, worker):
    install(server.functions, "bad_import", "import no_such_module_here\ndef main(cache):\n"
                                            "    return 1\n")
    err = error(worker.call("bad_import"), 500, "ModuleNotFoundError")
    assert err["traceback"][0] == '  File "bad_import.py", line 1, in <module>'
    install(server.functions, "bad_syntax", "def main(cache:\n    return 1\n")
    err = error(worker.call("bad_syntax"), 500, "SyntaxError")
    assert "bad_syntax.py, line 1" in err["message"]
    install(server.functions, "no_main", "def other(cache):\n    return 1\n")
    error(worker.call("no_main"), 500, "AttributeError")
    install(server.functions, "bad_import", "def main(cache):\n    return 'fixed'\n")
    assert value(worker.call("bad_import")) == "fixed"


def test_memory_error_is_507_and_system_exit_is_500(server, worker):
    install(server.functions, "exits", '''
        import sys
        def main(cache, how):
            if how == "memory":
                raise MemoryError
            if how == "exit":
                sys.exit(3)
            raise KeyError("k")
    ''')
    err = error(worker.call("exits", how="memory"), 507, "MemoryError")
    assert err["message"] == "MemoryError"
    error(worker.call("exits", how="exit"), 500, "SystemExit")
    err = error(worker.call("exits", how="key"), 500, "KeyError")
    assert err["message"] == "'k'"
    install(server.functions, "ok", "def main(cache):\n    return 'still here'\n")
    assert value(worker.call("ok")) == "still here"


def test_a_malformed_request_is_400_and_a_request_payload_is_skipped(server, worker):
    worker.send_raw(b"{not json")
    header, _ = worker.receive()
    assert header["ok"] is False and header["error"]["status"] == 400
    error(worker.request("frobnicate"), 400, "ProtocolError")
    install(server.functions, "echo", "def main(cache, message):\n    return message\n")
    assert value(worker.request("call", payload=b"\x00" * 1000, function="echo",
                                args={"message": "after"}, text=False)) == "after"


# -- check, describe, reload, stats ---------------------------------------------------------------

def test_check_compiles_without_running_and_reports_the_syntax_error(server, worker, tmp_path):
    marker = tmp_path / "ran"
    ok = value(worker.request("check", source=f'''
open({str(marker)!r}, "w").close()
def main(cache, message):
    """Says it back."""
    return message
'''))
    assert ok == {"signature": "(cache, message)", "doc": "Says it back."}
    assert not marker.exists()
    err = error(worker.request("check", name="broken",
                               source="x = 1\ndef main(cache:\n    return 1\n"), 400)
    assert err["type"] == "SyntaxError"
    assert "(broken.py, line 2" in err["message"] and "def main(cache:" in err["message"]
    assert any('File "broken.py", line 2' in line for line in err["traceback"])
    error(worker.request("check", source="def helper(cache):\n    return 1\n"), 400, "ValueError")
    error(worker.request("check", source="def main():\n    return 1\n"), 400, "ValueError")
    error(worker.request("check", source="x = '\0'\n"), 400)


def test_describe_lists_signatures_and_docs_without_running_the_files(server, worker, tmp_path):
    marker = tmp_path / "imported"
    install(server.functions, "query", '''
        """Echoes its query."""
        def main(cache, q, w=-1):
            return q
    ''')
    install(server.functions, "side_effect", f'''
        open({str(marker)!r}, "w").close()
        def main(cache, a: str, *args, k: int = 3, **kw):
            """First line.

            More text."""
    ''')
    install(server.functions, "broken", "def main(cache:\n")
    (server.functions / "not-a-name.py").write_text("def main(cache):\n    pass\n")
    (server.functions / "notes.txt").write_text("not a function")
    listed = value(worker.request("describe"))
    assert listed[0] == {"name": "broken", "signature": None, "doc": None,
                         "error": listed[0]["error"]}
    assert "line 1" in listed[0]["error"]
    assert listed[1:] == [
        {"name": "query", "signature": "(cache, q, w=-1)", "doc": "Echoes its query."},
        {"name": "side_effect", "signature": "(cache, a: str, *args, k: int = 3, **kw)",
         "doc": "First line."}]
    assert not marker.exists()


def test_a_changed_file_is_loaded_again(server, worker):
    path = install(server.functions, "version", "def main(cache):\n    return 1\n")
    assert value(worker.call("version")) == 1
    assert value(worker.call("version")) == 1
    path.write_text("def main(cache):\n    return 'two'\n")        # another size
    assert value(worker.call("version")) == "two"
    tmp = path.with_name("version.tmp")
    tmp.write_text("def main(cache):\n    return 'six'\n")         # same size, new file
    os.replace(tmp, path)
    assert value(worker.call("version")) == "six"
    path.unlink()
    error(worker.call("version"), 404)


def test_stats_reports_lru_cache_counts(server, worker):
    install(server.functions, "memo", '''
        from aside import lru_cache

        @lru_cache(maxsize=4)
        def square(x):
            return x * x

        def main(cache, x):
            return square(x)
    ''')
    for x in (2, 2, 3, 2):
        assert value(worker.call("memo", x=x)) == x * x
    stats = value(worker.request("stats"))
    assert stats["functions"]["memo.square"] == {"hits": 2, "misses": 2, "maxsize": 4,
                                                 "currsize": 2}
    install(server.functions, "memo", '''
        import aside

        @aside.lru_cache
        def cube(x):
            return x ** 3

        def main(cache, x):
            return cube(x)
    ''')
    assert value(worker.call("memo", x=2)) == 8
    functions = value(worker.request("stats"))["functions"]
    assert "memo.square" not in functions
    assert functions["memo.cube"] == {"hits": 0, "misses": 1, "maxsize": 128, "currsize": 1}


# -- the cache argument ---------------------------------------------------------------------------

def test_the_cache_argument_is_a_mapping_over_the_server(server, worker, client):
    put_sor(server, "t.parquet", parquet_bytes(pd.DataFrame({"x": [1, 2, 3]}), index=False))
    put_sor(server, "doc.json", '{"n": 5}')
    install(server.functions, "use", '''
        import pandas as pd
        def main(cache, key):
            out = {"before": key in cache}
            df = cache[key]
            out["sum"] = int(df["x"].sum())
            out["doc"] = cache["doc.json"]["n"]
            out["missing"] = cache.get("missing.json", "default")
            try:
                cache["missing.json"]
            except KeyError:
                out["keyerror"] = True
            cache["made.json"] = {"from": "function"}
            out["len"] = len(cache)
            out["keys"] = sorted(cache)
            out["sql"] = cache.sql('SELECT sum("x") AS s FROM "t.parquet"')["s"].tolist()
            out["entries"] = cache.info(key)["entries"]
            del cache["made.json"]
            try:
                del cache["made.json"]
            except KeyError:
                out["second_delete"] = "KeyError"
            out["reads"] = list(cache.reads)
            return out
    ''')
    assert value(worker.get("use", key="t.parquet")) == {
        "before": False, "sum": 6, "doc": 5, "missing": "default", "keyerror": True,
        "len": 3, "keys": ["doc.json", "made.json", "t.parquet"], "sql": [6], "entries": 3,
        "second_delete": "KeyError", "reads": ["t.parquet", "doc.json"]}
    assert sorted(client.keys()) == ["doc.json", "t.parquet"]


# -- results kept in aside ------------------------------------------------------------------------

COMPUTE = '''
    import os
    from aside import compute_result

    @compute_result
    def main(cache, key, column="x"):
        """The sum of a column, and the process that computed it."""
        return {"sum": int(cache[key][column].sum()), "runs_in": os.getpid()}
'''


def results_stats(worker) -> dict:
    return value(worker.request("stats"))["results"]


def deps_documents(client) -> list[dict]:
    return [client.read(k, type="json") for k in sorted(client.keys())
            if k.startswith("results/") and k.endswith(".deps.json")]


def test_compute_result_hits_until_an_input_changes(server, worker, client):
    install(server.functions, "total", COMPUTE)
    client.put("in.parquet", pd.DataFrame({"x": [1, 2, 3]}))
    first = value(worker.get("total", key="in.parquet"))
    assert first["sum"] == 6
    assert results_stats(worker) == {"total.main": {"hits": 0, "misses": 1}}
    assert value(worker.get("total", key="in.parquet")) == first
    assert value(worker.call("total", key="in.parquet", column="x")) == first  # defaults bound
    assert results_stats(worker) == {"total.main": {"hits": 2, "misses": 1}}

    (deps,) = deps_documents(client)
    generation = client.stats("in.parquet")["entries"][0]["generation"]
    assert deps["function"] == "total.main"
    assert deps["args"] == {"key": "in.parquet", "column": "x"}
    assert deps["inputs"] == {"in.parquet": generation}
    assert deps["result"].startswith("results/total-") and deps["result"].endswith(".json")
    assert client.read(deps["result"]) == first

    client.put("in.parquet", pd.DataFrame({"x": [10, 20]}))          # a new generation
    assert value(worker.get("total", key="in.parquet"))["sum"] == 30
    assert value(worker.get("total", key="in.parquet"))["sum"] == 30
    assert results_stats(worker) == {"total.main": {"hits": 3, "misses": 2}}


def test_compute_result_recomputes_when_an_input_left_the_cache(server, worker, client):
    install(server.functions, "total", COMPUTE)
    put_sor(server, "sor.parquet", parquet_bytes(pd.DataFrame({"x": [1, 1]}), index=False))
    assert value(worker.get("total", key="sor.parquet"))["sum"] == 2
    assert value(worker.get("total", key="sor.parquet"))["sum"] == 2
    client.delete("sor.parquet")                       # gone; the next read loads it again
    put_sor(server, "sor.parquet", parquet_bytes(pd.DataFrame({"x": [5, 5]}), index=False))
    assert value(worker.get("total", key="sor.parquet"))["sum"] == 10
    assert results_stats(worker) == {"total.main": {"hits": 1, "misses": 2}}
    # other arguments are another result
    client.put("other.parquet", pd.DataFrame({"x": [7]}))
    assert value(worker.get("total", key="other.parquet"))["sum"] == 7
    assert len(deps_documents(client)) == 2


def test_compute_result_is_computed_again_when_its_stored_result_is_gone(server, worker, client):
    install(server.functions, "total", COMPUTE)
    client.put("in.parquet", pd.DataFrame({"x": [4]}))
    value(worker.get("total", key="in.parquet"))
    (deps,) = deps_documents(client)
    client.delete(deps["result"])
    assert value(worker.get("total", key="in.parquet"))["sum"] == 4
    assert results_stats(worker) == {"total.main": {"hits": 0, "misses": 2}}


def test_compute_result_keeps_frames_as_parquet_and_returns_them_on_a_hit(server, worker, client):
    install(server.functions, "doubled", '''
        from aside import compute_result

        @compute_result(key_prefix="kept/")
        def main(cache, key):
            df = cache[key]
            return df.assign(y=df["x"] * 2)
    ''')
    client.put("in.parquet", pd.DataFrame({"x": [1, 2]}))
    expected = pd.DataFrame({"x": [1, 2], "y": [2, 4]})
    pd.testing.assert_frame_equal(frame(worker.get("doubled", key="in.parquet")), expected)
    pd.testing.assert_frame_equal(frame(worker.get("doubled", key="in.parquet")), expected)
    assert results_stats(worker) == {"doubled.main": {"hits": 1, "misses": 1}}
    kept = [k for k in client.keys() if k.startswith("kept/")]
    assert len(kept) == 2 and any(k.endswith(".parquet") for k in kept)


def test_sql_result_caches_the_querys_frame_until_a_named_frame_changes(server, worker, client):
    install(server.functions, "by_group", '''
        from aside import sql_result

        @sql_result
        def main(cache, g: str):
            return f\'\'\'SELECT "g", sum("x") AS total FROM "sales.parquet" WHERE "g" = '{g}' GROUP BY "g"\'\'\'
    ''')
    client.put("sales.parquet", pd.DataFrame({"g": ["a", "b", "a"], "x": [1, 2, 3]}))
    got = frame(worker.get("by_group", g="a"))
    assert got["total"].tolist() == [4]
    assert frame(worker.get("by_group", g="a"))["total"].tolist() == [4]
    assert results_stats(worker) == {"by_group.main": {"hits": 1, "misses": 1}}
    (deps,) = deps_documents(client)
    assert list(deps["inputs"]) == ["sales.parquet"]
    assert "sales.parquet" in deps["query"]
    client.put("sales.parquet", pd.DataFrame({"g": ["a"], "x": [100]}))
    assert frame(worker.get("by_group", g="a"))["total"].tolist() == [100]
    assert results_stats(worker) == {"by_group.main": {"hits": 1, "misses": 2}}


def test_compute_result_in_client_code_with_nested_results(server, client):
    runs = []

    @aside.compute_result
    def inner(cache, key):
        runs.append("inner")
        return int(cache.read(key)["x"].sum())

    @aside.compute_result
    def outer(cache, key):
        runs.append("outer")
        return inner(cache, key) + 1

    client.put("n.parquet", pd.DataFrame({"x": [1, 2]}))
    assert outer(client, "n.parquet") == 4
    assert outer(client, "n.parquet") == 4
    assert runs == ["outer", "inner"]
    client.put("n.parquet", pd.DataFrame({"x": [5]}))
    assert outer(client, "n.parquet") == 6
    assert runs == ["outer", "inner", "outer", "inner"]
    docs = {d["function"].rsplit(".", 1)[-1]: d for d in deps_documents(client)
            if d["args"] == {"key": "n.parquet"}}
    assert list(docs["outer"]["inputs"]) == ["n.parquet"]       # the inner read counts
    assert "_send" not in vars(client)                          # the client is left as it was
    with pytest.raises(TypeError):
        outer(client, pd.DataFrame())                           # not a JSON argument


def test_compute_result_refuses_results_it_cannot_store_without_pickle(server, client):
    @aside.compute_result
    def weird(cache):
        return object()

    with pytest.raises(TypeError, match="cannot store"):
        weird(client)

    @aside.compute_result
    def raw(cache):
        return b"\x00\x01"

    assert raw(client) == b"\x00\x01" and raw(client) == b"\x00\x01"
    assert aside.compute_result.stats()[f"{__name__}.{raw.__qualname__}"] == {
        "hits": 1, "misses": 1}


def test_end_of_file_exits_0_and_a_message_cut_short_exits_1(server, tmp_path):
    idle = Worker(server.functions, server.base, tmp_path / "idle.log")
    assert idle.close() == 0
    cut = Worker(server.functions, server.base, tmp_path / "cut.log")
    cut.sock.sendall(LENGTH.pack(100) + b'{"op": "st')
    assert cut.close() == 1
    assert "protocol error" in cut.log_text()
