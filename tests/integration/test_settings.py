"""Every setting `aside-server --help` names, as an environment variable: a valid value of each is
accepted (and, where a request can see it, takes effect), an invalid one is refused at start with
a message naming the variable; the default memory and disk limits are what the README says."""
from __future__ import annotations

import hashlib
import os
import pwd
import re
import socket
import subprocess
import sys
import time

import pytest

from helpers import SERVER_BINARY, assert_error, put_sor, telemetry

MIB = 1 << 20
REFUSE_TIMEOUT_S = 20.0


def help_variables() -> list[str]:
    """The environment variables of the option table of --help."""
    out = subprocess.run([str(SERVER_BINARY), "--help"], capture_output=True, text=True,
                         timeout=REFUSE_TIMEOUT_S)
    assert out.returncode == 0, out.stderr
    return re.findall(r"^\s+--[a-z0-9-]+\s+([A-Z][A-Z0-9_]+)\s", out.stdout, re.M)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# A distinctive valid value of each variable, and what a request then sees (None: only that the
# server starts and answers). Values that name folders are relative to the test's folder.
def _limit(kind: str, want: int):
    return lambda server: telemetry(server)[kind]["limit_bytes"] == want


def _token(server) -> bool:
    return server.get(function="head").status_code == 401


def _port(port: int):
    return lambda server: server.port == port


def _ttl(server) -> bool:
    put_sor(server, "t.json", "{}")
    server.get(path="t.json")
    return 0 < server.get(function="ttl", key="t.json").json()["return"]["value"] <= 4321


def _access_log(server) -> bool:
    log = server.env["ASIDE_ACCESS_LOG"]
    for _ in range(100):  # the writer flushes within 100 ms
        if os.path.exists(log) and os.path.getsize(log) > 0:
            return True
        time.sleep(0.05)
    return False


PORT = free_port()
VALID = {
    "LOCAL_DATA_DIR": ("{root}/other-cache", None),
    "REMOTE_STORAGE": ("{root}/other-sor", None),
    "ASIDE_BIND": ("127.0.0.1", None),
    "ASIDE_PORT": (str(PORT), _port(PORT)),
    "ASIDE_MEMORY_LIMIT": ("123MiB", _limit("memory", 123 * MIB)),
    "ASIDE_DISK_LIMIT": ("321MiB", _limit("disk", 321 * MIB)),
    "ASIDE_THREADS": ("3", None),
    "ASIDE_LOAD_THREADS": ("5", None),
    "ASIDE_POLICY": ("lfu", None),
    "ASIDE_FSYNC": ("never", None),
    "ASIDE_DEFAULT_TTL": ("4321", _ttl),
    "ASIDE_JOURNAL_COMPACT": ("3MiB", None),
    "ASIDE_JSON_MAX_DEPTH": ("500", None),
    "ASIDE_MAX_BODY": ("7MiB", None),
    "ASIDE_MAX_BODIES_IN_FLIGHT": ("9MiB", None),
    "ASIDE_MAX_CONNECTIONS": ("77", None),
    "ASIDE_IDLE_TIMEOUT": ("77", None),
    "ASIDE_REQUEST_TIMEOUT": ("33", None),
    "ASIDE_MAX_AGE": ("600", None),
    "ASIDE_STALE_IF_ERROR": ("true", None),
    "LOCAL_FUNCTION_DIR": ("{root}/other-functions", None),
    "AWS_FUNCTION_DIR": ("lib/functions", None),
    "ASIDE_PYTHON": (sys.executable, None),
    "ASIDE_FUNCTION_WORKERS": ("3", None),
    "ASIDE_FUNCTION_TIMEOUT": ("17", None),
    "ASIDE_FUNCTION_MEMORY": ("2GiB", None),
    "ASIDE_FUNCTION_FILE_SIZE": ("5MiB", None),
    "ASIDE_FUNCTION_PROCESSES": ("300", None),
    "ASIDE_FUNCTION_USER": (pwd.getpwuid(os.getuid()).pw_name, None),
    "ASIDE_FUNCTION_SANDBOX": ("auto", None),
    "ASIDE_FUNCTION_TMP_SIZE": ("64MiB", None),
    "ASIDE_TOKEN": ("a-secret-of-the-test", _token),
    "ASIDE_TOKENS_FILE": ("{root}/tokens", _token),
    "ASIDE_ALLOW_UNAUTHENTICATED": ("true", None),
    "ASIDE_METRICS_PUBLIC": ("true", None),
    "ASIDE_TOKEN_FILE": ("{root}/token", _token),
    "ASIDE_DRAIN_SECONDS": ("1", None),
    "ASIDE_SHUTDOWN_TIMEOUT": ("9", None),
    "ASIDE_ACCESS_LOG": ("{root}/access.log", _access_log),
    "ASIDE_SLOW_MS": ("250", None),
    "ASIDE_SHM_DIR": ("{root}/shm", None),
    "ASIDE_RESULT_LIMIT": ("1MiB", None),
    "ASIDE_SQL_TIMEOUT": ("13", None),
    "ASIDE_SQL_THREADS": ("3", None),
    "ASIDE_PANDAS": ("2", None),
    "ASIDE_SPEC": ("{root}/spec.yaml", None),
    "AWS_BUCKET_NAME": ("a-bucket-of-the-test", None),
    "AWS_DATA_DIR": ("some/prefix", None),
    "AWS_REGION": ("eu-west-3", None),
    "AWS_ENDPOINT_URL_S3": ("http://127.0.0.1:9", None),
    "ASIDE_S3_PART_SIZE": ("6MiB", None),
    "ASIDE_S3_CONCURRENCY": ("5", None),
    "ASIDE_S3_MAX_ATTEMPTS": ("6", None),
    "ASIDE_S3_TIMEOUT": ("44", None),
    "ASIDE_S3_MULTIPART_THRESHOLD": ("20MiB", None),
}

