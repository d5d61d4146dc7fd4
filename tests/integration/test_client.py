"""The Python client (`aside` package) against a real server: every method over every value type
(frames in parquet, CSV and feather; JSON objects and arrays; bytes), both transports of a
frame, frames that outlive their key, and one typed exception per error the server answers.

Expected values are what pandas or pyarrow make of the same bytes the server holds."""
from __future__ import annotations

import io
import json
import os

import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

import aside
from aside.client import PANDAS_MAJOR
from client_data import (FRAME_KEYS, SMALL, as_read_back, closed_port, describe_as_dict,
                         expected_frame, frame_file, read_bytes_as, sor_files)
from helpers import API, put_sor, telemetry
from frame_data import (assert_describe_matches, assert_info_matches, parquet_bytes,
                        read_expected, sales_frame, typed_parquet)

FORMATS = list(FRAME_KEYS)
DOC = {"name": "Zoë", "n": [1, 2.5, None, True], "nested": {"k": "€", "empty": []}}
ARRAY = [{"a": 1}, [2, "deux"], None, 3.25, "x"]
BLOB = bytes(range(256)) * 3
SALES = "sales.parquet"


@pytest.fixture
def client(server):
    with aside.connect(server.base) as c:
        yield c


def put_frame(server, fmt: str) -> tuple[str, pd.DataFrame]:
    key = FRAME_KEYS[fmt]
    put_sor(server, key, frame_file(fmt))
    return key, expected_frame(server, key)


def put_values(server) -> None:
    put_sor(server, "doc.json", json.dumps(DOC, ensure_ascii=False))
    put_sor(server, "array.json", json.dumps(ARRAY))
    put_sor(server, "blob.bin", BLOB)


def shm(client) -> dict:
    return client.stats()["shm"]


def assert_same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(got, want, check_exact=True)


# -- connecting -------------------------------------------------------------------------------

def test_connect_adds_the_api_path_and_keeps_a_given_path(server):
    assert aside.connect(server.base).url == server.base + API
    assert aside.connect(server.base + "/").url == server.base + API
    assert aside.connect(server.base.replace("http://", "")).url == server.base + API
    with aside.connect(server.base + "/cache") as c:
        assert c.url == server.base + "/cache"
        assert c.keys() == []


def test_connect_without_a_url_takes_aside_url(server, monkeypatch):
    put_values(server)
    monkeypatch.setenv("ASIDE_URL", server.base)
    with aside.connect() as c:
        assert c.url == server.base + API
        assert c.read("doc.json") == DOC


def test_the_readme_pandas_example_works_as_written(server):
    put_sor(server, "file1.snappy.parquet", typed_parquet(SMALL))
    put_sor(server, "file2.json", json.dumps({"k": [1, 2, 3]}))
    df = aside.connect(server.base).read("file1.snappy.parquet")
    assert_same(df, pd.read_parquet(server.sor / "file1.snappy.parquet"))
    client = aside.connect(server.base)
    assert client.call("read", path="file2.json", **{"return": "data"}) == {"k": [1, 2, 3]}
    assert client.call("shape", path="file1.snappy.parquet") == list(df.shape)
    with pytest.raises(aside.NotFound) as caught:
        client.read("missing.json")
    e = caught.value
    assert (e.status, e.code) == (404, "not_found") and "missing.json" in e.message


# -- read -------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
def test_read_of_a_frame_equals_pandas_reading_the_file(server, client, fmt):
    key, want = put_frame(server, fmt)
    got = client.read(key)
    assert isinstance(got, pd.DataFrame)
    assert_same(got, want)
    assert telemetry(server)["sor_fetches"] == 1
    assert client.keys() == [key]


def test_read_of_json_gives_the_document_and_of_other_files_the_bytes(server, client):
    put_values(server)
    assert client.read("doc.json") == DOC
    assert client.read("array.json") == ARRAY
    got = client.read("blob.bin")
    assert isinstance(got, bytes) and got == BLOB
    assert sorted(client.keys()) == ["array.json", "blob.bin", "doc.json"]


def test_read_with_a_type_reads_the_key_as_that_type(server, client):
    records = sales_frame(12).to_json(orient="records")
    put_sor(server, "records.json", records)
    put_sor(server, "t.parquet", typed_parquet(SMALL))
    assert client.read("records.json") == json.loads(records)
    as_frame = client.read("records.json", type="frame")
    assert_same(as_frame, read_expected(server.sor / "records.json"))
    assert client.read("t.parquet", type="bytes") == (server.sor / "t.parquet").read_bytes()


