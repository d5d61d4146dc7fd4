"""The container image (deploy/container/Containerfile): hadolint passes on the recipe, and the
built image, run with buildah against a bind-mounted system of record, serves a read, answers
/ready and /health, refuses to run open, and drains and exits 0 on SIGTERM.

The image is built by scripts/image.sh (scripts/test.sh builds it while the other suites run and
names it in ASIDE_IMAGE); without ASIDE_IMAGE the tests that run the image are skipped. buildah
runs with the storage image.sh uses (build-image/storage, vfs driver, chroot isolation).
"""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import time

import pandas as pd
import pytest
import requests

ROOT = pathlib.Path(__file__).resolve().parents[2]
CONTAINERFILE = ROOT / "deploy" / "container" / "Containerfile"
HADOLINT = pathlib.Path(sys.executable).parent / "hadolint"
IMAGE = os.environ.get("ASIDE_IMAGE", "")
STORAGE = ROOT / "build-image"
RUN_USER = 10001           # the image's user (Containerfile: USER)
START_S = 60.0             # bound on the start, to /ready 200
EXIT_S = 30.0              # bound on the exit after SIGTERM

# a function of the image's Python: a frame from the cache (pandas, pyarrow, shared memory)
FUNCTION = '''
def main(cache, key: str):
    return int(cache[key]["n"].sum())
'''

needs_image = pytest.mark.skipif(
    not IMAGE or shutil.which("buildah") is None,
    reason="ASIDE_IMAGE names no image (scripts/test.sh builds one with scripts/image.sh)")


def buildah(*args: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["buildah", "--storage-driver", "vfs", "--root", str(STORAGE / "storage"),
         "--runroot", str(STORAGE / "run"), *args],
        check=check, capture_output=True, text=True, **kwargs)


