"""HTTP-level behaviour: connections, pipelining, slow clients, HEAD, 405, 413."""
from __future__ import annotations

import json
import os
import socket
import time

import pytest
import requests

from helpers import (API, assert_error, assert_nothing_cached, cached_keys, connect, put_sor,
                      read_response, read_until_closed, telemetry)


def get_line(target, extra=""):
    return f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n".encode()


def test_keep_alive_serves_several_requests_on_one_session(server):
    put_sor(server, "k.json", '{"k": 1}')
    with requests.Session() as s:
        for expected in ("sor", "memory", "memory", "memory"):
            r = s.get(server.api, params={"path": "k.json"}, timeout=10)
            assert r.json()["return"]["value"]["source"] == expected
            assert r.headers.get("Connection", "").lower() != "close"


def test_keep_alive_on_one_socket(server):
    put_sor(server, "a.json", '"a"')
    put_sor(server, "b.bin", b"bbb")
    buffered = bytearray()
    with connect(server) as s:
        s.sendall(get_line(f"{API}?path=a.json&return=data"))
        status, headers, body = read_response(s, buffered)
        assert status == 200 and json.loads(body)["return"]["value"] == "a"
        assert headers.get("connection", "").lower() != "close"
        s.sendall(get_line(f"{API}?path=b.bin&format=raw"))
        status, headers, body = read_response(s, buffered)
        assert status == 200 and body == b"bbb"
        assert headers["x-aside-source"] == "sor"
        s.sendall(get_line(f"{API}?path=a.json&format=raw"))
        assert read_response(s, buffered)[2] == b'"a"'
        assert buffered == bytearray()


def test_pipelined_requests_get_responses_in_order(server):
    keys = {f"p{i}.bin": f"value number {i}".encode() * (i + 1) for i in range(10)}
    for key, data in keys.items():
        put_sor(server, key, data)
    payload = b"".join(get_line(f"{API}?path={key}&format=raw") for key in keys)
    buffered = bytearray()
    with connect(server) as s:
        s.sendall(payload)  # one write: every request arrives at once
        for key, data in keys.items():
            status, headers, body = read_response(s, buffered)
            assert status == 200 and body == data, key
    assert cached_keys(server) == sorted(keys)


def test_two_pipelined_gets_in_one_write(server):
    put_sor(server, "one.json", '"one"')
    put_sor(server, "two.json", '"two"')
    buffered = bytearray()
    with connect(server) as s:
        s.sendall(get_line(f"{API}?path=one.json&return=data") +
                  get_line(f"{API}?path=two.json&return=data"))
        first = read_response(s, buffered)
        second = read_response(s, buffered)
    assert json.loads(first[2])["return"]["value"] == "one"
    assert json.loads(second[2])["return"]["value"] == "two"


@pytest.mark.parametrize("args", [[], ["--memory-limit", "64KiB"]], ids=["memory", "file"])
def test_pipelined_request_behind_a_large_response_is_answered(make_server, args):
    server = make_server(args=args)
    big = put_sor(server, "big.bin", os.urandom(6 * 1024 * 1024))
    put_sor(server, "small.json", "[1]")
    assert server.get(path="big.bin").status_code == 200  # cached: memory or disk-backed
    buffered = bytearray()
    with connect(server, timeout=20) as s:
        s.sendall(get_line(f"{API}?path=big.bin&format=raw"))
        time.sleep(0.2)  # the server is now blocked writing to us; the next request queues
        s.sendall(get_line(f"{API}?path=small.json&format=raw") +
                  get_line(f"{API}?path=big.bin&format=raw"))
        assert read_response(s, buffered)[2] == big
        assert read_response(s, buffered)[2] == b"[1]"
        assert read_response(s, buffered)[2] == big


def test_head_response_has_no_body_and_the_connection_stays_usable(server):
    put_sor(server, "h.json", '"h"')
    server.get(path="h.json")
    buffered = bytearray()
    with connect(server) as s:
        s.sendall(f"HEAD {API} HTTP/1.1\r\nHost: x\r\n\r\n".encode() +
                  get_line(f"{API}?path=h.json&format=raw"))
        status, headers, body = read_response(s, buffered, head=True)
        assert status == 200 and headers["x-aside-keys"] == "1"
        status, headers, body = read_response(s, buffered)
        assert status == 200 and body == b'"h"'
        assert buffered == bytearray()


