#!/usr/bin/env python3
"""locality.py -- how fast a cached frame reaches a program, by where the program runs.

  make bench-locality
  .venv/bin/python bench/locality.py [--gib 1.0 | --rows N] [--repeat 5] [--seed 0]
  .venv-pandas3/bin/python bench/locality.py ...     # the same under pandas 3

It measures the pandas it runs with (the report's "python" line says which): run it under both
venvs. Under pandas 3 a frame's strings arrive as `str` columns on the publication's
large_string buffers; aside's info text is then compared with pandas 3's only when the server
answers for pandas 3, else the difference is noted, not fatal.

On 127.0.0.1 only. The frame is bench/frames_vs_pandas.py's (the same generator, from
bench_common.py: seeded numpy, about --gib GiB as pandas counts it, int64, float64 and two string
columns), written by pandas as parquet (snappy) into aside's system of record. aside-server
starts on an empty disk tier; a first `info` loads the frame into its memory (timed once, for
information). Then, in the same run, the whole frame is taken to the program four ways:

  1. pandas   pd.read_parquet(path) -> DataFrame, the baseline; and with dtype_backend="pyarrow".
  2. HTTP     the Python client aside, transport="http" (an Arrow IPC stream over the socket):
              read_table -> pyarrow.Table, read -> DataFrame. Rates in GB/s (10^9 B/s) of the
              stream's bytes: over read_table's time (the client as a program uses it); over the
              same transfer to a Table without the requests library (http.client readinto() of
              the whole body into a bytearray of its Content-Length, then open_stream); and over
              the bare transfer (readinto() into one reused 8 MiB buffer, discarded: the server
              and the loopback without any copy by the client).
  3. shm      transport="shm": the server publishes the frame as an Arrow IPC file in shared
              memory (the first `map`, timed once, for information); measured is the steady state
              where the file exists: read_table (the client's mmap call + pa.memory_map +
              ipc.open_file().read_all()) -> Table; read -> DataFrame, the default (numpy)
              conversion and dtype_backend="pyarrow" (pd.ArrowDtype columns on the shared pages).
  4. libaside in process: bench/locality_inproc.c, compiled here with cc against build/libaside.a
              (link libraries as build/build.ninja links examples/frame_info), run as a child
              process on a disk tier of its own (an empty folder each run) and the same system of
              record: aside_read of the key as a frame, cold (system of record -> disk tier ->
              decoded in that process), then from memory (a hit), then after reopening the cache
              on the same disk tier (decoded from the disk tier's copy). Times from its own clock.

Targets (printed with met / missed): shm to pyarrow Table <= 10 ms; shm to DataFrame >= 10x
faster than pd.read_parquet, for the default conversion against read_parquet's default and for
dtype_backend="pyarrow" against read_parquet's dtype_backend="pyarrow" (the ratio to the default
read_parquet is printed too); HTTP >= 1 GB/s, judged on the client's read_table (the two leaner
transfers are informative).

Before anything is timed the answers are checked, and a wrong one stops the benchmark (exit 1):
every DataFrame equals pd.read_parquet(path) (with the same dtype_backend) under
pandas.testing.assert_frame_equal, every Table equals pyarrow.parquet.read_table(path)
(Table.equals, schema metadata included) and its to_pandas() equals pd.read_parquet(path) (the
Table read with http.client too); the
in-process frame's df.info() text (aside_frame_info) equals pandas' of pd.read_parquet(path).
Zero copy over shm is checked and reported: every buffer of the Table (and of the pyarrow-backed
DataFrame's columns) lies inside the mapping of the published file (/proc/self/maps), and
pa.total_allocated_bytes() grows by (about) nothing while such a Table is held; the server's
stats()["shm"] counters are printed before and after.

Every timed measurement runs --repeat times (at most 20; rounds alternate the order of the sides
measured together; what one call returns is dropped and collected outside the clock, so each
call starts from nothing held: the shm file is mapped afresh) and the median is reported. Exits 0
when everything ran and every answer was right, whatever the targets (a benchmark reports, it
does not assert); 1 otherwise (including if aside does not exit cleanly, status 0, on SIGTERM).

Environment (passed to aside; the output says what was used):
  ASIDE_SERVER        the server binary, relative to the repository root [build/aside-server]
  ASIDE_THREADS       event-loop threads [number of cores]
  ASIDE_MEMORY_LIMIT  [4GiB, or more if the frame needs it]; the in-process cache gets the same
  CC                  the C compiler for locality_inproc.c [cc]

Memory: this process holds up to about four frames at once (the pandas reference, its pyarrow
twin, the parquet Table and one being read), aside its frame and the published copy, the
in-process program one more: it refuses to start when /proc/meminfo's MemAvailable is under about
6x --gib. Disk: the parquet file, aside's disk-tier copy and the in-process program's. Everything
it starts is stopped on exit (SIGTERM, then a wait), including on failure and Ctrl-C; its files
live in a temporary directory that is removed at the end.
"""
from __future__ import annotations

