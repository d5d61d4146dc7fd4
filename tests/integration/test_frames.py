"""Frame functions over a parquet frame: info, describe, head, tail, select, shape, columns,
dtypes; each answer equals what pandas computes from the same file."""
from __future__ import annotations

import pandas as pd
import pytest

from helpers import API, cached_keys, disk_tmp_files, put_sor, telemetry
from frame_data import (ARROW_STREAM, PANDAS, arrow_frame, assert_describe_matches, assert_info_matches,
                        assert_rows_match, frame_value, read_expected, typed_parquet)

KEY = "file1.snappy.parquet"
SMALL = 50
LARGE = 300_000  # several record batches and row groups


def put_typed(server, n: int = SMALL, key: str = KEY, codec: str = "snappy") -> pd.DataFrame:
    """The generated frame in the SOR as `key`; returns what pandas reads from that file."""
    put_sor(server, key, typed_parquet(n, codec))
    return read_expected(server.sor / key)


def call(server, function: str, key: str = KEY, **params):
    return frame_value(server.get(function=function, path=key, pandas=PANDAS, **params))


def arrow_call(server, function: str, key: str = KEY, **params) -> pd.DataFrame:
    r = server.get(function=function, path=key, format="arrow", **{"return": "data"}, **params)
    assert r.status_code == 200, r.text[:2000]
    assert r.headers["Content-Type"].startswith(ARROW_STREAM), r.headers["Content-Type"]
    return arrow_frame(r.content)


