"""What the test modules share: the real aside-server binary as a `Server`, and plain functions
that read its answers and its folders (`from helpers import ...`; the fixtures are conftest.py's).

The binary is ASIDE_SERVER (default build/aside-server), started on a free port with temporary
directories. Each server writes its log to a file in its temporary directory; stopping it checks
that it shut down cleanly (exit status 0) and that the sanitizers, when built in, reported
nothing.
"""
from __future__ import annotations

import io
import os
import pathlib
import pwd
import re
import signal
import subprocess
import sys
import textwrap
import time

import pandas as pd
import requests

REPO = pathlib.Path(__file__).resolve().parents[2]
SERVER_BINARY = pathlib.Path(os.environ.get("ASIDE_SERVER", REPO / "build" / "aside-server"))
API = "/cache/api/v1.0/"
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 20.0
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


class Server:
    """One aside-server process; `sor` and `cache` are its system of record and disk tier."""

    def __init__(self, root: pathlib.Path, args: list[str] | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.root = root
        self.sor = root / "sor"
        self.cache = root / "cache"
        self.functions = root / "functions"
        self.sor.mkdir(parents=True, exist_ok=True)
        self.cache.mkdir(parents=True, exist_ok=True)
        self.functions.mkdir(parents=True, exist_ok=True)
        self.args = list(args or [])
        self.env = dict(env or {})
        # a command the binary runs under (e.g. one that mounts its disk tier first), exec'ing it
        self.prefix: list[str] = []
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.log_path = root / "server.log"
        self.session = requests.Session()

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> "Server":
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("ASIDE_", "LOCAL_DATA_DIR", "REMOTE_STORAGE", "AWS_"))}
        env.update({"LOCAL_DATA_DIR": str(self.cache), "REMOTE_STORAGE": str(self.sor),
                    "ASIDE_PORT": "0", "ASIDE_THREADS": "2",
                    "ASIDE_DRAIN_SECONDS": "0",  # no drain unless a test asks (test_lifecycle)
                    # users' functions: run by this Python (it has the aside package), from a
                    # folder of the test's own
                    "ASIDE_PYTHON": sys.executable,
                    "LOCAL_FUNCTION_DIR": str(self.functions)})
        env.update(self.env)
        self.session.close()
        self.session = requests.Session()  # connections of a previous run are gone
        self.log = open(self.log_path, "ab")
        self.log_offset = self.log_path.stat().st_size
        self.proc = subprocess.Popen([*self.prefix, str(SERVER_BINARY), *self.args], env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            text = self.log_path.read_bytes()[self.log_offset:].decode(errors="replace")
            match = re.search(r"listening on http://[^:]+:(\d+)/", text)
            if match:
                self.port = int(match.group(1))
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"aside-server exited with {self.proc.returncode}:\n{text}")
            time.sleep(0.02)
        raise RuntimeError("aside-server did not start in time:\n" + self.log_text())

    def stop(self) -> int:
        """SIGTERM, wait, and check a clean shutdown. Returns the exit status."""
        assert self.proc is not None
        self.session.close()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=STOP_TIMEOUT_S)
        self.log.close()
        self.proc = None
        text = self.log_text()
        for marker in SANITIZER_MARKERS:
            assert marker not in text, f"sanitizer report in the server log:\n{text}"
        assert code == 0, f"aside-server exited with {code}:\n{text}"
        return code

    def kill(self) -> None:
        """SIGKILL: a crash, without any shutdown code running."""
        assert self.proc is not None
        self.session.close()
        self.proc.kill()
        self.proc.wait(timeout=STOP_TIMEOUT_S)
        self.log.close()
        self.proc = None

    def restart_after_kill(self) -> "Server":
        """SIGKILL, then start again on the same folders: recovery after a crash."""
        self.kill()
        return self.start()

    def restart(self) -> "Server":
        self.stop()
        return self.start()

    def log_text(self) -> str:
        return self.log_path.read_bytes().decode(errors="replace")

    # -- requests ---------------------------------------------------------------------------
    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api(self) -> str:
        return self.base + API

    def get(self, **params) -> requests.Response:
        return self.session.get(self.api, params=params, timeout=30)

    def call(self, method: str, url: str | None = None, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        return self.session.request(method, url or self.api, **kwargs)

    def post(self, data: dict, **kwargs) -> requests.Response:
        return self.call("POST", json={"data": data}, **kwargs)


# -- the disk tier and telemetry -------------------------------------------------------------

RESERVED = ".aside"


def unsandboxed(**env: str) -> dict[str, str]:
    """A server's environment whose functions run as this user, outside the sandbox: for tests
    whose functions leave marks in the test's folder or report their pids."""
    return {"ASIDE_FUNCTION_SANDBOX": "off",
            "ASIDE_FUNCTION_USER": pwd.getpwuid(os.getuid()).pw_name, **env}


def put_sor(server: Server, rel: str, data: bytes | str) -> bytes:
    """Write a file into the server's system of record (creating folders); returns its bytes."""
    raw = data.encode() if isinstance(data, str) else data
    path = server.sor / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw)
    return raw