import argparse
import gc
import os
import shlex
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from aside_process import (REPO, BenchError, BenchRun, LocalAside, core_count,  # noqa: E402
                           install_signal_handlers, modules, print_facts, print_problems,
                           run_facts, server_binary, server_version)
from bench_common import (add_size_arguments, alternate, describe_frame,  # noqa: E402
                          frame_env, frame_file, human, info_text, med, timed)
from bench_common import secs as common_secs  # noqa: E402

PROG = "locality"
KEY = "locality.parquet"
SHM_TABLE_TARGET = 0.010        # seconds: shared memory to a pyarrow Table
DF_TARGET = 10.0                # shared memory to a DataFrame, times faster than read_parquet
HTTP_TARGET = 1e9               # bytes per second over HTTP, to a Table
MAX_REPEAT = 20
CHUNK = 8 << 20                 # the reused read buffer of the bare transfer
STOP_TIMEOUT = 20.0             # seconds for aside to exit on SIGTERM before SIGKILL
CLIENT_TIMEOUT = 900.0          # the client's timeout (the cold load included)
INPROC_TIMEOUT = 900.0          # seconds one run of the in-process program may take
COMPILE_TIMEOUT = 120.0
MEMORY_FACTOR = 6               # MemAvailable needed, in frame sizes
ZERO_COPY_SLACK = 0.01          # allocation growth tolerated while holding a shm Table


def repeat_count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if not 1 <= n <= MAX_REPEAT:
        raise argparse.ArgumentTypeError(f"not a whole number from 1 to {MAX_REPEAT}: {text!r}")
    return n


def secs(s: float) -> str:
    """bench_common's format, with nanoseconds below a microsecond."""
    return f"{s * 1e9:.0f} ns" if s < 1e-6 else common_secs(s)


def gbps(n: int, seconds: float) -> str:
    return f"{n / seconds / 1e9:.2f} GB/s"


def verdict(ok: bool, miss: str) -> str:
    return "met" if ok else f"MISSED ({miss})"


# -- the in-process program --------------------------------------------------------------------

def link_libraries(build_dir: str) -> list[str]:
    """The libraries build/build.ninja links examples/frame_info with (its LINK_LIBRARIES),
    relative paths made absolute under build_dir."""
    path = os.path.join(build_dir, "build.ninja")
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise BenchError(f"cannot read {path}: {e} (build first: make build)") from None
    inside = False
    for line in lines:
        if line.startswith("build frame_info:"):
            inside = True
        elif inside and not line.startswith(" "):
            break
        elif inside and line.strip().startswith("LINK_LIBRARIES ="):
            out = []
            for word in shlex.split(line.split("=", 1)[1]):
                if not word.startswith("-") and not os.path.isabs(word):
                    word = os.path.join(build_dir, word)
                out.append(word)
            return out
    raise BenchError(f"{path} has no LINK_LIBRARIES for frame_info (build first: make build)")


