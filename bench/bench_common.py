"""bench_common.py -- what the frame benchmarks in bench/ measure with: the frame, timing, figures.

Design. frames_vs_pandas.py, locality.py and functions.py measure aside against pandas (or
against itself) on one generated DataFrame. aside_process.py holds what concerns the server as a
process and the run around it; this module holds what concerns the measurement, and only what is
the same in those scripts:

  - arguments: positive_float (an argparse type), the frame's size as --gib or --rows and the
    environment aside gets for it (add_size_arguments, frame_env);
  - the frame: make_frame (seeded numpy: int64, float64 and two string columns), rows_for (rows
    for a size in GiB), info_text (pandas' df.info() as text), describe_frame (the report's
    line), write_frame (make it, check that memory allows the benchmark, write it as parquet)
    and frame_file (write_frame, then a check of the free disk and the line that says so);
  - figures: human (bytes), secs (seconds), mem_available and require_memory;
  - checks: check_means (aside's mean of x per group against pandas');
  - timing: timed (one call), alternate (rounds that alternate which side goes first, printing
    each round) and med (the median reported).

What a script compares, its targets, checks and report table stay in the script. Nothing here
starts a process or touches the network. Scripts import this module from their own folder.
"""
from __future__ import annotations

import argparse
import gc
import io
import math
import os
import re
import shutil
import statistics
import time
from collections.abc import Callable

from aside_process import BenchError, positive_int

GROUPS = 100                    # distinct values of g
S_POOL = 1_000_000              # distinct values of s


# -- arguments ---------------------------------------------------------------------------------

def positive_float(text: str) -> float:
    """argparse type: a finite number above 0."""
    try:
        x = float(text)
    except ValueError:
        x = 0.0
    if not x > 0 or not math.isfinite(x):
        raise argparse.ArgumentTypeError(f"not a positive number: {text!r}")
    return x


def add_size_arguments(ap: argparse.ArgumentParser, rows_help: str) -> None:
    """--gib (default 1.0) or --rows, one of them: the frame's size."""
    size = ap.add_mutually_exclusive_group()
    size.add_argument("--gib", type=positive_float, default=1.0,
                      help="frame size in pandas memory (deep), GiB [1.0]")
    size.add_argument("--rows", type=positive_int, help=rows_help)


def frame_env(args: argparse.Namespace, cores: int, small_limit: str, large_from: int,
              factor: int) -> tuple[int, str, dict[str, str]]:
    """From --gib or --rows (and --seed) and this process' environment: (rows, the size argument
    as the reproduce line writes it, the environment aside gets). That is ASIDE_THREADS [cores]
    and ASIDE_MEMORY_LIMIT [small_limit with --rows or for --gib under large_from bytes, else
    factor times --gib, in whole GiB]."""
    rows = args.rows or rows_for(args.gib, args.seed)
    est = args.gib * (1 << 30) if not args.rows else None
    size_arg = f"--rows {args.rows}" if args.rows else f"--gib {args.gib:g}"
    limit = os.environ.get("ASIDE_MEMORY_LIMIT", small_limit if (est or 0) < large_from
                           else f"{int(est * factor) >> 30}GiB")
    return rows, size_arg, {"ASIDE_THREADS": os.environ.get("ASIDE_THREADS", str(cores)),
                            "ASIDE_MEMORY_LIMIT": limit}


# -- figures -----------------------------------------------------------------------------------

def human(n: float) -> str:
    """Bytes in GiB, MiB or KiB (two decimals), or whole bytes."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{int(n)} B"


def secs(s: float) -> str:
    """Seconds in s, ms or µs."""
    if s >= 1:
        return f"{s:.3f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.2f} ms"
    return f"{s * 1e6:.0f} µs"


def mem_available() -> int:
    """/proc/meminfo's MemAvailable in bytes; 0 when it does not say."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            m = re.search(r"^MemAvailable:\s+(\d+) kB", f.read(), re.M)
        return int(m.group(1)) * 1024 if m else 0
    except OSError:
        return 0


