"""DataFrames for the frame tests: generators, file encoders, and what pandas makes of a file.

Every expected answer is computed here with pandas or pyarrow from the very file the server
reads, never written down by hand:

- `typed_frame(n)` holds every dtype the server maps, with nulls; `portable_frame(n)` only the
  columns whose type CSV and JSON lines carry the same way for every reader;
- `encode(df, fmt)` writes a frame the way pandas (or pyarrow) writes that format;
- `read_expected(path)` is pandas' own reader for the file's extension;
- `expected_info`, `expected_describe` are pandas' facts in the shape the API answers;
- `assert_rows_match`, `assert_describe_matches` compare JSON answers with pandas values.
"""
from __future__ import annotations

import datetime as dt
import decimal
import functools
import gzip
import io
import math
import pathlib
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq

from helpers import parquet_bytes  # noqa: F401 (the frame tests' encoder of Parquet)

ARROW_STREAM = "application/vnd.apache.arrow.stream"
# The major version of the pandas these tests run under: frame answers that differ between
# pandas 2 and 3 (info, dtypes) are asked for it with pandas=, and compared with it.
PANDAS = pd.__version__.split(".")[0]
# The dtype that pandas gives a column of strings: Python objects in 2, Arrow-backed str in 3.
STRING_DTYPE = "object" if PANDAS == "2" else "str"
PARQUET = "application/vnd.apache.parquet"

# Relative tolerance of computed statistics (summation order is not pandas' own).
REL = 1e-9
# pandas accumulates float32 columns in float32, so its own mean and std of them carry float32
# rounding: an exact (float64) answer differs from pandas' by up to a few float32 ulps.
REL_FLOAT32 = 1e-5
# pandas' statistics of datetime columns (mean, quantiles) are rounded to microseconds or less.
TIMESTAMP_SLACK = pd.Timedelta(microseconds=1)

CATEGORIES = ["apple", "banana", "cherry", "kiwi"]  # sorted, every one used (n >= 10)
TEXT_MODE = "alpha"                                  # the most frequent string (describe's top)
TRICKY_TEXT = 'quote "q", comma\nnew line'           # CSV must quote it
# floats whose decimal form is long: they come back exactly or not at all
EXACT_FLOATS = [0.1, 1 / 3, 1e-300, -2.5e-8, 123456789.12345679, 9007199254740994.0]


# -- generators -------------------------------------------------------------------------------

def _categories(i: np.ndarray) -> pd.Categorical:
    # frequencies 4:3:2:1 so the mode is unique
    codes = np.select([i % 10 < 4, i % 10 < 7, i % 10 < 9], [0, 1, 2], 3).astype("int8")
    return pd.Categorical.from_codes(codes, categories=CATEGORIES)


def _text(i: int) -> str | None:
    k = i % 11
    if k in (0, 2, 4):
        return TEXT_MODE
    if k == 5:
        return None
    if k == 7:
        return ""
    if k == 9:
        return TRICKY_TEXT
    return ["é", "€uro", "日本語", "😀 emoji", "Straße", "plain"][i % 6] + f" {i}"


