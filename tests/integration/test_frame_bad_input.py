"""Frame requests that must fail: each answers its error and changes nothing (no new key, no
temporary file, no file written anywhere by SQL)."""
from __future__ import annotations

import gzip
import io
import json
import pathlib

import pandas as pd
import pyarrow as pa
import pytest

from helpers import (assert_error, assert_nothing_cached, cached_keys, disk_sidecars,
                      disk_tmp_files, disk_values, put_sor, telemetry)
from frame_data import (assert_rows_match, frame_value, parquet_bytes, portable_file,
                        read_expected, sales_frame, typed_feather, typed_parquet)

SALES = "sales.parquet"


def put_sales(server) -> pd.DataFrame:
    put_sor(server, SALES, parquet_bytes(sales_frame()))
    return read_expected(server.sor / SALES)


def loaded_sales(server) -> pd.DataFrame:
    """sales.parquet in the SOR and in the cache."""
    sales = put_sales(server)
    assert frame_value(server.get(function="shape", path=SALES)) == list(sales.shape)
    return sales


def snapshot(server) -> tuple:
    return (cached_keys(server), disk_values(server), disk_sidecars(server),
            disk_tmp_files(server), telemetry(server)["keys"])


def assert_unchanged(server, before: tuple, sales: pd.DataFrame | None = None) -> None:
    assert snapshot(server) == before
    if sales is not None:  # the cached frame still answers every row as before
        got = frame_value(server.get(function="select", path=SALES, orient="split"))
        assert_rows_match(got, sales, "split")


def sql(server, query, **params):
    return server.get(function="sql", query=query, **params)


# -- columns and where ------------------------------------------------------------------------

@pytest.mark.parametrize("params", [
    {"columns": "id,nope"},
    {"columns": "nope"},
    {"columns": "id,,x"},
    {"where": "nope > 3"},
    {"where": "id > 3 AND missing_column IS NULL"},
    {"order_by": "nope DESC"},
])
def test_unknown_column_in_select_is_400_and_changes_nothing(server, params):
    sales = loaded_sales(server)
    before = snapshot(server)
    assert_error(server.get(function="select", path=SALES, **params), 400)
    assert_unchanged(server, before, sales)


@pytest.mark.parametrize("where", ["id >", "id = = 3", "(id > 3", "id > 3; DROP TABLE x"])
def test_malformed_where_is_400(server, where):
    sales = loaded_sales(server)
    before = snapshot(server)
    assert_error(server.get(function="select", path=SALES, where=where), 400)
    assert_unchanged(server, before, sales)


@pytest.mark.parametrize("name, value", [("n", "abc"), ("n", "1.5"), ("limit", "x"),
                                         ("offset", "-"), ("orient", "sideways"),
                                         ("type", "spreadsheet")])
def test_invalid_frame_parameter_is_400_and_names_it(server, name, value):
    sales = loaded_sales(server)
    before = snapshot(server)
    function = "head" if name == "n" else "select"
    err = assert_error(server.get(function=function, path=SALES, **{name: value}), 400)
    assert name in err["message"]
    assert_unchanged(server, before, sales)


# -- bad SQL ----------------------------------------------------------------------------------

def test_sql_syntax_error_is_400_bad_query_with_the_engine_message(server):
    sales = loaded_sales(server)
    before = snapshot(server)
    err = assert_error(sql(server, f'SELEC * FORM "{SALES}"'), 400, "bad_query")
    assert "syntax error" in err["message"].lower(), err
    assert_unchanged(server, before, sales)


def test_sql_naming_an_unknown_column_is_400_bad_query_naming_it(server):
    sales = loaded_sales(server)
    before = snapshot(server)
    err = assert_error(sql(server, f'SELECT zzz_missing FROM "{SALES}"'), 400, "bad_query")
    assert "zzz_missing" in err["message"], err
    assert_unchanged(server, before, sales)


def test_sql_type_error_is_400_bad_query(server):
    sales = loaded_sales(server)
    before = snapshot(server)
    assert_error(sql(server, f'SELECT g + 1 FROM "{SALES}"'), 400, "bad_query")
    assert_unchanged(server, before, sales)


@pytest.mark.parametrize("query", ["", "   ", "-- only a comment"])
def test_empty_sql_is_400(server, query):
    assert_error(sql(server, query), 400)
    assert_nothing_cached(server)