def assert_arrow_equals(got: pd.DataFrame, want: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(got, want.reset_index(drop=True), check_exact=True)


# -- info -------------------------------------------------------------------------------------

def test_info_of_a_parquet_frame_equals_pandas_facts_and_text(server):
    want = put_typed(server)
    assert_info_matches(call(server, "info"), want)


def test_cache_item_stats_with_key_is_the_original_info_call(server):
    want = put_typed(server)
    r = server.get(function="cache_item_stats", key=KEY, pandas=PANDAS)
    assert r.status_code == 200, r.text
    body = r.json()["return"]
    assert body["uri"] == API and body["path"] == KEY
    assert_info_matches(body["value"], want)


@pytest.mark.parametrize("alias", ["info", "cache_item_stats", "stats_cache_item"])
def test_info_aliases_answer_the_same_value(server, alias):
    want = put_typed(server)
    assert_info_matches(call(server, alias), want)
    assert call(server, alias) == call(server, "info")


def test_info_by_post_body_equals_the_get_answer(server):
    want = put_typed(server)
    r = server.post({"function": "info", "path": KEY, "pandas": PANDAS})
    assert_info_matches(frame_value(r), want)
    r = server.post({"function": "stats_cache_item", "key": KEY, "pandas": PANDAS})
    assert frame_value(r) == call(server, "info")


def test_info_loads_a_missing_frame_from_the_sor_once_then_serves_the_cached_copy(server):
    want = put_typed(server)
    assert cached_keys(server) == []
    for _ in range(3):
        assert_info_matches(call(server, "info"), want)
    v = telemetry(server)
    assert v["sor_fetches"] == 1
    assert [e["path"] for e in v["entries"]] == [KEY]
    assert cached_keys(server) == [KEY]
    assert disk_tmp_files(server) == []


def test_info_of_a_large_frame_equals_pandas(server):
    want = put_typed(server, LARGE)
    assert_info_matches(call(server, "info"), want)


# -- describe ---------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [SMALL, LARGE])
def test_describe_equals_pandas_describe(server, n):
    want = put_typed(server, n)
    assert_describe_matches(call(server, "describe"), want)


@pytest.mark.parametrize("n", [SMALL, LARGE])
def test_describe_include_all_adds_unique_top_freq_and_nulls_for_missing_stats(server, n):
    want = put_typed(server, n)
    assert_describe_matches(call(server, "describe", include="all"), want, include="all")


def test_describe_by_post_body_equals_the_get_answer(server):
    want = put_typed(server)
    got = frame_value(server.post({"function": "describe", "path": KEY, "include": "all"}))
    assert_describe_matches(got, want, include="all")


# -- head, tail -------------------------------------------------------------------------------

def test_head_and_tail_default_to_five_records(server):
    want = put_typed(server)
    assert_rows_match(call(server, "head"), want.head())
    assert_rows_match(call(server, "tail"), want.tail())


@pytest.mark.parametrize("n", [0, 1, 7, SMALL, SMALL + 10])
def test_head_and_tail_of_n_rows_equal_pandas_slices(server, n):
    want = put_typed(server)
    assert_rows_match(call(server, "head", n=n), want.head(n))
    assert_rows_match(call(server, "tail", n=n), want.tail(n))


@pytest.mark.parametrize("orient", ["records", "split", "columns", "index", "values"])
def test_head_and_tail_orients_carry_the_pandas_labels(server, orient):
    want = put_typed(server)
    assert_rows_match(call(server, "head", n=6, orient=orient), want.head(6), orient,
                      check_index=True)
    assert_rows_match(call(server, "tail", n=6, orient=orient), want.tail(6), orient,
                      check_index=True)


@pytest.mark.parametrize("n", [-1, -3, -SMALL, -SMALL - 7])
def test_a_negative_n_counts_as_pandas_does(server, n):
    """head(-k): every row but the last k; tail(-k): every row but the first k."""
    want = put_typed(server)
    assert_rows_match(call(server, "head", n=n, orient="split"), want.head(n), "split",
                      check_index=True)
    assert_rows_match(call(server, "tail", n=n, orient="split"), want.tail(n), "split",
                      check_index=True)


def test_head_and_tail_by_post_body(server):
    want = put_typed(server)
    assert_rows_match(frame_value(server.post({"function": "head", "path": KEY, "n": 3})),
                      want.head(3))
    assert_rows_match(frame_value(server.post({"function": "tail", "key": KEY, "n": "4",
                                               "orient": "split"})), want.tail(4), "split")


def test_head_and_tail_as_arrow_keep_every_dtype(server):
    want = put_typed(server)
    assert_arrow_equals(arrow_call(server, "head", n=9), want.head(9))
    assert_arrow_equals(arrow_call(server, "tail", n=9), want.tail(9))


def test_head_and_tail_of_a_large_frame_cross_batches(server):
    want = put_typed(server, LARGE)
    assert_rows_match(call(server, "head"), want.head())
    assert_rows_match(call(server, "tail"), want.tail())
    assert_rows_match(call(server, "tail", n=3000, orient="split"), want.tail(3000), "split",
                      check_index=True)
    assert_arrow_equals(arrow_call(server, "head", n=150_000), want.head(150_000))
    assert_arrow_equals(arrow_call(server, "tail", n=200_001), want.tail(200_001))


# -- select -----------------------------------------------------------------------------------

def test_select_columns_keeps_their_order_and_every_row(server):
    want = put_typed(server)
    got = call(server, "select", columns="text,i64,ts_ny,cat")
    assert_rows_match(got, want[["text", "i64", "ts_ny", "cat"]])


# (where, pandas mask)
WHERES = [
    ("f64 > 500 AND flag", lambda d: (d.f64 > 500) & d.flag),
    ("i8 BETWEEN -10 AND 40", lambda d: d.i8.between(-10, 40)),
    ("text IS NULL", lambda d: d.text.isna()),
    ("text = 'alpha' OR cat = 'kiwi'", lambda d: (d.text == "alpha") | (d.cat == "kiwi")),
    ("int_nulls IS NOT NULL AND u16 < 30000", lambda d: d.int_nulls.notna() & (d.u16 < 30000)),
    ("dec > 0", lambda d: d.dec.map(lambda x: x > 0).astype(bool)),
    ("NOT flag AND f32 >= 50", lambda d: ~d.flag & (d.f32 >= 50)),
]


@pytest.mark.parametrize("where, mask", WHERES, ids=[w for w, _ in WHERES])
def test_select_where_equals_the_pandas_filter_in_frame_order(server, where, mask):
    want = put_typed(server)
    expected = want[mask(want)]
    assert 0 < len(expected) < len(want), "the filter must keep some rows and drop some"
    assert_rows_match(call(server, "select", where=where), expected)


def test_select_order_by_equals_sort_values(server):
    want = put_typed(server)
    assert_rows_match(call(server, "select", order_by="i64 DESC"),
                      want.sort_values("i64", ascending=False))
    assert_rows_match(call(server, "select", order_by="u16, i64"),
                      want.sort_values(["u16", "i64"]))


@pytest.mark.parametrize("limit, offset", [(5, 0), (10, 3), (1, SMALL - 1), (20, SMALL - 5),
                                           (3, SMALL + 5), (0, 0)])
def test_select_limit_and_offset_equal_iloc(server, limit, offset):
    want = put_typed(server)
    got = call(server, "select", limit=limit, offset=offset)
    assert_rows_match(got, want.iloc[offset:offset + limit])


def test_select_combines_columns_where_order_by_limit_offset(server):
    want = put_typed(server)
    got = call(server, "select", columns="i64,f64,text", where="f64 IS NOT NULL AND i8 > -50",
               order_by="f64 DESC", limit=8, offset=2)
    expected = (want[want.f64.notna() & (want.i8 > -50)]
                .sort_values("f64", ascending=False)[["i64", "f64", "text"]].iloc[2:10])
    assert len(expected) == 8
    assert_rows_match(got, expected)


@pytest.mark.parametrize("orient", ["split", "columns"])
def test_select_answers_other_orients(server, orient):
    want = put_typed(server)
    got = call(server, "select", columns="i64,day,dec", where="flag", orient=orient)
    assert_rows_match(got, want.loc[want.flag, ["i64", "day", "dec"]], orient)


def test_select_by_post_body(server):
    want = put_typed(server)
    got = frame_value(server.post({"function": "select", "path": KEY, "columns": "i64,cat",
                                   "where": "cat <> 'apple'", "order_by": "i64",
                                   "limit": 4, "offset": 1}))
    expected = want.loc[want.cat != "apple", ["i64", "cat"]].sort_values("i64").iloc[1:5]
    assert_rows_match(got, expected)


def test_select_as_arrow_keeps_every_dtype(server):
    want = put_typed(server)
    got = arrow_call(server, "select", where="NOT flag", limit=20)
    assert_arrow_equals(got, want[~want.flag].iloc[:20])


def test_select_on_a_large_frame_crosses_batches(server):
    want = put_typed(server, LARGE)
    got = call(server, "select", columns="i64,ts_ns,text", offset=122_000, limit=5000,
               orient="split")
    assert_rows_match(got, want[["i64", "ts_ns", "text"]].iloc[122_000:127_000], "split")
    got = call(server, "select", where="i8 = 17 AND cat = 'cherry'", orient="split")
    assert_rows_match(got, want[(want.i8 == 17) & (want.cat == "cherry")], "split")
    got = call(server, "select", columns="i64,u16", order_by="i64 DESC", limit=7)
    assert_rows_match(got, want[["i64", "u16"]].sort_values("i64", ascending=False).head(7))
    got = arrow_call(server, "select", where="u16 < 1000")
    assert_arrow_equals(got, want[want.u16 < 1000])


# -- shape, columns, dtypes -------------------------------------------------------------------

@pytest.mark.parametrize("n", [SMALL, LARGE])
def test_shape_columns_and_dtypes_equal_pandas(server, n):
    want = put_typed(server, n)
    assert call(server, "shape") == list(want.shape)
    assert call(server, "columns") == list(want.columns)
    dtypes = call(server, "dtypes")
    assert dtypes == {c: str(t) for c, t in want.dtypes.items()}
    assert list(dtypes) == list(want.columns)


# -- the old meanings stay ---------------------------------------------------------------------

def test_function_head_without_a_path_is_still_telemetry(server):
    put_typed(server)
    call(server, "info")
    r = server.get(function="head")
    assert r.status_code == 200, r.text
    v = r.json()["return"]["value"]
    assert v["keys"] == 1 and [e["path"] for e in v["entries"]] == [KEY]
    assert v["sor_fetches"] == 1


def test_function_head_on_a_json_key_is_still_telemetry_of_that_key(server):
    put_typed(server)
    put_sor(server, "doc.json", '{"a": [1, 2]}')
    call(server, "info")
    assert server.get(path="doc.json").status_code == 200
    r = server.get(function="head", path="doc.json")
    assert r.status_code == 200, r.text
    v = r.json()["return"]["value"]
    assert v["keys"] == 2
    [entry] = v["entries"]
    assert entry["path"] == "doc.json" and entry["type"] == "json"


def test_http_head_verb_on_a_frame_key_is_still_telemetry_without_a_body(server):
    put_typed(server)
    call(server, "info")
    r = server.call("HEAD", params={"path": KEY})
    assert r.status_code == 200 and r.content == b""
    assert r.headers["X-Aside-Keys"] == "1"
    assert r.headers["X-Aside-Key-Type"]
    assert "X-Aside-Key-Bytes" in r.headers
    r = server.call("HEAD", params={"function": "head", "path": KEY})
    assert r.status_code == 200 and r.content == b""
    assert cached_keys(server) == [KEY]


# -- persistence ------------------------------------------------------------------------------

def test_a_frame_survives_a_restart_from_the_disk_tier_without_its_sor_file(server):
    want = put_typed(server)
    first = call(server, "info")
    assert_info_matches(first, want)
    (server.sor / KEY).unlink()
    server.restart()
    assert cached_keys(server) == [KEY]
    assert call(server, "info") == first
    assert_rows_match(call(server, "head", n=8), want.head(8))
    assert_arrow_equals(arrow_call(server, "read"), want)
    assert telemetry(server)["sor_fetches"] == 0


def test_a_large_frame_survives_a_restart(server):
    want = put_typed(server, LARGE)
    call(server, "shape")
    (server.sor / KEY).unlink()
    server.restart()
    assert_info_matches(call(server, "info"), want)
    assert_rows_match(call(server, "tail", n=3), want.tail(3))
    assert telemetry(server)["sor_fetches"] == 0
