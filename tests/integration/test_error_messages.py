"""Error answers name the key, never the server's own folders.

Each test provokes one kind of failure over HTTP (a key the file system cannot take, a system of
record entry that is no file, a folder of the system of record gone, a shared-memory folder gone,
a file where a folder must be, a frame that does not decode) and checks the status and that the
body names neither the disk tier (LOCAL_DATA_DIR), nor the system of record's root, nor the
shared-memory folder, nor any other path of the server. The full disk and the read-only disk tier
are provoked in test_disk_failures.py, with the same check."""
from __future__ import annotations

import os
import pathlib
import shutil

import pandas as pd
import pytest
import requests

from helpers import assert_error, ok, parquet_bytes, put_sor

# Paths of the server's that may appear in no answer, whatever the server's folders are.
SERVER_PATH_MARKERS = ("/proc/self/fd", "/dev/shm", "/.aside/", ".aside-write.")


def server_paths(server) -> list[str]:
    """The server's own folders as a client could see them in a message."""
    paths = {str(server.root), str(server.cache), str(server.sor)}
    paths |= {os.path.realpath(p) for p in list(paths)}
    if server.proc is not None:
        paths.add(f"/dev/shm/aside-{server.proc.pid}")
    return sorted(paths)


def assert_no_server_path(server, r: requests.Response) -> None:
    """The answer's body names none of the server's folders."""
    body = r.text
    for path in server_paths(server):
        assert path not in body, (path, body[:600])
    for marker in SERVER_PATH_MARKERS:
        assert marker not in body, (marker, body[:600])


def error(server, r: requests.Response, status: int, code: str | None = None) -> dict:
    """r is an error with this status (and code) naming no server path; its error object."""
    assert_no_server_path(server, r)
    return assert_error(r, status, code)


def put(server, key: str, body: bytes = b"x"):
    return server.call("PUT", params={"function": "put", "path": key}, data=body)


def write(server, key: str, body: bytes = b"x"):
    return server.call("POST", params={"function": "write", "path": key}, data=body)


def read(server, key: str, **params):
    return server.get(path=key, **params)


@pytest.mark.parametrize("length", [237, 255, 256, 400, 1000])
@pytest.mark.parametrize("function", ["read", "put", "write", "update", "delete"])
def test_a_component_too_long_for_the_file_system_is_400(server, function, length):
    key = "d/" + "c" * length
    r = server.call("POST" if function in ("put", "write") else "GET",
                    params={"function": function, "path": key}, data=b"x")
    err = error(server, r, 400, "bad_request")
    assert "component" in err["message"], err
    assert not any(server.sor.rglob("c*")), "nothing may reach the system of record"


@pytest.mark.parametrize("function", ["put", "write"])
def test_the_longest_components_and_key_are_stored(server, function):
    component = "k" * 236
    key = "/".join([component] * 5)[:1024]
    assert len(key) == 1024
    ok(server.call("POST", params={"function": function, "path": key}, data=b"long"))
    r = read(server, key, format="raw")
    assert r.status_code == 200 and r.content == b"long", r.text[:300]


@pytest.mark.parametrize("length", [245, 300])
def test_a_frame_stored_under_a_component_too_long_is_400(server, length):
    put_sor(server, "t.parquet", parquet_bytes(pd.DataFrame({"a": [1]})))
    r = server.get(function="sql", query='SELECT * FROM "t.parquet"',
                   into="x" * length + ".parquet")
    err = error(server, r, 400, "bad_request")
    assert "component" in err["message"], err


def test_a_system_of_record_entry_that_is_a_folder_is_404(server):
    (server.sor / "folder.bin").mkdir()
    (server.sor / "folder.bin" / "inner").write_bytes(b"x")
    error(server, read(server, "folder.bin"), 404, "not_found")
    error(server, server.get(function="update", path="folder.bin"), 404, "not_found")


def test_a_key_through_a_file_of_the_system_of_record_is_404(server):
    put_sor(server, "file.bin", b"x")
    error(server, read(server, "file.bin/under.bin"), 404, "not_found")


def test_a_fifo_in_the_system_of_record_is_404_and_never_blocks(server):
    os.mkfifo(server.sor / "pipe.bin")
    error(server, read(server, "pipe.bin"), 404, "not_found")


def test_a_symlink_loop_in_the_system_of_record_names_the_key(server):
    os.symlink("loop.bin", server.sor / "loop.bin")
    err = error(server, read(server, "loop.bin"), 502, "sor_error")
    assert "loop.bin" in err["message"], err


def test_a_symlink_out_of_the_system_of_record_is_400(server, tmp_path):
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"secret")
    os.symlink(outside, server.sor / "out.bin")
    err = error(server, read(server, "out.bin"), 400)
    assert "out.bin" in err["message"], err


def test_writes_that_meet_a_folder_or_a_file_in_the_system_of_record_are_409(server):
    (server.sor / "dir.bin").mkdir()
    (server.sor / "dir.bin" / "x").write_bytes(b"x")
    error(server, write(server, "dir.bin"), 409)
    put_sor(server, "plain.bin", b"x")
    error(server, write(server, "plain.bin/under.bin"), 409)


def test_a_put_under_a_value_of_the_disk_tier_is_409(server):
    ok(put(server, "value.bin"))
    err = error(server, put(server, "value.bin/under.bin"), 409)
    assert "value.bin" in err["message"], err


def test_a_deleted_system_of_record_root_answers_without_naming_it(server):
    put_sor(server, "gone.bin", b"x")
    shutil.rmtree(server.sor)
    error(server, read(server, "gone.bin"), 404, "not_found")
    r = write(server, "new/gone.bin")
    assert r.status_code >= 400, r.text
    assert_no_server_path(server, r)
    r = server.get(function="list")
    assert_no_server_path(server, r)
    server.sor.mkdir()  # back, so the server stops as usual


def test_a_frame_that_does_not_decode_names_the_key(server):
    put_sor(server, "broken.parquet", b"PAR1 this is no parquet file PAR1")
    err = error(server, read(server, "broken.parquet"), 422)
    assert "broken.parquet" in err["message"], err
    put_sor(server, "broken.csv.gz", b"\x1f\x8b not gzip at all")
    error(server, read(server, "broken.csv.gz", type="frame"), 422)


def test_a_publication_whose_folder_is_gone_names_the_key(server):
    put_sor(server, "m.parquet", parquet_bytes(pd.DataFrame({"a": [1, 2, 3]})))
    ok(read(server, "m.parquet"))
    folder = pathlib.Path(f"/dev/shm/aside-{server.proc.pid}")
    if not folder.is_dir():
        pytest.skip("the server has no private shared-memory folder here")
    shutil.rmtree(folder)
    try:
        r = server.get(function="map", path="m.parquet")
        assert r.status_code >= 400, r.text
        assert_no_server_path(server, r)
    finally:
        folder.mkdir(mode=0o700)
