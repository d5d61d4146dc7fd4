"""What SQL may use: DuckDB spills into the disk tier (LOCAL_DATA_DIR/.aside/duckdb-tmp), never
into the server's working folder, within 10% of ASIDE_DISK_LIMIT; it runs on ASIDE_SQL_THREADS
threads; a query past ASIDE_SQL_TIMEOUT is 504 even in the middle of a spilling sort, and leaves
neither spilled blocks nor a busy CPU behind.

Each server here runs in a working folder of its own, so what DuckDB would write next to the
process (its default ./.tmp) can be seen. The queries generate their rows with range(), so no
large file is needed to make DuckDB sort more than its memory holds."""
from __future__ import annotations

import os
import pathlib
import re
import threading
import time

import numpy as np
import pandas as pd

from helpers import RESERVED, SERVER_BINARY, assert_error, ok, parquet_bytes, put_sor, telemetry

MIB = 1 << 20
MEMORY_LIMIT = 256 * MIB
# DuckDB's two databases may each take 25% of the memory budget, at least 128 MiB; the rest is
# the process itself (code, DuckDB's and the sanitizers' own allocations, thread stacks)
DUCKDB_MEMORY = 2 * 128 * MIB
OVERHEAD = 512 * MIB
# a sort of md5 strings: rows * ~50 bytes, far more than DuckDB's 128 MiB, so it spills
SORT = ("SELECT count(*) AS n, min(h) AS first FROM "
        "(SELECT x, md5(x::VARCHAR) AS h FROM range({rows}) t(x) ORDER BY h)")
SPILLING_ROWS = 5_000_000
ENDLESS_ROWS = 1_000_000_000  # never done within any deadline here
QUERY_TIMEOUT_S = 280  # of the HTTP request, below the test's own limit
IDLE_WAIT_S = 30.0     # bounds of the waits for the server to settle
POLL_S = 0.05


def start_in_folder(make_server, tmp_path: pathlib.Path, env: dict[str, str]):
    """A server whose working folder is an empty folder of the test's (returned too)."""
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    server = make_server(env={"ASIDE_MEMORY_LIMIT": str(MEMORY_LIMIT), **env}, start=False)
    # sh -c SCRIPT $0 $1 $2...: the binary (absolute), the folder, then the server's own command
    server.prefix = ["/bin/sh", "-c", 'cd "$1" && shift 2 && exec "$0" "$@"',
                     str(SERVER_BINARY.resolve()), str(workdir)]
    return server.start(), workdir


def spill_folder(server) -> pathlib.Path:
    return server.cache / RESERVED / "duckdb-tmp"


def spill_files(server) -> list[str]:
    root = spill_folder(server)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def run_sql(server, query: str):
    return server.session.get(server.api, params={"function": "sql", "query": query},
                              timeout=QUERY_TIMEOUT_S)


def proc_status(pid: int, field: str) -> int:
    text = pathlib.Path(f"/proc/{pid}/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+)", text, re.M).group(1))


def cpu_ticks(pid: int) -> int:
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + IDLE_WAIT_S
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(POLL_S)
    raise AssertionError(f"the server did not settle: {what}")


def cpu_is_idle(pid: int) -> bool:
    """Less than a tenth of a core used over half a second."""
    before = cpu_ticks(pid)
    time.sleep(0.5)
    return (cpu_ticks(pid) - before) * 100 // os.sysconf("SC_CLK_TCK") < 5


class SpillWatcher:
    """Polls, while a query runs, what the spill folder and telemetry's sql.spill_bytes hold."""

    def __init__(self, server) -> None:
        self.server = server
        self.files_seen: set[str] = set()
        self.peak_reported = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run)

    def run(self) -> None:
        import requests
        session = requests.Session()
        while not self.stop.is_set():
            self.files_seen.update(spill_files(self.server))
            r = session.get(self.server.api, params={"function": "head"}, timeout=30)
            if r.status_code == 200:
                sql = r.json()["return"]["value"]["sql"]
                self.peak_reported = max(self.peak_reported, sql["spill_bytes"])
            self.stop.wait(POLL_S)
        session.close()

    def __enter__(self) -> "SpillWatcher":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(timeout=60)


def assert_nothing_left(server, workdir: pathlib.Path) -> None:
    assert list(workdir.iterdir()) == [], "DuckDB wrote into the server's working folder"
    wait_until(lambda: spill_files(server) == [], "spilled blocks left in the disk tier")
    assert telemetry(server)["sql"]["spill_bytes"] == 0


# -- where DuckDB spills ------------------------------------------------------------------------

