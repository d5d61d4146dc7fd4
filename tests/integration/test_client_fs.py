"""aside:// URLs through fsspec (aside.fs): pandas and fsspec read values through the cache
(cache-aside on a miss) and write them through to the system of record."""
from __future__ import annotations

import json

import fsspec
import pandas as pd
import pytest

import aside
import aside.fs  # noqa: F401  (registers the protocol)
from client_data import SMALL, as_read_back, frame_file, sor_files
from helpers import put_sor, telemetry
from frame_data import parquet_bytes, portable_file, read_expected, sales_frame, typed_parquet

DOC = {"name": "Zoë", "values": [1, 2.5, None], "ok": True}


def options(server) -> dict:
    return {"aside_url": server.base}


def filesystem(server, **kwargs):
    return fsspec.filesystem("aside", url=server.base, skip_instance_cache=True, **kwargs)


def assert_same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(got, want, check_exact=True)


def test_read_parquet_of_an_aside_url_loads_cache_aside_once(server):
    put_sor(server, "k.parquet", typed_parquet(SMALL))
    want = pd.read_parquet(server.sor / "k.parquet")
    assert telemetry(server)["sor_fetches"] == 0
    got = pd.read_parquet("aside://k.parquet", storage_options=options(server))
    assert_same(got, want)
    stats = telemetry(server)
    assert stats["sor_fetches"] == 1 and stats["misses"] >= 1
    assert [e["path"] for e in stats["entries"]] == ["k.parquet"]
    assert_same(pd.read_parquet("aside://k.parquet", storage_options=options(server)), want)
    assert telemetry(server)["sor_fetches"] == 1
    # the cached copy is what is read, even when the file has gone
    (server.sor / "k.parquet").unlink()
    assert_same(pd.read_parquet("aside://k.parquet", storage_options=options(server)), want)


def test_read_csv_of_an_aside_url_equals_read_csv_of_the_file(server):
    put_sor(server, "x.csv", portable_file(SMALL, "csv"))
    got = pd.read_csv("aside://x.csv", storage_options=options(server),
                      float_precision="round_trip")
    assert_same(got, read_expected(server.sor / "x.csv"))
    assert telemetry(server)["sor_fetches"] == 1


def test_fsspec_open_of_a_json_url_reads_the_document(server):
    put_sor(server, "dir/doc.json", json.dumps(DOC, ensure_ascii=False))
    with fsspec.open("aside://dir/doc.json", "rt", aside_url=server.base,
                     encoding="utf-8") as f:
        assert json.load(f) == DOC
    with fsspec.open("aside://dir/doc.json", "rb", aside_url=server.base) as f:
        assert f.read() == (server.sor / "dir/doc.json").read_bytes()
    assert telemetry(server)["sor_fetches"] == 1


def test_to_parquet_of_an_aside_url_writes_the_sor_and_the_cache(server):
    df = sales_frame(80)
    df.to_parquet("aside://out/new.parquet", storage_options=options(server))
    assert list(sor_files(server)) == ["out/new.parquet"]
    want = as_read_back(df)
    assert_same(pd.read_parquet(server.sor / "out/new.parquet"), want)
    with aside.connect(server.base) as client:
        assert client.keys() == ["out/new.parquet"]
        assert_same(client.read("out/new.parquet"), want)
    assert telemetry(server)["sor_fetches"] == 0
    assert_same(pd.read_parquet("aside://out/new.parquet", storage_options=options(server)),
                want)


def test_to_csv_of_an_aside_url_writes_the_csv_to_the_sor(server):
    df = sales_frame(30)
    df.to_csv("aside://out/t.csv", index=False, storage_options=options(server))
    assert sor_files(server) == {"out/t.csv": df.to_csv(index=False).encode()}
    with aside.connect(server.base) as client:
        assert_same(client.read("out/t.csv"), read_expected(server.sor / "out/t.csv"))


def test_ls_lists_files_and_folders_directly_under_a_path(server):
    files = {"top.json": b"{}", "data/a.parquet": typed_parquet(SMALL), "data/b.csv": b"a\n1\n",
             "data/deep/c.bin": b"ccc", "data/deeper/more/d.bin": b"d", "database.bin": b"db"}
    for rel, body in files.items():
        put_sor(server, rel, body)
    fs = filesystem(server)
    root = fs.ls("", detail=True)
    assert [e["name"] for e in root] == ["data", "database.bin", "top.json"]
    assert {e["name"]: e["type"] for e in root} == {"data": "directory", "database.bin": "file",
                                                   "top.json": "file"}
    data = fs.ls("aside://data", detail=True)
    assert [e["name"] for e in data] == ["data/a.parquet", "data/b.csv", "data/deep",
                                         "data/deeper"]
    for entry in data:
        if entry["type"] == "file":
            assert entry["size"] == len(files[entry["name"]])
            assert entry["last_modified"]
        else:
            assert entry["size"] == 0
    assert fs.ls("data/deep", detail=False) == ["data/deep/c.bin"]
    assert fs.ls("data/a.parquet", detail=False) == ["data/a.parquet"]
    with pytest.raises(FileNotFoundError):
        fs.ls("nowhere")
    assert telemetry(server)["keys"] == 0  # listing caches nothing


