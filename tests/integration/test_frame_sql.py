"""SQL over cached frames: each cached frame is a table named by its key; answers equal the
pandas computation over the same files."""
from __future__ import annotations

import io
import math

import pandas as pd
import pytest

from helpers import cached_keys, disk_tmp_files, put_sor, telemetry
from frame_data import (ARROW_STREAM, PANDAS, PARQUET, STRING_DTYPE, arrow_frame,
                        assert_info_matches, read_back,
                        assert_rows_match, csv_bytes, frame_value, parquet_bytes, read_expected,
                        regions_frame, rows_of, sales_frame, typed_parquet)

SALES = "sales.parquet"
REGIONS = "regions.csv"
REL = 1e-9


def put_sales(server, key: str = SALES) -> pd.DataFrame:
    put_sor(server, key, parquet_bytes(sales_frame()))
    return read_expected(server.sor / key)


def put_regions(server, key: str = REGIONS) -> pd.DataFrame:
    put_sor(server, key, csv_bytes(regions_frame()))
    return read_expected(server.sor / key)


def sql(server, query: str, **params):
    return frame_value(server.get(function="sql", query=query, **params))


def raw_sql(server, query: str, fmt: str):
    r = server.get(function="sql", query=query, format=fmt, **{"return": "data"})
    assert r.status_code == 200, r.text[:2000]
    return r


def assert_close_rows(got: list[dict], want: pd.DataFrame, approx: set[str]) -> None:
    """Records equal want's rows; columns in `approx` (aggregates whose summation order is the
    engine's) within REL, the others exactly."""
    assert len(got) == len(want), (got, want)
    exact = [c for c in want.columns if c not in approx]
    assert_rows_match([{c: rec[c] for c in exact} for rec in got], want[exact])
    for rec, (_, row) in zip(got, want.iterrows()):
        assert list(rec) == list(want.columns), (list(rec), list(want.columns))
        for c in approx:
            if pd.isna(row[c]):
                assert rec[c] is None, (c, rec, row)
            else:
                assert math.isclose(rec[c], float(row[c]), rel_tol=REL), (c, rec[c], row[c])


# -- answers equal pandas ---------------------------------------------------------------------

def test_group_by_mean_equals_pandas_groupby_mean(server):
    sales = put_sales(server)
    got = sql(server, f'SELECT g, avg(x) AS mean_x, sum(q) AS total_q, count(*) AS n '
                      f'FROM "{SALES}" GROUP BY g ORDER BY g')
    want = (sales.groupby("g", as_index=False)
            .agg(mean_x=("x", "mean"), total_q=("q", "sum"), n=("q", "size"))
            .sort_values("g").reset_index(drop=True))
    assert_close_rows(got, want, approx={"mean_x"})


def test_group_by_mean_matches_the_readme_example_query(server):
    sales = put_sales(server)
    got = sql(server, f'SELECT g, avg(x) FROM "{SALES}" GROUP BY g')
    want = sales.groupby("g")["x"].mean()
    assert len(got) == len(want)
    for rec in got:
        g, mean = list(rec.values())
        assert math.isclose(mean, want[g], rel_tol=REL), (g, mean, want[g])


def test_join_of_two_cached_frames_equals_pd_merge(server):
    sales = put_sales(server)
    regions = put_regions(server)
    assert frame_value(server.get(function="shape", path=SALES)) == list(sales.shape)
    assert frame_value(server.get(function="shape", path=REGIONS)) == list(regions.shape)
    got = sql(server, f'SELECT s.id, s.g, s.x, r.region, r.weight FROM "{SALES}" AS s '
                      f'JOIN "{REGIONS}" AS r ON s.g = r.g ORDER BY s.id')
    want = (pd.merge(sales, regions, on="g")[["id", "g", "x", "region", "weight"]]
            .sort_values("id").reset_index(drop=True))
    assert 0 < len(want) < len(sales)
    assert_rows_match(got, want)