def test_sql_without_query_is_400(server):
    assert_error(server.get(function="sql"), 400)
    assert_nothing_cached(server)


def test_sql_naming_a_frame_missing_from_the_sor_is_404_and_caches_nothing(server):
    err = assert_error(sql(server, 'SELECT * FROM "nowhere.parquet"'), 404, "not_found")
    assert "nowhere.parquet" in err["message"]
    assert_nothing_cached(server)


# -- SQL must not reach files, the network or the engine's settings ---------------------------

def file_queries(root: pathlib.Path, sor: pathlib.Path) -> list[str]:
    out = root / "escaped"
    return [
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_csv_auto('/etc/passwd')",
        "SELECT * FROM read_text('/etc/hostname')",
        "SELECT * FROM read_blob('/etc/hostname')",
        "SELECT * FROM '/etc/passwd'",
        "SELECT * FROM glob('/etc/*')",
        f"SELECT * FROM read_parquet('{sor / SALES}')",
        f"SELECT * FROM '{sor / SALES}'",
        f"COPY (SELECT 1 AS one) TO '{out}.csv'",
        f"COPY (SELECT * FROM \"{SALES}\") TO '{out}.parquet' (FORMAT parquet)",
        f"EXPORT DATABASE '{out}-db'",
        f"ATTACH '{out}.duckdb' AS escaped",
        f"SELECT 1; ATTACH '{out}.duckdb' AS escaped",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET enable_external_access = true",
        "SET allowed_directories = ['/']",
        "RESET enable_external_access",
        "SELECT * FROM read_csv('http://127.0.0.1:9/x.csv')",
    ]


def home_duckdb_files() -> set[str]:
    folder = pathlib.Path.home() / ".duckdb"
    if not folder.exists():
        return set()
    found = set()
    for p in folder.rglob("*"):
        found.add(str(p))
        if len(found) > 10_000:
            break
    return found


def test_sql_touching_files_network_or_settings_is_400_and_writes_nothing(server):
    sales = loaded_sales(server)
    before = snapshot(server)
    root_before = sorted(p.name for p in server.root.iterdir())
    duckdb_before = home_duckdb_files()
    sor_before = sorted(p.name for p in server.sor.rglob("*"))
    for query in file_queries(server.root, server.sor):
        r = sql(server, query)
        assert_error(r, 400)
        assert "root:" not in r.text, (query, r.text)
        r = server.post({"function": "sql", "query": query})
        assert_error(r, 400)
        r = sql(server, query, into="escape.parquet")
        assert_error(r, 400)
    assert sorted(p.name for p in server.root.iterdir()) == root_before
    assert sorted(p.name for p in server.sor.rglob("*")) == sor_before
    assert home_duckdb_files() == duckdb_before
    assert_unchanged(server, before, sales)


def test_external_access_stays_off_after_an_attempt_to_turn_it_on(server):
    loaded_sales(server)
    assert_error(sql(server, "SET enable_external_access = true"), 400)
    assert_error(sql(server, "SELECT current_setting('enable_external_access') AS v; "
                             "SET enable_external_access = true"), 400)
    r = sql(server, "SELECT current_setting('enable_external_access') AS v")
    assert frame_value(r) == [{"v": False}]
    assert_error(sql(server, "SELECT * FROM read_csv('/etc/passwd')"), 400)


@pytest.mark.parametrize("statement", [
    f'DROP TABLE "{SALES}"',
    f'DROP VIEW "{SALES}"',
    f'DELETE FROM "{SALES}"',
    f'UPDATE "{SALES}" SET x = 0',
    f'INSERT INTO "{SALES}" SELECT * FROM "{SALES}"',
    f'ALTER TABLE "{SALES}" RENAME TO gone',
    f'CREATE OR REPLACE TABLE "{SALES}" AS SELECT 1 AS id',
    f'CREATE OR REPLACE VIEW "{SALES}" AS SELECT 1 AS id',
])
def test_sql_cannot_change_a_cached_frame(server, statement):
    sales = loaded_sales(server)
    before = snapshot(server)
    r = sql(server, statement)
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    assert_error(r, r.status_code)
    assert_unchanged(server, before, sales)
    r = sql(server, f'SELECT count(*) AS n FROM "{SALES}"')
    assert frame_value(r) == [{"n": len(sales)}]


# -- not a frame ------------------------------------------------------------------------------