@pytest.mark.parametrize("fmt", FORMATS)
def test_read_table_is_the_table_pyarrow_reads(server, client, fmt):
    key, want = put_frame(server, fmt)
    table = client.read_table(key)
    assert isinstance(table, pa.Table)
    if fmt == "parquet":
        assert table.equals(pq.read_table(server.sor / key))
    elif fmt == "feather":
        assert table.equals(feather.read_table(server.sor / key))
    assert_same(table.to_pandas(), want)


def test_a_value_that_is_not_a_frame_is_refused_by_frame_methods(server, client):
    put_values(server)
    for method in (client.read_table, client.mmap, client.info, client.head, client.tail,
                   client.select, client.describe):
        with pytest.raises(aside.BadRequest) as caught:
            method("doc.json")
        e = caught.value
        assert (e.status, e.code) == (400, "not_a_frame"), (method, e)
        assert e.message and str(e) == f"400 not_a_frame: {e.message}"


# -- transports -------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
def test_a_shm_read_maps_the_published_frame_and_equals_the_http_read(server, client, fmt):
    key, want = put_frame(server, fmt)
    assert client.last_transport is None
    before = shm(client)
    got_shm = client.read(key, transport="shm")
    after = shm(client)
    assert client.last_transport == "shm"
    assert after["maps"] == before["maps"] + 1
    assert after["publications"] == before["publications"] + 1
    assert after["bytes"] > 0
    got_http = client.read(key, transport="http")
    assert client.last_transport == "http"
    assert shm(client)["maps"] == after["maps"]
    assert_same(got_shm, got_http)
    assert_same(got_shm, want)
    # a second shm read maps the same publication again
    client.read_table(key, transport="shm")
    again = shm(client)
    assert (again["maps"], again["publications"]) == (after["maps"] + 1, after["publications"])


def test_auto_takes_shared_memory_from_a_server_on_this_host(server, client):
    key, want = put_frame(server, "parquet")
    maps = shm(client)["maps"]
    assert_same(client.read(key), want)
    assert client.last_transport == "shm"
    assert client.read_table(key, transport="auto").equals(pq.read_table(server.sor / key))
    assert client.last_transport == "shm"
    assert shm(client)["maps"] == maps + 2


@pytest.mark.parametrize("transport", ["shm", "http"])
@pytest.mark.parametrize("fmt", ["parquet", "feather"])
def test_dtype_backend_pyarrow_gives_arrow_dtypes_with_the_same_values(server, client, fmt,
                                                                       transport):
    key, want = put_frame(server, fmt)
    got = client.read(key, transport=transport, dtype_backend="pyarrow")
    assert client.last_transport == transport
    assert all(isinstance(t, pd.ArrowDtype) for t in got.dtypes), got.dtypes
    reader = pd.read_parquet if fmt == "parquet" else pd.read_feather
    assert_same(got, reader(server.sor / key, dtype_backend="pyarrow"))
    # the same values as the numpy-backed frame
    numpy_backed = client.read(key, transport=transport)
    assert_same(numpy_backed, want)
    for col in want.columns:
        assert pa.array(got[col]).to_pylist() == pa.Array.from_pandas(want[col]).to_pylist(), col


def widths_file(fmt: str, large: bool) -> bytes:
    """A file whose strings, bytes and categories are large_string, large_binary (as pandas 3
    writes them), or string and binary (as pandas 2 does); int8 codes, as pandas gives."""
    string = pa.large_string() if large else pa.string()
    table = pa.table({
        "s": pa.array(["a", None, "ccc", "dd", ""], string),
        "b": pa.array([b"x", b"", None, b"yz", b"\x00"],
                      pa.large_binary() if large else pa.binary()),
        "c": pa.DictionaryArray.from_arrays(pa.array([0, 1, None, 0, 2], pa.int8()),
                                            pa.array(["u", "v", "w"], string)),
        "x": pa.array([1.5, 2.0, None, 4.0, 5.0]),
    })
    out = io.BytesIO()
    if fmt == "parquet":
        pq.write_table(table, out)
    else:
        feather.write_feather(table, out)
    return out.getvalue()


@pytest.mark.parametrize("transport", ["shm", "http"])
@pytest.mark.parametrize("large", [True, False], ids=["large_string", "string"])
@pytest.mark.parametrize("fmt", ["parquet", "feather"])
def test_read_table_keeps_each_columns_string_width_as_the_file_has_it(server, client, fmt,
                                                                       large, transport):
    key = f"widths.{fmt}"
    put_sor(server, key, widths_file(fmt, large))
    want = (pq.read_table if fmt == "parquet" else feather.read_table)(server.sor / key)
    got = client.read_table(key, transport=transport)
    assert client.last_transport == transport
    assert got.schema.types == want.schema.types
    assert got.equals(want)
    reader = pd.read_parquet if fmt == "parquet" else pd.read_feather
    assert_same(client.read(key, transport=transport, dtype_backend="pyarrow"),
                reader(server.sor / key, dtype_backend="pyarrow"))
    assert_same(client.read(key, transport=transport), reader(server.sor / key))
    assert_info_matches(client.info(key), reader(server.sor / key))