def compile_inproc(tmp: str) -> tuple[str, str]:
    """bench/locality_inproc.c compiled into tmp: (the executable, the command shown)."""
    build_dir = os.path.join(REPO, "build")
    exe = os.path.join(tmp, "locality_inproc")
    cc = os.environ.get("CC", "cc")
    cmd = [cc, "-O2", "-std=c17", "-D_GNU_SOURCE", "-I", os.path.join(REPO, "include"),
           os.path.join(REPO, "bench", "locality_inproc.c"), "-o", exe,
           f"-Wl,-rpath,{build_dir}"] + link_libraries(build_dir)  # frame_info may link libaside.so
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=COMPILE_TIMEOUT)
    if r.returncode != 0:
        raise BenchError(f"compiling bench/locality_inproc.c failed ({' '.join(cmd)}):\n"
                         f"{r.stderr[-2000:]}")
    shown = (f"{cc} -O2 -std=c17 -D_GNU_SOURCE -Iinclude bench/locality_inproc.c "
             "-Wl,-rpath,build <frame_info's libraries from build/build.ninja>")
    return exe, shown


def run_inproc(exe: str, data_dir: str, sor: str, memory_limit: str, hits: int) -> dict:
    """One run of the program on an empty disk tier of its own: its figures and info text."""
    shutil.rmtree(data_dir, ignore_errors=True)
    os.makedirs(data_dir)
    try:
        r = subprocess.run([exe, "--data-dir", data_dir, "--sor-dir", sor, "--memory-limit",
                            memory_limit, "--hits", str(hits), KEY], capture_output=True,
                           text=True, timeout=INPROC_TIMEOUT, stdin=subprocess.DEVNULL)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    if r.returncode != 0:
        raise BenchError(f"locality_inproc exited with status {r.returncode}: "
                         f"{r.stderr.strip()[-1000:]}")
    head, sep, text = r.stdout.partition("info:\n")
    if not sep:
        raise BenchError(f"locality_inproc printed no info: {r.stdout[-500:]}")
    out: dict = {"hit": [], "hit_source": [], "text": text}
    for line in head.splitlines():
        name, _, value = line.partition(" ")
        if name in ("hit", "hit_source"):
            out[name].append(float(value) if name == "hit" else value)
        elif name.endswith("source"):
            out[name] = value
        else:
            out[name] = float(value)
    want = {"cold_source": "sor", "disk_source": "disk"}
    for k, v in want.items():
        if out.get(k) != v:
            raise BenchError(f"locality_inproc: {k} is {out.get(k)!r}, expected {v!r}")
    if set(out["hit_source"]) != {"memory"} or len(out["hit"]) != hits:
        raise BenchError(f"locality_inproc: hits answered from {out['hit_source']}")
    return out


# -- zero copy ---------------------------------------------------------------------------------

def mappings_of(path: str) -> list[tuple[int, int]]:
    """The address ranges where this process maps path (/proc/self/maps)."""
    real = os.path.realpath(path)
    out = []
    with open("/proc/self/maps", encoding="utf-8", errors="replace") as f:
        for line in f:
            parts = line.split(None, 5)
            if len(parts) == 6 and parts[5].rstrip("\n") in (path, real):
                lo, hi = parts[0].split("-")
                out.append((int(lo, 16), int(hi, 16)))
    return out


def buffers_of(chunked_arrays, string_offsets: bool = True) -> list:
    """Every non-empty buffer (children included) of the chunked arrays' chunks; without a
    string or bytes column's offsets when string_offsets is False (the publication's are
    large_string's int64 offsets, which read_table narrows to the frame's own string: a copy
    of 4 bytes per row)."""
    import pyarrow as pa

    def offsets_narrowed(chunk, i):
        return not string_offsets and i == 1 and (pa.types.is_string(chunk.type)
                                                  or pa.types.is_binary(chunk.type))
    return [b for ca in chunked_arrays for chunk in ca.chunks
            for i, b in enumerate(chunk.buffers())
            if b is not None and b.size > 0 and not offsets_narrowed(chunk, i)]