def typed_frame(n: int, seed: int = 0) -> pd.DataFrame:
    """Every dtype the frames map, with nulls where the dtype allows them:
    int64 (unique, no nulls), int8, uint16, float32, float64 with NaN, an int column with
    nulls (float64 as pandas makes it), bool (no nulls), strings (object or str: missing, empty,
    multi-byte), datetime64[ns], datetime64[us], datetime64[ns, UTC],
    datetime64[us, America/New_York], dates (object), decimals of scale 2 (object), and a
    categorical with sorted categories, all used."""
    rng = np.random.default_rng(seed)
    i = np.arange(n)
    f64 = rng.normal(500.0, 300.0, n)
    f64[i % 7 == 3] = np.nan
    head = min(n, len(EXACT_FLOATS))
    f64[:head] = EXACT_FLOATS[:head]
    int_nulls = np.where(i % 3 == 0, np.nan, (i * 7) % 1000).astype("float64")
    ts_ns = (pd.Timestamp("2021-01-01") + pd.to_timedelta(i * 17, unit="min")
             + pd.to_timedelta(i % 1000, unit="ns"))
    ts_us = (pd.Timestamp("1969-12-25 06:00") + pd.to_timedelta(i * 91, unit="min")
             + pd.to_timedelta(i % 997, unit="us"))
    ts_utc = (pd.Timestamp("2020-02-29 23:00", tz="UTC") + pd.to_timedelta(i * 13, unit="min")
              + pd.to_timedelta(i % 991, unit="us"))
    # across the 2021-03-14 and 2021-11-07 transitions
    ts_ny = (pd.Timestamp("2021-03-13 12:00", tz="America/New_York")
             + pd.to_timedelta(i * 7, unit="min") + pd.to_timedelta(i % 983, unit="us"))
    base_day = dt.date(2019, 12, 30)
    days = [base_day if k % 4 == 0 else base_day + dt.timedelta(days=int(k % 20000) - 19000)
            for k in i]
    decimals = [decimal.Decimal("12.50") if k % 5 == 0
                else decimal.Decimal(int((k * 7919) % 2000003) - 1000001).scaleb(-2)
                for k in i]
    return pd.DataFrame({
        "i64": (rng.permutation(n).astype("int64") * 1000 + 7),
        "i8": rng.integers(-128, 128, n).astype("int8"),
        "u16": rng.integers(0, 65536, n).astype("uint16"),
        "f32": rng.uniform(1.0, 100.0, n).astype("float32"),
        "f64": f64,
        "int_nulls": int_nulls,
        "flag": (i % 3 == 1),
        "text": pd.Series([_text(k) for k in i]),  # object in pandas 2, str in 3
        "ts_ns": pd.DatetimeIndex(ts_ns).as_unit("ns"),
        "ts_us": pd.DatetimeIndex(ts_us).as_unit("us"),
        "ts_utc": pd.DatetimeIndex(ts_utc).as_unit("ns"),
        "ts_ny": pd.DatetimeIndex(ts_ny).as_unit("us"),
        "day": pd.Series(days, dtype=object),
        "dec": pd.Series(decimals, dtype=object),
        "cat": _categories(i),
    })


def portable_frame(n: int, seed: int = 0) -> pd.DataFrame:
    """Columns that CSV and JSON lines carry without type guessing: integers, floats, an
    integer column with gaps (Int64, written as blanks or null), booleans, strings (no
    numeric-looking ones) and category labels."""
    df = typed_frame(n, seed)
    out = df[["i64", "i8", "u16", "f32", "f64", "int_nulls", "flag", "text"]].copy()
    out["int_gaps"] = pd.array([None if k % 4 == 2 else int(k) * 3 - 50 for k in range(n)],
                               dtype="Int64")
    out["label"] = df["cat"].astype(str).astype(object)
    return out


def sales_frame(n: int = 200, seed: int = 1) -> pd.DataFrame:
    """A small fact table for SQL: a group label, a float measure with nulls, an integer."""
    rng = np.random.default_rng(seed)
    i = np.arange(n)
    x = rng.normal(100.0, 25.0, n)
    x[i % 9 == 4] = np.nan
    return pd.DataFrame({
        "id": i.astype("int64") + 1,
        "g": pd.Series([["north", "south", "east", "west", "über"][k % 5] for k in i]),
        "x": x,
        "q": rng.integers(0, 50, n).astype("int64"),
        "ok": (i % 4 != 0),
    })


def regions_frame() -> pd.DataFrame:
    """A dimension table joined to sales_frame on g ("east" has no row: an inner join drops it)."""
    return pd.DataFrame({"g": ["north", "south", "west", "über"],
                         "region": ["Nord", "Süd", "Ouest", "Übersee"],
                         "weight": [1, 2, 3, 4]})


def spark_table(n: int = 40) -> pa.Table:
    """A table as Spark writes it: no pandas metadata, an int64 column entirely null, an int32
    column with some nulls, UTF8 strings with nulls, doubles, UTC microsecond timestamps."""
    i = list(range(n))
    return pa.table({
        "id": pa.array(i, pa.int64()),
        "never": pa.array([None] * n, pa.int64()),
        "sometimes": pa.array([None if k % 3 == 0 else k * 11 for k in i], pa.int32()),
        "name": pa.array([None if k % 5 == 4 else f"näme-{k}" for k in i], pa.string()),
        "amount": pa.array([k * 0.25 if k % 6 else None for k in i], pa.float64()),
        "at": pa.array([1_600_000_000_000_000 + k * 3_600_000_001 for k in i],
                       pa.timestamp("us", tz="UTC")),
    })