@pytest.mark.parametrize("function, params", [
    ("info", {}), ("cache_item_stats", {}), ("stats_cache_item", {}), ("describe", {}),
    ("tail", {}), ("shape", {}), ("columns", {}), ("dtypes", {}),
    ("select", {"columns": "a"}),
])
def test_frame_function_on_a_json_value_is_400_not_a_frame(server, function, params):
    put_sor(server, "doc.json", json.dumps([{"a": 1}, {"a": 2}]))
    assert server.get(path="doc.json").status_code == 200
    before = snapshot(server)
    assert_error(server.get(function=function, path="doc.json", **params), 400, "not_a_frame")
    assert_unchanged(server, before)


def test_sql_over_a_json_value_is_400(server):
    put_sor(server, "doc.json", json.dumps([{"a": 1}]))
    assert server.get(path="doc.json").status_code == 200
    before = snapshot(server)
    r = sql(server, 'SELECT * FROM "doc.json"')
    assert_error(r, 400)
    assert_unchanged(server, before)
    assert server.get(path="doc.json").json()["return"]["value"]["type"] == "json"


@pytest.mark.parametrize("document", ['{"a": 1}', "[1, 2, 3]", '"text"', "[[1, 2], [3, 4]]"])
def test_type_frame_on_json_that_is_not_an_array_of_records_fails_and_caches_nothing(server,
                                                                                      document):
    put_sor(server, "notrecords.json", document)
    r = server.get(function="info", path="notrecords.json", type="frame")
    assert r.status_code in (400, 422), (r.status_code, r.text)
    assert_error(r, r.status_code)
    assert_nothing_cached(server)


# -- corrupt files ----------------------------------------------------------------------------

