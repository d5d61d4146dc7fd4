"""Frames and the cache's budgets: a frame counts in memory at its decoded size, eviction drops
it to the disk tier (from where it is decoded again), a frame larger than memory is refused
without leaving anything behind, restarts are warm, and writes of frames validate first."""
from __future__ import annotations


import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq

from helpers import (assert_error, assert_nothing_cached, disk_values, entry, parquet_bytes, put_sor,
                     telemetry)
from frame_data import PANDAS

ROWS = 50_000


def frame(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.integers(0, 1000, ROWS), "y": rng.random(ROWS),
                         "g": rng.choice(["a", "b", "c"], ROWS)})


def info(server, key, **params):
    r = server.get(function="info", key=key, pandas=PANDAS, **params)
    assert r.status_code == 200, r.text
    return r.json()["return"]["value"]


def test_frame_memory_is_counted_at_its_decoded_size(server):
    raw = put_sor(server, "a.parquet", parquet_bytes(frame(1)))
    info(server, "a.parquet")
    t = telemetry(server)
    # x and y: 16 bytes a row; g: at least an offset and a byte a row
    assert t["memory"]["used_bytes"] >= ROWS * (16 + 5)
    assert t["memory"]["used_bytes"] != len(raw)
    assert entry(server, "a.parquet")["tier"] == "memory"


def test_eviction_drops_a_frame_to_disk_and_it_decodes_again(make_server):
    one = frame(1)
    probe = make_server()
    put_sor(probe, "a.parquet", parquet_bytes(one))
    info(probe, "a.parquet")
    frame_bytes = telemetry(probe)["memory"]["used_bytes"]
    probe.stop()
    # room for one frame, not two
    server = make_server(env={"ASIDE_MEMORY_LIMIT": str(frame_bytes * 3 // 2)})
    put_sor(server, "a.parquet", parquet_bytes(one))
    put_sor(server, "b.parquet", parquet_bytes(frame(2)))
    first = info(server, "a.parquet")
    info(server, "b.parquet")
    t = telemetry(server)
    assert t["memory"]["used_bytes"] <= frame_bytes * 3 // 2
    assert t["evictions"]["memory"] >= 1
    assert entry(server, "a.parquet")["tier"] == "disk"
    r = server.get(function="info", key="a.parquet", pandas=PANDAS)
    assert r.status_code == 200 and r.json()["return"]["value"] == first
    assert telemetry(server)["sor_fetches"] == 2


def test_a_frame_larger_than_memory_is_refused_and_nothing_is_kept(make_server):
    server = make_server(env={"ASIDE_MEMORY_LIMIT": "256KiB"})
    put_sor(server, "big.parquet", parquet_bytes(frame(3)))
    assert_error(server.get(function="info", key="big.parquet"), 413, "too_large")
    assert_nothing_cached(server)


def test_a_restart_answers_from_the_disk_tier_without_the_sor(server):
    feather.write_feather(frame(4), server.sor / "a.feather", compression="zstd")
    before = info(server, "a.feather")
    (server.sor / "a.feather").unlink()
    server.restart()
    assert info(server, "a.feather") == before
    assert telemetry(server)["sor_fetches"] == 0


def test_writing_a_frame_validates_it_before_the_sor_is_touched(server):
    body = parquet_bytes(frame(5))
    r = server.call("POST", params={"function": "write", "path": "w.parquet"}, data=body)
    assert r.status_code == 200, r.text
    assert (server.sor / "w.parquet").read_bytes() == body
    assert info(server, "w.parquet")["entries"] == ROWS
    bad = server.call("POST", params={"function": "write", "path": "w.parquet"},
                      data=b"PAR1 this is no parquet file")
    assert_error(bad, 422)
    assert (server.sor / "w.parquet").read_bytes() == body
    assert info(server, "w.parquet")["entries"] == ROWS


def test_a_json_array_is_a_frame_only_when_asked(server):
    put_sor(server, "rows.json", '[{"a": 1, "s": "x"}, {"a": 2, "s": null}]')
    r = server.get(function="info", key="rows.json")
    assert_error(r, 400, "not_a_frame")
    value = info(server, "rows.json", type="frame")
    expected = pd.read_json(server.sor / "rows.json")
    assert [c["dtype"] for c in value["columns"]] == [str(t) for t in expected.dtypes]
    assert [c["non_null"] for c in value["columns"]] == expected.notna().sum().tolist()


def test_an_arrow_read_is_the_frame_pyarrow_wrote(server):
    df = frame(6)
    pq.write_table(pa.Table.from_pandas(df), server.sor / "p.parquet", row_group_size=7_000)
    r = server.call("GET", params={"function": "read", "key": "p.parquet", "return": "data"},
                    headers={"Accept": "application/vnd.apache.arrow.stream"})
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/vnd.apache.arrow.stream"
    got = pa.ipc.open_stream(r.content).read_pandas()
    pd.testing.assert_frame_equal(got, pd.read_parquet(server.sor / "p.parquet"))
    assert disk_values(server) == ["p.parquet"]


def test_queries_racing_evictions_answer_right_and_leak_nothing(make_server):
    """Frames are evicted while queries scan them: a scan keeps its frame alive to the end."""
    from concurrent.futures import ThreadPoolExecutor

    frames = {f"r{i}.parquet": frame(10 + i) for i in range(3)}
    probe = make_server()
    put_sor(probe, "r0.parquet", parquet_bytes(frames["r0.parquet"]))
    info(probe, "r0.parquet")
    one = telemetry(probe)["memory"]["used_bytes"]
    probe.stop()
    server = make_server(env={"ASIDE_MEMORY_LIMIT": str(one * 3 // 2)})
    for key, df in frames.items():
        put_sor(server, key, parquet_bytes(df))
    want = {key: int(df["x"].sum()) for key, df in frames.items()}

    def ask(i: int) -> tuple[str, int]:
        key = f"r{i % 3}.parquet"
        r = server.get(function="sql", query=f'SELECT sum(x) AS s FROM "{key}"')
        assert r.status_code == 200, r.text
        return key, r.json()["return"]["value"][0]["s"]

    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(ask, range(60)))
    assert all(s == want[key] for key, s in answers)
    assert telemetry(server)["evictions"]["memory"] >= 1
    assert telemetry(server)["memory"]["used_bytes"] <= one * 3 // 2
