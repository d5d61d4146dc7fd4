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
import http.client
import io
import math
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from aside_process import (AsideProcess, BenchError, core_count, env_line,  # noqa: E402
                           failure, install_signal_handlers, loopback_env, machine, positive_int,
                           print_log_tail, print_problems, server_binary, server_version, utc_now)

PROG = "frames_vs_pandas"
API = "/cache/api/v1.0/"
KEY = "frames_vs_pandas.parquet"
ARROW_STREAM = "application/vnd.apache.arrow.stream"
INFO_TARGET = 10.0              # aside warm info at least this many times faster than pandas
REL = 1e-9                      # relative tolerance of the group means
GROUPS = 100                    # distinct values of g
S_POOL = 1_000_000              # distinct values of s
CHUNK = 8 << 20                 # the reused read buffer of the Arrow throughput runs
STOP_TIMEOUT = 20.0             # seconds for aside to exit on SIGTERM before SIGKILL
CALL_TIMEOUT = 120.0            # seconds a warm call may see no byte
COLD_TIMEOUT = 900.0            # seconds the cold load may take
MEMORY_FACTOR = 6               # MemAvailable needed, in frame sizes


def positive_float(text: str) -> float:
    try:
        x = float(text)
    except ValueError:
        x = 0.0
    if not x > 0 or not math.isfinite(x):
        raise argparse.ArgumentTypeError(f"not a positive number: {text!r}")
    return x


def human(n: float) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{int(n)} B"


def secs(s: float) -> str:
    if s >= 1:
        return f"{s:.3f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.2f} ms"
    return f"{s * 1e6:.0f} µs"


def mem_available() -> int:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            m = re.search(r"^MemAvailable:\s+(\d+) kB", f.read(), re.M)
        return int(m.group(1)) * 1024 if m else 0
    except OSError:
        return 0


# -- the frame ---------------------------------------------------------------------------------

def make_frame(rows: int, seed: int):
    """The benchmark's frame: rows rows, the same for the same seed."""
    import numpy as np
    import pandas as pd
    rng = np.random.default_rng(seed)
    groups = np.array([f"group-{k:03d}" for k in range(GROUPS)], dtype=object)
    pool = np.array([f"user-{k:07d}-{h:08x}" for k, h in
                     enumerate(rng.integers(0, 1 << 32, S_POOL))], dtype=object)
    z = rng.normal(0.0, 1.0, rows)
    z[rng.random(rows) < 0.01] = np.nan
    s = pool[rng.integers(0, S_POOL, rows)]
    s[rng.random(rows) < 0.01] = None
    return pd.DataFrame({
        "id": np.arange(rows, dtype=np.int64),
        "a": rng.integers(-1_000_000, 1_000_000, rows, dtype=np.int64),
        "b": rng.integers(0, 1 << 40, rows, dtype=np.int64),
        "x": rng.normal(100.0, 30.0, rows),     # the grouped column: means far from 0
        "y": rng.random(rows),
        "z": z,
        "g": groups[rng.integers(0, GROUPS, rows)],
        "s": s,
    })


def rows_for(gib: float, seed: int) -> int:
    """Rows that make about gib GiB (deep), from a sample's bytes per row."""
    sample = make_frame(200_000, seed)
    per_row = sample.memory_usage(index=True, deep=True).sum() / len(sample)
    return max(1000, int(gib * (1 << 30) / per_row))


def info_text(df) -> str:
    buf = io.StringIO()
    df.info(buf=buf)
    return buf.getvalue()


# -- aside -------------------------------------------------------------------------------------

