"""Frame answers for pandas 2 and pandas 3: info, dtypes and map answer for the major that
pandas= names (else ASIDE_PANDAS, default 3), each equal to what that pandas says of the file.

pandas 3 reads strings as Arrow-backed `str` columns and counts their memory exactly; pandas 2
reads them as Python objects (`object`, 8 bytes a row, a `+` in the memory usage)."""
from __future__ import annotations

import datetime as dt
import decimal
import io
import json

import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

from helpers import assert_error, put_sor
from frame_data import (PANDAS, assert_describe_matches, assert_info_matches, assert_rows_match,
                        expected_info, frame_value, read_expected)

ORIGINAL = "file1.snappy.parquet"
ORIGINAL_ROWS = 781

# What each pandas prints for the original project's file (pandas 3.1 and 2.x).
ORIGINAL_TEXT = {
    "3": """<class 'pandas.DataFrame'>
RangeIndex: 781 entries, 0 to 780
Data columns (total 4 columns):
 #   Column         Non-Null Count  Dtype  
---  ------         --------------  -----  
 0   cusip          781 non-null    str    
 1   price          777 non-null    float64
 2   security_type  0 non-null      float64
 3   trade_date     0 non-null      str    
dtypes: float64(2), str(2)
memory usage: 30.0 KB
""",
    "2": """<class 'pandas.core.frame.DataFrame'>
RangeIndex: 781 entries, 0 to 780
Data columns (total 4 columns):
 #   Column         Non-Null Count  Dtype  
---  ------         --------------  -----  
 0   cusip          781 non-null    object 
 1   price          777 non-null    float64
 2   security_type  0 non-null      float64
 3   trade_date     0 non-null      object 
dtypes: float64(2), object(2)
memory usage: 24.5+ KB
""",
}


def original_table() -> pa.Table:
    """A file shaped like the original project's: 781 rows, a string id in every row, a price
    missing in 4, an all-null float column and an all-null string column."""
    n = ORIGINAL_ROWS
    return pa.table({
        "cusip": pa.array([f"{k * 7919 % 10_000_000:07d}" for k in range(n)], pa.string()),
        "price": pa.array([None if k % 200 == 7 else 100 + k / 64 for k in range(n)],
                          pa.float64()),
        "security_type": pa.array([None] * n, pa.float64()),
        "trade_date": pa.array([None] * n, pa.string()),
    })


def table_bytes(table: pa.Table, **options) -> bytes:
    out = io.BytesIO()
    pq.write_table(table, out, **options)
    return out.getvalue()


def info(server, key: str, **params) -> dict:
    return frame_value(server.get(function="info", path=key, **params))


def put_original(server) -> pd.DataFrame:
    put_sor(server, ORIGINAL, table_bytes(original_table(), compression="snappy"))
    return read_expected(server.sor / ORIGINAL)


# -- the original project's file ---------------------------------------------------------------

def test_the_original_file_answers_what_the_tests_pandas_says(server):
    want = put_original(server)
    assert_info_matches(info(server, ORIGINAL, pandas=PANDAS), want)
    assert info(server, ORIGINAL, pandas=PANDAS)["text"] == ORIGINAL_TEXT[PANDAS]


@pytest.mark.parametrize("major", ["2", "3"])
def test_the_original_file_answers_each_pandas_text(server, major):
    put_original(server)
    value = info(server, ORIGINAL, pandas=major)
    assert value["text"] == ORIGINAL_TEXT[major]
    assert value["class"] == {"2": "pandas.core.frame.DataFrame", "3": "pandas.DataFrame"}[major]


def test_pandas_2_and_3_answers_differ_on_one_frame_as_they_should(server):
    put_original(server)
    two, three = info(server, ORIGINAL, pandas="2"), info(server, ORIGINAL, pandas="3")
    assert [c["dtype"] for c in two["columns"]] == ["object", "float64", "float64", "object"]
    assert [c["dtype"] for c in three["columns"]] == ["str", "float64", "float64", "str"]
    assert two["dtypes"] == {"float64": 2, "object": 2}
    assert three["dtypes"] == {"float64": 2, "str": 2}
    # pandas 2: a pointer a row; pandas 3: offsets, characters and the all-null column's bitmap
    assert two["memory_usage_bytes"] == 132 + 4 * 8 * ORIGINAL_ROWS
    assert three["memory_usage_bytes"] == (132 + 2 * 8 * ORIGINAL_ROWS + 8 * ORIGINAL_ROWS
                                           + 7 * ORIGINAL_ROWS + 8 * ORIGINAL_ROWS + 98)
    assert two["memory_usage"].endswith("+ KB") and "+" not in three["memory_usage"]
    dtypes = {m: frame_value(server.get(function="dtypes", path=ORIGINAL, pandas=m))
              for m in ("2", "3")}
    assert dtypes["2"]["cusip"] == "object" and dtypes["3"]["cusip"] == "str"
    mapped = {m: frame_value(server.get(function="map", path=ORIGINAL, pandas=m))
              for m in ("2", "3")}
    assert [c["dtype"] for c in mapped["2"]["columns"]][0] == "object"
    assert [c["dtype"] for c in mapped["3"]["columns"]][0] == "str"