# An invalid value of each.
INVALID = {
    "LOCAL_DATA_DIR": "/proc/no-such-folder/cache",
    "REMOTE_STORAGE": "/no-such-folder/sor",
    "ASIDE_BIND": "999.1.1.1",
    "ASIDE_PORT": "70000",
    "ASIDE_MEMORY_LIMIT": "lots",
    "ASIDE_DISK_LIMIT": "150%",
    "ASIDE_THREADS": "abc",
    "ASIDE_LOAD_THREADS": "0",
    "ASIDE_POLICY": "fifo",
    "ASIDE_FSYNC": "sometimes",
    "ASIDE_DEFAULT_TTL": "-1",
    "ASIDE_JOURNAL_COMPACT": "big",
    "ASIDE_JSON_MAX_DEPTH": "2001",
    "ASIDE_MAX_BODY": "x",
    "ASIDE_MAX_BODIES_IN_FLIGHT": "0",
    "ASIDE_MAX_CONNECTIONS": "0",
    "ASIDE_IDLE_TIMEOUT": "soon",
    "ASIDE_REQUEST_TIMEOUT": "-3",
    "ASIDE_MAX_AGE": "old",
    "ASIDE_STALE_IF_ERROR": "maybe",
    "LOCAL_FUNCTION_DIR": "/proc/no-such-folder/functions",
    "AWS_FUNCTION_DIR": "../outside",
    "ASIDE_PYTHON": "/no-such-folder/python3",
    "ASIDE_FUNCTION_WORKERS": "many",
    "ASIDE_FUNCTION_TIMEOUT": "0",
    "ASIDE_FUNCTION_MEMORY": "lots",
    "ASIDE_FUNCTION_FILE_SIZE": "huge",
    "ASIDE_FUNCTION_PROCESSES": "many",
    "ASIDE_FUNCTION_USER": "no-such-user-of-aside",
    "ASIDE_FUNCTION_SANDBOX": "maybe",
    "ASIDE_FUNCTION_TMP_SIZE": "roomy",
    "ASIDE_TOKEN": "two words",
    "ASIDE_TOKENS_FILE": "/no-such-folder/tokens",
    "ASIDE_ALLOW_UNAUTHENTICATED": "maybe",
    "ASIDE_METRICS_PUBLIC": "sometimes",
    "ASIDE_TOKEN_FILE": "/no-such-folder/token",
    "ASIDE_DRAIN_SECONDS": "-1",
    "ASIDE_SHUTDOWN_TIMEOUT": "0",
    "ASIDE_ACCESS_LOG": "/proc/no-such-folder/access.log",
    "ASIDE_SLOW_MS": "-5",
    "ASIDE_SHM_DIR": "/proc/no-such-folder/shm",
    "ASIDE_RESULT_LIMIT": "huge",
    "ASIDE_SQL_TIMEOUT": "never",
    "ASIDE_SQL_THREADS": "0",
    "ASIDE_PANDAS": "1",
    "ASIDE_SPEC": "/no-such-folder/spec.yaml",
    "AWS_BUCKET_NAME": "Not_A_Bucket!",
    "AWS_DATA_DIR": "/absolute/prefix",
    "AWS_REGION": "not a region",
    "AWS_ENDPOINT_URL_S3": "not a url",
    "ASIDE_S3_PART_SIZE": "1",
    "ASIDE_S3_CONCURRENCY": "0",
    "ASIDE_S3_MAX_ATTEMPTS": "0",
    "ASIDE_S3_TIMEOUT": "0",
    "ASIDE_S3_MULTIPART_THRESHOLD": "tiny",
}


