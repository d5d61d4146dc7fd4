#!/usr/bin/env python3
"""frames_vs_pandas.py -- aside's frames (DataFrames held in the cache) against pandas, same run.

  make bench-frames
  .venv/bin/python bench/frames_vs_pandas.py [--gib 1.0 | --rows N] [--repeat 5] [--seed 0]

On 127.0.0.1 only. Generates (seeded numpy) one DataFrame of about --gib GiB as pandas counts it
(df.memory_usage(deep=True).sum()): int64 columns (id, a, b), float64 columns (x, y, z; z with
1% NaN), a low-cardinality string column g (100 distinct values) and a higher-cardinality string
column s (drawn from 1,000,000 distinct values, 1% None). pandas writes it as parquet (snappy)
into aside's system of record; then aside-server starts on an empty disk tier and, in one run:

  1. info      pandas: pd.read_parquet(path) + df.info(buf=io.StringIO())
               aside:  GET function=info&key=K, warm (frame in memory), over HTTP with a
                       requests.Session (keep-alive), JSON parsed.   Target: aside >= 10x faster.
               Also, once: aside's cold first info (reads the file from the SOR, decodes it into
               memory) against pandas' read_parquet + info, for information.
  2. groupby   pandas: df.groupby("g")["x"].mean() on the loaded frame; and the "fresh process"
                       case, pd.read_parquet(path) + the same groupby (also, for information,
                       read_parquet of the two columns only + groupby).
               aside:  GET function=sql&query=SELECT g, avg(x) FROM "K" GROUP BY g, warm.
               Ratios reported (pandas time / aside time), no target.
  3. arrow     aside:  GET function=read&key=K&return=data&format=arrow: the whole frame as an
                       Arrow IPC stream. Throughput = body bytes / seconds from sending the request
                       to the last byte, read with http.client readinto() into one reused 8 MiB
                       buffer and discarded (the least a Python client can do: this measures the
                       server and the loopback, not the client's copies). Also, for information:
                       pyarrow.ipc.open_stream(body).read_pandas() of one kept body, and that
                       plus the transfer, against pd.read_parquet(path).

Before anything is timed, the answers are checked and a wrong one stops the benchmark (exit 1):
info's entries, per-column names, dtypes and non-null counts, memory_usage_bytes and the text
must equal what pandas' df.info() says of pd.read_parquet(path); every group's avg(x) must equal
pandas' mean within 1e-9 relative; the Arrow stream must decode to a frame equal to
pd.read_parquet(path).

Every timed measurement runs --repeat times (rounds alternate which side goes first) and the
median is reported; the cold load happens once per run, by definition. Ratios are
pandas time / aside time (> 1: aside is faster). The final table lists every ratio and whether
its target is met. Exits 0 when everything ran and every answer was right, whatever the ratios
(a benchmark reports, it does not assert); 1 otherwise (including if aside does not exit cleanly,
status 0, on SIGTERM).

Environment (passed to aside; the output says what was used):
  ASIDE_SERVER        the server binary, relative to the repository root [build/aside-server]
  ASIDE_THREADS       event-loop threads [number of cores]
  ASIDE_MEMORY_LIMIT  [8GiB, or more if the frame needs it]

Memory: the benchmark process holds up to about four copies of the frame at once (the reference
frame, one being read, the kept Arrow body and its decoded frame) and aside one (in Arrow's
layout): it refuses to start when /proc/meminfo's MemAvailable is under about 6x --gib. Disk:
the parquet file and aside's disk-tier copy of it. Everything it starts is stopped on exit
(SIGTERM, then a wait), including on failure and Ctrl-C; its files live in a temporary directory
that is removed at the end.
"""
from __future__ import annotations

import argparse
import gc
import io
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from aside_process import (BenchError, BenchRun, LocalAside, core_count,  # noqa: E402
                           install_signal_handlers, modules, positive_int, print_facts,
                           print_problems, run_facts, server_binary, server_version)
from bench_common import (add_size_arguments, alternate, check_means,  # noqa: E402
                          describe_frame, frame_env, frame_file, human, info_text, med, secs,
                          timed)

