"""The Python client as a package: its distribution (aside-cache, imported as aside) built into a
wheel and installed into a fresh venv, which then reads from a server; one version for the
client, its distribution and the server; and its exceptions, which are also Python's own
TimeoutError and ConnectionError where they mean that."""
from __future__ import annotations

import importlib.metadata
import json
import os
import pathlib
import pickle
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile

import pandas as pd
import pytest

import aside
from aside.errors import error_from_response
from helpers import REPO, SERVER_BINARY, parquet_bytes, put_sor

CLIENT = REPO / "clients" / "python"
DISTRIBUTION = "aside-cache"
BUILD_TIMEOUT_S = 240


# -- exceptions ---------------------------------------------------------------------------------

def test_timeout_and_connection_failed_are_pythons_own_errors_too():
    timeout = error_from_response(504, b'{"error": {"code": "timeout", "message": "slow"}}')
    assert isinstance(timeout, aside.Timeout) and isinstance(timeout, aside.ServerError)
    assert isinstance(timeout, TimeoutError) and isinstance(timeout, OSError)
    assert str(timeout) == "504 timeout: slow"
    assert (timeout.code, timeout.message, timeout.status) == ("timeout", "slow", 504)
    again = pickle.loads(pickle.dumps(timeout))
    assert type(again) is aside.Timeout and str(again) == str(timeout)
    failed = aside.ConnectionFailed("connection_failed", "refused")
    assert isinstance(failed, ConnectionError) and isinstance(failed, aside.AsideError)
    assert str(failed) == "connection_failed: refused" and failed.status is None


def test_a_server_that_is_not_there_is_a_connection_error(tmp_path):
    import socket
    with socket.socket() as s:  # a port nothing listens on: bound, never listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        client = aside.connect(f"http://127.0.0.1:{port}", timeout=5)
        with pytest.raises(ConnectionError) as caught:
            client.keys()
    assert isinstance(caught.value, aside.ConnectionFailed)
    assert caught.value.code == "connection_failed"


# -- one version --------------------------------------------------------------------------------

def test_one_version_for_client_distribution_and_server():
    assert importlib.metadata.version(DISTRIBUTION) == aside.__version__
    out = subprocess.run([str(SERVER_BINARY), "--version"], capture_output=True, text=True,
                         timeout=30)
    assert out.stdout.strip() == f"aside-server {aside.__version__}"
    project = tomllib.loads((CLIENT / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "aside.__version__"}


# -- the wheel, in a fresh venv -----------------------------------------------------------------

def build_wheel(tmp_path: pathlib.Path) -> pathlib.Path:
    """A wheel built from a copy of clients/python (the build leaves its folders there)."""
    source = tmp_path / "source"
    shutil.copytree(CLIENT, source, symlinks=False,
                    ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--no-build-isolation", "--no-index", "-w", str(dist), str(source)],
                   check=True, timeout=BUILD_TIMEOUT_S, capture_output=True)
    wheels = list(dist.glob("*.whl"))
    assert [w.name for w in wheels] == [f"aside_cache-{aside.__version__}-py3-none-any.whl"]
    return wheels[0]


def check_wheel_contents(wheel: pathlib.Path) -> None:
    info = f"aside_cache-{aside.__version__}.dist-info"
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        metadata = z.read(f"{info}/METADATA").decode()
        license_text = z.read(f"{info}/licenses/LICENSE").decode()
    assert {"aside/__init__.py", "aside/worker.py", "aside/py.typed"} <= names
    assert license_text == (REPO / "LICENSE").read_text()
    for line in (f"Name: {DISTRIBUTION}", f"Version: {aside.__version__}",
                 "Requires-Python: >=3.9", "License-File: LICENSE", "Requires-Dist: pandas",
                 "Requires-Dist: pyarrow", "Requires-Dist: requests",
                 "Classifier: Typing :: Typed"):
        assert line in metadata.splitlines(), line


def fresh_venv(tmp_path: pathlib.Path, wheel: pathlib.Path) -> pathlib.Path:
    """A venv made from the test venv's base Python, the wheel installed in it with pip and
    nothing else; its dependencies (pandas, pyarrow, requests: large, and offline here) are
    the test venv's, reached through a .pth file that comes after its own site-packages."""
    base = os.path.realpath(sys.executable)
    venv = tmp_path / "venv"
    subprocess.run([base, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                    "--no-deps", "--no-index", str(wheel)],
                   check=True, timeout=BUILD_TIMEOUT_S, capture_output=True)
    purelib = subprocess.run([str(python), "-c", "import sysconfig; "
                              "print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True, timeout=60)
    deps = sysconfig.get_paths()["purelib"]
    pathlib.Path(purelib.stdout.strip(), "test_venv_dependencies.pth").write_text(deps + "\n")
    return python


FRESH_VENV_CHECK = """
import importlib.metadata, json, sys
import aside
client = aside.connect(sys.argv[1])
df = client.read("p.parquet")
print(json.dumps({
    "file": aside.__file__,
    "version": aside.__version__,
    "distribution": importlib.metadata.version("aside-cache"),
    "rows": len(df), "columns": list(df.columns), "sum": float(df["v"].sum()),
    "timeout_is_builtin": issubclass(aside.Timeout, TimeoutError),
}))
"""


@pytest.mark.timeout(600)
def test_the_wheel_installs_into_a_fresh_venv_and_reads_from_a_server(server, tmp_path):
    wheel = build_wheel(tmp_path)
    check_wheel_contents(wheel)
    python = fresh_venv(tmp_path, wheel)
    put_sor(server, "p.parquet", parquet_bytes(pd.DataFrame({"k": ["a", "b", "c"],
                                                             "v": [1.5, 2.0, 4.0]})))
    out = subprocess.run([str(python), "-c", FRESH_VENV_CHECK, server.base],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["file"].startswith(str(tmp_path / "venv")), got  # the wheel's, not the test's
    assert got["version"] == got["distribution"] == aside.__version__
    assert (got["rows"], got["columns"], got["sum"]) == (3, ["k", "v"], 7.5)
    assert got["timeout_is_builtin"]
