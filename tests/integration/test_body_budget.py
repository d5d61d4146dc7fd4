"""Request bodies in flight share one budget (ASIDE_MAX_BODIES_IN_FLIGHT): a body that does not
fit is answered 503 with Retry-After from its headers, before any of it is sent, one larger
than the budget alone 413; the budget comes back when a request finishes, and the server's
memory stays within it.

Memory is the server's peak resident set (VmHWM of /proc/PID/status, reset through clear_refs
before the uploads), compared with its resident set before them.
"""
from __future__ import annotations

import pathlib
import select
import socket
import threading
import time

from helpers import API, cached_keys

MIB = 1 << 20
BUDGET = 64 * MIB
BODY = 24 * MIB           # two fit in the budget, a third does not
UPLOADS = 8
OVERHEAD = 32 * MIB       # what serving two puts may take beside their bodies
ANSWER_WITHIN_S = 10.0


def status_kib(pid: int, field: str) -> int:
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def send_headers(port: int, path: str, length: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=ANSWER_WITHIN_S * 3)
    sock.sendall(f"PUT {API}?function=put&path={path} HTTP/1.1\r\nHost: t\r\n"
                 f"Content-Length: {length}\r\n\r\n".encode())
    return sock


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a response: {data!r}"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    headers = {k.strip().lower(): v.strip()
               for k, v in (line.split(":", 1) for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed inside a response body"
        body += chunk
    return int(lines[0].split()[1]), headers, body


def answered_early(socks: list[socket.socket], expected: int) -> list[socket.socket]:
    """Sockets with an answer before their body was sent: wait until `expected` have one."""
    ready: set[socket.socket] = set()
    deadline = time.monotonic() + ANSWER_WITHIN_S
    while len(ready) < expected and time.monotonic() < deadline:
        readable, _, _ = select.select([s for s in socks if s not in ready], [], [], 0.1)
        ready.update(readable)
    return [s for s in socks if s in ready]


def upload(sock: socket.socket, size: int, results: list, index: int) -> None:
    chunk = b"b" * MIB
    for _ in range(size // MIB):
        sock.sendall(chunk)
    results[index] = read_response(sock)


def test_concurrent_large_uploads_stay_within_the_budget(make_server):
    s = make_server(env={"ASIDE_MAX_BODIES_IN_FLIGHT": "64MiB", "ASIDE_MEMORY_LIMIT": "4MiB"})
    pid = s.proc.pid
    assert s.get(function="head").status_code == 200
    rss_before = status_kib(pid, "VmRSS")
    pathlib.Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := VmRSS

    socks = [send_headers(s.port, f"big{i}.bin", BODY) for i in range(UPLOADS)]
    fit = BUDGET // BODY
    refused = answered_early(socks, UPLOADS - fit)
    taken = [sock for sock in socks if sock not in refused]
    results: list = [None] * len(taken)
    threads = [threading.Thread(target=upload, args=(sock, BODY, results, i))
               for i, sock in enumerate(taken)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=ANSWER_WITHIN_S * 6)
    peak = status_kib(pid, "VmHWM")
    early = [read_response(sock) for sock in refused]
    for sock in socks:
        sock.close()

    grown = peak - rss_before
    assert grown <= BUDGET + OVERHEAD, f"the server grew by {grown / MIB:.0f} MiB"
    assert len(refused) == UPLOADS - fit
    for status, headers, body in early:
        assert status == 503, body
        assert headers.get("retry-after") == "1"
        assert b'"busy"' in body
    assert [r[0] for r in results] == [200] * fit
    # what was refused changed nothing; what was taken is there
    assert len(cached_keys(s)) == fit


def test_the_budget_comes_back_when_a_request_finishes(make_server):
    s = make_server(env={"ASIDE_MAX_BODIES_IN_FLIGHT": "64MiB", "ASIDE_MEMORY_LIMIT": "4MiB"})
    for i in range(4):  # one after another, each takes most of the budget and gives it back
        sock = send_headers(s.port, f"seq{i}.bin", 48 * MIB)
        results = [None]
        upload(sock, 48 * MIB, results, 0)
        sock.close()
        assert results[0][0] == 200, results[0]


def test_a_body_larger_than_the_budget_alone_is_413_before_it_is_sent(make_server):
    s = make_server(env={"ASIDE_MAX_BODIES_IN_FLIGHT": "9MiB"})
    sock = send_headers(s.port, "huge.bin", 10 * MIB)
    status, headers, body = read_response(sock)
    sock.close()
    assert status == 413, body
    assert b'"too_large"' in body
    r = s.call("PUT", params={"function": "put", "path": "small.bin"}, data=b"x" * MIB)
    assert r.status_code == 200, r.text