# -- choosing the major ------------------------------------------------------------------------

def test_without_pandas_the_answer_is_for_pandas_3(server):
    put_original(server)
    assert info(server, ORIGINAL)["text"] == ORIGINAL_TEXT["3"]


def test_aside_pandas_sets_the_default_and_pandas_still_chooses(make_server):
    server = make_server(env={"ASIDE_PANDAS": "2"})
    put_original(server)
    assert info(server, ORIGINAL)["text"] == ORIGINAL_TEXT["2"]
    assert info(server, ORIGINAL, pandas="3")["text"] == ORIGINAL_TEXT["3"]
    r = server.post({"function": "info", "path": ORIGINAL, "pandas": "3"})
    assert frame_value(r)["text"] == ORIGINAL_TEXT["3"]


@pytest.mark.parametrize("function", ["info", "dtypes", "map", "cache_item_stats"])
@pytest.mark.parametrize("bad", ["1", "4", "3.1", "", "two", "pandas3"])
def test_a_bad_pandas_is_400_naming_the_parameter(server, function, bad):
    put_original(server)
    err = assert_error(server.get(function=function, path=ORIGINAL, pandas=bad), 400,
                       "bad_request")
    assert '"pandas" must be 2 or 3' in err["message"], err


# -- every Arrow type pandas maps to str or object ----------------------------------------------

def arrow_types_table(n: int = 40) -> pa.Table:
    """Each Arrow type whose pandas dtype differs or might differ between 2 and 3, with and
    without nulls: strings, large strings, all-null strings, empty strings, bytes, booleans
    with nulls, dates, decimals, dictionaries (with nulls and unused values)."""
    k = list(range(n))
    return pa.table({
        "s": pa.array([f"v{j}" * (j % 4) for j in k], pa.string()),
        "s_nulls": pa.array([None if j % 3 == 0 else "日本" * (j % 5) for j in k], pa.string()),
        "s_all_null": pa.array([None] * n, pa.string()),
        "s_empty": pa.array([""] * n, pa.string()),
        "large": pa.array([None if j % 7 == 1 else f"large {j}" for j in k], pa.large_string()),
        "raw": pa.array([None if j % 4 == 0 else bytes([j]) * 3 for j in k], pa.binary()),
        "flag_nulls": pa.array([None if j % 5 == 0 else j % 2 == 0 for j in k], pa.bool_()),
        "day": pa.array([dt.date(2024, 1, 1) + dt.timedelta(days=j) for j in k], pa.date32()),
        "amount": pa.array([decimal.Decimal(j).scaleb(-2) for j in k], pa.decimal128(9, 2)),
        "cat": pa.array([None if j % 6 == 5 else ["a", "b", "ccc"][j % 3] for j in k],
                        pa.string()).dictionary_encode(),
        "x": pa.array([j * 0.5 for j in k], pa.float64()),
    })


def test_info_of_each_string_and_object_arrow_type_equals_pandas(server):
    put_sor(server, "types.parquet", table_bytes(arrow_types_table()))
    want = read_expected(server.sor / "types.parquet")
    assert_info_matches(info(server, "types.parquet", pandas=PANDAS), want)
    dtypes = frame_value(server.get(function="dtypes", path="types.parquet", pandas=PANDAS))
    assert dtypes == {c: str(t) for c, t in want.dtypes.items()}


@pytest.mark.parametrize("include", [None, "all"])
def test_describe_of_each_string_and_object_arrow_type_equals_pandas(server, include):
    """(bytes left out: describe's top of bytes has no JSON form to compare)"""
    put_sor(server, "types.parquet", table_bytes(arrow_types_table().drop_columns(["raw"])))
    want = read_expected(server.sor / "types.parquet")
    params = {"include": include} if include else {}
    got = frame_value(server.get(function="describe", path="types.parquet", pandas=PANDAS,
                                 **params))
    assert_describe_matches(got, want, include)


@pytest.mark.parametrize("function", ["head", "tail", "select"])
def test_rows_of_each_string_and_object_arrow_type_equal_pandas(server, function):
    """Missing strings (NaN in pandas 3, None in 2) are null; bytes, dates, decimals too."""
    put_sor(server, "types.parquet", table_bytes(arrow_types_table()))
    want = read_expected(server.sor / "types.parquet").drop(columns=["raw"])
    columns = ",".join(want.columns)
    got = frame_value(server.get(function=function, path="types.parquet", pandas=PANDAS,
                                 n=12, columns=columns if function == "select" else None))
    rows = {"head": want.head(12), "tail": want.tail(12), "select": want}[function]
    if function != "select":
        got = [{c: r[c] for c in want.columns} for r in got]
    assert_rows_match(got, rows)