def inside(buffers, ranges: list[tuple[int, int]]) -> int:
    """How many of buffers lie wholly inside one of ranges."""
    return sum(1 for b in buffers
               if any(lo <= b.address and b.address + b.size <= hi for lo, hi in ranges))


# -- aside -------------------------------------------------------------------------------------

class Aside(LocalAside):
    """aside-server on 127.0.0.1 with a directory as its system of record."""

    def __init__(self, exe: str, tmp: str, env_extra: dict[str, str]) -> None:
        super().__init__(exe, tmp, env_extra, PROG, STOP_TIMEOUT)

    def arrow_table(self):
        """The whole frame as an Arrow stream, its body read whole into a bytearray of its
        Content-Length (http.client readinto()), then pa.ipc.open_stream(body).read_all(): the
        transfer to a Table without the requests library's chunked reading."""
        import pyarrow as pa
        body, _ = self.arrow_body(self._arrow_target(), CLIENT_TIMEOUT, CHUNK, need_length=True)
        return pa.ipc.open_stream(body).read_all()

    def arrow_transfer(self) -> tuple[int, float]:
        """The whole frame as an Arrow stream, read into one reused buffer and dropped:
        (bytes, seconds from the request to the last byte)."""
        got, _, seconds = self.arrow_discard(self._arrow_target(), CLIENT_TIMEOUT, CHUNK)
        return got, seconds

    def _arrow_target(self) -> str:
        return self.target(function="read", path=KEY, **{"return": "data", "format": "arrow"})


# -- checks ------------------------------------------------------------------------------------

def narrow_strings(df):
    """df with its pd.ArrowDtype(large_string) columns as pd.ArrowDtype(string): pandas 3's
    read_parquet(dtype_backend="pyarrow") of a file pandas 3 wrote gives large_string, aside's
    frames hold string; the strings are the same."""
    import pandas as pd
    import pyarrow as pa
    wide = [c for c, t in df.dtypes.items()
            if isinstance(t, pd.ArrowDtype) and t.pyarrow_dtype == pa.large_string()]
    return df.astype({c: pd.ArrowDtype(pa.string()) for c in wide}) if wide else df


def same_frame(got, want, what: str) -> None:
    import pandas as pd
    try:
        pd.testing.assert_frame_equal(narrow_strings(got), narrow_strings(want),
                                      check_exact=True)
    except AssertionError as e:
        raise BenchError(f"{what} is not pd.read_parquet(file): {e}") from None


def same_table(got, want_table, want_df, what: str) -> None:
    want_table = strings_as_in(want_table, got.schema)
    if not got.equals(want_table, check_metadata=True):
        raise BenchError(f"{what} does not equal pyarrow.parquet.read_table(file):\n"
                         f"  got {got.schema}\n  want {want_table.schema}")
    same_frame(got.to_pandas(), want_df, f"{what}.to_pandas()")


def strings_as_in(table, schema):
    """table with its string columns of the width schema has (string or large_string): a
    parquet file written by pandas 3 says large_string, a frame's Arrow answer is string; the
    strings are the same."""
    import pyarrow as pa
    wide = (pa.string(), pa.large_string())
    if table.schema.names != schema.names or not any(
            a.type != b.type and a.type in wide and b.type in wide
            for a, b in zip(table.schema, schema)):
        return table
    fields = [b if a.type in wide and b.type in wide else a for a, b in zip(table.schema, schema)]
    return table.cast(pa.schema(fields, metadata=table.schema.metadata))


def same_reads(client, transport: str, want_table, want_df) -> None:
    """The client's read_table over transport (which it must use) equals want_table, and its
    read equals want_df (same_table, same_frame)."""
    t = client.read_table(KEY, transport=transport)
    if client.last_transport != transport:
        raise BenchError(f"read_table(transport='{transport}') used {client.last_transport}")
    same_table(t, want_table, want_df, f"read_table(transport='{transport}')")
    del t
    same_frame(client.read(KEY, transport=transport), want_df, f"read(transport='{transport}')")


