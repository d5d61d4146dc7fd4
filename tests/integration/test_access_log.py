"""The access log (ASIDE_ACCESS_LOG): one JSON line per request with its fields (a hit, a miss
from the SOR, a 404, a POST), the request id taken from X-Request-Id or made, and echoed on every
response; never a token's secret; SIGUSR1 reopens the file after logrotate's rename; a slow
request (ASIDE_SLOW_MS) is a warning in the server's log even with the access log off; off
writes nothing; a file that cannot be opened stops the start; a full disk stops only the log."""
from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time

from helpers import SERVER_BINARY, connect, install, put_sor, raw_request, read_response

SECRET = "the-secret-of-the-bot-0123456789"
TOKEN_NAME = "bot"
AUTH = {"Authorization": f"Bearer {SECRET}"}
MADE_ID = re.compile(r"^[0-9a-f]{16}-[0-9a-f]+$")
FIELDS = ["time", "request_id", "method", "function", "key", "status", "bytes", "source",
          "duration_us", "client", "token"]
WAIT_S = 10.0
POLL_S = 0.05


def logged_server(make_server, tmp_path, **env):
    """A server logging to tmp_path/access.log, with a tokens file naming one token."""
    tokens = tmp_path / "tokens"
    digest = hashlib.sha256(SECRET.encode()).hexdigest()
    tokens.write_text(f"{TOKEN_NAME} sha256:{digest} read,write\n")
    log = tmp_path / "access.log"
    server = make_server(env={"ASIDE_ACCESS_LOG": str(log), "ASIDE_TOKENS_FILE": str(tokens),
                              **env})
    return server, log


def lines_of(path) -> list[dict]:
    text = path.read_text() if path.exists() else ""
    assert text == "" or text.endswith("\n"), "a torn last line"
    return [json.loads(line) for line in text.splitlines()]