def corrupt_files() -> dict[str, bytes]:
    good_parquet = typed_parquet(50)
    good_feather = typed_feather(50)
    csv = portable_file(50, "csv")
    return {
        "random.parquet": bytes(range(256)) * 8,
        "truncated.parquet": good_parquet[: len(good_parquet) // 2],
        "headless.parquet": good_parquet[4:],
        "magic-only.parquet": b"PAR1" + b"\x00" * 64 + b"PAR1",
        "empty.parquet": b"",
        "bad-footer.parquet": good_parquet[:-12] + b"\xff" * 8 + good_parquet[-4:],
        "ragged.csv": b"a,b\n1,2\n3,4,5,6\n7,8\n",
        "latin1.csv": b"a,b\n1,caf\xe9\n2,\xff\xfe\n",
        "unterminated.csv": b'a,b\n1,"open quote\n2,3\n',
        "notgzip.csv.gz": csv,
        "truncated.csv.gz": gzip.compress(csv)[:40],
        "broken.jsonl": b'{"a": 1}\n{"a": \n',
        "not-records.jsonl": b'{"a": 1}\n[1, 2]\n',
        "random.feather": b"ARROW1\x00\x00" + bytes(range(200)),
        "truncated.feather": good_feather[: len(good_feather) // 2],
    }


def pandas_rejects(path: pathlib.Path) -> bool:
    try:
        read_expected(path)
    except Exception:  # noqa: BLE001 - any reader error: pandas refuses the file
        return True
    return False


@pytest.mark.parametrize("key", list(corrupt_files()))
def test_corrupt_file_in_the_sor_is_422_and_not_cached(server, key):
    put_sor(server, key, corrupt_files()[key])
    assert pandas_rejects(server.sor / key), "pandas itself must refuse this file"
    for function in ("info", "head", "read"):
        r = server.get(function=function, path=key)
        if function == "head":  # telemetry of a key not cached: 404, never a load
            assert r.status_code in (404, 422), (r.status_code, r.text)
            continue
        assert_error(r, 422)
    assert_error(server.get(function="sql", query=f'SELECT * FROM "{key}"'), 422)
    assert_nothing_cached(server)


def test_corrupt_file_next_to_a_good_frame_leaves_the_good_one_cached(server):
    sales = loaded_sales(server)
    put_sor(server, "broken.parquet", b"PAR1 definitely not parquet PAR1")
    before = snapshot(server)
    assert_error(server.get(function="info", path="broken.parquet"), 422)
    r = sql(server, f'SELECT * FROM "{SALES}" JOIN "broken.parquet" USING (id)')
    assert_error(r, 422)
    assert_unchanged(server, before, sales)


# -- missing frames ---------------------------------------------------------------------------

@pytest.mark.parametrize("function, params", [
    ("info", {}), ("cache_item_stats", {}), ("describe", {}), ("tail", {}), ("shape", {}),
    ("columns", {}), ("dtypes", {}), ("select", {"columns": "a"}), ("read", {}),
])
def test_frame_that_does_not_exist_is_404(server, function, params):
    err = assert_error(server.get(function=function, path="absent.parquet", **params), 404)
    assert "absent.parquet" in err["message"]
    assert_nothing_cached(server)


def test_frame_function_without_a_path_is_400(server):
    for function in ("info", "describe", "select", "shape"):
        err = assert_error(server.get(function=function), 400, "bad_request")
        assert "path" in err["message"], (function, err)
    assert_nothing_cached(server)


# -- result limit -----------------------------------------------------------------------------

def big_frame_server(make_server):
    server = make_server(env={"ASIDE_RESULT_LIMIT": "64KiB"})
    put_sor(server, "big.parquet", typed_parquet(5000))
    want = read_expected(server.sor / "big.parquet")
    assert frame_value(server.get(function="shape", path="big.parquet")) == list(want.shape)
    return server, want


def test_a_small_result_under_the_limit_is_answered(make_server):
    server, want = big_frame_server(make_server)
    assert_rows_match(frame_value(server.get(function="head", path="big.parquet", n=10)),
                      want.head(10))
    got = frame_value(server.get(function="sql", query='SELECT count(*) AS n FROM "big.parquet"'))
    assert got == [{"n": 5000}]


@pytest.mark.parametrize("function, params", [
    ("head", {"n": 5000}),
    ("tail", {"n": 4000}),
    ("select", {"columns": "i64,text,ts_ny"}),
    ("sql", {"query": 'SELECT * FROM "big.parquet"'}),
    ("sql", {"query": 'SELECT * FROM "big.parquet"', "format": "arrow", "return": "data"}),
    ("sql", {"query": 'SELECT * FROM "big.parquet"', "format": "csv", "return": "data"}),
    ("select", {"format": "parquet", "return": "data"}),
])
def test_a_result_over_the_limit_is_413_too_large_and_changes_nothing(make_server, function,
                                                                       params):
    server, _ = big_frame_server(make_server)
    before = snapshot(server)
    if function != "sql":
        params = {"path": "big.parquet", **params}
    r = server.get(function=function, **params)
    assert_error(r, 413, "too_large")
    assert snapshot(server) == before


@pytest.mark.parametrize("function, fmt", [("head", "arrow"), ("tail", "arrow"),
                                         ("head", "parquet")])
def test_rows_of_a_cached_frame_over_the_limit_go_out_as_arrow_or_parquet(make_server, function,
                                                                         fmt):
    """README: head and tail are bounded as JSON or CSV only; as Arrow or Parquet they are
    sent from the frame's memory (a SQL or select result is bounded in every format)."""
    server, want = big_frame_server(make_server)
    r = server.get(function=function, path="big.parquet", n=4000, format=fmt,
                   **{"return": "data"})
    assert r.status_code == 200, r.text[:500]
    got = (pa.ipc.open_stream(r.content).read_pandas() if fmt == "arrow"
           else pd.read_parquet(io.BytesIO(r.content)))
    rows = want.head(4000) if function == "head" else want.tail(4000)
    assert len(got) == len(rows) == 4000
    assert list(got.columns) == list(want.columns)


def test_a_result_over_the_limit_is_stored_with_into(make_server):
    server, want = big_frame_server(make_server)
    value = frame_value(server.get(function="sql", query='SELECT * FROM "big.parquet"',
                                   into="copy.parquet"))
    assert value == {"result": "success", "path": "copy.parquet", "rows": 5000,
                     "columns": len(want.columns)}
    assert "copy.parquet" in cached_keys(server)
    assert frame_value(server.get(function="shape", path="copy.parquet")) == list(want.shape)
    assert_rows_match(frame_value(server.get(function="tail", path="copy.parquet", n=4)),
                      want.tail(4))
    assert_error(server.get(function="head", path="copy.parquet", n=5000), 413, "too_large")


def test_result_limit_applies_to_post_bodies_too(make_server):
    server, _ = big_frame_server(make_server)
    before = snapshot(server)
    r = server.post({"function": "sql", "query": 'SELECT * FROM "big.parquet"'})
    assert_error(r, 413, "too_large")
    assert snapshot(server) == before