# The other timeouts, while one timeout is under test: far longer than the test could take, so
# a bound under them shows which timeout closed the connection, on however loaded a machine.
OTHER_TIMEOUT_S = 60
# A bound on a timeout of 1 s that only a wait for OTHER_TIMEOUT_S could reach.
WITHIN_S = OTHER_TIMEOUT_S / 3


def test_slow_client_does_not_block_other_clients(make_server):
    server = make_server(env={"ASIDE_THREADS": "1"},
                         args=["--request-timeout", str(OTHER_TIMEOUT_S)])
    put_sor(server, "fast.json", '"fast"')
    slow = []
    try:
        for _ in range(8):
            s = connect(server)
            s.sendall(b"GET " + API.encode() + b"?path=fast.json HTTP/1.1\r\nHost: 12")
            slow.append(s)
        half_body = connect(server)
        half_body.sendall(b"POST " + API.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                          b"Content-Length: 100\r\n\r\n{\"data\": ")
        slow.append(half_body)
        # blocked behind the slow ones, it would wait for their request timeout
        r = requests.get(server.api, params={"path": "fast.json", "return": "data"},
                         timeout=WITHIN_S)
        assert r.status_code == 200 and r.json()["return"]["value"] == "fast"
    finally:
        for s in slow:
            s.close()


def test_half_sent_request_is_closed_after_the_request_timeout(make_server):
    server = make_server(args=["--request-timeout", "1", "--idle-timeout", str(OTHER_TIMEOUT_S)])
    with connect(server) as s:
        s.sendall(b"GET " + API.encode() + b"?path=x.json HTTP/1.1\r\nHost: 1")
        started = time.monotonic()
        data = read_until_closed(s, limit_s=WITHIN_S)
        elapsed = time.monotonic() - started
    assert 0.5 <= elapsed < WITHIN_S
    assert data == b"" or data.startswith((b"HTTP/1.1 408", b"HTTP/1.1 400")), data[:100]
    # and the server still serves
    put_sor(server, "x.json", "{}")
    assert server.get(path="x.json").status_code == 200


def test_half_sent_body_is_closed_after_the_request_timeout(make_server):
    server = make_server(args=["--request-timeout", "1", "--idle-timeout", str(OTHER_TIMEOUT_S)])
    put_sor(server, "x.json", "{}")
    with connect(server) as s:
        s.sendall(b"POST " + API.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n"
                  b"{\"data\"")
        data = read_until_closed(s, limit_s=WITHIN_S)
    assert data == b"" or data.startswith((b"HTTP/1.1 408", b"HTTP/1.1 400")), data[:100]
    assert_nothing_cached(server)


def test_idle_keep_alive_connection_is_closed_after_the_idle_timeout(make_server):
    server = make_server(args=["--idle-timeout", "1", "--request-timeout", str(OTHER_TIMEOUT_S)])
    put_sor(server, "i.json", "{}")
    with connect(server) as s:
        s.sendall(get_line(f"{API}?path=i.json"))
        assert read_response(s, bytearray())[0] == 200
        started = time.monotonic()
        assert read_until_closed(s, limit_s=WITHIN_S) == b""
        assert 0.5 <= time.monotonic() - started < WITHIN_S


def test_expect_100_continue_gets_continue_then_the_response(server):
    put_sor(server, "e.json", '{"e": 1}')
    body = json.dumps({"data": {"path": "e.json", "return": "data",
                                "padding": "z" * 2000}}).encode()
    buffered = bytearray()
    with connect(server) as s:
        s.sendall(f"POST {API} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n".encode())
        status, _, _ = read_response(s, buffered)
        assert status == 100
        s.sendall(body)
        status, headers, payload = read_response(s, buffered)
        assert status == 200
        assert json.loads(payload)["return"]["value"] == {"e": 1}


def test_expect_100_continue_with_a_body_too_large_is_413_without_continue(make_server):
    server = make_server(args=["--max-body", "1KiB"])
    with connect(server) as s:
        s.sendall(f"POST {API} HTTP/1.1\r\nHost: x\r\nContent-Length: 4096\r\n"
                  f"Expect: 100-continue\r\n\r\n".encode())
        status, _, body = read_response(s, bytearray())
        assert status == 413
        assert json.loads(body)["error"]["code"]