def test_a_query_naming_an_uncached_frame_loads_it_from_the_sor(server):
    sales = put_sales(server, "data/sales.parquet")
    regions = put_regions(server)
    assert telemetry(server)["keys"] == 0
    got = sql(server, 'SELECT r.region, sum(s.q) AS q FROM "data/sales.parquet" s '
                      f'JOIN "{REGIONS}" r USING (g) GROUP BY r.region ORDER BY r.region')
    want = (pd.merge(sales, regions, on="g").groupby("region", as_index=False)
            .agg(q=("q", "sum")).sort_values("region").reset_index(drop=True))
    assert_rows_match(got, want)
    v = telemetry(server)
    assert sorted(e["path"] for e in v["entries"]) == ["data/sales.parquet", REGIONS]
    assert v["sor_fetches"] == 2
    sql(server, 'SELECT count(*) AS n FROM "data/sales.parquet"')
    assert telemetry(server)["sor_fetches"] == 2  # cached now
    assert cached_keys(server) == ["data/sales.parquet", REGIONS]


def test_select_star_answers_every_value_as_pandas_reads_it(server):
    put_sor(server, "typed.parquet", typed_parquet(50))
    want = read_expected(server.sor / "typed.parquet")
    assert_rows_match(sql(server, 'SELECT * FROM "typed.parquet"'), want)


def test_aggregates_over_typed_columns_equal_pandas(server):
    put_sor(server, "typed.parquet", typed_parquet(1000))
    df = read_expected(server.sor / "typed.parquet")
    got = sql(server, 'SELECT cat, count(*) AS n, sum(i8) AS s, min(ts_utc) AS first_utc, '
                      'max(day) AS last_day, count(text) AS texts '
                      'FROM "typed.parquet" GROUP BY cat ORDER BY cat')
    want = (df.groupby("cat", observed=True)
            .agg(n=("i64", "size"), s=("i8", "sum"), first_utc=("ts_utc", "min"),
                 last_day=("day", "max"), texts=("text", "count"))
            .reset_index())
    want["cat"] = want["cat"].astype(str)
    assert_rows_match(got, want)


def test_sql_by_post_body(server):
    sales = put_sales(server)
    got = frame_value(server.post({"function": "sql",
                                   "query": f'SELECT id, x FROM "{SALES}" WHERE ok AND q < 5 '
                                            'ORDER BY id DESC'}))
    want = sales.loc[sales.ok & (sales.q < 5), ["id", "x"]].sort_values("id", ascending=False)
    assert_rows_match(got, want)


@pytest.mark.parametrize("orient", ["records", "split", "columns"])
def test_sql_answers_each_orient(server, orient):
    sales = put_sales(server)
    got = sql(server, f'SELECT id, g, ok FROM "{SALES}" WHERE q >= 40 ORDER BY id',
              orient=orient)
    want = sales.loc[sales.q >= 40, ["id", "g", "ok"]].sort_values("id")
    assert_rows_match(got, want, orient)
    if orient != "records":
        _, _, labels = rows_of(got, orient)
        assert labels == [str(k) if orient == "columns" else k for k in range(len(want))]


# -- into -------------------------------------------------------------------------------------

def test_into_stores_the_result_as_a_frame_that_info_head_and_sql_answer(server):
    sales = put_sales(server)
    query = (f'SELECT g, avg(x) AS mean_x, count(*) AS n FROM "{SALES}" '
             'GROUP BY g ORDER BY g')
    value = sql(server, query, into="by_g.parquet")
    want = (sales.groupby("g", as_index=False).agg(mean_x=("x", "mean"), n=("x", "size"))
            .sort_values("g").reset_index(drop=True))
    assert value == {"result": "success", "path": "by_g.parquet", "rows": len(want),
                     "columns": 3}
    assert cached_keys(server) == ["by_g.parquet", SALES]
    assert not (server.sor / "by_g.parquet").exists()
    info = frame_value(server.get(function="info", path="by_g.parquet", pandas=PANDAS))
    assert_info_matches(info, read_back(want))
    head = frame_value(server.get(function="head", path="by_g.parquet", n=10))
    assert_close_rows(head, want, approx={"mean_x"})
    total = sql(server, 'SELECT sum(n) AS total FROM "by_g.parquet"')
    assert total == [{"total": len(sales)}]
    assert disk_tmp_files(server) == []