# -- encoders ---------------------------------------------------------------------------------

def csv_bytes(df: pd.DataFrame, gz: bool = False) -> bytes:
    raw = df.to_csv(index=False).encode()
    return gzip.compress(raw, mtime=0) if gz else raw


def jsonl_bytes(df: pd.DataFrame) -> bytes:
    return df.to_json(orient="records", lines=True, double_precision=15,
                      force_ascii=False).encode()


def json_records_bytes(df: pd.DataFrame) -> bytes:
    return df.to_json(orient="records", double_precision=15, force_ascii=False).encode()


def feather_bytes(df: pd.DataFrame, compression: str = "uncompressed") -> bytes:
    buf = io.BytesIO()
    feather.write_feather(df, buf, compression=compression)
    return buf.getvalue()


def spark_parquet_bytes(table: pa.Table) -> bytes:
    assert table.schema.metadata is None  # no pandas metadata
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="snappy", store_schema=False)
    return buf.getvalue()


def zero_row_parquet_bytes(df: pd.DataFrame) -> bytes:
    """The frame's columns with their full Arrow types (taken from the whole frame), no rows."""
    schema = pa.Table.from_pandas(df, preserve_index=False).schema
    empty = pa.Table.from_pandas(df.iloc[:0], schema=schema, preserve_index=False)
    buf = io.BytesIO()
    pq.write_table(empty, buf)
    return buf.getvalue()


PARQUET_CODECS = {"snappy": "snappy", "zstd": "zstd", "gzip": "gzip", "none": None}
FEATHER_CODECS = ["uncompressed", "lz4", "zstd"]


@functools.lru_cache(maxsize=None)
def typed_parquet(n: int, codec: str = "snappy") -> bytes:
    return parquet_bytes(typed_frame(n), PARQUET_CODECS[codec])


@functools.lru_cache(maxsize=None)
def typed_feather(n: int, compression: str = "uncompressed") -> bytes:
    return feather_bytes(typed_frame(n), compression)


@functools.lru_cache(maxsize=None)
def portable_file(n: int, fmt: str) -> bytes:
    df = portable_frame(n)
    return {"csv": lambda: csv_bytes(df), "csv.gz": lambda: csv_bytes(df, gz=True),
            "jsonl": lambda: jsonl_bytes(df), "json": lambda: json_records_bytes(df)}[fmt]()


# -- pandas' reading of a file ----------------------------------------------------------------

def read_expected(path: pathlib.Path) -> pd.DataFrame:
    """What pandas makes of the file, chosen by extension as the server chooses."""
    # Text numbers are parsed correctly rounded ("round_trip", precise_float): pandas' default
    # fast parsers may land one ulp away from the number the file holds.
    name = path.name.lower()
    if name.endswith(".parquet"):
        return pd.read_parquet(path)
    if name.endswith(".csv.gz"):
        return pd.read_csv(path, compression="gzip", float_precision="round_trip")
    if name.endswith(".csv"):
        return pd.read_csv(path, float_precision="round_trip")
    if name.endswith((".jsonl", ".ndjson")):
        return pd.read_json(path, lines=True, precise_float=True)
    if name.endswith((".arrow", ".feather", ".ipc")):
        return pd.read_feather(path)
    if name.endswith(".json"):
        return pd.read_json(path, orient="records", precise_float=True)
    raise ValueError(f"no frame extension: {path}")


def read_back(df: pd.DataFrame) -> pd.DataFrame:
    """df as pandas holds it once written to Parquet and read back: a frame pandas computed
    (a groupby) may hold a string column's validity bitmap even with no nulls, which pandas 3
    counts in memory usage; read from a file, it has one only when the column has nulls."""
    return pd.read_parquet(io.BytesIO(parquet_bytes(df.reset_index(drop=True), None)))