def test_the_tables_name_every_variable_of_help():
    names = help_variables()
    assert len(names) >= 30, names
    assert sorted(VALID) == sorted(INVALID) == sorted(names)


@pytest.mark.parametrize("name", sorted(VALID))
def test_a_valid_value_of_each_setting_is_accepted(make_server, tmp_path, name):
    value, took_effect = VALID[name]
    value = value.format(root=tmp_path)
    if name == "REMOTE_STORAGE":
        os.makedirs(value)
    if name == "ASIDE_SPEC":
        with open(value, "w") as f:
            f.write("version: 1\n")
    token = {"ASIDE_TOKEN": value, "ASIDE_TOKEN_FILE": "a-secret-from-a-file",
             "ASIDE_TOKENS_FILE": "a-secret-of-the-tokens-file"}.get(name)
    if name == "ASIDE_TOKENS_FILE":
        with open(value, "w") as f:
            f.write(f"test sha256:{hashlib.sha256(token.encode()).hexdigest()} read\n")
    if name == "ASIDE_TOKEN_FILE":
        with open(value, "w") as f:
            f.write(token + "\n")
    server = make_server(env={name: value})
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    r = server.call("GET", params={"function": "head"}, headers=headers)
    assert r.status_code == 200, r.text
    if took_effect is not None:
        assert took_effect(server), (name, value)


def refused_start(tmp_path, name: str, value: str) -> tuple[int | None, str]:
    """Start the binary with one invalid setting: (exit status, output); None when it started."""
    for folder in ("cache", "sor", "functions"):
        (tmp_path / folder).mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ASIDE_", "LOCAL_", "REMOTE_", "AWS_"))}
    env.update({"LOCAL_DATA_DIR": str(tmp_path / "cache"), "REMOTE_STORAGE": str(tmp_path / "sor"),
                "LOCAL_FUNCTION_DIR": str(tmp_path / "functions"), "ASIDE_PORT": "0",
                "ASIDE_PYTHON": sys.executable, name: value})
    log = tmp_path / "server.log"
    with open(log, "wb") as f:
        proc = subprocess.Popen([str(SERVER_BINARY)], env=env, stdout=f, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + REFUSE_TIMEOUT_S
    while proc.poll() is None and time.monotonic() < deadline:
        if "listening on" in log.read_text(errors="replace"):
            break
        time.sleep(0.02)
    if proc.poll() is None:  # it started (or hangs): not a refusal
        proc.terminate()
        proc.wait(timeout=REFUSE_TIMEOUT_S)
        return None, log.read_text(errors="replace")
    return proc.returncode, log.read_text(errors="replace")


@pytest.mark.parametrize("name", sorted(INVALID))
def test_an_invalid_value_of_each_setting_is_refused_at_start_naming_it(tmp_path, name):
    code, out = refused_start(tmp_path, name, INVALID[name])
    assert code is not None, f"started with {name}={INVALID[name]!r}:\n{out}"
    assert code != 0, out
    assert name in out, out
    assert "listening" not in out


# -- default limits ----------------------------------------------------------------------------

def cgroup_memory_limit() -> int | None:
    """The container's memory limit (cgroup v2, else v1), None when there is none."""
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = open(path).read().strip()
        except OSError:
            continue
        if text == "max":
            return None
        limit = int(text)
        return None if limit >= 1 << 60 else limit
    return None


def mem_total() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no MemTotal in /proc/meminfo")


def test_the_default_memory_limit_is_a_quarter_of_ram_or_of_the_cgroup_limit(server):
    total = mem_total()
    limit = cgroup_memory_limit()
    base = min(total, limit) if limit else total
    got = telemetry(server)["memory"]["limit_bytes"]
    assert abs(got - base // 4) <= MIB, (got, base)


def test_the_default_disk_limit_is_80_percent_of_the_free_space_at_start(make_server, tmp_path):
    server = make_server(start=False)
    before = os.statvfs(server.cache)
    server.start()
    after = os.statvfs(server.cache)
    got = telemetry(server)["disk"]["limit_bytes"]
    free = sorted(s.f_bavail * s.f_frsize for s in (before, after))
    # the free space moves a little while the server starts (other files of the machine)
    assert free[0] * 0.8 - 64 * MIB <= got <= free[1] * 0.8 + 64 * MIB, (got, free)


# -- the SQL time limit --------------------------------------------------------------------------

def test_a_query_past_aside_sql_timeout_is_504_timeout(make_server):
    server = make_server(env={"ASIDE_SQL_TIMEOUT": "1"})
    r = server.get(function="sql", query="SELECT count(*) AS n FROM range(100000000000) a")
    assert_error(r, 504, "timeout")
    # the engine is free again
    r = server.get(function="sql", query="SELECT 1 AS one")
    assert r.status_code == 200 and r.json()["return"]["value"] == [{"one": 1}]