def test_declared_body_over_max_body_is_413_without_waiting_for_it(make_server):
    server = make_server(args=["--max-body", "1KiB"])
    with connect(server) as s:
        s.sendall(f"POST {API} HTTP/1.1\r\nHost: x\r\nContent-Length: 4096\r\n\r\n".encode())
        data = read_until_closed(s, limit_s=WITHIN_S)
    assert data.startswith(b"HTTP/1.1 413")
    assert b"\r\n\r\n{\"error\"" in data


def test_chunked_body_is_accepted(server):
    put_sor(server, "c.json", '"chunked"')
    body = json.dumps({"data": {"path": "c.json", "return": "data"}}).encode()
    half = len(body) // 2
    chunks = b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (half, body[:half], len(body) - half,
                                                     body[half:])
    with connect(server) as s:
        s.sendall(f"POST {API} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                  .encode() + chunks)
        status, _, payload = read_response(s, bytearray())
    assert status == 200
    assert json.loads(payload)["return"]["value"] == "chunked"


def test_chunked_body_over_max_body_is_413(make_server):
    server = make_server(args=["--max-body", "1KiB"])
    put_sor(server, "c.json", "{}")
    chunk = b"x" * 1500
    with connect(server) as s:
        s.sendall(f"POST {API} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                  .encode() + b"%x\r\n%s\r\n0\r\n\r\n" % (len(chunk), chunk))
        data = read_until_closed(s, limit_s=WITHIN_S)
    assert data.startswith(b"HTTP/1.1 413")
    assert_nothing_cached(server)


def assert_refused_as_malformed(server, request):
    """The server answers 400 bad_request for an unparsable message and closes."""
    data, closed = bytearray(), False
    with connect(server) as s:
        s.sendall(request)
        deadline = time.monotonic() + WITHIN_S
        while not closed and time.monotonic() < deadline:
            s.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                chunk = s.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            closed = not chunk
            data += chunk
    data = bytes(data)
    assert data.startswith(b"HTTP/1.1 400"), data[:300]
    assert closed, f"connection left open after: {data!r}"
    body = data.split(b"\r\n\r\n", 1)[1]
    err = json.loads(body)["error"]
    assert err["code"] == "bad_request"
    assert "malformed" in err["message"], err
    assert requests.get(server.api, params={"function": "head"}, timeout=5).status_code == 200


@pytest.mark.parametrize("line", [b"GARBAGE\r\n\r\n", b"GET\r\n\r\n",
                                  b"GET /cache/api/v1.0/ XTTP/1.1\r\n\r\n",
                                  b"GET /cache/api/v1.0/ HTTP/1.1 extra\r\n\r\n",
                                  b"\x00\x01\x02 / HTTP/1.1\r\n\r\n"])
def test_malformed_request_line_is_400(server, line):
    assert_refused_as_malformed(server, line)


@pytest.mark.parametrize("protocol", [b"HTTX/1.1", b"HXXP/1.1", b"HTTP-1.1"])
def test_request_line_with_a_misspelt_protocol_name_is_400(server, protocol):
    put_sor(server, "x.json", "{}")
    assert_refused_as_malformed(server, b"GET /cache/api/v1.0/?path=x.json " + protocol +
                                b"\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert_nothing_cached(server)


def test_malformed_header_line_is_400(server):
    assert_refused_as_malformed(server, b"GET /cache/api/v1.0/ HTTP/1.1\r\nBad Header\r\n\r\n")


def test_conflicting_content_lengths_are_400(server):
    put_sor(server, "x.json", "{}")
    assert_refused_as_malformed(server, b"POST /cache/api/v1.0/?path=x.json HTTP/1.1\r\n"
                                b"Host: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab")
    assert_nothing_cached(server)


def test_http_1_0_without_keep_alive_gets_the_response_then_the_connection_closes(server):
    put_sor(server, "old.json", '"old"')
    with connect(server) as s:
        s.sendall(f"GET {API}?path=old.json&format=raw HTTP/1.0\r\n\r\n".encode())
        data = read_until_closed(s, limit_s=WITHIN_S)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") or head.startswith(b"HTTP/1.0 200")
    assert body == b'"old"'


def test_http_1_0_with_keep_alive_keeps_the_connection(server):
    put_sor(server, "old.json", '"old"')
    buffered = bytearray()
    with connect(server) as s:
        for _ in range(2):
            s.sendall(f"GET {API}?path=old.json&format=raw HTTP/1.0\r\n"
                      f"Connection: keep-alive\r\n\r\n".encode())
            status, headers, body = read_response(s, buffered)
            assert status == 200 and body == b'"old"'
            assert headers["connection"].lower() == "keep-alive"


def test_connection_close_is_honoured(server):
    put_sor(server, "c.json", "{}")
    with connect(server) as s:
        s.sendall(get_line(f"{API}?path=c.json", "Connection: close\r\n"))
        data = read_until_closed(s, limit_s=WITHIN_S)
    assert data.startswith(b"HTTP/1.1 200")
    assert b"connection: close" in data.lower()


@pytest.mark.parametrize("method", ["PATCH", "OPTIONS", "TRACE"])
def test_other_verbs_are_405_with_an_allow_header(server, method):
    put_sor(server, "x.json", "{}")
    r = server.call(method, params={"path": "x.json"})
    assert_error(r, 405)
    allowed = {m.strip() for m in r.headers["Allow"].split(",")}
    assert {"GET", "HEAD", "POST", "PUT", "DELETE"} <= allowed
    assert method not in allowed
    assert_nothing_cached(server)


def test_client_leaving_in_the_middle_of_a_large_response_does_no_harm(server):
    big = put_sor(server, "big.bin", os.urandom(16 * 1024 * 1024))
    assert server.get(path="big.bin").status_code == 200
    for _ in range(3):
        s = connect(server)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(get_line(f"{API}?path=big.bin&format=raw"))
        assert s.recv(1024).startswith(b"HTTP/1.1 200")
        s.close()
    with requests.get(server.api, params={"path": "big.bin", "format": "raw"}, timeout=30,
                      stream=True) as r:
        assert r.raw.read() == big
    assert telemetry(server)["keys"] == 1


def test_many_simultaneous_connections_are_all_served(server):
    put_sor(server, "m.json", '"many"')
    socks = [connect(server) for _ in range(100)]
    try:
        for s in socks:
            s.sendall(get_line(f"{API}?path=m.json&format=raw"))
        for s in socks:
            status, _, body = read_response(s, bytearray())
            assert status == 200 and body == b'"many"'
    finally:
        for s in socks:
            s.close()
    v = telemetry(server)
    assert v["hits"] + v["misses"] == 100 and v["sor_fetches"] == 1


def test_pipelined_posts_with_bodies_are_answered_in_order(server):
    put_sor(server, "one.json", '"one"')
    put_sor(server, "two.json", '"two"')
    requests_ = b""
    for key in ("one.json", "two.json", "one.json"):
        body = json.dumps({"data": {"path": key, "return": "data"}}).encode()
        requests_ += (f"POST {API} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    buffered = bytearray()
    with connect(server) as s:
        s.sendall(requests_)
        values = [json.loads(read_response(s, buffered)[2])["return"]["value"] for _ in range(3)]
    assert values == ["one", "two", "one"]


def test_head_of_an_unknown_route_is_404_without_a_body(server):
    r = server.call("HEAD", server.base + "/nowhere")
    assert r.status_code == 404 and r.content == b""


def test_headers_past_the_parsers_limit_are_431_and_the_server_goes_on(server):
    put_sor(server, "small.json", '{"a": 1}')
    with connect(server) as s:
        big = "X-Filler: " + "a" * (100 * 1024) + "\r\n"
        s.sendall(get_line("/cache/api/v1.0/?path=small.json", big))
        status, _, body = read_response(s, bytearray())
        assert status == 431, body
    r = server.get(path="small.json")
    assert r.status_code == 200, r.text


def test_headers_past_the_sixty_fourth_are_ignored(server):
    put_sor(server, "small.json", '{"a": 1}')
    extra = "".join(f"X-Extra-{i}: {i}\r\n" for i in range(100))
    with connect(server) as s:
        s.sendall(get_line("/cache/api/v1.0/?path=small.json", extra))
        status, _, body = read_response(s, bytearray())
        assert status == 200, body