# -- pandas' facts in the API's shape ---------------------------------------------------------

def info_text(df: pd.DataFrame) -> str:
    buf = io.StringIO()
    df.info(buf=buf)
    return buf.getvalue()


def expected_info(df: pd.DataFrame) -> dict:
    """The value `info` answers for df, every field computed by pandas."""
    memory = int(df.memory_usage(index=True, deep=False).sum())
    text = info_text(df)
    human = re.search(r"^memory usage: (.*)$", text, re.M).group(1)
    assert isinstance(df.index, pd.RangeIndex)
    counts = df.dtypes.astype(str).value_counts()
    return {
        "class": f"{type(df).__module__}.{type(df).__name__}",
        "index": {"kind": "range", "start": df.index.start, "stop": df.index.stop,
                  "step": df.index.step},
        "entries": len(df),
        "columns": [{"position": k, "name": str(name), "non_null": int(df[name].notna().sum()),
                     "dtype": str(df[name].dtype)} for k, name in enumerate(df.columns)],
        "dtypes": {str(k): int(v) for k, v in counts.items()},
        "memory_usage_bytes": memory,
        "memory_usage": human,
        "text": text,
    }


def assert_info_matches(value: dict, df: pd.DataFrame) -> None:
    """Every fact of `info` equals pandas', field by field (clear messages), then the text."""
    want = expected_info(df)
    assert set(value) >= set(want), sorted(set(want) - set(value))
    for field in ("class", "index", "entries", "columns", "dtypes", "memory_usage_bytes",
                  "memory_usage"):
        assert value[field] == want[field], (field, value[field], want[field])
    assert value["text"] == want["text"], "\n" + value["text"] + "\n!=\n" + want["text"]


def expected_describe(df: pd.DataFrame, include: str | None = None) -> dict:
    return df.describe(include=include).to_dict()


def _is_missing(v) -> bool:
    if v is None or v is pd.NaT or v is pd.NA:
        return True
    return isinstance(v, float) and math.isnan(v)


def _close(got, want: float, rel: float) -> bool:
    if isinstance(got, bool) or not isinstance(got, (int, float)):
        return False
    return got == want or math.isclose(got, want, rel_tol=rel, abs_tol=0.0)


def assert_describe_matches(got: dict, df: pd.DataFrame, include: str | None = None) -> None:
    """got is {column: {statistic: value}}; pandas' describe within REL (REL_FLOAT32 for the
    mean and std of float32 columns); NaN is null; timestamps are ISO strings."""
    want = expected_describe(df, include)
    assert list(got) == list(want), (list(got), list(want))  # pandas' column order
    for col, stats in want.items():
        assert set(got[col]) == set(stats), (col, sorted(got[col]), sorted(stats))
        dtype = df[col].dtype
        for stat, w in stats.items():
            g = got[col][stat]
            where = (col, stat, g, w)
            if _is_missing(w):
                assert g is None, where
            elif isinstance(w, pd.Timestamp):
                assert isinstance(g, str), where
                t = _parse_timestamp(g, aware=w.tz is not None)
                if stat in ("min", "max"):
                    assert t == w, where
                else:
                    assert abs(t - w) <= TIMESTAMP_SLACK, where
            elif isinstance(w, (bool, np.bool_)):
                assert g is bool(w), where
            elif isinstance(w, str):
                assert g == w, where
            elif isinstance(w, dt.date):
                assert g == w.isoformat(), where
            elif isinstance(w, decimal.Decimal):
                assert _close(g, float(w), 0.0), where
            else:
                rel = REL_FLOAT32 if dtype == np.float32 and stat in ("mean", "std") else REL
                assert _close(g, float(w), rel), where


# -- JSON rows --------------------------------------------------------------------------------

def _parse_timestamp(text: str, aware: bool) -> pd.Timestamp:
    if aware:
        assert text.endswith("Z"), f"a tz-aware timestamp is sent in UTC with a Z: {text!r}"
    else:
        assert not re.search(r"(Z|[+-]\d\d:?\d\d)$", text), f"a naive timestamp: {text!r}"
    assert re.match(r"^-?\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z)?$", text), text
    return pd.Timestamp(text)