def require_memory(deep: int, factor: int, smaller: str) -> None:
    """Raises BenchError when MemAvailable is under factor times the frame's deep size; smaller
    names the options that make the frame smaller."""
    need = factor * deep
    avail = mem_available()
    if avail and avail < need:
        raise BenchError(f"the frame is {human(deep)} in pandas; this benchmark needs about "
                         f"{human(need)} of free memory and MemAvailable is {human(avail)}: "
                         f"use a smaller {smaller}")


# -- checks ----------------------------------------------------------------------------------

def check_means(got: dict, want, what: str, rel: float, numbers: tuple[type, ...]) -> bool:
    """aside's means per group (got: g -> mean) against pandas' Series want (index g). Raises
    BenchError when the groups differ (what names them in the message) or a mean is not of one
    of the types numbers (never bool) within rel of pandas' (relative). True when every mean is
    bit-identical."""
    want = {str(k): float(v) for k, v in want.items()}
    if set(got) != set(want):
        raise BenchError(f"aside: {what} differ from pandas': only aside "
                         f"{sorted(set(got) - set(want))[:5]}, only pandas "
                         f"{sorted(set(want) - set(got))[:5]}")
    bad = [(g, got[g], w) for g, w in want.items()
           if not (isinstance(got[g], numbers) and not isinstance(got[g], bool)
                   and math.isclose(got[g], w, rel_tol=rel, abs_tol=0.0))]
    if bad:
        raise BenchError(f"aside: {len(bad)} group mean(s) differ from pandas' by more than "
                         f"{rel:g} relative, e.g. (group, aside, pandas) {bad[:3]}")
    return all(got[g] == w for g, w in want.items())


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
    """What df.info() prints."""
    buf = io.StringIO()
    df.info(buf=buf)
    return buf.getvalue()


def describe_frame(rows: int, deep: int) -> str:
    """The report's description of the frame: its columns and its size in pandas."""
    return (f"{rows:,} rows; int64 id, a, b; float64 x, y, z (1% NaN); object g ({GROUPS} "
            f"values), s ({S_POOL:,} values, 1% None); {human(deep)} in pandas (deep)")


def write_frame(path: str, rows: int, seed: int, memory_factor: int,
                smaller: str) -> tuple[int, int]:
    """Makes the frame, checks that MemAvailable holds memory_factor times it (require_memory),
    writes it to path as parquet (snappy) and lets it go: (its deep size in pandas, the file's
    size)."""
    df = make_frame(rows, seed)
    deep = int(df.memory_usage(index=True, deep=True).sum())
    require_memory(deep, memory_factor, smaller)
    df.to_parquet(path, compression="snappy")
    del df
    gc.collect()
    return deep, os.path.getsize(path)


def frame_file(path: str, rows: int, seed: int, memory_factor: int, disk_copies: int,
               disk_for: str) -> tuple[int, int]:
    """write_frame for --gib or --rows; then raises BenchError when the free disk there is under
    disk_copies times the file (disk_for: what the copies are for), and prints the frame's line.
    (its deep size in pandas, the file's size)."""
    t0 = time.perf_counter()
    deep, file_size = write_frame(path, rows, seed, memory_factor, "--gib or --rows")
    free = shutil.disk_usage(os.path.dirname(path)).free
    if free < disk_copies * file_size:
        raise BenchError(f"not enough free disk for {disk_for} ({human(free)})")
    print(f"  frame: {rows:,} rows x 8 columns, {human(deep)} in pandas (deep), parquet "
          f"snappy {human(file_size)} ({time.perf_counter() - t0:.1f} s to make)")
    return deep, file_size


# -- timing ------------------------------------------------------------------------------------

def timed(fn: Callable[[], object]) -> tuple[float, object]:
    """fn's seconds (perf_counter) and what it returned."""
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def alternate(repeat: int, sides: dict[str, Callable[[], object]],
              label: str) -> dict[str, list[float]]:
    """Each side's callable, repeat rounds; odd rounds in the given order, even ones reversed.
    Garbage from one call is collected outside the clock. Prints each round's times; returns
    each side's seconds, round by round."""
    names = list(sides)
    times: dict[str, list[float]] = {n: [] for n in names}
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
    """The median, the figure every report gives."""
    return statistics.median(xs)