def test_a_sort_larger_than_duckdb_memory_spills_into_the_disk_tier_not_the_working_folder(
        make_server, tmp_path):
    server, workdir = start_in_folder(make_server, tmp_path, {"ASIDE_SQL_TIMEOUT": "240"})
    with SpillWatcher(server) as watcher:
        r = run_sql(server, SORT.format(rows=SPILLING_ROWS))
    assert ok(r)[0]["n"] == SPILLING_ROWS
    assert watcher.files_seen, "the sort did not spill into LOCAL_DATA_DIR/.aside/duckdb-tmp"
    assert all(name.startswith("query/") for name in watcher.files_seen), watcher.files_seen
    assert watcher.peak_reported > 0, "telemetry did not show the spill"
    assert_nothing_left(server, workdir)
    assert proc_status(server.proc.pid, "VmHWM") * 1024 < MEMORY_LIMIT + DUCKDB_MEMORY + OVERHEAD


def test_spilling_is_bounded_by_a_share_of_the_disk_limit(make_server, tmp_path):
    disk_limit = 64 * MIB
    server, workdir = start_in_folder(make_server, tmp_path,
                                      {"ASIDE_DISK_LIMIT": str(disk_limit),
                                       "ASIDE_SQL_TIMEOUT": "240"})
    assert telemetry(server)["sql"]["spill_limit_bytes"] == disk_limit // 100 * 10 // 2 * 2
    r = run_sql(server, SORT.format(rows=SPILLING_ROWS))
    err = assert_error(r, 413, "too_large")
    assert "spill space" in err["message"], err
    assert_nothing_left(server, workdir)


def test_spill_blocks_a_killed_server_left_are_removed_at_start(make_server, tmp_path):
    server, _ = start_in_folder(make_server, tmp_path, {})
    left = spill_folder(server) / "query" / "duckdb_temp_storage_S32K-0.tmp"
    server.kill()
    left.write_bytes(b"\0" * 4096)
    server.start()
    assert spill_files(server) == []


# -- the deadline -------------------------------------------------------------------------------

def test_a_spilling_query_past_its_deadline_is_504_and_leaves_nothing_behind(make_server,
                                                                            tmp_path):
    server, workdir = start_in_folder(make_server, tmp_path, {"ASIDE_SQL_TIMEOUT": "2"})
    r = run_sql(server, SORT.format(rows=ENDLESS_ROWS))
    assert_error(r, 504, "timeout")
    pid = server.proc.pid
    wait_until(lambda: cpu_is_idle(pid), "the interrupted query kept a CPU busy")
    assert_nothing_left(server, workdir)
    assert proc_status(pid, "VmHWM") * 1024 < MEMORY_LIMIT + DUCKDB_MEMORY + OVERHEAD
    # the engine is whole: the next query runs
    assert ok(run_sql(server, "SELECT 42 AS answer")) == [{"answer": 42}]


def test_a_join_past_its_deadline_is_504(make_server, tmp_path):
    server, workdir = start_in_folder(make_server, tmp_path, {"ASIDE_SQL_TIMEOUT": "2"})
    r = run_sql(server, f"SELECT count(*) AS n FROM range({ENDLESS_ROWS}) a(x) JOIN "
                        f"(SELECT x AS y, md5(x::VARCHAR) AS h FROM range({ENDLESS_ROWS}) t(x)) b "
                        "ON a.x = b.y")
    assert_error(r, 504, "timeout")
    wait_until(lambda: cpu_is_idle(server.proc.pid), "the interrupted query kept a CPU busy")
    assert_nothing_left(server, workdir)


def test_describe_is_held_to_the_sql_deadline(make_server, tmp_path):
    # memory enough that describe's queries need not spill: only the deadline stops them
    server, workdir = start_in_folder(make_server, tmp_path, {"ASIDE_SQL_TIMEOUT": "1",
                                                              "ASIDE_MEMORY_LIMIT": "2GiB"})
    i = np.arange(1_000_000)
    wide = pd.DataFrame({f"s{k}": pd.util.hash_array(i * (k + 7)).astype(str) for k in range(4)})
    put_sor(server, "wide.parquet", parquet_bytes(wide, index=False))
    ok(server.get(function="info", key="wide.parquet"))
    r = server.session.get(server.api, params={"function": "describe", "key": "wide.parquet",
                                               "include": "all"}, timeout=QUERY_TIMEOUT_S)
    assert_error(r, 504, "timeout")
    wait_until(lambda: cpu_is_idle(server.proc.pid), "the interrupted describe kept a CPU busy")


# -- threads ------------------------------------------------------------------------------------

def test_sql_threads_sets_the_threads_of_each_of_duckdbs_two_databases(make_server, tmp_path):
    counts = {}
    for threads in (1, 3):
        server = make_server(env={"ASIDE_SQL_THREADS": str(threads)},
                             root=tmp_path / f"threads{threads}")
        counts[threads] = len(os.listdir(f"/proc/{server.proc.pid}/task"))
        server.stop()
    # DuckDB starts threads - 1 workers per database (the caller's thread is the other)
    assert counts[3] - counts[1] == 2 * (3 - 1), counts
