"""Frames published in shared memory (function=map) and values kept in the cache only (put).

A published frame is an Arrow IPC file other processes map without a copy; it counts in the
memory budget once (the cache then reads the same pages), and its name goes when the frame
leaves memory, changes or is deleted, while mappings taken before stay readable."""
from __future__ import annotations

import io
import os
import pwd
import stat

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet  # noqa: F401  (pa.parquet)

from helpers import (assert_error, assert_nothing_cached, disk_values, parquet_bytes, put_sor,
                     telemetry)

ROWS = 40_000


def frame(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.integers(0, 1000, ROWS), "y": rng.random(ROWS),
                         "s": rng.choice(["red", "green", "blue"], ROWS),
                         "t": pd.date_range("2024-01-01", periods=ROWS, freq="s", tz="UTC")})


def map_value(server, key: str, **params) -> dict:
    r = server.get(function="map", path=key, **params)
    assert r.status_code == 200, r.text
    return r.json()["return"]["value"]


def mapped(path: str) -> pd.DataFrame:
    return pa.ipc.open_file(pa.memory_map(path, "r")).read_all().to_pandas()


def test_map_publishes_a_file_other_processes_read_as_the_frame(server):
    put_sor(server, "a.parquet", parquet_bytes(frame(1)))
    v = map_value(server, "a.parquet")
    assert v["format"] == "arrow-file" and v["rows"] == ROWS
    assert [c["name"] for c in v["columns"]] == ["x", "y", "s", "t"]
    assert v["bytes"] == os.stat(v["path"]).st_size
    pd.testing.assert_frame_equal(mapped(v["path"]), pd.read_parquet(server.sor / "a.parquet"))
    folder = os.path.dirname(v["path"])
    # private; a server that runs as root gives it to its functions' group (nogroup) to open
    # frames by name, and nobody else
    mode, gid = stat.S_IMODE(os.stat(folder).st_mode), os.stat(folder).st_gid
    assert (mode, gid) in ((0o700, os.getgid()), (0o2710, pwd.getpwnam("nobody").pw_gid))
    again = map_value(server, "a.parquet")
    assert again["path"] == v["path"] and again["generation"] == v["generation"]
    shm = telemetry(server)["shm"]
    assert (shm["publications"], shm["maps"], shm["bytes"]) == (1, 2, v["bytes"])


def test_a_published_frame_is_held_once(server):
    put_sor(server, "a.parquet", parquet_bytes(frame(2)))
    server.get(function="info", path="a.parquet")
    heap = telemetry(server)["memory"]["used_bytes"]
    v = map_value(server, "a.parquet")
    used = telemetry(server)["memory"]["used_bytes"]
    # the file, plus descriptors: not the file plus the heap copy
    assert v["bytes"] <= used < v["bytes"] + heap // 4
    # and every path still answers from it
    r = server.get(function="sql", query='SELECT sum(x) AS s FROM "a.parquet"')
    assert r.json()["return"]["value"][0]["s"] == int(frame(2)["x"].sum())
    r = server.get(function="read", path="a.parquet", **{"return": "data", "format": "arrow"})
    pd.testing.assert_frame_equal(pa.ipc.open_stream(r.content).read_pandas(),
                                  pd.read_parquet(server.sor / "a.parquet"))