PROG = "frames_vs_pandas"
KEY = "frames_vs_pandas.parquet"
INFO_TARGET = 10.0              # aside warm info at least this many times faster than pandas
REL = 1e-9                      # relative tolerance of the group means
CHUNK = 8 << 20                 # the reused read buffer of the Arrow throughput runs
STOP_TIMEOUT = 20.0             # seconds for aside to exit on SIGTERM before SIGKILL
CALL_TIMEOUT = 120.0            # seconds a warm call may see no byte
COLD_TIMEOUT = 900.0            # seconds the cold load may take
MEMORY_FACTOR = 6               # MemAvailable needed, in frame sizes


# -- aside -------------------------------------------------------------------------------------

class Aside(LocalAside):
    """aside-server on 127.0.0.1 with a directory as its system of record."""

    def __init__(self, exe: str, tmp: str, env_extra: dict[str, str]) -> None:
        super().__init__(exe, tmp, env_extra, PROG, STOP_TIMEOUT)

    def arrow_target(self) -> str:
        return self.target(function="read", key=KEY, **{"return": "data", "format": "arrow"})


# -- checks ------------------------------------------------------------------------------------

def check_info(value: dict, df) -> None:
    """aside's info equals pandas' df.info() of the same file; raises BenchError otherwise."""
    wrong = []
    if value.get("entries") != len(df):
        wrong.append(f"entries {value.get('entries')} != {len(df)}")
    want_cols = [{"name": str(c), "non_null": int(df[c].notna().sum()), "dtype": str(df[c].dtype)}
                 for c in df.columns]
    got_cols = [{k: c.get(k) for k in ("name", "non_null", "dtype")}
                for c in value.get("columns", [])]
    if got_cols != want_cols:
        for g, w in zip(got_cols, want_cols):
            if g != w:
                wrong.append(f"column {w['name']}: aside {g}, pandas {w}")
        if len(got_cols) != len(want_cols):
            wrong.append(f"{len(got_cols)} columns, pandas has {len(want_cols)}")
    memory = int(df.memory_usage(index=True, deep=False).sum())
    if value.get("memory_usage_bytes") != memory:
        wrong.append(f"memory_usage_bytes {value.get('memory_usage_bytes')} != pandas' {memory}")
    text = info_text(df)
    if value.get("text") != text:
        wrong.append("text differs:\n--- aside\n" + str(value.get("text")) + "\n--- pandas\n" + text)
    if wrong:
        raise BenchError("aside's info differs from pandas':\n  " + "\n  ".join(wrong))


def sql_means(records) -> dict[str, float]:
    if not isinstance(records, list) or not records:
        raise BenchError(f"aside: sql answered no records: {str(records)[:300]}")
    out = {}
    for r in records:
        other = [k for k in r if k != "g"]
        if "g" not in r or len(other) != 1:
            raise BenchError(f"aside: sql record without g and one mean: {r}")
        out[r["g"]] = r[other[0]]
    return out