def test_frame_methods_take_dtype_backend_pyarrow(server, client):
    key, want = put_frame(server, "parquet")
    for got, rows in ((client.head(key, 7, dtype_backend="pyarrow"), want.head(7)),
                      (client.tail(key, 4, dtype_backend="pyarrow"), want.tail(4)),
                      (client.select(key, columns=["i64", "text"], dtype_backend="pyarrow"),
                       want[["i64", "text"]])):
        assert all(isinstance(t, pd.ArrowDtype) for t in got.dtypes), got.dtypes
        expect = pa.Table.from_pandas(rows.reset_index(drop=True))
        assert_same(got, expect.to_pandas(types_mapper=pd.ArrowDtype))


def test_without_shared_memory_auto_falls_back_to_http_and_shm_is_refused(make_server):
    server = make_server(env={"ASIDE_SHM_DIR": "off"})
    key, want = put_frame(server, "parquet")
    with aside.connect(server.base) as client:
        assert_same(client.read(key), want)
        assert client.last_transport == "http"
        assert client.read_table(key).equals(pq.read_table(server.sor / key))
        assert client.last_transport == "http"
        with pytest.raises(aside.Conflict) as caught:
            client.read(key, transport="shm")
        assert caught.value.status == 409 and caught.value.code == "conflict"
        assert caught.value.message
        with pytest.raises(aside.Conflict):
            client.mmap(key)
        assert shm(client)["maps"] == 0


def test_bad_transport_or_dtype_backend_is_refused_before_any_request():
    # nothing listens there: a request would be ConnectionFailed
    with aside.connect(f"http://127.0.0.1:{closed_port()}", timeout=5) as client:
        with pytest.raises(ValueError):
            client.read("k.parquet", transport="carrier-pigeon")
        with pytest.raises(ValueError):
            client.read_table("k.parquet", transport="SHM")
        with pytest.raises(ValueError):
            client.read("k.parquet", dtype_backend="polars")
        with pytest.raises(ValueError):
            client.head("k.parquet", dtype_backend="arrow")
        with pytest.raises(ValueError):
            client.put("doc.json", {"x": float("nan")})
        with pytest.raises(TypeError):
            client.put("doc.json", object())


# -- pandas' own strings on the shared pages --------------------------------------------------

PANDAS_MAJOR = int(pd.__version__.split(".")[0])


def mapped_ranges(path: str) -> list[tuple[int, int]]:
    """Where this process maps path (/proc/self/maps)."""
    ranges = []
    with open("/proc/self/maps", encoding="utf-8") as maps:
        for line in maps:
            parts = line.split(None, 5)
            if len(parts) == 6 and parts[5].strip() == path:
                lo, hi = parts[0].split("-")
                ranges.append((int(lo, 16), int(hi, 16)))
    return ranges


def inside(address: int, size: int, ranges: list[tuple[int, int]]) -> bool:
    return any(lo <= address and address + size <= hi for lo, hi in ranges)


@pytest.mark.skipif(PANDAS_MAJOR < 3, reason="pandas 3's str dtype")
def test_a_shm_read_under_pandas_3_gives_str_columns_on_the_mapping(server, client):
    key, want = put_frame(server, "parquet")
    got = client.read(key, transport="shm")
    assert client.last_transport == "shm"
    assert_same(got, want)
    ranges = mapped_ranges(client.mmap(key)["path"])
    assert ranges
    text = got["text"].array
    assert got["text"].dtype == "str" and got["text"].dtype.storage == "pyarrow"
    assert type(text).__name__ == "ArrowStringArray"
    arrow = text.__arrow_array__()
    assert arrow.type == pa.large_string()
    buffers = [b for chunk in arrow.chunks for b in chunk.buffers() if b is not None and b.size]
    assert buffers and all(inside(b.address, b.size, ranges) for b in buffers)


@pytest.mark.parametrize("transport", ["shm", "http"])
def test_changing_a_frame_read_from_the_server_changes_only_the_programs_copy(server, client,
                                                                             transport):
    key, want = put_frame(server, "parquet")
    got = client.read(key, transport=transport)
    got.loc[0, "i64"] = -1
    got.iloc[1, got.columns.get_loc("f64")] = 0.5
    got.loc[2, "text"] = "changed"
    got["f32"] += 1
    got.sort_values("i64", inplace=True)
    assert got.loc[0, "i64"] == -1 and got.loc[2, "text"] == "changed"
    assert_same(client.read(key, transport=transport), want)


