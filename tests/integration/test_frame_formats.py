"""Frames from every file format, and frames sent back in every format: each compared with
what pandas or pyarrow reads from the same file."""
from __future__ import annotations

import io
import json

import pandas as pd
import pyarrow as pa
import pytest

from helpers import cached_keys, put_sor, telemetry
from frame_data import (ARROW_STREAM, FEATHER_CODECS, PANDAS, PARQUET, PARQUET_CODECS,
                        arrow_frame,
                        arrow_table, assert_describe_matches, assert_info_matches,
                        assert_rows_match, frame_value, portable_file, read_expected,
                        STRING_DTYPE, spark_parquet_bytes, spark_table, typed_feather, typed_frame,
                        typed_parquet, zero_row_parquet_bytes)

SMALL = 50
LARGE = 300_000


def call(server, function, key, **params):
    return frame_value(server.get(function=function, path=key, pandas=PANDAS, **params))


def read_arrow(server, key, **params) -> pd.DataFrame:
    r = server.get(function="read", path=key, format="arrow", **{"return": "data"}, **params)
    assert r.status_code == 200, r.text[:2000]
    assert r.headers["Content-Type"].startswith(ARROW_STREAM), r.headers["Content-Type"]
    return arrow_frame(r.content)


def assert_same_frame(got: pd.DataFrame, want: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(got, want, check_exact=True)


def assert_same_values(got: pd.DataFrame, want: pd.DataFrame) -> None:
    """Same columns, rows and values, whatever dtypes the format could carry: an instant in
    any timezone, a category as its label, a null as any null."""
    assert list(got.columns) == list(want.columns)
    assert len(got) == len(want)
    for col in want.columns:
        for r, (g, w) in enumerate(zip(got[col].tolist(), want[col].tolist())):
            if pd.isna(w):
                assert pd.isna(g), (col, r, g, w)
            else:
                assert g == w, (col, r, g, w)


# -- parquet ----------------------------------------------------------------------------------

@pytest.mark.parametrize("codec", list(PARQUET_CODECS))
def test_info_of_parquet_with_each_codec_equals_pandas(server, codec):
    key = f"typed.{codec}.parquet"
    put_sor(server, key, typed_parquet(SMALL, codec))
    assert_info_matches(call(server, "info", key), read_expected(server.sor / key))


@pytest.mark.parametrize("codec", list(PARQUET_CODECS))
def test_arrow_read_of_parquet_with_each_codec_equals_read_parquet(server, codec):
    key = f"typed.{codec}.parquet"
    put_sor(server, key, typed_parquet(SMALL, codec))
    assert_same_frame(read_arrow(server, key), pd.read_parquet(server.sor / key))


def test_read_meta_of_a_parquet_key_says_it_is_a_frame(server):
    raw = put_sor(server, "m.parquet", typed_parquet(SMALL))
    r = server.get(function="read", path="m.parquet")
    assert r.status_code == 200, r.text
    v = r.json()["return"]["value"]
    assert v["result"] == "success" and v["source"] == "sor" and v["type"] == "frame", v
    r = server.get(path="m.parquet", format="raw")
    assert r.status_code == 200 and r.content == raw


def test_arrow_read_of_a_large_parquet_frame_equals_read_parquet(server):
    put_sor(server, "large.parquet", typed_parquet(LARGE))
    got = read_arrow(server, "large.parquet")
    assert_same_frame(got, pd.read_parquet(server.sor / "large.parquet"))


def test_arrow_stream_of_a_large_frame_has_several_batches(server):
    put_sor(server, "large.parquet", typed_parquet(LARGE))
    r = server.get(function="read", path="large.parquet", format="arrow", **{"return": "data"})
    assert r.status_code == 200
    reader = pa.ipc.open_stream(r.content)
    batches = list(reader)
    assert len(batches) > 1
    assert sum(b.num_rows for b in batches) == LARGE


def test_spark_parquet_all_null_int_is_float64_with_no_non_null(server):
    key = "part-00000-spark.snappy.parquet"
    put_sor(server, key, spark_parquet_bytes(spark_table()))
    want = read_expected(server.sor / key)
    assert str(want["never"].dtype) == "float64" and want["never"].notna().sum() == 0
    value = call(server, "info", key)
    never = [c for c in value["columns"] if c["name"] == "never"]
    assert never == [{"position": 1, "name": "never", "non_null": 0, "dtype": "float64"}]
    assert_info_matches(value, want)
    assert call(server, "dtypes", key) == {c: str(t) for c, t in want.dtypes.items()}


def test_spark_parquet_reads_back_as_pandas_reads_it(server):
    key = "spark.parquet"
    put_sor(server, key, spark_parquet_bytes(spark_table()))
    want = read_expected(server.sor / key)
    assert_same_frame(read_arrow(server, key), want)
    assert_rows_match(call(server, "head", key, n=12), want.head(12))
    assert_describe_matches(call(server, "describe", key), want)


def test_zero_row_frame_has_its_columns_and_no_rows(server):
    df = typed_frame(SMALL)
    put_sor(server, "empty.parquet", zero_row_parquet_bytes(df))
    want = read_expected(server.sor / "empty.parquet")
    assert want.shape == (0, len(df.columns))
    assert_info_matches(call(server, "info", "empty.parquet"), want)
    assert call(server, "shape", "empty.parquet") == [0, len(df.columns)]
    assert call(server, "columns", "empty.parquet") == list(df.columns)
    assert call(server, "head", "empty.parquet") == []
    assert call(server, "tail", "empty.parquet", n=3) == []
    assert call(server, "select", "empty.parquet", where="i64 > 0") == []
    split = call(server, "head", "empty.parquet", orient="split")
    assert split["columns"] == list(df.columns) and split["data"] == [] and split["index"] == []
    assert_same_frame(read_arrow(server, "empty.parquet"), want)


# -- Arrow IPC files --------------------------------------------------------------------------

@pytest.mark.parametrize("compression", FEATHER_CODECS)
@pytest.mark.parametrize("ext", ["feather", "arrow", "ipc"])
def test_arrow_ipc_file_info_and_read_equal_read_feather(server, ext, compression):
    key = f"typed-{compression}.{ext}"
    put_sor(server, key, typed_feather(SMALL, compression))
    want = read_expected(server.sor / key)
    assert_same_frame(want, typed_frame(SMALL))
    assert_info_matches(call(server, "info", key), want)
    assert_same_frame(read_arrow(server, key), want)


def test_large_lz4_feather_reads_back_equal(server):
    put_sor(server, "large.feather", typed_feather(LARGE, "lz4"))
    want = read_expected(server.sor / "large.feather")
    assert_same_frame(read_arrow(server, "large.feather"), want)
    assert_rows_match(call(server, "tail", "large.feather", n=4), want.tail(4))


# -- CSV and JSON lines ----------------------------------------------------------------------
# These formats carry no dtypes: the comparison is with what pandas' own reader makes of the
# file, for columns whose type every reader agrees on (portable_frame).

TEXT_FORMATS = [("plain.csv", "csv"), ("packed.csv.gz", "csv.gz"), ("lines.jsonl", "jsonl"),
                ("lines.ndjson", "jsonl")]


@pytest.mark.parametrize("key, fmt", TEXT_FORMATS)
def test_info_of_a_text_format_equals_what_pandas_reads(server, key, fmt):
    put_sor(server, key, portable_file(SMALL, fmt))
    want = read_expected(server.sor / key)
    assert_info_matches(call(server, "info", key), want)


@pytest.mark.parametrize("key, fmt", TEXT_FORMATS)
def test_rows_and_describe_of_a_text_format_equal_what_pandas_reads(server, key, fmt):
    put_sor(server, key, portable_file(SMALL, fmt))
    want = read_expected(server.sor / key)
    assert call(server, "shape", key) == list(want.shape)
    assert call(server, "dtypes", key) == {c: str(t) for c, t in want.dtypes.items()}
    assert_rows_match(call(server, "head", key, n=SMALL), want)
    assert_rows_match(call(server, "select", key, where="flag", columns="i64,text,int_gaps"),
                      want.loc[want.flag, ["i64", "text", "int_gaps"]])
    assert_describe_matches(call(server, "describe", key), want)
    assert_describe_matches(call(server, "describe", key, include="all"), want, include="all")


def test_empty_csv_fields_are_nulls_as_pandas_reads_them(server):
    put_sor(server, "gaps.csv", portable_file(SMALL, "csv"))
    want = read_expected(server.sor / "gaps.csv")
    # pandas reads both a None and an empty string written to CSV as a missing value
    source = typed_frame(SMALL)["text"]
    assert want["text"].isna().sum() == (source.isna() | (source == "")).sum()
    info = call(server, "info", "gaps.csv")
    text = [c for c in info["columns"] if c["name"] == "text"][0]
    assert text["non_null"] == int(want["text"].notna().sum())
    gaps = [c for c in info["columns"] if c["name"] == "int_gaps"][0]
    assert gaps["dtype"] == "float64" and gaps["non_null"] == int(want["int_gaps"].notna().sum())


def test_csv_of_every_dtype_agrees_with_pandas_on_the_columns_csv_carries(server):
    """A CSV of the whole generated frame: dates and timestamps are strings to pandas' reader
    and may be typed by another, so only the numeric, boolean and string columns are compared."""
    df = typed_frame(SMALL)
    put_sor(server, "all.csv", df.to_csv(index=False))
    want = read_expected(server.sor / "all.csv")
    carried = ["i64", "i8", "u16", "f32", "f64", "int_nulls", "flag", "text", "dec", "cat"]
    assert {str(want[c].dtype) for c in carried} == {"int64", "float64", "bool", STRING_DTYPE}
    info = call(server, "info", "all.csv")
    assert info["entries"] == len(want)
    by_name = {c["name"]: c for c in info["columns"]}
    assert [c["name"] for c in info["columns"]] == list(want.columns)
    for c in carried:
        assert by_name[c]["dtype"] == str(want[c].dtype), c
        assert by_name[c]["non_null"] == int(want[c].notna().sum()), c
    assert_rows_match(call(server, "select", "all.csv", columns=",".join(carried)), want[carried])


def test_json_key_is_a_frame_only_with_type_frame(server):
    put_sor(server, "records.json", portable_file(SMALL, "json"))
    want = read_expected(server.sor / "records.json")
    r = server.get(function="read", path="records.json")
    assert r.json()["return"]["value"]["type"] == "json"
    r = server.get(path="records.json", **{"return": "data"})
    assert r.json()["return"]["value"] == json.loads((server.sor / "records.json").read_bytes())
    put_sor(server, "frame.json", portable_file(SMALL, "json"))
    assert_info_matches(call(server, "info", "frame.json", type="frame"), want)
    assert_rows_match(call(server, "head", "frame.json", type="frame", n=SMALL), want)


def test_type_bytes_keeps_a_parquet_file_as_its_bytes(server):
    raw = put_sor(server, "opaque.parquet", typed_parquet(SMALL))
    r = server.get(function="read", path="opaque.parquet", type="bytes")
    assert r.status_code == 200, r.text
    assert r.json()["return"]["value"]["type"] == "bytes"
    r = server.get(path="opaque.parquet", format="raw")
    assert r.status_code == 200 and r.content == raw


# -- a frame sent back in each format ----------------------------------------------------------

def test_accept_arrow_stream_on_read_answers_the_stream(server):
    put_sor(server, "t.parquet", typed_parquet(SMALL))
    r = server.call("GET", params={"function": "read", "path": "t.parquet", "return": "data"},
                    headers={"Accept": ARROW_STREAM})
    assert r.status_code == 200, r.text[:2000]
    assert r.headers["Content-Type"].startswith(ARROW_STREAM)
    assert_same_frame(arrow_frame(r.content), pd.read_parquet(server.sor / "t.parquet"))


def test_read_as_parquet_reads_back_with_the_same_values(server):
    put_sor(server, "t.parquet", typed_parquet(SMALL))
    r = server.get(function="read", path="t.parquet", format="parquet", **{"return": "data"})
    assert r.status_code == 200, r.text[:2000]
    assert r.headers["Content-Type"].startswith(PARQUET)
    assert_same_values(pd.read_parquet(io.BytesIO(r.content)),
                       pd.read_parquet(server.sor / "t.parquet"))


def test_read_as_csv_reads_back_as_the_original_csv_does(server):
    put_sor(server, "p.csv", portable_file(SMALL, "csv"))
    r = server.get(function="read", path="p.csv", format="csv", **{"return": "data"})
    assert r.status_code == 200, r.text[:2000]
    assert r.headers["Content-Type"].startswith("text/csv")
    back = pd.read_csv(io.BytesIO(r.content), float_precision="round_trip")
    assert_same_frame(back, read_expected(server.sor / "p.csv"))


def test_read_as_json_is_the_records_of_the_whole_frame(server):
    put_sor(server, "t.parquet", typed_parquet(SMALL))
    r = server.get(function="read", path="t.parquet", format="json", **{"return": "data"})
    assert r.status_code == 200, r.text[:2000]
    assert r.headers["Content-Type"].startswith("application/json")
    assert_rows_match(r.json(), pd.read_parquet(server.sor / "t.parquet"))


def test_arrow_stream_schema_names_pandas_types(server):
    put_sor(server, "t.parquet", typed_parquet(SMALL))
    r = server.get(function="read", path="t.parquet", format="arrow", **{"return": "data"})
    schema = arrow_table(r.content).schema
    want = pa.Table.from_pandas(typed_frame(SMALL), preserve_index=False).schema
    for name in ("i8", "u16", "f32", "ts_ns", "ts_us", "ts_utc", "ts_ny"):
        assert schema.field(name).type == want.field(name).type, name
    assert pa.types.is_date(schema.field("day").type)
    assert pa.types.is_decimal(schema.field("dec").type)
    assert schema.field("dec").type.scale == 2
    assert pa.types.is_dictionary(schema.field("cat").type)


def test_frames_from_several_formats_are_cached_side_by_side(server):
    keys = {"a.parquet": typed_parquet(SMALL), "b.feather": typed_feather(SMALL),
            "c.csv": portable_file(SMALL, "csv"), "d.jsonl": portable_file(SMALL, "jsonl")}
    for key, raw in keys.items():
        put_sor(server, key, raw)
        assert call(server, "shape", key)[0] == SMALL
    assert cached_keys(server) == sorted(keys)
    assert telemetry(server)["sor_fetches"] == len(keys)
