"""The server's life as an operator and an orchestrator see it: /health and /ready (without the
token), readiness while the cache opens and while the spec's preload runs, the SIGTERM drain
step by step (not ready at once, still serving for ASIDE_DRAIN_SECONDS, then refusing new
connections while requests in flight finish, exit 0), a second signal that exits at once with
nothing torn, systemd's notifications, --check-config, ASIDE_TOKEN_FILE and the start-up line.

Timings are real but never asserted tightly: tests assert the order of states, and a bound
only where it is far from what noise could reach. A request is held in flight by a system of
user's function that waits for the test's word, a preload by a system of record (a small S3
endpoint of the test's) that answers when the test lets it."""
from __future__ import annotations

import http.server
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests

from helpers import (API, SERVER_BINARY, assert_error, connect, install, ok, put_sor,
                     unsandboxed)

WAIT_S = 30.0  # any bounded wait for a state the server reaches on its own
POLL_S = 0.02


def wait_for(what, predicate, limit_s: float = WAIT_S):
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(POLL_S)
    raise AssertionError(f"timed out waiting for {what}")


def get(server, path: str, **kwargs) -> requests.Response:
    return requests.get(f"{server.base}{path}", timeout=WAIT_S, **kwargs)


def ready_status(server) -> int:
    return get(server, "/ready").status_code


def refused(server) -> bool:
    try:
        socket.create_connection(("127.0.0.1", server.port), timeout=WAIT_S).close()
    except ConnectionRefusedError:
        return True
    return False


# A function that says it started (a file) and returns once the test's word (another file) is
# there, at most a minute later.
SLOW_FUNCTION = """
import pathlib, time

def main(cache, folder):
    pathlib.Path(folder, "started").touch()
    for _ in range(6000):
        if pathlib.Path(folder, "go").exists():
            return "worth the wait"
        time.sleep(0.01)
    return "never told"
"""


def slow_call_in_thread(server, folder) -> tuple[threading.Thread, dict]:
    """A call of the slow function on a connection of its own, in a thread; returns once the
    function runs. out["response"] when done."""
    install(server.functions, "slow", SLOW_FUNCTION)
    out: dict = {}

    def run():
        try:
            out["response"] = requests.get(server.api, params={"function": "slow",
                                                               "folder": str(folder)},
                                           timeout=WAIT_S * 2)
        except Exception as e:  # the test asserts on it
            out["error"] = e

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    wait_for("the function running", lambda: (folder / "started").exists() or "error" in out)
    return thread, out


class HeldS3(http.server.ThreadingHTTPServer):
    """An S3 endpoint that holds every request until release(), then answers 404."""
    daemon_threads = True

    def __init__(self) -> None:
        self.released = threading.Event()
        self.asked = threading.Event()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_HEAD(h):  # noqa: N805
                self.asked.set()
                self.released.wait(WAIT_S * 2)
                h.send_response(404)
                h.send_header("Content-Length", "0")
                h.end_headers()
            do_GET = do_HEAD

            def log_message(h, *args):  # noqa: N805
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def env(self) -> dict[str, str]:
        return {"AWS_BUCKET_NAME": "held-bucket", "AWS_REGION": "us-east-1",
                "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{self.server_address[1]}",
                "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret",
                "AWS_EC2_METADATA_DISABLED": "true", "ASIDE_S3_MAX_ATTEMPTS": "1",
                "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials",
                "AWS_CONFIG_FILE": "/nonexistent/config"}

    def close(self) -> None:
        self.released.set()
        self.shutdown()
        self.server_close()


def wait_exit(server, limit_s: float = WAIT_S) -> int:
    code = server.proc.wait(timeout=limit_s)
    server.log.close()
    server.proc = None
    return code


def start_in_thread(server) -> threading.Thread:
    """server.start() in a thread (it returns once the cache is open); the port is known as
    soon as the server listens, from its first log line."""
    offset = server.log_path.stat().st_size if server.log_path.exists() else 0
    thread = threading.Thread(target=server.start, daemon=True)
    thread.start()

    def port():
        if not server.log_path.exists():
            return None
        text = server.log_path.read_bytes()[offset:].decode(errors="replace")
        m = re.search(r"port (\d+) open", text)
        return int(m.group(1)) if m else None
    server.port = wait_for("the port line", port)
    return thread


# -- /health and /ready --------------------------------------------------------------------------

def test_health_and_ready_answer_without_the_token_and_say_nothing_else(make_server):
    server = make_server(env={"ASIDE_TOKEN": "the-secret"})
    assert server.get(function="head").status_code == 401
    for path, status in (("/health", "alive"), ("/ready", "ready")):
        r = get(server, path)
        assert r.status_code == 200, r.text
        assert r.json() == {"status": status}
        assert "version" not in r.text and str(server.root) not in r.text
        head = requests.head(f"{server.base}{path}", timeout=WAIT_S)
        assert head.status_code == 200 and head.content == b""
        assert requests.post(f"{server.base}{path}", timeout=WAIT_S).status_code == 405
    # a query string changes nothing; other paths are still the API's (404 without the token
    # check's answer leaking anything)
    assert get(server, "/ready?x=1").json() == {"status": "ready"}
    assert get(server, "/healthz").status_code in (401, 404)


