"""Fixtures that run the real aside-server binary on a free port with temporary directories.

The binary is ASIDE_SERVER (default build/aside-server). Each server writes its log to a file in
its temporary directory; stopping it checks that it shut down cleanly (exit status 0) and that
the sanitizers, when built in, reported nothing.
"""
from __future__ import annotations

import os
import pathlib
import re
import signal
import subprocess
import time
from typing import Iterator

import pytest
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
        self.sor.mkdir(parents=True, exist_ok=True)
        self.cache.mkdir(parents=True, exist_ok=True)
        self.args = list(args or [])
        self.env = dict(env or {})
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.log_path = root / "server.log"
        self.session = requests.Session()

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> "Server":
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("ASIDE_", "LOCAL_DATA_DIR", "REMOTE_STORAGE", "AWS_"))}
        env.update({"LOCAL_DATA_DIR": str(self.cache), "REMOTE_STORAGE": str(self.sor),
                    "ASIDE_PORT": "0", "ASIDE_THREADS": "2"})
        env.update(self.env)
        self.log = open(self.log_path, "ab")
        self.log_offset = self.log_path.stat().st_size
        self.proc = subprocess.Popen([str(SERVER_BINARY), *self.args], env=env,
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

    def restart(self) -> "Server":
        self.stop()
        self.session = requests.Session()
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


@pytest.fixture
def make_server(tmp_path: pathlib.Path) -> Iterator:
    """A factory: make_server(args=[...], env={...}) returns a started Server.
    Every server still running at the end of the test is stopped and checked."""
    servers: list[Server] = []

    def make(args: list[str] | None = None, env: dict[str, str] | None = None,
             root: pathlib.Path | None = None, start: bool = True) -> Server:
        server = Server(root or tmp_path / f"server{len(servers)}", args, env)
        servers.append(server)
        return server.start() if start else server

    yield make
    for server in servers:
        if server.proc is not None:
            server.stop()


@pytest.fixture
def server(make_server) -> Server:
    """A started server with an empty system of record and disk tier."""
    return make_server()