def telemetry(server: Server, **params) -> dict:
    """The value of function=head (GET)."""
    r = server.get(function="head", **params)
    assert r.status_code == 200, r.text
    return r.json()["return"]["value"]


def cached_keys(server: Server) -> list:
    r = server.get(function="stats_cache")
    assert r.status_code == 200, r.text
    return r.json()["return"]["value"]


def disk_values(server: Server) -> list[str]:
    """Value files of the disk tier (relative paths, sorted), outside the reserved folder."""
    out = []
    for p in server.cache.rglob("*"):
        rel = p.relative_to(server.cache)
        if rel.parts[0] == RESERVED or p.is_dir():
            continue
        out.append(rel.as_posix())
    return sorted(out)


def disk_sidecars(server: Server) -> list[str]:
    """Keys that have a sidecar in the disk tier (sorted)."""
    meta = server.cache / RESERVED / "meta"
    if not meta.exists():
        return []
    return sorted(p.relative_to(meta).as_posix()[:-len(".meta")]
                  for p in meta.rglob("*.meta") if p.is_file())


def disk_tmp_files(server: Server) -> list[str]:
    tmp = server.cache / RESERVED / "tmp"
    return sorted(p.name for p in tmp.iterdir()) if tmp.exists() else []


def assert_nothing_cached(server: Server) -> None:
    """No key in the cache, no value, sidecar or temporary file left in the disk tier."""
    assert cached_keys(server) == []
    assert disk_values(server) == []
    assert disk_sidecars(server) == []
    assert disk_tmp_files(server) == []
    assert telemetry(server)["keys"] == 0


def assert_error(r: requests.Response, status: int, code: str | None = None) -> dict:
    """r is an error envelope with this status (and code); returns the error object."""
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers.get("Content-Type", "").startswith("application/json")
    err = r.json()["error"]
    assert isinstance(err["message"], str) and err["message"]
    if code is not None:
        assert err["code"] == code, err
    return err


def connect(server: Server, timeout: float = 10.0):
    import socket
    s = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
    return s


def read_response(sock, buffered: bytearray, head: bool = False) -> tuple[int, dict, bytes]:
    """Read one HTTP response from sock; `buffered` holds bytes already read (and keeps what
    follows this response). Returns (status, headers with lower-case names, body)."""
    while b"\r\n\r\n" not in buffered:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed before a full response: {bytes(buffered)!r}")
        buffered += chunk
    end = buffered.index(b"\r\n\r\n")
    lines = bytes(buffered[:end]).decode("latin-1").split("\r\n")
    del buffered[:end + 4]
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = 0 if head or status in (100, 204, 304) else int(headers.get("content-length", 0))
    while len(buffered) < length:
        chunk = sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("connection closed in the middle of a body")
        buffered += chunk
    body = bytes(buffered[:length])
    del buffered[:length]
    return status, headers, body


def read_until_closed(sock, limit_s: float = 10.0) -> bytes:
    """Everything the peer sends until it closes (bounded by limit_s)."""
    deadline = time.monotonic() + limit_s
    data = bytearray()
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    else:
        raise AssertionError("the server did not close the connection in time")
    return bytes(data)


def raw_request(server: Server, method: str, target: str, headers: dict | None = None,
                body: bytes = b"") -> tuple[int, dict, bytes]:
    """One request with exactly this target (no client-side re-encoding), on its own socket."""
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    with connect(server) as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        return read_response(s, bytearray(), head=method == "HEAD")


# -- the answer envelope -------------------------------------------------------------------------

def ok(r: requests.Response):
    """The value of a successful answer: 200 and {"return": {"uri": API, "value": ...}}."""
    assert r.status_code == 200, (r.status_code, r.text)
    body = r.json()["return"]
    assert body["uri"] == API, body
    return body["value"]


def op(server: Server, function: str, key: str | None = None,
       session: requests.Session | None = None, **args) -> requests.Response:
    """POST {"data": {...}}: the arguments keep their JSON types (on `session` when given)."""
    data = {"function": function, **args}
    if key is not None:
        data["key"] = key
    return (session or server.session).post(server.api, json={"data": data}, timeout=30)


def op_value(server: Server, function: str, key: str | None = None, **args):
    """The value of a successful POST of this function."""
    return ok(op(server, function, key, **args))


def read_data(server: Server, key: str):
    """The stored value of a key (read, return=data)."""
    return ok(server.get(function="read", key=key, **{"return": "data"}))


def entry(server: Server, key: str) -> dict:
    """The key's telemetry (cache_head: for a frame key, head means its first rows)."""
    entries = ok(server.get(function="cache_head", path=key))["entries"]
    assert len(entries) == 1, entries
    return entries[0]


# -- files the tests give the server ------------------------------------------------------------

def install(folder: pathlib.Path, name: str, source: str) -> pathlib.Path:
    """A user's function file `name`.py written straight into a function folder."""
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    return path


def parquet_bytes(df: pd.DataFrame, compression: str | None = "snappy",
                  index: bool | None = None) -> bytes:
    """df as a Parquet file, as pandas writes it."""
    out = io.BytesIO()
    df.to_parquet(out, compression=compression, index=index)
    return out.getvalue()