def test_into_by_post_body_then_select_on_the_new_frame(server):
    sales = put_sales(server)
    value = frame_value(server.post({"function": "sql", "into": "out/big_q.parquet",
                                     "query": f'SELECT * FROM "{SALES}" WHERE q > 25'}))
    want = sales[sales.q > 25]
    assert value == {"result": "success", "path": "out/big_q.parquet", "rows": len(want),
                     "columns": len(sales.columns)}
    got = frame_value(server.get(function="select", path="out/big_q.parquet",
                                 where="g = 'über'", columns="id,x"))
    assert_rows_match(got, want.loc[want.g == "über", ["id", "x"]])


def test_an_into_frame_survives_a_restart(server):
    sales = put_sales(server)
    sql(server, f'SELECT id, q FROM "{SALES}" WHERE ok', into="kept.parquet")
    server.restart()
    want = sales.loc[sales.ok, ["id", "q"]].reset_index(drop=True)
    assert frame_value(server.get(function="shape", path="kept.parquet")) == list(want.shape)
    assert_rows_match(frame_value(server.get(function="tail", path="kept.parquet", n=3)),
                      want.tail(3))


# -- raw bodies equal the JSON answer ------------------------------------------------------------

RAW_QUERY = f'SELECT id, g, x, q, ok FROM "{SALES}" WHERE q > 10 ORDER BY id'


def test_sql_as_arrow_equals_the_json_answer(server):
    put_sales(server)
    records = sql(server, RAW_QUERY)
    r = raw_sql(server, RAW_QUERY, "arrow")
    assert r.headers["Content-Type"].startswith(ARROW_STREAM)
    back = arrow_frame(r.content)
    assert [str(t) for t in back.dtypes] == ["int64", STRING_DTYPE, "float64", "int64", "bool"]
    assert_rows_match(records, back)


def test_sql_as_parquet_equals_the_json_answer(server):
    put_sales(server)
    records = sql(server, RAW_QUERY)
    r = raw_sql(server, RAW_QUERY, "parquet")
    assert r.headers["Content-Type"].startswith(PARQUET)
    assert_rows_match(records, pd.read_parquet(io.BytesIO(r.content)))


def test_sql_as_csv_equals_the_json_answer(server):
    put_sales(server)
    records = sql(server, RAW_QUERY)
    r = raw_sql(server, RAW_QUERY, "csv")
    assert r.headers["Content-Type"].startswith("text/csv")
    back = pd.read_csv(io.BytesIO(r.content), float_precision="round_trip")
    assert_rows_match(records, back)


def test_sql_as_json_is_the_bare_json_answer(server):
    put_sales(server)
    records = sql(server, RAW_QUERY)
    r = raw_sql(server, RAW_QUERY, "json")
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json() == records


def test_head_and_select_raw_bodies_equal_their_json_answers(server):
    put_sor(server, "t.parquet", typed_parquet(50))
    for function, params in (("head", {"n": 12}), ("tail", {}),
                             ("select", {"columns": "i64,f64,flag,text", "where": "i8 > 0"})):
        records = frame_value(server.get(function=function, path="t.parquet", **params))
        r = server.get(function=function, path="t.parquet", format="json",
                       **{"return": "data"}, **params)
        assert r.status_code == 200 and r.json() == records, function
        r = server.get(function=function, path="t.parquet", format="arrow",
                       **{"return": "data"}, **params)
        assert r.status_code == 200, function
        assert_rows_match(records, arrow_frame(r.content))
