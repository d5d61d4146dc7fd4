"""Generated input against the real server: whatever arrives, it answers with a JSON error or a
value, never a 500, never a crash, and it shuts down cleanly afterwards (with the sanitizers
watching in the sanitized build)."""
from __future__ import annotations

import json
import socket

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.filterwarnings("ignore")

EXAMPLES = 250
FUZZ_SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                         suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                HealthCheck.too_slow])

PARAM_NAMES = ["function", "path", "key", "return", "format", "time", "storage", "max_age",
               "stale_if_error", "prefix"]
FUNCTIONS = ["read", "create", "update", "delete", "head", "stats_cache", "list", "write",
             "data_read", "cache_create", "cache_delete", "cache_head", "nope", ""]
KEYS = ["a.json", "dir/b.json", "c.bin", "bad.json", "missing.json", "../x", "/abs", "a//b",
        ".aside/x", "dir", "a.json/x"]

text = st.text(max_size=40)
raw_chunk = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=30)


def seed(server):
    (server.sor / "dir").mkdir()
    (server.sor / "a.json").write_text('{"a": [1, 2, 3]}')
    (server.sor / "dir" / "b.json").write_text('["b"]')
    (server.sor / "c.bin").write_bytes(bytes(range(256)))
    (server.sor / "bad.json").write_text("{nope")


@pytest.fixture
def fuzz_server(make_server):
    server = make_server(args=["--max-body", "4KiB", "--request-timeout", "2"])
    seed(server)
    return server


def check_answer(method: str, r: requests.Response) -> None:
    assert r.status_code != 500, r.text
    assert r.status_code in (200, 400, 403, 404, 405, 409, 413, 422), (r.status_code, r.text)
    if method != "HEAD" and r.status_code >= 400:
        err = r.json()["error"]
        assert isinstance(err["code"], str) and isinstance(err["message"], str)


params = st.dictionaries(
    st.sampled_from(PARAM_NAMES) | text,
    st.sampled_from(FUNCTIONS + KEYS + ["meta", "data", "raw", "json", "true", "0", "-1", "sd",
                                        "s3"]) | text,
    max_size=6)


@FUZZ_SETTINGS
@given(method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH"]),
       route=st.sampled_from(["/cache/api/v1.0/", "/cache", "/cache/", "/x"]),
       query=params, raw_query=raw_chunk,
       body=st.none() | st.binary(max_size=200) | params.map(lambda p: json.dumps({"data": p})),
       accept=st.none() | st.sampled_from(["application/json", "text/csv", "*/*", ""]) |
       raw_chunk)
def test_any_request_gets_a_clean_answer(fuzz_server, method, route, query, raw_query, body,
                                         accept):
    headers = {} if accept is None else {"Accept": accept.strip()}
    url = fuzz_server.base + route
    prepared = requests.Request(method, url, params=query, data=body, headers=headers).prepare()
    if raw_query:
        prepared.url += ("&" if "?" in prepared.url else "?") + raw_query
    r = fuzz_server.session.send(prepared, timeout=30)
    check_answer(method, r)


@FUZZ_SETTINGS
@given(data=st.binary(max_size=300) | st.sampled_from([
    b"GET /cache?path=a.json HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /cache HTTP/1.1\r\nContent-Length: 5\r\n\r\n{\"da",
    b"GET /cache HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n",
    b"GET /cache HTTP/1.0\r\n\r\n",
]).flatmap(lambda base: st.integers(0, len(base)).map(lambda n: base[:n] + b"\x00" + base[n:])))
def test_any_bytes_on_the_socket_leave_the_server_serving(fuzz_server, data):
    with socket.create_connection(("127.0.0.1", fuzz_server.port), timeout=5) as s:
        s.sendall(data)
        s.settimeout(0.2)
        try:
            reply = s.recv(65536)
        except (socket.timeout, ConnectionResetError):
            reply = b""
        if reply:
            assert reply.startswith(b"HTTP/1.1 "), reply[:100]
            assert b" 500 " not in reply.split(b"\r\n", 1)[0], reply[:200]
    r = fuzz_server.get(path="a.json", format="raw")
    assert r.status_code == 200 and r.content == b'{"a": [1, 2, 3]}'