def buildah_popen(*args: str, log: pathlib.Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(
            ["buildah", "--storage-driver", "vfs", "--root", str(STORAGE / "storage"),
             "--runroot", str(STORAGE / "run"), *args],
            stdout=out, stderr=subprocess.STDOUT)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def descendants(pid: int) -> list[int]:
    """Every process below pid (children first), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(0), []):
            out.append(child)
            todo.append(child)
    return out


def process_named(parent: int, name: str) -> int | None:
    for pid in descendants(parent):
        try:
            if pathlib.Path(f"/proc/{pid}/comm").read_text().strip() == name:
                return pid
        except OSError:
            continue
    return None


def uid_of(pid: int) -> int:
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError("no Uid line")


def status(url: str) -> int:
    try:
        return requests.get(url, timeout=2).status_code
    except requests.RequestException:
        return 0


def test_the_containerfile_passes_hadolint():
    r = subprocess.run([str(HADOLINT), str(CONTAINERFILE)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.fixture(scope="module")
def container():
    name = buildah("from", "--pull-never", IMAGE).stdout.strip()
    try:
        yield name
    finally:
        buildah("rm", name)


def image_config() -> dict:
    return json.loads(buildah("inspect", "--type", "image", IMAGE).stdout)


@needs_image
def test_the_image_runs_as_a_user_with_a_volume_a_port_and_a_health_check():
    config = image_config()
    docker = config["Docker"]["config"]
    assert docker["User"] == f"{RUN_USER}:{RUN_USER}"
    assert "/var/lib/aside" in docker["Volumes"]
    assert "5000/tcp" in docker["ExposedPorts"]
    assert "ASIDE_BIND=0.0.0.0" in docker["Env"]
    assert any("/health" in part for part in docker["Healthcheck"]["Test"])
    assert docker["Entrypoint"][0] == "/usr/bin/tini"


@needs_image
@pytest.mark.timeout(120)
def test_the_image_refuses_to_serve_its_open_bind_without_a_token(container):
    r = buildah("run", "--isolation", "chroot", "--network", "host",
                "--env", f"ASIDE_PORT={free_port()}", container, "--",
                *image_config()["Docker"]["config"]["Entrypoint"], check=False, timeout=60)
    assert r.returncode != 0
    assert "ASIDE_ALLOW_UNAUTHENTICATED" in r.stdout + r.stderr


@needs_image
@pytest.mark.timeout(180)
def test_the_image_reads_from_a_mounted_sor_is_ready_and_drains_on_sigterm(container, tmp_path):
    sor = tmp_path / "sor"
    sor.mkdir(mode=0o755)
    payload = bytes(range(256)) * 64
    (sor / "hello.bin").write_bytes(payload)
    (sor / "hello.bin").chmod(0o644)
    pd.DataFrame({"n": range(1000)}).to_parquet(sor / "numbers.parquet")
    (sor / "numbers.parquet").chmod(0o644)
    functions = tmp_path / "functions"
    functions.mkdir(mode=0o755)
    (functions / "total.py").write_text(FUNCTION)
    os.chown(functions, RUN_USER, RUN_USER)
    secret = "image-test-secret-0123456789"
    token = tmp_path / "token"
    token.write_text(secret + "\n")
    os.chown(token, RUN_USER, RUN_USER)
    token.chmod(0o400)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = image_config()["Docker"]["config"]

    started = time.monotonic()
    proc = buildah_popen(
        "run", "--isolation", "chroot", "--network", "host",
        "--volume", f"{sor}:/srv/aside:ro", "--volume", f"{token}:/run/secrets/aside-token:ro",
        "--volume", f"{functions}:/var/lib/aside/functions",
        "--env", f"ASIDE_PORT={port}", "--env", "ASIDE_TOKEN_FILE=/run/secrets/aside-token",
        "--env", "ASIDE_DRAIN_SECONDS=1", container, "--", *config["Entrypoint"],
        log=tmp_path / "run.log")
    try:
        deadline = started + START_S
        while status(base + "/ready") != 200:
            assert proc.poll() is None, (tmp_path / "run.log").read_text()
            assert time.monotonic() < deadline, "not ready in time"
            time.sleep(0.05)
        ready_s = time.monotonic() - started
        print(f"ready {ready_s:.2f} s after buildah run")

        server = process_named(proc.pid, "aside-server")
        tini = process_named(proc.pid, "tini")
        assert server and tini
        assert uid_of(server) == RUN_USER
        api = base + "/cache/api/v1.0/"
        auth = {"Authorization": f"Bearer {secret}"}
        assert requests.get(api, params={"path": "hello.bin"}, timeout=10).status_code == 401
        r = requests.get(api, params={"path": "hello.bin", "format": "raw"}, headers=auth,
                         timeout=10)
        assert r.status_code == 200 and r.content == payload
        assert status(base + "/health") == 200
        # a user's function, in the image's Python, gets a frame from the cache
        r = requests.get(api, params={"function": "total", "key": "numbers.parquet"},
                         headers=auth, timeout=60)
        assert r.status_code == 200 and r.json()["return"]["value"] == 499500, r.text
        # the image's own health check, run in the container
        check = config["Healthcheck"]["Test"]
        assert check[0] == "CMD"
        buildah("run", "--isolation", "chroot", "--network", "host",
                "--env", f"ASIDE_PORT={port}", container, "--", *check[1:], timeout=30)

        os.kill(tini, signal.SIGTERM)   # PID 1 of the container passes it on
        deadline = time.monotonic() + EXIT_S
        while status(base + "/ready") == 200:
            assert time.monotonic() < deadline, "still ready after SIGTERM"
            time.sleep(0.02)
        assert proc.wait(timeout=EXIT_S) == 0, (tmp_path / "run.log").read_text()
        assert "stopped" in (tmp_path / "run.log").read_text()
    finally:
        if proc.poll() is None:
            for pid in reversed(descendants(proc.pid)):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            proc.kill()
            proc.wait(timeout=EXIT_S)
