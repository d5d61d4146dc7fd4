"""Where users' functions come from: function_register fetches NAME.py from an S3 system of
record (or the directory with storage=sd) and installs it only when it compiles; the
`functions` listing names each file, its signature and summary, and a broken file with its
error."""
from __future__ import annotations

import inspect
import textwrap

import pytest

pytest.register_assert_rewrite("s3_fixtures")

from helpers import assert_error, install, ok, put_sor  # noqa: E402

pytest_plugins = ["s3_fixtures"]


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