# -- main --------------------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description="aside's frames (info, sql, Arrow reads) against "
                                             "pandas on the same parquet file")
    add_size_arguments(ap, "rows of the frame (instead of --gib)")
    ap.add_argument("--repeat", type=positive_int, default=5,
                    help="timed rounds of every measurement; medians are reported [5]")
    ap.add_argument("--seed", type=int, default=0, help="numpy seed of the frame [0]")
    args = ap.parse_args()

    exe, exe_path = server_binary(PROG)
    np, pd, pa, _, requests = modules(PROG, ("numpy", "pandas", "pyarrow", "pyarrow.ipc",
                                             "requests"), "pandas pyarrow requests")

    interrupted = install_signal_handlers(PROG)

    cores = core_count()
    rows, size_arg, aside_env = frame_env(args, cores, "8GiB", 3 << 30, 3)
    facts = run_facts(exe, aside_env, f"bench/frames_vs_pandas.py {size_arg} --repeat "
                      f"{args.repeat} --seed {args.seed}", cores)
    facts["aside"] = (f"{server_version(exe_path)}, {aside_env['ASIDE_THREADS']} threads, "
                      f"memory limit {aside_env['ASIDE_MEMORY_LIMIT']}")
    facts["pandas"] = (f"pandas {pd.__version__}, pyarrow {pa.__version__}, numpy "
                       f"{np.__version__}, requests {requests.__version__}, Python "
                       f"{sys.version.split()[0]}")

    print(f"aside frames vs pandas, {rows:,} rows, --repeat {args.repeat}")
    with BenchRun(PROG, interrupted, "aside-frames-") as run:
        tmp = run.tmp
        # -- the file --------------------------------------------------------------------------
        aside = run.aside = Aside(exe_path, tmp, aside_env)
        path = os.path.join(aside.sor, KEY)
        _, file_size = frame_file(path, rows, args.seed, MEMORY_FACTOR, 2,
                                  "aside's disk tier copy")

        # The reference: what pandas reads from the file (also warms the page cache for both).
        ref = pd.read_parquet(path)
        ref_deep = int(ref.memory_usage(index=True, deep=True).sum())
        ref_text = info_text(ref)
        facts["frame"] = (f"{describe_frame(rows, ref_deep)}, "
                          f"{ref_text.strip().splitlines()[-1]}; parquet snappy {human(file_size)}")

        aside.start()
        print(f"  aside listening on 127.0.0.1:{aside.port} ({facts['aside']}), cache empty")
        print()

        # -- 1. info ---------------------------------------------------------------------------
        print("1. info")
        cold_s, cold_value = timed(lambda: aside.value(COLD_TIMEOUT, function="info", key=KEY))
        check_info(cold_value, ref)
        warm_value = aside.value(CALL_TIMEOUT, function="info", key=KEY)
        if warm_value != cold_value:
            raise BenchError("aside: the warm info differs from the cold one")
        print(f"  aside cold info (load from the SOR): {secs(cold_s)}; answer equals pandas' "
              "df.info() (entries, columns, non-null counts, dtypes, memory_usage_bytes, text)")
        used = aside.value(CALL_TIMEOUT, function="head").get("memory", {}).get("used_bytes")
        if isinstance(used, int):
            facts["frame"] += f"; {human(used)} in aside's memory (Arrow layout)"
            print(f"  aside's memory holds {human(used)} ({used:,} bytes) after the load")

        def pandas_info():
            d = pd.read_parquet(path)
            d.info(buf=io.StringIO())
            return d

        def aside_info():
            return aside.value(CALL_TIMEOUT, function="info", key=KEY)

        t_info = alternate(args.repeat, {"pandas read_parquet+info": pandas_info,
                                         "aside info": aside_info}, "info")
        p_info, a_info = med(t_info["pandas read_parquet+info"]), med(t_info["aside info"])
        print()

        # -- 2. groupby ------------------------------------------------------------------------
        print("2. groupby mean")
        query = f'SELECT g, avg(x) FROM "{KEY}" GROUP BY g'
        want = ref.groupby("g")["x"].mean()
        check_means(sql_means(aside.value(CALL_TIMEOUT, function="sql", query=query)), want,
                    "sql groups", REL, (int, float))
        print(f"  aside sql answers {len(want)} groups, each mean within {REL:g} of pandas'")

        def pandas_groupby():
            return ref.groupby("g")["x"].mean()

        def pandas_read_groupby():
            return pd.read_parquet(path).groupby("g")["x"].mean()

        def pandas_read2_groupby():
            return pd.read_parquet(path, columns=["g", "x"]).groupby("g")["x"].mean()

        def aside_sql():
            return aside.value(CALL_TIMEOUT, function="sql", query=query)

        t_gb = alternate(args.repeat, {"pandas groupby": pandas_groupby,
                                       "pandas read_parquet+groupby": pandas_read_groupby,
                                       "pandas read_parquet(g,x)+groupby": pandas_read2_groupby,
                                       "aside sql": aside_sql}, "groupby")
        p_gb = med(t_gb["pandas groupby"])
        p_rgb = med(t_gb["pandas read_parquet+groupby"])
        p_r2gb = med(t_gb["pandas read_parquet(g,x)+groupby"])
        a_sql = med(t_gb["aside sql"])
        print()

        # -- 3. arrow --------------------------------------------------------------------------
        print("3. the whole frame as an Arrow stream over HTTP")
        body, keep_s = aside.arrow_body(aside.arrow_target(), CALL_TIMEOUT, CHUNK)
        body_bytes = len(body)
        got = pa.ipc.open_stream(body).read_pandas()
        try:
            pd.testing.assert_frame_equal(got, ref, check_exact=True)
        except AssertionError as e:
            raise BenchError(f"aside: the Arrow stream is not pd.read_parquet(file): {e}") from None
        del got
        gc.collect()
        print(f"  {human(body_bytes)} body; open_stream().read_pandas() equals "
              f"pd.read_parquet(file)")
        heads, streams = [], []
        for i in range(args.repeat):
            gc.collect()
            n, t_head, seconds = aside.arrow_discard(aside.arrow_target(), CALL_TIMEOUT, CHUNK)
            if n != body_bytes:
                raise BenchError(f"aside: Arrow body of {n} bytes, earlier {body_bytes}")
            heads.append(t_head)
            streams.append(seconds)
            print(f"  arrow round {i + 1}/{args.repeat}: {secs(seconds)}, "
                  f"{n / seconds / 1e9:.2f} GB/s (headers after {secs(t_head)})", flush=True)

        def arrow_decode():
            return pa.ipc.open_stream(body).read_pandas()

        def pandas_read():
            return pd.read_parquet(path)

        t_dec = alternate(args.repeat, {"pyarrow read_pandas(stream)": arrow_decode,
                                        "pandas read_parquet": pandas_read}, "decode")
        a_stream, a_head = med(streams), med(heads)
        a_dec = med(t_dec["pyarrow read_pandas(stream)"])
        p_read = med(t_dec["pandas read_parquet"])
        del body
        gc.collect()

        if not aside.alive():
            raise BenchError("aside exited during the measurements")

        # -- the report ------------------------------------------------------------------------
        info_ratio = p_info / a_info
        rows_out = [
            ("info, warm: read_parquet+info / aside info", p_info, a_info, info_ratio,
             f">= {INFO_TARGET:g}x", "met" if info_ratio >= INFO_TARGET else
             f"MISSED by {(1 - info_ratio / INFO_TARGET) * 100:.0f}%"),
            ("info, cold (1 sample): read_parquet+info / aside first info", p_info, cold_s,
             p_info / cold_s, "-", "informative"),
            ("groupby on the loaded df / aside sql", p_gb, a_sql, p_gb / a_sql, "-",
             "informative"),
            ("read_parquet+groupby / aside sql", p_rgb, a_sql, p_rgb / a_sql, "-", "informative"),
            ("read_parquet(g,x)+groupby / aside sql", p_r2gb, a_sql, p_r2gb / a_sql, "-",
             "informative"),
            ("read_parquet / Arrow over HTTP + read_pandas", p_read, a_stream + a_dec,
             p_read / (a_stream + a_dec), "-", "informative"),
            ("read_parquet / read_pandas of the Arrow body", p_read, a_dec, p_read / a_dec, "-",
             "informative"),
        ]
        print()
        print(f"results (medians of {args.repeat}; ratio = pandas time / aside time, > 1: aside "
              "is faster)")
        print()
        w = max(len(r[0]) for r in rows_out)
        print(f"  {'comparison':<{w}}  {'pandas':>10}  {'aside':>10}  {'ratio':>9}  "
              f"{'target':>7}  ")
        print("  " + "-" * (w + 56))
        for name, p, a, ratio, target, verdict in rows_out:
            print(f"  {name:<{w}}  {secs(p):>10}  {secs(a):>10}  {ratio:8.2f}x  {target:>7}  "
                  f"{verdict}")
        print()
        print(f"  aside Arrow stream of the whole frame: {human(body_bytes)} ({body_bytes:,} "
              f"bytes) in {secs(a_stream)}: {body_bytes / a_stream / 1e9:.2f} GB/s "
              f"(10^9 B/s; http.client readinto() into a reused 8 MiB buffer, discarded; "
              f"headers after {secs(a_head)}); one read kept into a bytearray: {secs(keep_s)}, "
              f"{body_bytes / keep_s / 1e9:.2f} GB/s")
        print(f"  pyarrow open_stream(body).read_pandas(): {secs(a_dec)}; pd.read_parquet: "
              f"{secs(p_read)}")
        print()
        print_facts(facts, ("reproduce", "date", "machine", "aside", "pandas", "frame"))
        print_problems(aside.problems())
    return run.status


if __name__ == "__main__":
    sys.exit(main())