@pytest.mark.timeout(600)
def test_ready_is_503_starting_while_the_journal_replays_and_the_api_waits(make_server):
    server = make_server()
    # a journal worth seconds of replay: a large JSON document made live by one edit
    doc = {"rows": [{"k": i, "v": "x" * 20} for i in range(400_000)]}
    put_sor(server, "big.json", json.dumps(doc))
    ok(server.get(path="big.json", **{"return": "meta"}))
    ok(server.get(function="json_set", path="big.json", pointer="/edited", value="1"))
    server.stop()
    thread = start_in_thread(server)
    first = get(server, "/ready")
    api = requests.get(server.api, params={"function": "head"}, timeout=WAIT_S)
    alive = get(server, "/health")
    assert first.status_code == 503, first.text
    assert first.json()["status"] == "starting" and "journal" in first.json()["reason"]
    assert first.headers.get("Retry-After")
    if api.status_code == 503:  # the API waits for the cache (unless the replay just ended)
        assert_error(api, 503, "starting")
        assert api.headers.get("Retry-After")
    assert alive.status_code == 200
    thread.join(WAIT_S * 4)
    wait_for("ready", lambda: ready_status(server) == 200)
    r = server.get(function="json_get", path="big.json", pointer="/edited")
    assert r.status_code == 200 and r.json()["return"]["value"] == 1


SPEC = """version: 1
ready_after_preload: {ready}
datasets:
  - key: held.bin
    storage: s3
"""


@pytest.mark.parametrize("wait", [True, False])
def test_ready_waits_for_the_spec_preload_unless_ready_after_preload_is_false(make_server,
                                                                             tmp_path, wait):
    s3 = HeldS3()
    try:
        spec = tmp_path / "spec.yaml"
        spec.write_text(SPEC.format(ready="true" if wait else "false"))
        server = make_server(env={"ASIDE_SPEC": str(spec), **s3.env()})
        assert s3.asked.wait(WAIT_S)  # the preload is held from here on
        r = get(server, "/ready")
        if wait:
            assert r.status_code == 503 and r.json()["status"] == "preloading", r.text
        else:
            assert r.status_code == 200, r.text
        assert server.get(function="head").status_code == 200  # the API serves meanwhile
        s3.released.set()
        wait_for("ready", lambda: ready_status(server) == 200)
    finally:
        s3.close()


# -- the SIGTERM drain ---------------------------------------------------------------------------

def test_sigterm_stops_ready_at_once_serves_the_drain_then_refuses_and_exits_0(make_server):
    server = make_server(env={"ASIDE_DRAIN_SECONDS": "5"})
    put_sor(server, "a.txt", b"A")
    keep = requests.Session()
    assert keep.get(server.api, params={"path": "a.txt", "format": "raw"}).content == b"A"
    server.proc.send_signal(signal.SIGTERM)
    started = time.monotonic()
    wait_for("not ready", lambda: ready_status(server) == 503)
    r = get(server, "/ready")
    assert r.status_code == 503 and r.json()["status"] == "stopping" and r.headers.get("Retry-After")
    # still serving: new connections and the kept one, reads and /health
    assert server.get(path="a.txt", format="raw").content == b"A"
    assert keep.get(server.api, params={"path": "a.txt", "format": "raw"}).content == b"A"
    assert get(server, "/health").status_code == 200
    assert time.monotonic() - started < 5, "the checks above ran past the drain: no proof"
    wait_for("new connections refused", lambda: refused(server))
    assert time.monotonic() - started >= 4.5  # the drain lasted (a lower bound noise cannot break)
    assert wait_exit(server) == 0
    assert "stopped" in server.log_text()


def test_a_slow_request_in_flight_completes_after_accepting_stopped(make_server, tmp_path):
    server = make_server(env=unsandboxed(ASIDE_DRAIN_SECONDS="1"))  # its function sees tmp_path
    thread, out = slow_call_in_thread(server, tmp_path)
    server.proc.send_signal(signal.SIGTERM)
    wait_for("new connections refused", lambda: refused(server))
    assert server.proc.poll() is None and thread.is_alive()  # waiting for the call
    (tmp_path / "go").touch()
    thread.join(WAIT_S)
    assert "error" not in out, out
    r = out["response"]
    assert r.status_code == 200 and r.json()["return"]["value"] == "worth the wait", r.text
    assert r.headers.get("Connection") == "close"
    assert wait_exit(server) == 0


