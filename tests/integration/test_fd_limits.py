"""The server at its open-file limit: it sleeps rather than spins, serves a waiting client as
soon as a connection closes, and answers 503 with Retry-After (changing nothing) when a value's
file cannot be opened for lack of descriptors.

Each server here runs under `ulimit -n 64` (soft and hard, so it cannot raise it). What the
server's threads wanted of the CPU is read from /proc/PID/task/*/schedstat before and after a
wait of WAIT_S: time on a CPU plus time runnable but waiting for one, so a busy machine does not
hide a spinning loop. A spinning event loop wants one core per worker (about 2 s per second
with two workers), a sleeping one almost nothing; the bound IDLE_CPU_S is far from both.
"""
from __future__ import annotations

import os
import pathlib
import socket
import time

import pytest

from helpers import API, Server, put_sor

FILE_LIMIT = 64
WAIT_S = 2.0
IDLE_CPU_S = 0.5          # CPU the server may use over WAIT_S while at a limit
SERVED_WITHIN_S = 10.0    # far below the idle timeout (60 s) that would free a slot otherwise
FLOOD = 80                # connections opened past the file limit
CAP = 6                   # ASIDE_MAX_CONNECTIONS in the cap tests


def limited(make_server, env: dict[str, str], soft_only: bool = False) -> Server:
    """A server (stopped and checked by the fixture) under an open-file limit of FILE_LIMIT."""
    flag = "-Sn" if soft_only else "-n"
    s = make_server(env={"ASIDE_FUNCTION_WORKERS": "1", "ASIDE_LOAD_THREADS": "2", **env},
                    start=False)
    s.prefix = ["sh", "-c", f'ulimit {flag} {FILE_LIMIT} && exec "$0" "$@"']
    return s.start()


def cpu_seconds(pid: int) -> float:
    """Seconds the process's threads ran or were ready to run (schedstat: run and wait ns)."""
    total_ns = 0
    for task in pathlib.Path(f"/proc/{pid}/task").iterdir():
        try:
            run_ns, wait_ns = (task / "schedstat").read_text().split()[:2]
        except (FileNotFoundError, ProcessLookupError):
            continue  # a thread that just ended
        total_ns += int(run_ns) + int(wait_ns)
    return total_ns / 1e9


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def connect(server: Server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=SERVED_WITHIN_S)


def send_request(sock: socket.socket, method: str, query: str, body: bytes = b"") -> None:
    sock.sendall(f"{method} {API}?{query} HTTP/1.1\r\nHost: t\r\n"
                 f"Content-Length: {len(body)}\r\n\r\n".encode() + body)


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One response from sock: status, headers (lower-case names), body."""
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


def exchange(sock: socket.socket, method: str, query: str, body: bytes = b""):
    send_request(sock, method, query, body)
    return read_response(sock)


def wait_for_fds(pid: int, count: int) -> None:
    deadline = time.monotonic() + SERVED_WITHIN_S
    while open_fds(pid) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert open_fds(pid) >= count, f"the server holds {open_fds(pid)} descriptors"


def test_start_raises_the_soft_file_limit_to_the_hard_one_and_logs_the_cap(make_server):
    s = limited(make_server, {}, soft_only=True)
    limits = pathlib.Path(f"/proc/{s.proc.pid}/limits").read_text()
    line = next(line for line in limits.splitlines() if line.startswith("Max open files"))
    soft, hard = line.split()[3:5]
    assert soft == hard
    assert "file descriptors: limit" in s.log_text() and "raised from 64" in s.log_text()
    assert "connections at most" in s.log_text()


@pytest.mark.timeout(120)
def test_past_the_file_limit_the_server_sleeps_and_put_and_write_get_503(make_server):
    s = limited(make_server, {"ASIDE_MAX_CONNECTIONS": "1000"})  # the cap above the file limit
    put_sor(s, "old.txt", "the old value")
    pid = s.proc.pid
    keeper = connect(s)  # accepted before the flood: the put and the write go through it
    assert exchange(keeper, "GET", "function=head")[0] == 200
    flood = []
    try:
        for _ in range(FLOOD):
            flood.append(connect(s))
        wait_for_fds(pid, FILE_LIMIT)
        before = cpu_seconds(pid)
        time.sleep(WAIT_S)
        used = cpu_seconds(pid) - before
        assert used < IDLE_CPU_S, f"{used:.2f} s of CPU in {WAIT_S} s at the file limit"

        status, headers, body = exchange(keeper, "PUT", "function=put&path=new.txt", b"x" * 10)
        assert status == 503, body
        assert headers.get("retry-after") == "1"
        assert b'"too_many_open_files"' in body
        status, headers, body = exchange(keeper, "PUT", "function=write&path=old.txt", b"new")
        assert status == 503, body
        assert headers.get("retry-after") == "1"
        assert b'"too_many_open_files"' in body
    finally:
        for sock in flood:
            sock.close()
    keeper.close()
    # descriptors came back: served again, and the refused calls changed nothing
    assert s.get(path="new.txt").status_code == 404
    r = s.get(path="old.txt", format="raw")
    assert r.status_code == 200 and r.content == b"the old value"
    assert (s.sor / "old.txt").read_bytes() == b"the old value"
    assert not list((s.cache / ".aside" / "tmp").iterdir())


@pytest.mark.timeout(120)
def test_at_the_connection_cap_the_server_sleeps_and_serves_the_next_client_when_one_closes(
        make_server):
    s = limited(make_server, {"ASIDE_MAX_CONNECTIONS": str(CAP)})
    pid = s.proc.pid
    idle = []
    waiting = None
    try:
        for _ in range(CAP):  # up to the cap: each one served
            sock = connect(s)
            assert exchange(sock, "GET", "function=head")[0] == 200
            idle.append(sock)
        waiting = connect(s)  # past the cap: the kernel queues it, the server leaves it there
        send_request(waiting, "GET", "function=head")
        before = cpu_seconds(pid)
        time.sleep(WAIT_S)
        used = cpu_seconds(pid) - before
        assert used < IDLE_CPU_S, f"{used:.2f} s of CPU in {WAIT_S} s at the connection cap"
        waiting.settimeout(0.2)
        with pytest.raises(socket.timeout):
            waiting.recv(1)  # not served while every slot is taken
        waiting.settimeout(SERVED_WITHIN_S)
        idle.pop().close()  # one slot frees: the waiting client is served now
        status, _, _ = read_response(waiting)
        assert status == 200
    finally:
        for sock in idle:
            sock.close()
        if waiting:
            waiting.close()


def test_the_default_cap_leaves_descriptors_for_files(make_server):
    s = limited(make_server, {})
    text = s.log_text()
    assert "connections at most" in text
    cap = int(text.split("connections at most ")[1].split()[0])
    assert 1 <= cap < FILE_LIMIT - 16