def test_info_of_an_arrow_file_equals_what_table_to_pandas_gives(server):
    """The same types through an Arrow IPC file, against pa.Table.to_pandas() of that file."""
    out = io.BytesIO()
    feather.write_feather(arrow_types_table(), out, compression="uncompressed")
    put_sor(server, "types.arrow", out.getvalue())
    want = feather.read_table(server.sor / "types.arrow").to_pandas()
    assert_info_matches(info(server, "types.arrow", pandas=PANDAS), want)


@pytest.mark.parametrize("order", [["a", "b", "ccc"], ["ccc", "b", "a"], ["b", "a", "ccc"]])
def test_categories_in_file_order_count_as_pandas_counts_them(server, order):
    """pandas 3 builds a hash table over a categorical's categories (and counts it) only when
    they are sorted neither way; an Arrow file keeps its dictionary's order."""
    codes = pa.array([j % 3 for j in range(30)], pa.int8())
    table = pa.table({"c": pa.DictionaryArray.from_arrays(codes, pa.array(order))})
    out = io.BytesIO()
    feather.write_feather(table, out, compression="uncompressed")
    put_sor(server, "cats.arrow", out.getvalue())
    want = feather.read_table(server.sor / "cats.arrow").to_pandas()
    assert list(want["c"].cat.categories) == order
    assert_info_matches(info(server, "cats.arrow", pandas=PANDAS), want)


def test_extension_dtypes_from_pandas_metadata_equal_pandas(server):
    """Int64, boolean, string (pd.NA) and a categorical written by pandas itself."""
    n = 24
    df = pd.DataFrame({
        "i": pd.array([None if j % 3 == 0 else j for j in range(n)], dtype="Int64"),
        "b": pd.array([None if j % 4 == 0 else j % 2 == 0 for j in range(n)], dtype="boolean"),
        "t": pd.array([None if j % 5 == 0 else f"t{j}" for j in range(n)], dtype="string"),
        "c": pd.Categorical([["lo", "mid", "high"][j % 3] for j in range(n)]),
    })
    out = io.BytesIO()
    df.to_parquet(out)
    put_sor(server, "ext.parquet", out.getvalue())
    want = read_expected(server.sor / "ext.parquet")
    assert_info_matches(info(server, "ext.parquet", pandas=PANDAS), want)


def test_a_file_written_by_pandas_3_reads_as_each_pandas_reads_it(server):
    """pandas 3 names a str column's numpy_type "str" in the file's metadata: pandas 2 reads it
    as object, pandas 3 as str; a "string" column stays the string extension dtype."""
    df = pd.DataFrame({"s": pd.Series(["a", None, "bc"] * 5, dtype=object),
                       "t": pd.array(["x", None, "yz"] * 5, dtype="string")})
    table = pa.Table.from_pandas(df, preserve_index=False)
    meta = json.loads(table.schema.metadata[b"pandas"])
    for column in meta["columns"]:
        if column["name"] == "s":
            column["pandas_type"], column["numpy_type"] = "object", "str"
    table = table.replace_schema_metadata({b"pandas": json.dumps(meta).encode()})
    put_sor(server, "by3.parquet", table_bytes(table))
    want = read_expected(server.sor / "by3.parquet")
    assert_info_matches(info(server, "by3.parquet", pandas=PANDAS), want)


MIXED_LINES = '{"a": 1, "m": "x"}\n{"a": 2, "m": 3}\n{"a": 3, "m": null}\n{"a": 4, "m": "yz"}\n'
MIXED_CSV = "a,m\n1,x\n2,3\n3,\n4,yz\n"


@pytest.mark.parametrize("key, text", [("mixed.jsonl", MIXED_LINES), ("mixed.csv", MIXED_CSV)])
def test_a_mixed_column_is_object_and_a_string_column_with_nan_is_str(server, key, text):
    """JSON lines keep a column of strings and numbers as Python objects in every pandas;
    CSV reads the same cells as strings with NaN: str in pandas 3."""
    put_sor(server, key, text)
    want = read_expected(server.sor / key)
    assert_info_matches(info(server, key, pandas=PANDAS), want)


def test_a_string_column_over_several_row_groups_equals_pandas(server):
    """pyarrow keeps one chunk per row group; each has nulls, so each has its bitmap."""
    n = 3 * 4096
    table = pa.table({"s": pa.array([None if j % 9 == 2 else "x" * (j % 13) for j in range(n)]),
                      "v": pa.array(range(n), pa.int64())})
    put_sor(server, "groups.parquet", table_bytes(table, row_group_size=4096))
    want = read_expected(server.sor / "groups.parquet")
    assert_info_matches(info(server, "groups.parquet", pandas=PANDAS), want)


def test_a_zero_row_string_column_counts_nothing(server):
    table = pa.table({"s": pa.array([], pa.string()), "f": pa.array([], pa.float64())})
    put_sor(server, "none.parquet", table_bytes(table))
    want = read_expected(server.sor / "none.parquet")
    value = info(server, "none.parquet", pandas=PANDAS)
    assert value == expected_info(want)