def test_a_client_reading_slowly_gets_the_whole_response_across_the_drain(make_server):
    server = make_server(env={"ASIDE_DRAIN_SECONDS": "1", "ASIDE_MEMORY_LIMIT": "256MiB"})
    body = os.urandom(1 << 20) * 32  # 32 MiB: far more than the sockets' buffers hold
    put_sor(server, "big.bin", body)
    ok(server.get(path="big.bin", **{"return": "meta"}))
    with connect(server) as sock:
        sock.sendall(f"GET {API}?path=big.bin&format=raw HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        got = bytearray(sock.recv(65536))
        server.proc.send_signal(signal.SIGTERM)
        refused_seen = False
        while b"\r\n\r\n" not in got or len(got) - got.index(b"\r\n\r\n") - 4 < len(body):
            chunk = sock.recv(256 * 1024)
            if not chunk:
                break
            got += chunk
            time.sleep(0.01)  # a slow reader: about 25 MB/s at most
            refused_seen = refused_seen or refused(server)
        head, _, rest = bytes(got).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        assert rest == body
        assert refused_seen  # accepting stopped while the response was still being read
    assert wait_exit(server) == 0


def test_a_second_sigterm_exits_at_once_and_nothing_is_torn(make_server):
    server = make_server(env={"ASIDE_DRAIN_SECONDS": "60", "ASIDE_FSYNC": "always"})
    for _ in range(20):
        ok(server.get(function="counter_increment", key="n"))
    server.proc.send_signal(signal.SIGTERM)
    wait_for("not ready", lambda: ready_status(server) == 503)
    started = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    code = wait_exit(server)
    assert time.monotonic() - started < 30  # not the 60 s drain
    assert code != 0
    server.env["ASIDE_DRAIN_SECONDS"] = "0"
    server.start()
    r = server.get(function="counter_get", key="n")
    assert r.status_code == 200 and r.json()["return"]["value"] == 20
    assert "torn" not in server.log_text()


# -- systemd's notifications -----------------------------------------------------------------------

def test_systemd_hears_ready_watchdog_and_stopping(make_server, tmp_path):
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(WAIT_S)
        server = make_server(env={"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "200000",
                                  "ASIDE_DRAIN_SECONDS": "1"})
        seen: list[str] = []

        def until(state: str) -> None:
            while state not in seen:
                seen.append(sock.recv(4096).decode())

        until("READY=1")
        until("WATCHDOG=1")
        assert ready_status(server) == 200
        server.proc.send_signal(signal.SIGTERM)
        until("STOPPING=1")
        assert seen.index("READY=1") < seen.index("STOPPING=1")
        assert wait_exit(server) == 0


# -- --check-config, ASIDE_TOKEN_FILE, the start-up line -------------------------------------------

def check_config(tmp_path, **env) -> subprocess.CompletedProcess:
    for folder in ("cache", "sor"):
        (tmp_path / folder).mkdir(exist_ok=True)
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("ASIDE_", "LOCAL_", "REMOTE_", "AWS_"))}
    base.update({"LOCAL_DATA_DIR": str(tmp_path / "cache"), "REMOTE_STORAGE": str(tmp_path / "sor"),
                 "ASIDE_PYTHON": sys.executable, **env})
    return subprocess.run([str(SERVER_BINARY), "--check-config"], env=base, capture_output=True,
                          text=True, timeout=WAIT_S)


def test_check_config_says_good_or_names_the_bad_setting_and_exits(tmp_path):
    good = check_config(tmp_path)
    assert good.returncode == 0 and "good" in good.stdout, good
    bad = check_config(tmp_path, ASIDE_MEMORY_LIMIT="lots")
    assert bad.returncode == 2 and "ASIDE_MEMORY_LIMIT" in bad.stderr, bad
    spec = tmp_path / "spec.yaml"
    spec.write_text("version: 1\nready_after_preload: sometimes\n")
    bad = check_config(tmp_path, ASIDE_SPEC=str(spec))
    assert bad.returncode == 2 and "spec.yaml:2" in bad.stderr, bad
    missing = check_config(tmp_path, REMOTE_STORAGE=str(tmp_path / "no-such-sor"))
    assert missing.returncode == 2 and "REMOTE_STORAGE" in missing.stderr, missing


def test_the_token_file_is_the_token_and_a_bad_one_is_refused_naming_it(make_server, tmp_path):
    token = tmp_path / "token"
    token.write_text("from-a-file\n")
    server = make_server(env={"ASIDE_TOKEN_FILE": str(token)})
    assert server.get(function="head").status_code == 401
    r = server.call("GET", params={"function": "head"},
                    headers={"Authorization": "Bearer from-a-file"})
    assert r.status_code == 200
    for content, env in ((b"", {}), (b"\n", {}), (b"two words\n", {}),
                         (b"ok-token\n", {"ASIDE_TOKEN": "another"})):
        token.write_bytes(content)
        out = check_config(tmp_path, ASIDE_TOKEN_FILE=str(token), **env)
        assert out.returncode == 2 and "ASIDE_TOKEN_FILE" in out.stderr, (content, out)
    token.chmod(0)
    if os.geteuid() != 0:  # root reads any file
        out = check_config(tmp_path, ASIDE_TOKEN_FILE=str(token))
        assert out.returncode == 2 and "ASIDE_TOKEN_FILE" in out.stderr, out


def test_the_start_up_line_prints_sizes_readably(make_server):
    server = make_server(env={"ASIDE_MEMORY_LIMIT": "1536MiB", "ASIDE_DISK_LIMIT": "300KiB"})
    line = next(l for l in server.log_text().splitlines() if "listening on" in l)
    assert "memory limit 1.5 GiB" in line and "disk limit 300.0 KiB" in line, line
