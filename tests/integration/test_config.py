"""aside-server's command line and environment."""
from __future__ import annotations

import os
import subprocess

import pytest

from helpers import SERVER_BINARY, cached_keys, put_sor, telemetry

ENV_VARS = ["LOCAL_DATA_DIR", "REMOTE_STORAGE", "ASIDE_BIND", "ASIDE_PORT", "ASIDE_MEMORY_LIMIT",
            "ASIDE_DISK_LIMIT", "ASIDE_THREADS"]


def run(args, tmp_path, env=None):
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("ASIDE_", "LOCAL_DATA_DIR", "REMOTE_STORAGE", "AWS_"))}
    (tmp_path / "sor").mkdir(exist_ok=True)
    base.update({"LOCAL_DATA_DIR": str(tmp_path / "cache"), "REMOTE_STORAGE": str(tmp_path / "sor"),
                 "ASIDE_PORT": "0"})
    base.update(env or {})
    return subprocess.run([str(SERVER_BINARY.resolve()), *args], env=base, cwd=tmp_path,
                          capture_output=True, text=True, timeout=20)


def test_help_exits_0_and_names_every_environment_variable(tmp_path):
    p = run(["--help"], tmp_path)
    assert p.returncode == 0, p.stderr
    for name in ENV_VARS:
        assert name in p.stdout, name
    for flag in ("--memory-limit", "--disk-limit", "--port", "--max-body", "--request-timeout"):
        assert flag in p.stdout
    assert "ERROR" not in p.stderr


@pytest.mark.parametrize("args, env, names", [
    (["--memory-limit", "lots"], {}, ["memory-limit", "lots"]),
    (["--memory-limit", "0"], {}, ["memory-limit"]),
    (["--disk-limit", "12 parsecs"], {}, ["disk-limit"]),
    (["--memory-limit", "150%"], {}, ["memory-limit"]),
    (["--max-body", "-1"], {}, ["max-body"]),
    (["--threads", "0"], {}, ["threads"]),
    (["--request-timeout", "soon"], {}, ["request-timeout"]),
    (["--port", "65536"], {}, ["port"]),
    ([], {"ASIDE_PORT": "99999"}, ["ASIDE_PORT"]),
    ([], {"ASIDE_MEMORY_LIMIT": "plenty"}, ["ASIDE_MEMORY_LIMIT"]),
    ([], {"ASIDE_THREADS": "many"}, ["ASIDE_THREADS"]),
    (["--bogus-flag", "1"], {}, ["bogus-flag"]),
    (["stray-argument"], {}, ["stray-argument"]),
    (["--memory-limit"], {}, ["memory-limit"]),
    (["--policy", "fifo"], {}, ["policy", "fifo"]),
    ([], {"ASIDE_POLICY": "random"}, ["policy", "random"]),
], ids=lambda v: str(v))
def test_invalid_setting_exits_2_with_a_message_naming_it(tmp_path, args, env, names):
    p = run(args, tmp_path, env)
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    for name in names:
        assert name in p.stderr, p.stderr
    assert "listening" not in p.stdout + p.stderr


def test_environment_variables_configure_the_server(make_server):
    server = make_server(env={"ASIDE_MEMORY_LIMIT": "64KiB", "ASIDE_BIND": "127.0.0.1"})
    assert telemetry(server)["memory"]["limit_bytes"] == 65536
    assert "127.0.0.1" in server.log_text()


def test_flag_wins_over_the_environment_for_directories(make_server, tmp_path):
    other = tmp_path / "other-sor"
    other.mkdir()
    (other / "where.json").write_text('"flag"')
    server = make_server(args=["--remote-storage", str(other)])
    put_sor(server, "where.json", '"env"')
    r = server.get(path="where.json", **{"return": "data"})
    assert r.json()["return"]["value"] == "flag"
    assert cached_keys(server) == ["where.json"]


def test_missing_sor_directory_fails_to_start_with_a_message(tmp_path):
    p = run([], tmp_path, {"REMOTE_STORAGE": str(tmp_path / "no-such-dir")})
    assert p.returncode != 0
    assert "no-such-dir" in p.stdout + p.stderr