def line_with_id(path, request_id: str) -> dict:
    """The line of request_id, once the writer has written it (bounded wait)."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        found = [line for line in lines_of(path) if line["request_id"] == request_id]
        if found:
            assert len(found) == 1, found
            return found[0]
        time.sleep(POLL_S)
    raise AssertionError(f"no line for {request_id} in {path}")


def get(server, request_id: str, **params):
    return server.call("GET", params=params, headers={**AUTH, "X-Request-Id": request_id})


def test_a_miss_a_hit_a_404_and_a_post_each_leave_their_line(make_server, tmp_path):
    server, log = logged_server(make_server, tmp_path)
    put_sor(server, "a/b.json", '{"x": 1}')
    assert get(server, "miss-1", path="a/b.json").status_code == 200
    assert get(server, "hit-1", path="a/b.json").status_code == 200
    assert get(server, "missing-1", path="a/none.json").status_code == 404
    odd = 'a/"qu\\oted" ünï.json'  # escaped in the line, and still the same key
    get(server, "odd-1", path=odd)
    r = server.call("POST", json={"data": {"function": "list_push", "key": "q", "value": 1}},
                    headers={**AUTH, "X-Request-Id": "post-1"})
    assert r.status_code == 200, r.text
    assert r.headers["X-Request-Id"] == "post-1"

    miss = line_with_id(log, "miss-1")
    assert list(miss) == FIELDS
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", miss["time"]), miss
    assert (miss["method"], miss["function"], miss["key"], miss["status"], miss["source"],
            miss["token"]) == ("GET", "read", "a/b.json", 200, "sor", TOKEN_NAME)
    assert miss["bytes"] > 0 and miss["duration_us"] >= 0
    assert re.fullmatch(r"127\.0\.0\.1:\d+", miss["client"]), miss
    hit = line_with_id(log, "hit-1")
    assert (hit["source"], hit["status"]) == ("memory", 200)
    missing = line_with_id(log, "missing-1")
    assert (missing["status"], missing["source"], missing["key"]) == (404, None, "a/none.json")
    assert line_with_id(log, "odd-1")["key"] == odd
    post = line_with_id(log, "post-1")
    assert (post["method"], post["function"], post["key"], post["status"]) == \
        ("POST", "list_push", "q", 200)
    server.stop()
    assert SECRET not in log.read_text() and SECRET not in server.log_text()
    assert "Bearer" not in log.read_text()


def test_request_id_is_made_when_absent_or_insane_and_echoed_on_every_response(make_server,
                                                                              tmp_path):
    server, log = logged_server(make_server, tmp_path)
    made = [server.call("GET", params={"path": "x.json"}, headers=AUTH).headers["X-Request-Id"]
            for _ in range(2)]
    assert all(MADE_ID.match(i) for i in made) and made[0] != made[1], made
    for insane in ("x" * 129, "has space", 'quote"d', "ctl\x01char"):
        status, headers, _ = raw_request(server, "GET", "/health", {"X-Request-Id": insane})
        assert MADE_ID.match(headers["x-request-id"]), (insane, headers)
    longest = "y" * 128
    for target in ("/health", "/ready", "/no-such-route", "/cache/api/v1.0/?path=x.json"):
        status, headers, _ = raw_request(server, "GET", target, {"X-Request-Id": longest})
        assert headers["x-request-id"] == longest, (target, status, headers)
    with connect(server) as sock:  # a request the HTTP layer refuses itself
        sock.sendall(b"BOGUS / HTTP/1.1\r\nX-Request-Id: bogus-1\r\n\r\n")
        status, headers, _ = read_response(sock, bytearray())
    assert status == 400 and MADE_ID.match(headers["x-request-id"]), headers
    assert line_with_id(log, made[0])["status"] == 404
    assert line_with_id(log, headers["x-request-id"])["status"] == 400
    server.stop()
    ids = [line["request_id"] for line in lines_of(log)]
    assert ids.count(longest) == 4 and not any("\x01" in i or " " in i for i in ids), ids


def test_sigusr1_reopens_the_file_after_a_rename(make_server, tmp_path):
    server, log = logged_server(make_server, tmp_path)
    assert get(server, "before", function="head").status_code == 200
    line_with_id(log, "before")
    rotated = tmp_path / "access.log.1"
    os.rename(log, rotated)
    server.proc.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + WAIT_S
    while not log.exists() and time.monotonic() < deadline:
        time.sleep(POLL_S)
    assert log.exists(), server.log_text()
    assert get(server, "after", function="head").status_code == 200
    line_with_id(log, "after")
    server.stop()
    old = [line["request_id"] for line in lines_of(rotated)]
    assert "before" in old and "after" not in old
    assert oct(log.stat().st_mode & 0o777) == "0o640"


def test_a_slow_request_is_a_warning_with_the_access_log_off(make_server):
    server = make_server(env={"ASIDE_SLOW_MS": "1"}, start=False)
    install(server.functions, "nap", '''
        import time
        def main(cache):
            time.sleep(0.05)
            return "rested"
        ''')
    server.start()
    r = server.call("GET", params={"function": "nap"}, headers={"X-Request-Id": "slow-1"})
    assert r.status_code == 200, r.text
    server.stop()
    warnings = [line for line in server.log_text().splitlines()
                if line.startswith("aside: warn: slow request") and '"slow-1"' in line]
    assert len(warnings) == 1, server.log_text()
    fields = json.loads(warnings[0][warnings[0].index("{"):])
    assert (fields["function"], fields["status"]) == ("nap", 200)
    assert fields["duration_us"] >= 50_000


def test_off_writes_nothing_and_stderr_writes_to_the_server_log(make_server):
    quiet = make_server(env={"ASIDE_SLOW_MS": "0"})
    loud = make_server(env={"ASIDE_ACCESS_LOG": "stderr", "ASIDE_SLOW_MS": "0"})
    for server in (quiet, loud):
        server.call("GET", params={"function": "head"}, headers={"X-Request-Id": "seen-1"})
        server.stop()
    assert "seen-1" not in quiet.log_text()
    lines = [json.loads(line) for line in loud.log_text().splitlines() if '"seen-1"' in line]
    assert len(lines) == 1 and lines[0]["function"] == "head", loud.log_text()
    assert not list(quiet.root.rglob("*.log*")) or all(
        p.name == "server.log" for p in quiet.root.rglob("*.log*"))


def test_a_file_that_cannot_be_opened_stops_the_start(tmp_path):
    for folder in ("cache", "sor"):
        (tmp_path / folder).mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASIDE_", "LOCAL_"))}
    for target in (tmp_path / "no-such-folder" / "access.log", tmp_path):
        env.update({"LOCAL_DATA_DIR": str(tmp_path / "cache"),
                    "REMOTE_STORAGE": str(tmp_path / "sor"), "ASIDE_PORT": "0",
                    "ASIDE_PYTHON": sys.executable, "ASIDE_ACCESS_LOG": str(target)})
        out = subprocess.run([str(SERVER_BINARY)], env=env, capture_output=True, text=True,
                             timeout=WAIT_S * 2)
        assert out.returncode == 2, out
        assert "ASIDE_ACCESS_LOG" in out.stderr and str(target) in out.stderr, out.stderr


def test_a_full_disk_loses_lines_but_not_requests(make_server):
    server = make_server(env={"ASIDE_ACCESS_LOG": "/dev/full"})
    put_sor(server, "k.json", "{}")
    for _ in range(5):
        assert server.get(path="k.json").status_code == 200
    server.stop()
    assert "access log: cannot write to /dev/full" in server.log_text(), server.log_text()


def test_every_number_is_written_whole(make_server, tmp_path):
    """Answers of 1 to 200 bytes: their lines' byte counts run through more than a hundred
    consecutive numbers, so some end in every pair of digits (99 once wrote a NUL)."""
    server, log = logged_server(make_server, tmp_path)
    sizes = range(1, 201)
    for n in sizes:
        put_sor(server, f"v/{n}.txt", "x" * n)
        r = get(server, f"size-{n:03d}", path=f"v/{n}.txt", format="raw")
        assert r.status_code == 200 and len(r.content) == n, r.text
    counts = {n: line_with_id(log, f"size-{n:03d}")["bytes"] for n in sizes}
    text = log.read_text()
    assert "\x00" not in text
    for n, sent in counts.items():
        assert isinstance(sent, int) and sent > n, (n, sent)
    assert any(sent % 100 == 99 for sent in counts.values()), sorted(counts.values())
    assert sorted(counts.values()) == [counts[n] for n in sizes], "bytes do not grow with size"