class Aside(AsideProcess):
    """aside-server on 127.0.0.1 with a directory as its system of record."""

    def __init__(self, exe: str, tmp: str, env_extra: dict[str, str]) -> None:
        import requests
        self.sor = os.path.join(tmp, "sor")
        self.cache = os.path.join(tmp, "cache")
        os.makedirs(self.sor, exist_ok=True)
        os.makedirs(self.cache, exist_ok=True)
        base = loopback_env(("ASIDE_", "LOCAL_DATA_DIR", "REMOTE_STORAGE", "AWS_"))
        super().__init__(exe, tmp, self.cache, self.sor, os.path.join(tmp, "aside.log"), base,
                         env_extra, PROG, STOP_TIMEOUT)
        self.session = requests.Session()
        self.session.trust_env = False          # loopback: no proxy, no netrc

    def stop(self) -> int | None:
        """Closes the HTTP session; SIGTERM, up to STOP_TIMEOUT seconds to exit, then SIGKILL.
        Its exit status."""
        self.session.close()
        return super().stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{API}"

    def value(self, timeout: float, **params: str):
        """One GET on the session; the parsed {"return": {"value": ...}}."""
        r = self.session.get(self.url, params=params, timeout=timeout)
        if r.status_code != 200:
            raise BenchError(f"aside: {params.get('function')} answered {r.status_code}: "
                             f"{r.text[:500]}")
        try:
            return r.json()["return"]["value"]
        except (ValueError, KeyError, TypeError):
            raise BenchError(f"aside: {params.get('function')} answered no return.value: "
                             f"{r.text[:500]}") from None

    def arrow_target(self) -> str:
        return API + "?" + urllib.parse.urlencode({"function": "read", "key": KEY,
                                                   "return": "data", "format": "arrow"})

    def arrow_discard(self) -> tuple[int, float, float]:
        """The whole frame as Arrow, read into one reused buffer and dropped.
        (bytes, seconds to the response's headers, seconds to the last byte)."""
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=CALL_TIMEOUT)
        try:
            t0 = time.perf_counter()
            conn.request("GET", self.arrow_target())
            resp = conn.getresponse()
            t_head = time.perf_counter() - t0
            self._check_arrow(resp)
            got = 0
            while n := resp.readinto(view):
                got += n
            seconds = time.perf_counter() - t0
        finally:
            conn.close()
        self._check_length(resp, got)
        return got, t_head, seconds

    def arrow_keep(self) -> tuple[bytearray, float]:
        """The whole frame as Arrow, kept: (body, seconds)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=CALL_TIMEOUT)
        try:
            t0 = time.perf_counter()
            conn.request("GET", self.arrow_target())
            resp = conn.getresponse()
            self._check_arrow(resp)
            length = resp.getheader("Content-Length")
            if length is not None:
                body = bytearray(int(length))
                view = memoryview(body)
                got = 0
                while got < len(body) and (n := resp.readinto(view[got:])):
                    got += n
                if got != len(body):
                    raise BenchError(f"aside: Arrow body ended after {got} of {length} bytes")
            else:
                body = bytearray()
                while block := resp.read(CHUNK):
                    body += block
            seconds = time.perf_counter() - t0
        finally:
            conn.close()
        return body, seconds

    @staticmethod
    def _check_arrow(resp) -> None:
        if resp.status != 200:
            raise BenchError(f"aside: read as Arrow answered {resp.status}: "
                             f"{resp.read(500).decode('utf-8', 'replace')}")
        ctype = resp.getheader("Content-Type", "")
        if not ctype.startswith(ARROW_STREAM):
            raise BenchError(f"aside: read as Arrow answered Content-Type {ctype!r}")

    @staticmethod
    def _check_length(resp, got: int) -> None:
        length = resp.getheader("Content-Length")
        if length is not None and int(length) != got:
            raise BenchError(f"aside: Arrow body of {got} bytes, Content-Length {length}")


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


def check_means(got: dict[str, float], want) -> None:
    want = {str(k): float(v) for k, v in want.items()}
    if set(got) != set(want):
        raise BenchError(f"aside: sql groups differ from pandas': only aside "
                         f"{sorted(set(got) - set(want))[:5]}, only pandas "
                         f"{sorted(set(want) - set(got))[:5]}")
    bad = [(g, got[g], w) for g, w in want.items()
           if not (isinstance(got[g], (int, float)) and not isinstance(got[g], bool)
                   and math.isclose(got[g], w, rel_tol=REL, abs_tol=0.0))]
    if bad:
        raise BenchError(f"aside: {len(bad)} group mean(s) differ from pandas' by more than "
                         f"{REL:g} relative, e.g. (group, aside, pandas) {bad[:3]}")


# -- timing ------------------------------------------------------------------------------------

def timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def alternate(repeat: int, sides: dict[str, callable], label: str) -> dict[str, list[float]]:
    """Each side's callable, repeat rounds; odd rounds in the given order, even ones reversed.
    Garbage from one call is collected outside the clock."""
    names = list(sides)
    times = {n: [] for n in names}
    for i in range(repeat):
        order = names if i % 2 == 0 else names[::-1]
        for n in order:
            gc.collect()
            seconds, out = timed(sides[n])
            del out
            times[n].append(seconds)
        print(f"  {label} round {i + 1}/{repeat}: " +
              ", ".join(f"{n} {secs(times[n][-1])}" for n in names), flush=True)
    return times


def med(xs: list[float]) -> float:
    return statistics.median(xs)


# -- main --------------------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description="aside's frames (info, sql, Arrow reads) against "
                                             "pandas on the same parquet file")
    size = ap.add_mutually_exclusive_group()
    size.add_argument("--gib", type=positive_float, default=1.0,
                      help="frame size in pandas memory (deep), GiB [1.0]")
    size.add_argument("--rows", type=positive_int, help="rows of the frame (instead of --gib)")
    ap.add_argument("--repeat", type=positive_int, default=5,
                    help="timed rounds of every measurement; medians are reported [5]")
    ap.add_argument("--seed", type=int, default=0, help="numpy seed of the frame [0]")
    args = ap.parse_args()

    exe, exe_path = server_binary(PROG)
    try:
        import numpy as np
        import pandas as pd
        import pyarrow as pa
        import pyarrow.ipc
        import requests
    except ImportError as e:
        print(f"{PROG}: error: {e} (pip install pandas pyarrow requests)",
              file=sys.stderr)
        return 1

    interrupted = install_signal_handlers(PROG)

    cores = core_count()
    rows = args.rows or rows_for(args.gib, args.seed)
    est = args.gib * (1 << 30) if not args.rows else None
    threads = os.environ.get("ASIDE_THREADS", str(cores))
    memory_limit = os.environ.get("ASIDE_MEMORY_LIMIT",
                                  "8GiB" if (est or 0) < (3 << 30) else f"{int(est * 3) >> 30}GiB")
    aside_env = {"ASIDE_THREADS": threads, "ASIDE_MEMORY_LIMIT": memory_limit}
    version = server_version(exe_path)
    size_arg = f"--rows {args.rows}" if args.rows else f"--gib {args.gib:g}"
    facts = {
        "reproduce": f"{env_line(exe, aside_env)} .venv/bin/python bench/frames_vs_pandas.py "
                     f"{size_arg} --repeat {args.repeat} --seed {args.seed}",
        "date": utc_now(),
        "machine": machine(cores),
        "aside": f"{version}, {threads} threads, memory limit {memory_limit}",
        "pandas": f"pandas {pd.__version__}, pyarrow {pa.__version__}, numpy {np.__version__}, "
                  f"requests {requests.__version__}, Python {sys.version.split()[0]}",
    }

    print(f"aside frames vs pandas, {rows:,} rows, --repeat {args.repeat}")
    tmp = tempfile.mkdtemp(prefix="aside-frames-")
    aside: Aside | None = None
    ok = False
    try:
        # -- the file --------------------------------------------------------------------------
        t0 = time.perf_counter()
        df = make_frame(rows, args.seed)
        deep = int(df.memory_usage(index=True, deep=True).sum())
        need = MEMORY_FACTOR * deep
        avail = mem_available()
        if avail and avail < need:
            raise BenchError(f"the frame is {human(deep)} in pandas; this benchmark needs about "
                             f"{human(need)} of free memory and MemAvailable is {human(avail)}: "
                             "use a smaller --gib or --rows")
        aside = Aside(exe_path, tmp, aside_env)
        path = os.path.join(aside.sor, KEY)
        df.to_parquet(path, compression="snappy")
        del df
        gc.collect()
        file_size = os.path.getsize(path)
        free = shutil.disk_usage(tmp).free
        if free < 2 * file_size:
            raise BenchError(f"not enough free disk for aside's disk tier copy ({human(free)})")
        print(f"  frame: {rows:,} rows x 8 columns, {human(deep)} in pandas (deep), parquet "
              f"snappy {human(file_size)} ({time.perf_counter() - t0:.1f} s to make)")

        # The reference: what pandas reads from the file (also warms the page cache for both).
        ref = pd.read_parquet(path)
        ref_deep = int(ref.memory_usage(index=True, deep=True).sum())
        ref_text = info_text(ref)
        facts["frame"] = (f"{rows:,} rows; int64 id, a, b; float64 x, y, z (1% NaN); object g "
                          f"({GROUPS} values), s ({S_POOL:,} values, 1% None); {human(ref_deep)} "
                          f"in pandas (deep), {ref_text.strip().splitlines()[-1]}; parquet "
                          f"snappy {human(file_size)}")

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
        check_means(sql_means(aside.value(CALL_TIMEOUT, function="sql", query=query)), want)
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
        body, keep_s = aside.arrow_keep()
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
            n, t_head, seconds = aside.arrow_discard()
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
        for k in ("reproduce", "date", "machine", "aside", "pandas", "frame"):
            print(f"  {k + ':':<11} {facts[k]}")
        print_problems(aside.problems())
        ok = True
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # HTTP failures and pandas errors too: report, stop, exit 1
        code = failure(PROG, e, interrupted)
        if code is not None:
            return code
    finally:
        if aside is not None:
            status = aside.stop()
            if status not in (None, 0):
                print(f"{PROG}: aside exited with status {status} on SIGTERM", file=sys.stderr)
                ok = False
            if (not ok or status not in (None, 0)) and not interrupted:
                print_log_tail(aside.log())
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