def test_a_mapping_outlives_delete_update_and_eviction(make_server):
    probe = make_server()
    put_sor(probe, "a.parquet", parquet_bytes(frame(3)))
    one = map_value(probe, "a.parquet")["bytes"]
    probe.stop()
    server = make_server(env={"ASIDE_MEMORY_LIMIT": str(one * 5 // 2)})
    put_sor(server, "a.parquet", parquet_bytes(frame(3)))
    put_sor(server, "b.parquet", parquet_bytes(frame(4)))
    put_sor(server, "c.parquet", parquet_bytes(frame(5)))
    views = {}
    # deleted
    v = map_value(server, "a.parquet")
    views["deleted"] = (pa.memory_map(v["path"]), frame(3))
    assert server.get(function="delete", path="a.parquet").status_code == 200
    assert not os.path.exists(v["path"])
    # updated: a new generation, a new name
    v = map_value(server, "b.parquet")
    views["updated"] = (pa.memory_map(v["path"]), frame(4))
    put_sor(server, "b.parquet", parquet_bytes(frame(6)))
    assert server.get(function="update", path="b.parquet").status_code == 200
    assert not os.path.exists(v["path"])
    new = map_value(server, "b.parquet")
    assert new["generation"] > v["generation"]
    pd.testing.assert_frame_equal(mapped(new["path"]), pd.read_parquet(server.sor / "b.parquet"))
    # evicted: the others push it out of memory
    v = map_value(server, "c.parquet")
    views["evicted"] = (pa.memory_map(v["path"]), frame(5))
    for key in ("a.parquet", "b.parquet"):
        put_sor(server, key, parquet_bytes(frame(7)))
        server.get(function="update", path=key)
        map_value(server, key)
    assert telemetry(server)["evictions"]["memory"] >= 1
    assert not os.path.exists(v["path"])
    for why, (mm, want) in views.items():
        got = pa.ipc.open_file(mm).read_all().to_pandas()
        pd.testing.assert_frame_equal(got, want, obj=why)


def test_map_of_a_json_value_is_400_and_off_is_409(make_server):
    server = make_server()
    put_sor(server, "doc.json", '{"a": 1}')
    assert_error(server.get(function="map", path="doc.json"), 400, "not_a_frame")
    off = make_server(env={"ASIDE_SHM_DIR": "off"})
    put_sor(off, "a.parquet", parquet_bytes(frame(8)))
    assert_error(off.get(function="map", path="a.parquet"), 409)


def test_the_private_folder_goes_with_the_server(make_server):
    server = make_server()
    put_sor(server, "a.parquet", parquet_bytes(frame(9)))
    folder = os.path.dirname(map_value(server, "a.parquet")["path"])
    server.stop()
    assert not os.path.exists(folder)


def test_put_keeps_values_in_the_cache_without_the_sor(server):
    df = frame(10)
    sink = io.BytesIO()
    with pa.ipc.new_file(sink, pa.Schema.from_pandas(df)) as w:
        w.write_table(pa.Table.from_pandas(df))
    r = server.call("POST", params={"function": "put", "path": "mine", "type": "frame"},
                    data=sink.getvalue())
    assert r.status_code == 200, r.text
    assert r.json()["return"]["value"]["type"] == "frame"
    r = server.call("PUT", params={"function": "put", "path": "doc.json"}, data=b'{"k": [1, 2]}')
    assert r.status_code == 200, r.text
    assert list(server.sor.iterdir()) == []
    assert sorted(disk_values(server)) == ["doc.json", "mine"]
    got = server.get(function="read", path="mine", **{"return": "data", "format": "arrow"})
    pd.testing.assert_frame_equal(pa.ipc.open_stream(got.content).read_pandas(), df)
    assert server.get(path="doc.json", **{"return": "data"}).json()["return"]["value"] == \
        {"k": [1, 2]}
    server.restart()
    info = server.get(function="info", path="mine").json()["return"]["value"]
    assert info["entries"] == ROWS


def test_put_of_a_bad_value_is_refused_and_keeps_nothing(server):
    r = server.call("POST", params={"function": "put", "path": "doc.json"}, data=b'{"k": ')
    assert_error(r, 422)
    r = server.call("POST", params={"function": "put", "path": "t.parquet"}, data=b"PAR1 nope")
    assert_error(r, 422)
    assert_nothing_cached(server)


def test_a_configured_folder_is_shared_and_kept(make_server, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o750)
    server = make_server(env={"ASIDE_SHM_DIR": str(shared)})
    put_sor(server, "a.parquet", parquet_bytes(frame(11)))
    v = map_value(server, "a.parquet")
    assert os.path.dirname(v["path"]) == str(shared)
    # immutable, and readable by the folder's group
    assert stat.S_IMODE(os.stat(v["path"]).st_mode) == 0o440
    assert f".{server.proc.pid}." in os.path.basename(v["path"])
    pd.testing.assert_frame_equal(mapped(v["path"]), pd.read_parquet(server.sor / "a.parquet"))
    server.stop()
    assert shared.is_dir() and list(shared.iterdir()) == []


def test_a_killed_servers_folder_is_removed_by_the_next_server(make_server):
    import subprocess
    import sys
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    folder = f"/dev/shm/aside-{gone.pid}"
    os.makedirs(folder, mode=0o700, exist_ok=True)
    with open(os.path.join(folder, "left.arrow"), "wb") as f:
        f.write(b"held shared memory")
    server = make_server()
    assert not os.path.exists(folder)
    assert "left by a server that is gone" in server.log_text()


def test_a_publication_holds_strings_as_large_string_over_the_frames_own_body(server):
    """pandas 3 holds strings as Arrow large_string: a publication carries them so, with the
    int64 offsets after each batch's body, so a pandas 3 reader copies nothing; a parquet
    file's categories stay string (as pyarrow reads them); every value is the frame's."""
    df = frame(4)
    df["s"] = df["s"].where(np.arange(ROWS) % 7 != 0, None)  # strings with nulls
    df["c"] = pd.Categorical(df["s"].fillna("none"))
    put_sor(server, "wide.parquet", parquet_bytes(df))
    v = map_value(server, "wide.parquet")
    table = pa.ipc.open_file(pa.memory_map(v["path"], "r")).read_all()
    assert table.schema.field("s").type == pa.large_string()
    assert table.schema.field("c").type == pa.dictionary(pa.int8(), pa.string())
    table.validate(full=True)
    want = pa.parquet.read_table(server.sor / "wide.parquet")
    assert table.column("s").to_pylist() == want.column("s").to_pylist()
    assert table.column("c").to_pylist() == want.column("c").to_pylist()
    pd.testing.assert_frame_equal(table.to_pandas(), pd.read_parquet(server.sor / "wide.parquet"))
    # the server still answers from the same one copy, and its own Arrow stream keeps the
    # file's width (large_string as pandas 3 writes strings, string as pandas 2 does)
    r = server.get(function="read", path="wide.parquet", **{"return": "data", "format": "arrow"})
    stream = pa.ipc.open_stream(r.content).read_all()
    assert stream.schema.field("s").type == want.schema.field("s").type
    assert stream.column("s").to_pylist() == want.column("s").to_pylist()