def assert_json_value(got, want, dtype, where=None) -> None:
    """One JSON value against pandas' value of a column of this dtype."""
    where = (where, got, want)
    if _is_missing(want):
        assert got is None, where
        return
    if isinstance(dtype, pd.CategoricalDtype):
        assert got == str(want), where
    elif pd.api.types.is_bool_dtype(dtype):
        assert got is bool(want), where
    elif pd.api.types.is_integer_dtype(dtype):
        assert isinstance(got, int) and not isinstance(got, bool) and got == int(want), where
    elif dtype == np.float32:
        assert _close(got, float(want), 0.0) or np.float32(got) == np.float32(want), where
    elif pd.api.types.is_float_dtype(dtype):
        assert _close(got, float(want), 0.0), where  # exactly
    elif isinstance(want, pd.Timestamp):
        assert isinstance(got, str), where
        assert _parse_timestamp(got, aware=want.tz is not None) == want, where
    elif isinstance(want, dt.date):
        assert got == want.isoformat(), where
    elif isinstance(want, decimal.Decimal):
        assert _close(got, float(want), 0.0), where
    elif isinstance(want, (bool, np.bool_)):
        assert got is bool(want), where
    elif isinstance(want, str):
        assert got == want, where
    else:
        assert got == want, where


def rows_of(value, orient: str = "records") -> tuple[list, list[list], list | None]:
    """(columns, rows, index labels) of a row answer in one of pandas' orients; columns are None
    for `values` (it carries no names), labels None for `records` and `values`."""
    if orient == "records":
        assert isinstance(value, list), value
        columns = list(value[0]) if value else []
        for rec in value:
            assert list(rec) == columns, (list(rec), columns)
        return columns, [list(rec.values()) for rec in value], None
    if orient == "split":
        assert set(value) >= {"columns", "index", "data"}, value
        for row in value["data"]:
            assert len(row) == len(value["columns"])
        assert len(value["index"]) == len(value["data"])
        return value["columns"], value["data"], value["index"]
    if orient == "columns":
        assert isinstance(value, dict), value
        columns = list(value)
        labels = list(value[columns[0]]) if columns else []
        for col in columns:
            assert list(value[col]) == labels, col
        return columns, [[value[c][label] for c in columns] for label in labels], labels
    if orient == "index":
        assert isinstance(value, dict), value
        labels = list(value)
        columns = list(value[labels[0]]) if labels else []
        for label in labels:
            assert list(value[label]) == columns, label
        return columns, [list(value[label].values()) for label in labels], labels
    if orient == "values":
        assert isinstance(value, list) and all(isinstance(row, list) for row in value), value
        return None, value, None
    raise ValueError(orient)


def assert_rows_match(value, want: pd.DataFrame, orient: str = "records",
                      check_index: bool = False) -> None:
    """A row answer holds exactly want's rows and columns, in order. check_index: the
    labels (split index, columns keys) are want's index labels."""
    columns, rows, labels = rows_of(value, orient)
    assert len(rows) == len(want), (len(rows), len(want))
    if len(want) and columns is not None:
        assert columns == [str(c) for c in want.columns], (columns, list(want.columns))
    if len(want) and columns is None:
        assert all(len(row) == len(want.columns) for row in rows)
    if check_index and labels is not None:
        expected = [int(x) for x in want.index]
        if orient in ("columns", "index"):
            expected = [str(x) for x in expected]
        assert labels == expected, (labels, expected)
    for c, name in enumerate(want.columns):
        dtype = want[name].dtype
        for r, w in enumerate(want[name]):
            assert_json_value(rows[r][c], w, dtype, where=(r, name))


def json_body(r) -> object:
    assert r.status_code == 200, (r.status_code, r.text[:2000])
    return r.json()


def frame_value(r):
    """The VALUE of a successful envelope."""
    body = json_body(r)
    assert set(body) == {"return"}, body
    return body["return"]["value"]


def arrow_frame(body: bytes) -> pd.DataFrame:
    return pa.ipc.open_stream(body).read_pandas()


def arrow_table(body: bytes) -> pa.Table:
    return pa.ipc.open_stream(body).read_all()