def test_info_and_exists_of_files_folders_and_missing_keys(server):
    put_sor(server, "data/a.parquet", typed_parquet(SMALL))
    put_sor(server, "data/doc.json", json.dumps(DOC))
    put_sor(server, "data/raw.bin", b"\x00raw")
    fs = filesystem(server)
    info = fs.info("aside://data/a.parquet")
    size = (server.sor / "data/a.parquet").stat().st_size
    assert info == {"name": "data/a.parquet", "size": size, "type": "file",
                    "value_type": "frame"}
    assert fs.info("data/doc.json")["value_type"] == "json"
    assert fs.info("data/raw.bin")["value_type"] == "bytes"
    assert fs.info("data/raw.bin")["size"] == 4
    assert fs.info("data") == {"name": "data", "size": 0, "type": "directory"}
    assert fs.info("")["type"] == "directory"
    with pytest.raises(FileNotFoundError):
        fs.info("data/missing.json")
    assert fs.exists("data/a.parquet") and fs.exists("data") and fs.exists("aside://data/")
    assert not fs.exists("data/missing.json") and not fs.exists("dat")
    # info loads a value on a miss, as a read does
    assert sorted(e["path"] for e in telemetry(server)["entries"]) == \
        ["data/a.parquet", "data/doc.json", "data/raw.bin"]


def test_a_missing_key_is_file_not_found(server):
    fs = filesystem(server)
    with pytest.raises(FileNotFoundError):
        fs.open("missing.json", "rb")
    with pytest.raises(FileNotFoundError):
        fs.cat_file("missing.bin")
    with pytest.raises(FileNotFoundError):
        pd.read_parquet("aside://missing.parquet", storage_options=options(server))


def test_cat_pipe_and_binary_writes(server):
    fs = filesystem(server)
    body = bytes(range(200))
    fs.pipe_file("aside://p/blob.bin", body)
    assert sor_files(server) == {"p/blob.bin": body}
    assert fs.cat_file("p/blob.bin") == body
    assert fs.cat_file("p/blob.bin", start=10, end=20) == body[10:20]
    assert fs.cat("p/blob.bin") == body
    with fs.open("p/written.json", "wb") as f:
        f.write(json.dumps(DOC).encode())
    assert json.loads((server.sor / "p/written.json").read_bytes()) == DOC
    assert fs.client.read("p/written.json") == DOC


def test_a_binary_write_whose_block_raises_writes_nothing(server):
    fs = filesystem(server)
    with pytest.raises(RuntimeError):
        with fs.open("half.parquet", "wb") as f:
            f.write(frame_file("parquet")[:100])
            raise RuntimeError("stop")
    assert sor_files(server) == {}
    assert fs.client.keys() == []


def test_an_invalid_json_write_is_refused_and_writes_nothing(server):
    fs = filesystem(server)
    with pytest.raises(aside.InvalidValue):
        fs.pipe_file("bad.json", b'{"open": ')
    assert sor_files(server) == {}


def test_rm_is_refused_and_the_sor_keeps_the_file(server):
    put_sor(server, "keep.json", json.dumps(DOC))
    fs = filesystem(server)
    assert json.loads(fs.cat_file("keep.json")) == DOC
    with pytest.raises(NotImplementedError):
        fs.rm("keep.json")
    with pytest.raises(NotImplementedError):
        fs.rm_file("keep.json")
    assert (server.sor / "keep.json").exists()
    assert fs.client.delete("keep.json") == {"result": "success"}
    assert (server.sor / "keep.json").exists()


def test_a_token_is_sent_by_the_file_system(make_server):
    token = "fs-test-token"
    server = make_server(env={"ASIDE_TOKEN": token})
    put_sor(server, "k.parquet", parquet_bytes(sales_frame(20)))
    with pytest.raises(aside.Unauthorized):
        filesystem(server).exists("k.parquet")
    fs = filesystem(server, token=token)
    assert fs.exists("k.parquet")
    got = pd.read_parquet("aside://k.parquet",
                          storage_options={"aside_url": server.base, "token": token})
    assert_same(got, pd.read_parquet(server.sor / "k.parquet"))