def same_info(text, want: str, pd, what) -> bool:
    """True if text is pandas' df.info() text want. aside's C library answers for pandas 2, so
    under a later pandas a different text is reported (once, when what names it) and
    accepted."""
    if text == want:
        return True
    if int(pd.__version__.split(".")[0]) < 3:
        return False
    if what:
        print(f"  NOTE: {what} answers another pandas' df.info() than pandas {pd.__version__}")
    return isinstance(text, str)


# -- main --------------------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description="a cached frame to a program: pandas' read_parquet, "
                                             "aside over HTTP, over shared memory, in process")
    add_size_arguments(ap, "rows of the frame (instead of --gib; at least 1000)")
    ap.add_argument("--repeat", type=repeat_count, default=5,
                    help=f"timed rounds of every measurement (1 to {MAX_REPEAT}); medians are "
                         "reported [5]")
    ap.add_argument("--seed", type=int, default=0, help="numpy seed of the frame [0]")
    args = ap.parse_args()
    if args.rows is not None and args.rows < 1000:
        ap.error("--rows: at least 1000")

    exe, exe_path = server_binary(PROG)
    np, pd, pa, pq, aside_client = modules(PROG, ("numpy", "pandas", "pyarrow", "pyarrow.parquet",
                                                  "aside"), "pandas pyarrow ./clients/python")
    # Only loopback here: no proxy for the client's requests.
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"

    interrupted = install_signal_handlers(PROG)

    cores = core_count()
    rows, size_arg, aside_env = frame_env(args, cores, "4GiB", 2 << 30, 4)
    facts = run_facts(exe, aside_env, f"bench/locality.py {size_arg} --repeat {args.repeat} "
                      f"--seed {args.seed}", cores)
    memory_limit = aside_env["ASIDE_MEMORY_LIMIT"]
    facts["aside"] = (f"{server_version(exe_path)}, {aside_env['ASIDE_THREADS']} threads, "
                      f"memory limit {memory_limit} (the in-process cache too)")
    facts["python"] = (f"pandas {pd.__version__}, pyarrow {pa.__version__}, numpy "
                       f"{np.__version__}, Python {sys.version.split()[0]}")

    print(f"aside locality: a cached frame to a program, {rows:,} rows, --repeat {args.repeat}")
    with BenchRun(PROG, interrupted, "aside-locality-") as run:
        tmp = run.tmp
        inproc_exe, compile_line = compile_inproc(tmp)
        facts["in process"] = compile_line
        print("  compiled bench/locality_inproc.c against build/libaside.a")

        # -- the file --------------------------------------------------------------------------
        aside = run.aside = Aside(exe_path, tmp, aside_env)
        path = os.path.join(aside.sor, KEY)
        _, file_size = frame_file(path, rows, args.seed, MEMORY_FACTOR, 3,
                                  "the disk tiers' copies")

        # The references (also warm the page cache for everyone).
        ref = pd.read_parquet(path)
        ref_pa = pd.read_parquet(path, dtype_backend="pyarrow")
        ref_table = pq.read_table(path)
        ref_text = info_text(ref)
        ref_deep = int(ref.memory_usage(index=True, deep=True).sum())
        facts["frame"] = f"{describe_frame(rows, ref_deep)}; parquet snappy {human(file_size)}"

        aside.start()
        url = f"http://127.0.0.1:{aside.port}"
        client = aside_client.connect(url, timeout=CLIENT_TIMEOUT)
        run.closers.append(client.close)
        print(f"  aside listening on 127.0.0.1:{aside.port} ({facts['aside']}), cache empty")

        # -- warm-up: the first info loads the frame -------------------------------------------
        cold_s, value = timed(lambda: client.info(KEY))
        if value.get("entries") != rows or not same_info(value.get("text"), ref_text, pd,
                                                          "the server's info"):
            raise BenchError("aside: the first info does not describe pd.read_parquet(file)")
        used = client.stats().get("memory", {}).get("used_bytes")
        print(f"  first info (load from the SOR, decode): {secs(cold_s)}; aside's memory holds "
              f"{human(used) if isinstance(used, int) else '?'}")
        shm_before = dict(client.stats().get("shm", {}))
        publish_s, published = timed(lambda: client.mmap(KEY))
        shm_file, shm_bytes = published["path"], int(published["bytes"])
        if published.get("rows") != rows:
            raise BenchError(f"aside: map answered {published.get('rows')} rows, not {rows}")
        shm_after_publish = dict(client.stats().get("shm", {}))
        print(f"  first map (publishes the Arrow IPC file in shared memory): {secs(publish_s)}, "
              f"{human(shm_bytes)} ({shm_bytes:,} bytes)")
        print(f"  shm counters: before {shm_before}, after the first map {shm_after_publish}")
        print()

        # -- the answers, before any timing ----------------------------------------------------
        print("checks")
        same_reads(client, "http", ref_table, ref)
        same_table(aside.arrow_table(), ref_table, ref,
                   "the Arrow stream read with http.client and open_stream")
        same_reads(client, "shm", ref_table, ref)
        same_frame(client.read(KEY, transport="shm", dtype_backend="pyarrow"), ref_pa,
                   "read(transport='shm', dtype_backend='pyarrow')")
        gc.collect()
        print("  read_table over HTTP and shm: Table.equals(pq.read_table(file)) and "
              "to_pandas() equals pd.read_parquet(file)")
        print("  read over HTTP and shm: equals pd.read_parquet(file); with "
              "dtype_backend='pyarrow': equals pd.read_parquet(file, dtype_backend='pyarrow')")

        # zero copy: where the shm Table's buffers are, and what pyarrow allocated for it
        gc.collect()
        a0 = pa.total_allocated_bytes()
        t = client.read_table(KEY, transport="shm")
        table_delta = pa.total_allocated_bytes() - a0
        narrowed = sum(b.size for b in buffers_of(t.columns)) - sum(
            b.size for b in buffers_of(t.columns, string_offsets=False))
        bufs = buffers_of(t.columns, string_offsets=False)
        ranges = mappings_of(shm_file)
        table_in, table_nbuf = inside(bufs, ranges), len(bufs)
        table_buf_bytes = sum(b.size for b in bufs)
        del t, bufs
        gc.collect()
        a0 = pa.total_allocated_bytes()
        d = client.read(KEY, transport="shm", dtype_backend="pyarrow")
        df_delta = pa.total_allocated_bytes() - a0
        bufs = buffers_of([d[c].array.__arrow_array__() for c in d.columns],
                          string_offsets=False)
        ranges = mappings_of(shm_file)
        df_in, df_nbuf = inside(bufs, ranges), len(bufs)
        del d, bufs
        str_in = str_nbuf = 0  # pandas 3: the default read's str columns, offsets included
        if int(pd.__version__.split(".")[0]) >= 3:
            gc.collect()
            d = client.read(KEY, transport="shm")
            bufs = buffers_of([d[c].array.__arrow_array__() for c in d.columns
                               if d[c].dtype == "str"])
            str_in, str_nbuf = inside(bufs, mappings_of(shm_file)), len(bufs)
            del d, bufs
        gc.collect()
        a0 = pa.total_allocated_bytes()
        t = client.read_table(KEY, transport="http")
        http_delta = pa.total_allocated_bytes() - a0
        del t
        gc.collect()
        zero_copy = (table_in == table_nbuf and df_in == df_nbuf and str_in == str_nbuf
                     and max(table_delta, df_delta) <= narrowed + ZERO_COPY_SLACK * shm_bytes)
        print(f"  shm read_table: {table_in} of {table_nbuf} buffers ({human(table_buf_bytes)}) "
              f"other than string offsets inside the mapping of the published file; "
              f"pa.total_allocated_bytes() grew by {table_delta:,} bytes while the Table was "
              f"held (the file: {shm_bytes:,}; the string offsets narrowed to string: "
              f"{narrowed:,})")
        print(f"  shm read(dtype_backend='pyarrow'): {df_in} of {df_nbuf} buffers other than "
              f"string offsets inside the mapping; pa.total_allocated_bytes() grew by "
              f"{df_delta:,} bytes")
        if str_nbuf:
            print(f"  shm read (pandas 3, default): {str_in} of {str_nbuf} buffers of its str "
                  f"columns (offsets included) inside the mapping")
        print(f"  for comparison, http read_table: pa.total_allocated_bytes() grew by "
              f"{http_delta:,} bytes (the body is a Python bytes object the Table points into)")
        if not zero_copy:
            print("  NOTE: the shm path is NOT zero-copy by these measures")
        print()

        # -- 1. pandas -------------------------------------------------------------------------
        print("1. pandas read_parquet")
        t_pd = alternate(args.repeat, {
            "read_parquet": lambda: pd.read_parquet(path),
            "read_parquet pyarrow": lambda: pd.read_parquet(path, dtype_backend="pyarrow"),
        }, "pandas")
        p_np, p_pa = med(t_pd["read_parquet"]), med(t_pd["read_parquet pyarrow"])
        print()

        # -- 2. HTTP ---------------------------------------------------------------------------
        print("2. aside over HTTP (Arrow stream)")
        stream_bytes, _ = aside.arrow_transfer()
        t_http = alternate(args.repeat, {
            "read_table": lambda: client.read_table(KEY, transport="http"),
            "read": lambda: client.read(KEY, transport="http"),
            "http.client + open_stream": aside.arrow_table,
            "bare transfer": aside.arrow_transfer,
        }, "http")
        h_t, h_d, h_raw = (med(t_http["read_table"]), med(t_http["read"]),
                           med(t_http["bare transfer"]))
        h_hc = med(t_http["http.client + open_stream"])
        print()

        # -- 3. shared memory ------------------------------------------------------------------
        print("3. aside over shared memory (steady state: the file is published)")
        t_shm = alternate(args.repeat, {
            "read_table": lambda: client.read_table(KEY, transport="shm"),
            "read": lambda: client.read(KEY, transport="shm"),
            "read pyarrow": lambda: client.read(KEY, transport="shm", dtype_backend="pyarrow"),
            "map call": lambda: client.mmap(KEY),
        }, "shm")
        s_t, s_d, s_dp, s_map = (med(t_shm["read_table"]), med(t_shm["read"]),
                                 med(t_shm["read pyarrow"]), med(t_shm["map call"]))
        shm_end = dict(client.stats().get("shm", {}))
        print()

        # -- 4. in process ---------------------------------------------------------------------
        print("4. libaside in process (bench/locality_inproc.c, a disk tier of its own)")
        runs = []
        for i in range(args.repeat):
            r = run_inproc(inproc_exe, os.path.join(tmp, "inproc-cache"), aside.sor,
                           memory_limit, 5)
            if int(r["rows"]) != rows or not same_info(r["text"], ref_text, pd,
                                                       "aside_frame_info" if i == 0 else None):
                raise BenchError("locality_inproc: the frame's df.info() differs from pandas' "
                                 f"of pd.read_parquet(file):\n{r['text']}\n--- pandas\n"
                                 f"{ref_text}")
            runs.append(r)
            print(f"  inproc round {i + 1}/{args.repeat}: cold {secs(r['cold'])}, disk "
                  f"{secs(r['disk'])}, hit {secs(med(r['hit']))}", flush=True)
        i_cold = med([r["cold"] for r in runs])
        i_disk = med([r["disk"] for r in runs])
        i_hit = med([h for r in runs for h in r["hit"]])
        i_memory = int(runs[0]["memory_used"])
        print(f"  its frame's df.info() equals pandas' of pd.read_parquet(file) in every run; "
              f"its cache's memory holds {human(i_memory)}")

        if not aside.alive():
            raise BenchError("aside exited during the measurements")

        # -- the report ------------------------------------------------------------------------
        ratio_np, ratio_pa = p_np / s_d, p_pa / s_dp
        rows_out = [
            ("pandas read_parquet -> DataFrame", p_np, "1.00x", "-", "baseline"),
            ("pandas read_parquet(dtype_backend=pyarrow)", p_pa, f"{p_np / p_pa:.2f}x", "-",
             "baseline"),
            ("HTTP read_table -> Table", h_t, f"{p_np / h_t:.2f}x",
             ">= 1 GB/s", f"{gbps(stream_bytes, h_t)}: "
             + verdict(stream_bytes / h_t >= HTTP_TARGET,
                       f"{stream_bytes / h_t / HTTP_TARGET * 100:.0f}% of it")),
            ("HTTP read -> DataFrame", h_d, f"{p_np / h_d:.2f}x", "-", "informative"),
            ("HTTP body read whole by http.client + open_stream -> Table", h_hc,
             f"{p_np / h_hc:.2f}x", "-", f"{gbps(stream_bytes, h_hc)}, informative"),
            ("HTTP bare transfer (discarded)", h_raw, "-", "-",
             f"{gbps(stream_bytes, h_raw)}, informative"),
            ("shm read_table -> Table", s_t, f"{p_np / s_t:.0f}x", "<= 10 ms",
             verdict(s_t <= SHM_TABLE_TARGET, f"{s_t / SHM_TABLE_TARGET:.1f}x the target")),
            ("  of which the map call (HTTP round trip)", s_map, "-", "-", "informative"),
            ("shm read -> DataFrame (numpy)", s_d, f"{ratio_np:.2f}x", ">= 10x",
             verdict(ratio_np >= DF_TARGET, f"{ratio_np:.2f}x")),
            ("shm read(dtype_backend=pyarrow) -> DataFrame", s_dp,
             f"{ratio_pa:.0f}x (vs numpy read_parquet {p_np / s_dp:.0f}x)", ">= 10x",
             verdict(ratio_pa >= DF_TARGET, f"{ratio_pa:.2f}x")),
            ("libaside in process: cold (SOR -> disk tier -> decode)", i_cold,
             f"{p_np / i_cold:.2f}x", "-", "informative"),
            ("libaside in process: decode from its disk tier", i_disk, f"{p_np / i_disk:.2f}x",
             "-", "informative"),
            ("libaside in process: memory hit (a reference)", i_hit, "-", "-",
             "informative"),
        ]
        print()
        print(f"results (medians of {args.repeat}; vs read_parquet = pandas read_parquet time "
              "(same dtype_backend where said) / this time, > 1: faster)")
        print()
        w = max(len(r[0]) for r in rows_out)
        w2 = max(len(r[2]) for r in rows_out)
        print(f"  {'path':<{w}}  {'time':>10}  {'vs read_parquet':<{w2}}  {'target':>9}  ")
        print("  " + "-" * (w + w2 + 40))
        for name, s, ratio, target, v in rows_out:
            print(f"  {name:<{w}}  {secs(s):>10}  {ratio:<{w2}}  {target:>9}  {v}")
        print()
        print(f"  Arrow stream of the whole frame: {human(stream_bytes)} ({stream_bytes:,} bytes); "
              f"published shm file: {shm_bytes:,} bytes")
        print(f"  zero copy over shm: {'yes' if zero_copy else 'NO'} (Table: "
              f"{table_in}/{table_nbuf} buffers in the mapping, allocation delta {table_delta:,} B;"
              f" pyarrow-backed DataFrame: {df_in}/{df_nbuf}, delta {df_delta:,} B; pandas 3 str "
              f"columns: {str_in}/{str_nbuf})")
        print(f"  shm counters: before {shm_before}; after the first map {shm_after_publish}; "
              f"at the end {shm_end}")
        print(f"  first info (cold load by the server): {secs(cold_s)}; first map (publish): "
              f"{secs(publish_s)}")
        print()
        print_facts(facts, ("reproduce", "date", "machine", "aside", "python", "frame",
                            "in process"))
        print_problems(aside.problems())
    return run.status


if __name__ == "__main__":
    sys.exit(main())