def test_frame_requests_say_which_pandas_the_client_runs(server, client):
    key, _ = put_frame(server, "parquet")
    sent = []
    client._session.hooks["response"].append(lambda r, *a, **k: sent.append(r.request.url))
    client.read(key)
    client.read(key, transport="http")
    client.info(key)
    client.describe(key)
    client.head(key, 2)
    client.select(key, columns=["i64"])
    functions = {u.split("function=")[1].split("&")[0]: u for u in sent}
    assert set(functions) == {"read", "map", "info", "describe", "head", "select"}
    for function, url in functions.items():
        assert f"pandas={PANDAS_MAJOR}" in url, (function, url)


# -- a table read through shared memory outlives its key --------------------------------------

def big_frame(seed: int, rows: int = 40_000) -> pd.DataFrame:
    df = sales_frame(rows, seed)
    df["t"] = pd.date_range("2024-01-01", periods=rows, freq="s", tz="UTC")
    return df


def test_a_table_read_through_shm_outlives_delete_update_and_eviction(make_server):
    originals = {key: parquet_bytes(big_frame(seed)) for seed, key in
                 enumerate(["deleted.parquet", "updated.parquet", "evicted.parquet"])}
    probe = make_server()
    put_sor(probe, "deleted.parquet", originals["deleted.parquet"])
    with aside.connect(probe.base) as c:
        one = c.mmap("deleted.parquet")["bytes"]
    probe.stop()
    server = make_server(env={"ASIDE_MEMORY_LIMIT": str(one * 5 // 2)})
    for key, body in originals.items():
        put_sor(server, key, body)
    held = {}
    with aside.connect(server.base) as client:
        def hold(key: str) -> str:
            table = client.read_table(key, transport="shm")
            assert client.last_transport == "shm"
            frame = client.read(key, transport="shm", dtype_backend="pyarrow")
            held[key] = (table, frame)
            return client.mmap(key)["path"]

        path = hold("deleted.parquet")
        assert client.delete("deleted.parquet") == {"result": "success"}
        assert not os.path.exists(path)

        path = hold("updated.parquet")
        put_sor(server, "updated.parquet", parquet_bytes(big_frame(10)))
        assert client.update("updated.parquet")["revalidated"] is False
        assert not os.path.exists(path)
        assert_same(client.read("updated.parquet", transport="shm"),
                    pd.read_parquet(server.sor / "updated.parquet"))

        path = hold("evicted.parquet")
        others = [f"other{k}.parquet" for k in range(6)]
        for k, key in enumerate(others):
            put_sor(server, key, parquet_bytes(big_frame(20 + k)))
            client.read_table(key, transport="shm")
            if not os.path.exists(path):
                break
        assert not os.path.exists(path), "loading other frames did not evict it from memory"
        assert client.stats()["evictions"]["memory"] >= 1

    for key, (table, frame) in held.items():
        want = pq.read_table(io.BytesIO(originals[key]))
        assert table.equals(want), key
        assert_same(table.to_pandas(), pd.read_parquet(io.BytesIO(originals[key])))
        assert_same(frame, pd.read_parquet(io.BytesIO(originals[key]), dtype_backend="pyarrow"))


# -- frames computed by the server ------------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
def test_info_equals_pandas_facts_and_text(server, client, fmt):
    key, want = put_frame(server, fmt)
    assert_info_matches(client.info(key), want)


@pytest.mark.parametrize("include", [None, "all"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_describe_equals_pandas_describe(server, client, fmt, include):
    key, want = put_frame(server, fmt)
    got = client.describe(key, include=include)
    assert isinstance(got, pd.DataFrame)
    expect = want.describe(include=include)
    assert list(got.columns) == list(expect.columns)
    assert sorted(got.index) == sorted(expect.index)
    assert_describe_matches(describe_as_dict(got), want, include=include)


@pytest.mark.parametrize("fmt", FORMATS)
def test_head_and_tail_equal_pandas_slices(server, client, fmt):
    key, want = put_frame(server, fmt)
    assert_same(client.head(key), want.head().reset_index(drop=True))
    assert_same(client.tail(key), want.tail().reset_index(drop=True))
    for n in (1, 9, SMALL + 3, -7):
        assert_same(client.head(key, n), want.head(n).reset_index(drop=True))
        assert_same(client.tail(key, n), want.tail(n).reset_index(drop=True))
    # no rows: the columns and their dtypes (an Arrow stream without batches carries no
    # dictionary, so a categorical arrives without its categories, as pyarrow writes it)
    for empty in (client.head(key, 0), client.tail(key, 0)):
        assert len(empty) == 0 and list(empty.columns) == list(want.columns)
        assert [str(t) for t in empty.dtypes] == [str(t) for t in want.dtypes]


@pytest.mark.parametrize("fmt", FORMATS)
def test_select_equals_the_pandas_selection(server, client, fmt):
    key, want = put_frame(server, fmt)
    got = client.select(key, columns=["i64", "text", "f64"], where="i8 > 0 AND flag = false",
                        order_by="i64 DESC", limit=6, offset=2)
    expect = (want.loc[(want.i8 > 0) & ~want.flag, ["i64", "text", "f64"]]
              .sort_values("i64", ascending=False).iloc[2:8].reset_index(drop=True))
    assert len(expect) == 6
    assert_same(got, expect)
    assert_same(client.select(key, columns="u16"), want[["u16"]])
    assert_same(client.select(key), want)


def test_sql_equals_the_pandas_computation(server, client):
    put_sor(server, SALES, parquet_bytes(sales_frame()))
    sales = read_expected(server.sor / SALES)
    got = client.sql(f'SELECT g, sum(q) AS total_q, count(*) AS n, avg(x) AS mean_x '
                     f'FROM "{SALES}" GROUP BY g ORDER BY g')
    want = (sales.groupby("g", as_index=False)
            .agg(total_q=("q", "sum"), n=("q", "size"), mean_x=("x", "mean"))
            .sort_values("g").reset_index(drop=True))
    assert_same(got[["g", "total_q", "n"]], want[["g", "total_q", "n"]])
    pd.testing.assert_series_equal(got["mean_x"], want["mean_x"], rtol=1e-9)


@pytest.mark.parametrize("fmt", FORMATS)
def test_sql_reads_every_frame_format(server, client, fmt):
    key, want = put_frame(server, fmt)
    got = client.sql(f'SELECT i64, text FROM "{key}" WHERE i8 < 0 ORDER BY i64')
    expect = want.loc[want.i8 < 0, ["i64", "text"]].sort_values("i64").reset_index(drop=True)
    assert_same(got, expect)


def test_sql_into_keeps_the_result_as_a_cached_frame(server, client):
    put_sor(server, SALES, parquet_bytes(sales_frame()))
    sales = read_expected(server.sor / SALES)
    query = f'SELECT id, g, x FROM "{SALES}" WHERE q >= 25 ORDER BY id'
    want = sales.loc[sales.q >= 25, ["id", "g", "x"]].reset_index(drop=True)
    answer = client.sql(query, into="big_q.parquet")
    assert answer == {"result": "success", "path": "big_q.parquet", "rows": len(want),
                      "columns": 3}
    assert sorted(client.keys()) == ["big_q.parquet", SALES]
    assert_same(client.read("big_q.parquet"), want)
    assert_same(client.sql(query), want)
    assert sorted(sor_files(server)) == [SALES]


# -- put: the cache only ----------------------------------------------------------------------

@pytest.mark.parametrize("key", ["mine.parquet", "mine.csv", "mine.feather", "mine"])
def test_put_of_a_dataframe_caches_it_without_touching_the_sor(server, client, key):
    put_sor(server, "untouched.txt", b"the sor before")
    before = sor_files(server)
    df = sales_frame(60)
    body, _ = aside.serialize(key, df)
    answer = client.put(key, df)
    assert answer["result"] == "success" and answer["type"] == "frame"
    assert answer["bytes"] == len(body)
    assert sor_files(server) == before
    assert key in client.keys()
    got = client.read(key)
    assert client.last_transport == "shm"
    assert_same(got, read_bytes_as(key, body))
    assert_same(client.read(key, transport="http"), got)
    assert_info_matches(client.info(key), got)
    assert telemetry(server)["sor_fetches"] == 0


@pytest.mark.parametrize("key, value", [("mine.json", DOC), ("list.json", ARRAY),
                                        ("typed-by-parameter", DOC)])
def test_put_of_a_dict_or_list_caches_json(server, client, key, value):
    before = sor_files(server)
    answer = client.put(key, value)
    assert answer["result"] == "success" and answer["type"] == "json"
    assert answer["bytes"] == len(json.dumps(value, ensure_ascii=False).encode())
    assert client.read(key) == value
    assert sor_files(server) == before == {}
    assert client.keys() == [key]
    assert telemetry(server)["sor_fetches"] == 0


def test_put_of_bytes_caches_them_as_they_are(server, client):
    answer = client.put("blob.bin", BLOB)
    assert answer["result"] == "success" and answer["bytes"] == len(BLOB)
    answer = client.put("view.bin", memoryview(BLOB)[10:20])
    assert answer["bytes"] == 10
    assert client.read("blob.bin") == BLOB
    assert client.read("view.bin") == BLOB[10:20]
    assert sor_files(server) == {}
    assert sorted(client.keys()) == ["blob.bin", "view.bin"]


def test_a_put_value_survives_a_restart_and_is_replaced_by_the_next_put(server):
    with aside.connect(server.base) as client:
        client.put("doc.json", DOC)
        client.put("f.parquet", sales_frame(30))
    server.restart()
    with aside.connect(server.base) as client:
        assert client.read("doc.json") == DOC
        assert_same(client.read("f.parquet"), as_read_back(sales_frame(30)))
        client.put("doc.json", ARRAY)
        assert client.read("doc.json") == ARRAY
    assert sor_files(server) == {}


# -- write: through to the system of record ---------------------------------------------------

@pytest.mark.parametrize("key", ["out/w.parquet", "out/w.csv", "out/w.feather"])
def test_write_of_a_dataframe_goes_to_the_sor_then_the_cache(server, client, key):
    df = sales_frame(40)
    body, _ = aside.serialize(key, df)
    answer = client.write(key, df)
    assert answer["result"] == "success" and answer["bytes"] == len(body)
    assert isinstance(answer["etag"], str) and answer["etag"]
    assert sor_files(server) == {key: body}
    want = read_expected(server.sor / key)
    assert key in client.keys()
    assert_same(client.read(key), want)
    assert telemetry(server)["sor_fetches"] == 0
    client.delete(key)
    assert_same(client.read(key), want)  # loaded back from the file the write made
    assert telemetry(server)["sor_fetches"] == 1


@pytest.mark.parametrize("key, value", [("w.json", DOC), ("w-list.json", ARRAY),
                                        ("w.bin", BLOB)])
def test_write_of_json_and_bytes_goes_to_the_sor(server, client, key, value):
    answer = client.write(key, value)
    body = value if isinstance(value, bytes) else json.dumps(value, ensure_ascii=False).encode()
    assert answer["result"] == "success" and answer["bytes"] == len(body)
    assert sor_files(server) == {key: body}
    assert client.read(key) == value
    assert client.keys() == [key]


def test_write_of_invalid_json_is_refused_and_writes_nothing(server, client):
    with pytest.raises(aside.InvalidValue) as caught:
        client.write("bad.json", b'{"open": ')
    e = caught.value
    assert (e.status, e.code) == (422, "bad_value") and e.message
    assert sor_files(server) == {}
    assert client.keys() == []


# -- update, delete, keys, stats, list ---------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
def test_update_revalidates_an_unchanged_frame_and_reloads_a_changed_one(server, client, fmt):
    key, want = put_frame(server, fmt)
    assert_same(client.read(key), want)
    answer = client.update(key)
    assert answer["result"] == "success" and answer["revalidated"] is True
    assert answer["type"] == "frame"
    put_sor(server, key, frame_file(fmt, SMALL + 13))
    answer = client.update(key)
    assert answer["revalidated"] is False
    assert answer["bytes"] == (server.sor / key).stat().st_size
    new = expected_frame(server, key)
    assert len(new) == SMALL + 13
    assert_same(client.read(key, transport="shm"), new)
    assert_same(client.read(key, transport="http"), new)


def test_update_of_json_and_bytes_and_of_a_key_gone_from_the_sor(server, client):
    put_values(server)
    assert client.read("doc.json") == DOC and client.read("blob.bin") == BLOB
    put_sor(server, "doc.json", json.dumps(ARRAY))
    put_sor(server, "blob.bin", BLOB[::-1] + b"!")
    assert client.update("doc.json")["type"] == "json"
    assert client.update("blob.bin")["bytes"] == len(BLOB) + 1
    assert client.read("doc.json") == ARRAY
    assert client.read("blob.bin") == BLOB[::-1] + b"!"
    put_sor(server, "gone.json", "{}")
    assert client.read("gone.json") == {}
    (server.sor / "gone.json").unlink()
    with pytest.raises(aside.NotFound) as caught:
        client.update("gone.json")
    assert caught.value.status == 404
    assert "gone.json" not in client.keys()


def test_delete_drops_the_cached_copy_only(server, client):
    key, want = put_frame(server, "parquet")
    put_values(server)
    for k in (key, "doc.json", "array.json", "blob.bin"):
        client.read(k)
    files = sor_files(server)
    for k in (key, "doc.json", "array.json", "blob.bin"):
        assert client.delete(k) == {"result": "success"}
        assert k not in client.keys()
        with pytest.raises(aside.NotFound) as caught:
            client.delete(k)
        assert caught.value.code == "not_found"
    assert client.keys() == []
    assert sor_files(server) == files
    assert_same(client.read(key), want)
    assert telemetry(server)["sor_fetches"] == 5


def test_keys_are_the_cached_keys(server, client):
    assert client.keys() == []
    key, _ = put_frame(server, "csv")
    put_values(server)
    client.read(key)
    client.read("doc.json")
    client.put("only-cached.json", ARRAY)
    assert sorted(client.keys()) == sorted([key, "doc.json", "only-cached.json"])
    raw = server.get(function="stats_cache").json()["return"]["value"]
    assert sorted(client.keys()) == sorted(raw)


def test_stats_count_hits_misses_and_describe_each_entry(server, client):
    key, _ = put_frame(server, "feather")
    put_values(server)
    client.read("doc.json")
    client.read("doc.json")
    client.read("blob.bin")
    client.read(key, transport="http")
    stats = client.stats()
    raw = telemetry(server)
    for field in ("keys", "hits", "misses", "sor_fetches", "memory", "disk", "evictions"):
        assert stats[field] == raw[field], field
    assert stats["keys"] == 3 and stats["sor_fetches"] == 3
    by_path = {e["path"]: e for e in stats["entries"]}
    assert set(by_path) == {key, "doc.json", "blob.bin"}
    assert by_path["doc.json"]["type"] == "json"
    assert by_path["blob.bin"]["type"] == "bytes"
    assert by_path["blob.bin"]["bytes"] == len(BLOB)
    assert by_path[key]["type"] == "frame"
    assert all(set(e) >= {"path", "type", "bytes", "tier", "hits", "last_access"}
               for e in stats["entries"])
    one = client.stats("doc.json")
    assert [e["path"] for e in one["entries"]] == ["doc.json"]
    assert one["entries"][0]["hits"] >= 1


def test_objects_gives_the_sor_objects_under_a_prefix(server, client):
    files = {"a.json": b"{}", "data/x.parquet": typed_parquet(SMALL), "data/x.csv": b"a\n1\n",
             "data/deep/y.bin": BLOB, "database.bin": b"db", "other/z.json": b"[]"}
    for rel, body in files.items():
        put_sor(server, rel, body)
    everything = client.objects()
    assert [o["path"] for o in everything] == sorted(files)
    for o in everything:
        assert o["bytes"] == len(files[o["path"]])
        assert isinstance(o["last_modified"], str) and o["last_modified"]
    assert [o["path"] for o in client.objects("data/")] == sorted(
        k for k in files if k.startswith("data/"))
    assert [o["path"] for o in client.objects("data")] == sorted(
        k for k in files if k.startswith("data"))
    assert client.objects("nothing-here/") == []
    assert client.keys() == []  # listing caches nothing


# -- call, map --------------------------------------------------------------------------------

def test_call_reaches_any_function(server, client):
    key, want = put_frame(server, "parquet")
    put_values(server)
    assert client.call("shape", path=key) == list(want.shape)
    assert client.call("columns", path=key) == list(want.columns)
    # call sends only what it is given: the pandas major of this process's pandas is asked for
    assert client.call("dtypes", path=key, pandas=PANDAS_MAJOR) == \
        {c: str(t) for c, t in want.dtypes.items()}
    assert client.call("read", path="doc.json", **{"return": "data"}) == DOC
    assert client.call("read", path="array.json", **{"return": "data"}) == ARRAY
    assert client.call("read", path="blob.bin", format="raw") == BLOB
    assert client.call("read", path=key, format="raw") == (server.sor / key).read_bytes()
    meta = client.call("read", path="doc.json", **{"return": "meta"})
    assert meta["type"] == "json" and meta["source"] == "memory"
    rows = client.call("head", path=key, n=3, format="arrow")
    assert isinstance(rows, bytes)
    assert_same(pa.ipc.open_stream(rows).read_pandas(), want.head(3))
    assert client.call("put", body=b'{"posted": true}', path="posted.json") == \
        {"result": "success", "bytes": 16, "type": "json"}
    assert client.read("posted.json") == {"posted": True}
    with pytest.raises(aside.NotFound) as caught:
        client.call("no_such_function", path=key)
    assert caught.value.status == 404


@pytest.mark.parametrize("fmt", FORMATS)
def test_map_publishes_the_frame_for_this_host(server, client, fmt):
    key, want = put_frame(server, fmt)
    answer = client.mmap(key)
    assert answer["result"] == "success" and answer["format"] == "arrow-file"
    assert answer["rows"] == len(want)
    assert [c["name"] for c in answer["columns"]] == list(want.columns)
    assert answer["bytes"] == os.stat(answer["path"]).st_size
    mapped = pa.ipc.open_file(pa.memory_map(answer["path"], "r")).read_all()
    assert_same(mapped.to_pandas(), want)
    again = client.mmap(key)
    assert (again["path"], again["generation"]) == (answer["path"], answer["generation"])
    assert shm(client)["publications"] == 1 and shm(client)["maps"] == 2


# -- typed errors -----------------------------------------------------------------------------

def assert_raised(caught, cls, status, code) -> None:
    e = caught.value
    assert type(e) is cls, (type(e), e)
    assert isinstance(e, aside.AsideError)
    assert (e.status, e.code) == (status, code), e
    assert isinstance(e.message, str) and e.message
    assert str(e) == (f"{status} {code}: {e.message}" if status is not None
                      else f"{code}: {e.message}")


def test_a_missing_key_is_not_found(server, client):
    with pytest.raises(aside.NotFound) as caught:
        client.read("missing.parquet")
    assert_raised(caught, aside.NotFound, 404, "not_found")
    for method in (client.info, client.head, client.mmap, client.read_table, client.update,
                   client.delete):
        with pytest.raises(aside.NotFound) as caught:
            method("missing.parquet")
        assert_raised(caught, aside.NotFound, 404, caught.value.code)
    with pytest.raises(aside.NotFound):
        client.sql('SELECT * FROM "missing.parquet"')
    assert client.keys() == []


def test_bad_sql_is_bad_request_bad_query(server, client):
    put_sor(server, SALES, parquet_bytes(sales_frame()))
    with pytest.raises(aside.BadRequest) as caught:
        client.sql(f'SELEC g FROM "{SALES}"')
    assert_raised(caught, aside.BadRequest, 400, "bad_query")
    with pytest.raises(aside.BadRequest) as caught:
        client.select(SALES, where="no_such_column > 1")
    assert_raised(caught, aside.BadRequest, 400, "bad_query")


def test_a_bad_path_is_bad_request(server, client):
    with pytest.raises(aside.BadRequest) as caught:
        client.read("../outside.json")
    assert_raised(caught, aside.BadRequest, 400, caught.value.code)


@pytest.mark.parametrize("key, body", [("bad.json", b'{"k": '), ("bad.parquet", b"PAR1 nope"),
                                       ("bad.feather", b"ARROW1 not really")])
def test_a_put_of_an_invalid_value_is_invalid_value(server, client, key, body):
    with pytest.raises(aside.InvalidValue) as caught:
        client.put(key, body)
    assert_raised(caught, aside.InvalidValue, 422, "bad_value")
    assert client.keys() == []
    assert sor_files(server) == {}


def test_a_result_over_the_limit_is_too_large(make_server):
    server = make_server(env={"ASIDE_RESULT_LIMIT": "64KiB"})
    put_sor(server, "big.parquet", typed_parquet(5000))
    want = read_expected(server.sor / "big.parquet")
    with aside.connect(server.base) as client:
        with pytest.raises(aside.TooLarge) as caught:
            client.sql('SELECT * FROM "big.parquet"')
        assert_raised(caught, aside.TooLarge, 413, "too_large")
        answer = client.sql('SELECT * FROM "big.parquet"', into="copy.parquet")
        assert answer["rows"] == len(want)
        # SQL's time zone aware timestamps are instants in UTC, to the microsecond
        for col in want.columns:
            if isinstance(want[col].dtype, pd.DatetimeTZDtype):
                want[col] = want[col].dt.tz_convert("UTC").dt.as_unit("us")
        assert_same(client.read("copy.parquet"), want)


def test_map_without_shared_memory_is_conflict(make_server):
    server = make_server(env={"ASIDE_SHM_DIR": "off"})
    put_sor(server, SALES, parquet_bytes(sales_frame()))
    with aside.connect(server.base) as client:
        with pytest.raises(aside.Conflict) as caught:
            client.mmap(SALES)
        assert_raised(caught, aside.Conflict, 409, "conflict")


def test_a_guarded_server_is_unauthorized_without_the_right_token(make_server):
    token = "client-test-token"
    server = make_server(env={"ASIDE_TOKEN": token})
    put_sor(server, SALES, parquet_bytes(sales_frame()))
    for wrong in (None, token + "x", "nope"):
        with aside.connect(server.base, token=wrong) as client:
            for call in (client.keys, lambda: client.read(SALES),
                         lambda: client.put("doc.json", DOC)):
                with pytest.raises(aside.Unauthorized) as caught:
                    call()
                assert_raised(caught, aside.Unauthorized, 401, "unauthorized")
    with aside.connect(server.base, token=token) as client:
        assert client.keys() == []
        assert_same(client.read(SALES), read_expected(server.sor / SALES))
        assert client.last_transport == "shm"
        assert_same(client.read(SALES, transport="http"), read_expected(server.sor / SALES))
        client.put("doc.json", DOC)
        assert sorted(client.keys()) == ["doc.json", SALES]
    assert token not in server.log_text()


def test_a_closed_port_is_connection_failed():
    with aside.connect(f"http://127.0.0.1:{closed_port()}", timeout=5) as client:
        for call in (client.keys, lambda: client.read("k.parquet"),
                     lambda: client.read_table("k.parquet", transport="auto"),
                     lambda: client.put("doc.json", DOC)):
            with pytest.raises(aside.ConnectionFailed) as caught:
                call()
            assert_raised(caught, aside.ConnectionFailed, None, "connection_failed")
