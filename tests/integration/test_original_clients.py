"""The original project's users, unchanged: a client in their style (requests with query
parameters, function bodies URL-quoted by the client and then sent as a query parameter, so
encoded twice), their function files (`main(cache, **kwargs)`, `df.info(buf=...)`, `cache[key]`
as a dict of DataFrames and JSON documents; files written for these tests in `original/`), and
a server started as README says, with a Python that may lack the aside package."""
from __future__ import annotations

import io
import os
import pathlib
import subprocess
import sys
import time
import urllib.parse

import pandas as pd
import pytest
import requests

import aside
from helpers import assert_error, install, parquet_bytes, put_sor, unsandboxed

ORIGINAL = pathlib.Path(__file__).resolve().parent / "original"
FRAME_KEY = "trades.snappy.parquet"
DOCUMENT_KEY = "wanted.json"
LOG_WAIT_S = 15.0  # the start-up probe's warning: it is bounded at 10 s by the server


class OriginalClient:
    """A client as the original project's users wrote theirs: GET with query parameters, and
    function_create with a body the client URL-quotes itself before requests encodes it."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    def run(self, **params) -> requests.Response:
        return requests.get(self.endpoint, params=params, timeout=30)

    def value(self, **params):
        r = self.run(**params)
        assert r.status_code == 200, r.text
        return r.json()["return"]["value"]

    def create_function(self, name: str, source: str) -> requests.Response:
        return self.run(function="function_create", function_name=name,
                        function_body=requests.utils.quote(source))


def trades() -> pd.DataFrame:
    return pd.DataFrame({
        "cusip": ["037833100", "594918104", None, "88160R101"],
        "price": [189.5, None, 412.25, 251.0],
        "security_type": [None, None, None, None],
        "trade_date": ["2024-01-02", None, "2024-01-04", "2024-01-05"],
    })


@pytest.fixture
def original(server):
    """The server with a frame and a document in its system of record and every function of
    original/ in its function folder (test_the_original_functions_run_as_created_by_the_
    original_client creates them as the original client does)."""
    put_sor(server, FRAME_KEY, parquet_bytes(trades()))
    put_sor(server, DOCUMENT_KEY, '{"cusips": ["037833100", "88160R101"], "note": "two"}')
    for path in sorted(ORIGINAL.glob("*.py")):
        install(server.functions, path.stem, path.read_text())
    return server, OriginalClient(server.api)


# -- cache_read -----------------------------------------------------------------------------------

def test_cache_read_is_read(original):
    server, client = original
    first = client.value(function="cache_read", path=FRAME_KEY)
    assert first["result"] == "success" and first["source"] == "sor"
    again = client.value(function="cache_read", path=FRAME_KEY)
    assert again["source"] == "memory" and again["bytes"] == first["bytes"]
    assert client.value(function="read", path=FRAME_KEY)["source"] == "memory"
    assert client.value(function="cache_read", path=DOCUMENT_KEY)["type"] == "json"
    assert_error(client.run(function="cache_read", path="missing.json"), 404)


# -- the original's functions ---------------------------------------------------------------------

def test_the_original_functions_run_as_created_by_the_original_client(original):
    server, client = original
    for path in sorted(ORIGINAL.glob("*.py")):
        (server.functions / path.name).unlink()
        r = client.create_function(path.stem, path.read_text())
        assert r.status_code == 200, (path.name, r.text)
    for path in ORIGINAL.glob("*.py"):  # saved as they were written, byte for byte
        assert (server.functions / path.name).read_text() == path.read_text()
    assert client.value(function="echo", message="hello") == "hello"
    for _ in range(5):
        assert 1 <= client.value(function="random_number", start=1, stop=10) <= 10
    assert client.value(function="percent_format", share="0.25", of="cash") == "25% of cash"


def test_a_function_answers_what_df_info_says(original):
    server, client = original
    client.value(function="cache_create", path=FRAME_KEY)
    client.value(function="cache_create", path=DOCUMENT_KEY)
    text = client.value(function="item_stats", key=FRAME_KEY)
    expected = io.StringIO()
    aside.connect(server.base).read(FRAME_KEY).info(buf=expected)
    assert text == expected.getvalue()
    assert "RangeIndex: 4 entries" in text and "cusip" in text
    assert client.value(function="item_stats", key=DOCUMENT_KEY) == ["cusips", "note"]
    missing = client.value(function="item_stats", key="other.parquet")
    assert missing == {"result": "cache key other.parquet not found"}


def test_stats_cache_item_is_the_servers_own_info(original):
    server, client = original
    client.value(function="cache_create", path=FRAME_KEY)
    got = client.value(function="stats_cache_item", key=FRAME_KEY)
    assert got["text"].startswith("<class 'pandas.") and "RangeIndex: 4 entries" in got["text"]
    r = client.create_function("stats_cache_item", (ORIGINAL / "item_stats.py").read_text())
    assert_error(r, 409, "conflict")  # the server's own name: the original's file cannot take it


def test_a_function_reads_frames_and_documents_through_cache_key(original):
    server, client = original
    got = client.value(function="frame_and_document", frame=FRAME_KEY, document=DOCUMENT_KEY,
                       field="cusips", column="cusip")
    assert got == {"rows": 4, "columns": ["cusip", "price", "security_type", "trade_date"],
                   "chosen": 2, "info_lines": got["info_lines"]}
    assert got["info_lines"] > 5


# -- function_create's body -----------------------------------------------------------------------

PERCENT_SOURCE = 'def main(cache, x):\n    return "%d%%|%s" % (x, "a b") + "|%41|%2B"\n'


def test_a_body_quoted_by_the_client_is_unquoted_once_more(server):
    client = OriginalClient(server.api)
    # the original's own test body: quoted by hand, then sent once more encoded by requests
    quoted = "def%20main%28cache%2C%20q%2C%20w%29%3A%0A%20%20%20x%3D2%0A%20%20%20return%20q"
    r = client.run(function="function_create", function_name="said", function_body=quoted)
    assert r.status_code == 200, r.text
    assert client.value(function="said", q="q says hello", w="w") == "q says hello"
    # literal % signs survive: quoted they are %25, unquoted once they are % again
    assert client.create_function("percent", PERCENT_SOURCE).status_code == 200
    assert (server.functions / "percent.py").read_text() == PERCENT_SOURCE
    assert client.value(function="percent", x=7) == "7%|a b|%41|%2B"


def test_a_body_sent_once_encoded_is_taken_as_it_is(server):
    client = OriginalClient(server.api)
    # the original's test sends the body unquoted too: raw spaces, brackets, newlines
    unquoted = urllib.parse.unquote(
        "def%20main%28cache%2C%20q%2C%20w%29%3A%0A%20%20%20x%3D2%0A%20%20%20return%20q")
    r = client.run(function="function_create", function_name="said", function_body=unquoted)
    assert r.status_code == 200, r.text
    assert client.value(function="said", q="hello", w="w") == "hello"
    # not decoded twice: "%41" and "%2B" in it stay as they are
    r = client.run(function="function_create", function_name="percent",
                   function_body=PERCENT_SOURCE)
    assert r.status_code == 200, r.text
    assert (server.functions / "percent.py").read_text() == PERCENT_SOURCE
    assert client.value(function="percent", x=3) == "3%|a b|%41|%2B"


def test_a_post_bodys_json_string_is_taken_as_it_is(server):
    r = server.post({"function": "function_create", "function_name": "percent",
                     "function_body": PERCENT_SOURCE})
    assert r.status_code == 200, r.text
    assert (server.functions / "percent.py").read_text() == PERCENT_SOURCE
    # a quoted body in JSON is not unquoted: it is not Python, so nothing is saved
    r = server.post({"function": "function_create", "function_name": "quoted",
                     "function_body": requests.utils.quote(PERCENT_SOURCE)})
    assert_error(r, 400)
    assert not (server.functions / "quoted.py").exists()


def test_a_body_with_a_malformed_escape_is_taken_as_it_is(server):
    client = OriginalClient(server.api)
    r = client.run(function="function_create", function_name="broken",
                   function_body="def%20main%28cache%29%3A%0A%20%20return%201%zz")
    assert_error(r, 400)  # compiled as it came, "%20" and all: a syntax error
    assert not (server.functions / "broken.py").exists()


# -- a server started as README says, with a Python lacking the package ---------------------------

def python_without_aside() -> str:
    """The interpreter the test venv was made from: it has no aside package."""
    base = os.path.realpath(sys.executable)
    probe = subprocess.run([base, "-c", "import aside"], capture_output=True, timeout=60)
    if probe.returncode == 0:
        pytest.skip(f"{base} has the aside package")
    return base


def wait_for_log(server, text: str) -> str:
    deadline = time.monotonic() + LOG_WAIT_S
    while time.monotonic() < deadline and text not in server.log_text():
        time.sleep(0.05)
    return server.log_text()


def test_a_python_without_the_package_is_named_with_the_reason(make_server):
    python = python_without_aside()
    server = make_server(env={"ASIDE_PYTHON": python})
    install(server.functions, "echo", (ORIGINAL / "echo.py").read_text())
    err = assert_error(server.get(function="echo", message="hi"), 500, "worker_died")
    assert "exited with status 1" in err["message"]
    assert f"ASIDE_PYTHON={python}" in err["message"]
    assert "No module named 'aside'" in err["message"]
    log = wait_for_log(server, "cannot import the aside package")
    assert log.count("cannot import the aside package") == 1, log
    assert f"ASIDE_PYTHON={python}" in log and "No module named 'aside'" in log
    # function_create needs a worker too: it says the same
    err = assert_error(server.get(function="function_create", function_name="f",
                                  function_body="def main(cache):\n    return 1\n"),
                       500, "worker_died")
    assert "No module named 'aside'" in err["message"]
    server.stop()
    assert server.log_text().count("cannot import the aside package") == 1


def test_a_worker_that_dies_at_its_start_says_its_first_and_last_lines(make_server, tmp_path):
    fake = tmp_path / "fake-python"
    fake.write_text("#!/bin/sh\nfor n in 1 2 3 4 5 6; do echo \"line $n\" >&2; done\nexit 3\n")
    fake.chmod(0o755)
    # as this user: the workers' own user could not reach the test's folder
    server = make_server(env=unsandboxed(ASIDE_PYTHON=str(fake)))
    install(server.functions, "echo", (ORIGINAL / "echo.py").read_text())
    err = assert_error(server.get(function="echo", message="hi"), 500, "worker_died")
    assert "exited with status 3" in err["message"]
    assert err["message"].endswith("line 1 | line 2 | ... | line 6"), err["message"]
    log = wait_for_log(server, "cannot import the aside package")
    assert f"ASIDE_PYTHON={fake} cannot import the aside package (line 6)" in log


def test_a_python_with_the_package_is_not_warned_about(original):
    server, client = original
    assert client.value(function="echo", message="x") == "x"
    server.stop()  # the probe has ended: the pool waits for it
    assert "cannot import the aside package" not in server.log_text()
