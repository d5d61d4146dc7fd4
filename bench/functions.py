#!/usr/bin/env python3
"""functions.py -- users' functions next to the data: the cost of a call, and of a kept result.

  make bench-functions
  .venv/bin/python bench/functions.py [--seconds 10] [--connections 32] [--rounds 2]
                                      [--mib 100] [--hits 20] [--seed 0]

On 127.0.0.1 only. aside-server starts with a folder of function files this script writes (the
server's LOCAL_FUNCTION_DIR) and its worker pool run by this Python (ASIDE_PYTHON =
sys.executable, which needs the aside package, pandas and pyarrow); in one run:

  1. calls     wrk (--wrk-threads threads, --connections keep-alive connections, --seconds per
               run, --latency) against ?function=echo&message=hi, where echo.py is
               `def main(cache, message): return message`: every request goes from the event
               loop to the blocking pool, over a Unix socket to a Python worker and back. For
               reference, the same load against a built-in cheap call that never leaves the
               server: ?function=read&key=small.json&return=data, a 100-byte JSON key already in
               memory. After a warm-up (the workers start on demand), --rounds rounds that
               alternate which goes first; requests/s, p50 and p99 (wrk's), medians over the
               rounds. Any non-2xx answer or socket error stops the benchmark. Also, for the
               analysis, one connection and one call at a time (http.client, keep-alive): the
               unloaded latency of each.
  2. results   a ~--mib MiB DataFrame (pandas memory, deep; the generator of
               frames_vs_pandas.py, seeded) as parquet in the system of record, and gmean.py:

                   import aside

                   @aside.compute_result
                   def main(cache, key):
                       df = cache[key]
                       return df.groupby("g")["x"].mean().reset_index()

               The input is loaded into aside first (function=info, timed once, for
               information), so the first call computes from memory: ?function=gmean&key=K is a
               miss (the worker reads the frame through shared memory, groups, stores the result
               and its dependency document in aside), then --hits calls are hits (read back the
               dependency document, check the input's generation, return the stored frame).
               Median hit against the miss. Then invalidation: a new frame (seed + 1) replaces
               the file in the system of record, ?function=update&path=K revalidates the key, and
               the next call must be a miss again, and the one after a hit.
               For the analysis, the parts of both, timed in this process with the same client
               the workers use: reading the frame (shared memory), the groupby, and the reads a
               hit makes.

What is a hit or a miss is seen from the server, not inferred from times: a miss puts the result
again (a new generation of results/gmean-<hash>.parquet in cache_head), a hit does not; every
call is checked. Every answer is checked too, and a wrong one stops the benchmark (exit 1): the
miss's records equal pandas' own df.groupby("g")["x"].mean() of pd.read_parquet(file) (every
group, each mean within 1e-9 relative; whether they are bit-identical is printed), each hit's
records equal the miss's exactly, a hit fetched as Arrow (format=arrow) decodes to a DataFrame
equal to pandas', and after the update the new answer equals pandas on the new file and differs
from the old one.

Exits 0 when everything ran and every check passed, whatever the numbers; 1 otherwise (also if
wrk saw errors, a worker crashed or timed out, or aside does not exit cleanly, status 0, on
SIGTERM).

Environment (passed to aside; the output says what was used):
  ASIDE_SERVER            the server binary, relative to the repository root [build/aside-server]
  ASIDE_THREADS           event-loop threads [number of cores]
  ASIDE_FUNCTION_WORKERS  function worker processes [number of cores]
  ASIDE_LOAD_THREADS      the blocking pool, which holds the calls waiting for a worker [32]
  ASIDE_FUNCTION_SANDBOX, ASIDE_FUNCTION_USER
                          passed when set [the server's defaults: sandboxed, as nobody under
                          root]; ASIDE_FUNCTION_SANDBOX=off ASIDE_FUNCTION_USER=root measures
                          the workers without the sandbox

Needs wrk. Everything it starts is stopped on exit (SIGTERM, then a wait), including on failure
and Ctrl-C; its files live in a temporary directory that is removed at the end.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import gc
import http.client
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from aside_process import (BenchError, BenchRun, LocalAside, core_count,  # noqa: E402
                           install_signal_handlers, modules, positive_int, print_facts,
                           print_problems, run_facts, server_binary, server_version)
from bench_common import (check_means, human, make_frame, rows_for, secs,  # noqa: E402
                          write_frame)
from ratio import Report  # noqa: E402

PROG = "functions"
KEY = "functions_bench.parquet"
SMALL_KEY = "small.json"
WARM_KEY = "warm.parquet"
FUNCTION = "gmean"
REL = 1e-9                      # relative tolerance of the group means against pandas
STOP_TIMEOUT = 20.0             # seconds for aside to exit on SIGTERM before SIGKILL
CALL_TIMEOUT = 120.0            # seconds an HTTP call may take
LOAD_TIMEOUT = 600.0            # seconds the first load of the frame may take
PASSED_IF_SET = ("ASIDE_FUNCTION_SANDBOX", "ASIDE_FUNCTION_USER")  # to aside, when set
WARMUP_SECONDS = 3              # wrk warm-up of the function workers
SEQUENTIAL_CALLS = 300          # one-at-a-time calls of the unloaded latency
MEMORY_FACTOR = 12              # MemAvailable needed, in frame sizes (bench, worker, aside)

FILES = {
    "echo.py": '''"""echo -- the smallest function: answers its message."""


def main(cache, message):
    return message
''',
    f"{FUNCTION}.py": '''"""gmean -- the mean of x per group g of a frame, kept in aside by @compute_result."""
import aside


@aside.compute_result
def main(cache, key):
    df = cache[key]
    return df.groupby("g")["x"].mean().reset_index()
''',
    "warm.py": '''"""warm -- reads a small frame through the cache: warms a worker's client and shared memory."""


def main(cache, key):
    return len(cache[key])
''',
}


# -- aside -------------------------------------------------------------------------------------

class Aside(LocalAside):
    """aside-server on 127.0.0.1 with a directory as its system of record and a function folder."""

    def __init__(self, exe: str, tmp: str, env_extra: dict[str, str]) -> None:
        self.functions = os.path.join(tmp, "functions")
        os.makedirs(self.functions, exist_ok=True)
        env = dict(env_extra)
        env.update({"LOCAL_FUNCTION_DIR": self.functions, "ASIDE_PYTHON": sys.executable})
        super().__init__(exe, tmp, env, PROG, STOP_TIMEOUT, drop=("LOCAL_FUNCTION_DIR",))

    def entry(self, key: str) -> dict | None:
        """cache_head's entry of one key (path, type, tier, generation, ...), None if not cached."""
        for e in self.value(CALL_TIMEOUT, function="cache_head", path=key).get("entries", []):
            if e.get("path") == key:
                return e
        return None

    def result_keys(self) -> tuple[str, str] | None:
        """(result, dependency document) keys of gmean's results in the cache, if any."""
        keys = self.value(CALL_TIMEOUT, function="stats_cache")
        found = sorted(k for k in keys if k.startswith(f"results/{FUNCTION}-")
                       and k.endswith(".parquet"))
        if len(found) > 1:
            raise BenchError(f"aside holds {len(found)} results of {FUNCTION}: {found}")
        if not found:
            return None
        return found[0], found[0][:-len(".parquet")] + ".deps.json"

    def functions_telemetry(self) -> dict:
        return self.value(CALL_TIMEOUT, function="cache_head").get("functions", {})


# -- wrk ---------------------------------------------------------------------------------------

TIME_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


class WrkRun:
    """One wrk run: ratio.py's Report (req/s, p99, errors) and the median latency."""

    def __init__(self, path: str) -> None:
        self.report = Report(path)
        with open(path, encoding="utf-8", errors="replace") as f:
            self.text = f.read()
        m = re.search(r"^\s*50(?:\.0+)?%\s+([\d.]+)(us|ms|s|m)\s*$", self.text, re.M)
        self.p50 = float(m.group(1)) * TIME_UNITS[m.group(2)] if m else None
        if self.p50 is None:
            self.report.errors.append("no 50% latency in the wrk report")

    @property
    def rps(self) -> float:
        return self.report.req_per_s

    @property
    def p99(self) -> float:
        return self.report.p99_s


def run_wrk(target_url: str, seconds: int, threads: int, connections: int, out: str) -> WrkRun:
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", target_url]
    with open(out, "wb") as f:
        try:
            rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                timeout=seconds + 60).returncode
        except subprocess.TimeoutExpired:
            raise BenchError(f"wrk did not finish within {seconds + 60} s") from None
    run = WrkRun(out)
    if rc != 0:
        raise BenchError(f"wrk exited with status {rc}:\n{run.text}")
    if run.report.errors:
        raise BenchError(f"wrk against {target_url}: " + "; ".join(run.report.errors) +
                         "\n" + run.text)
    return run


def sequential(port: int, target: str, n: int) -> list[float]:
    """n GETs one after the other on one keep-alive http.client connection: each one's seconds."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=CALL_TIMEOUT)
    times = []
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            conn.request("GET", target)
            resp = conn.getresponse()
            body = resp.read()
            times.append(time.perf_counter() - t0)
            if resp.status != 200:
                raise BenchError(f"aside: GET {target} answered {resp.status}: {body[:300]!r}")
    finally:
        conn.close()
    return times


def quantile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


# -- checks ------------------------------------------------------------------------------------

def records_means(records) -> dict[str, float]:
    if not isinstance(records, list) or not records:
        raise BenchError(f"aside: {FUNCTION} answered no records: {str(records)[:300]}")
    out = {}
    for r in records:
        if not isinstance(r, dict) or set(r) != {"g", "x"}:
            raise BenchError(f"aside: {FUNCTION} record is not {{g, x}}: {r}")
        out[r["g"]] = r["x"]
    return out


def records_check(records, want) -> bool:
    """The records' means against pandas' Series want (index g), within REL (check_means). True
    when every mean is bit-identical."""
    return check_means(records_means(records), want, f"{FUNCTION}'s groups", REL, (float,))


def write_parquet(df, path: str, scratch: str) -> None:
    """Write df as parquet (snappy) next to nothing the server can see, then rename it into
    place: the system of record never shows half a file."""
    tmp_path = os.path.join(scratch, "next.parquet")
    df.to_parquet(tmp_path, compression="snappy")
    os.replace(tmp_path, path)


# -- main --------------------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description="users' functions in aside: calls through the worker "
                                             "pool, and @compute_result hits against misses")
    ap.add_argument("--seconds", type=positive_int, default=10, help="seconds per wrk run [10]")
    ap.add_argument("--connections", type=positive_int, default=32,
                    help="wrk's keep-alive connections [32]")
    ap.add_argument("--wrk-threads", type=positive_int, default=2, help="wrk's threads [2]")
    ap.add_argument("--rounds", type=positive_int, default=2,
                    help="wrk rounds of each call, alternating the order; medians [2]")
    ap.add_argument("--mib", type=positive_int, default=100,
                    help="the frame's size in pandas memory (deep), MiB [100]")
    ap.add_argument("--hits", type=positive_int, default=20,
                    help="timed hits of the kept result; the median is reported [20]")
    ap.add_argument("--seed", type=int, default=0, help="numpy seed of the frame [0]")
    args = ap.parse_args()

    exe, exe_path = server_binary(PROG)
    if shutil.which("wrk") is None:
        print(f"{PROG}: error: wrk not found in PATH (Debian: apt-get install wrk)",
              file=sys.stderr)
        return 1
    np, pd, pa, _, requests, aside_client = modules(
        PROG, ("numpy", "pandas", "pyarrow", "pyarrow.ipc", "requests", "aside"),
        "pandas pyarrow requests ./clients/python")

    interrupted = install_signal_handlers(PROG)

    cores = core_count()
    threads = os.environ.get("ASIDE_THREADS", str(cores))
    workers = os.environ.get("ASIDE_FUNCTION_WORKERS", str(cores))
    load_threads = os.environ.get("ASIDE_LOAD_THREADS", "32")
    aside_env = {"ASIDE_THREADS": threads, "ASIDE_FUNCTION_WORKERS": workers,
                 "ASIDE_LOAD_THREADS": load_threads}
    for name in PASSED_IF_SET:
        if name in os.environ:
            aside_env[name] = os.environ[name]
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True,
                                 timeout=10).stdout.split("\n")[0].split(" ")[1:2]
    facts = run_facts(exe, aside_env, f"bench/functions.py --seconds {args.seconds} "
                      f"--connections {args.connections} --wrk-threads {args.wrk_threads} "
                      f"--rounds {args.rounds} --mib {args.mib} --hits {args.hits} "
                      f"--seed {args.seed}", cores)
    facts.update({
        "aside": f"{server_version(exe_path)}, {threads} threads, {workers} function workers, "
                 f"blocking pool of {load_threads}",
        "python": f"Python {sys.version.split()[0]}, pandas {pd.__version__}, pyarrow "
                  f"{pa.__version__}, numpy {np.__version__}, requests {requests.__version__}",
        "wrk": f"wrk {(wrk_version or ['?'])[0]}, {args.wrk_threads} threads, "
               f"{args.connections} connections, {args.seconds} s per run, --latency",
    })
    if int(load_threads) < args.connections:
        print(f"  note: ASIDE_LOAD_THREADS={load_threads} is below --connections "
              f"{args.connections}: calls will also wait for a pool thread")

    print(f"aside functions: calls through the worker pool, @compute_result on ~{args.mib} MiB")
    with BenchRun(PROG, interrupted, "aside-functions-") as run:
        tmp = run.tmp
        # -- the files -------------------------------------------------------------------------
        aside = run.aside = Aside(exe_path, tmp, aside_env)
        for name, source in FILES.items():
            with open(os.path.join(aside.functions, name), "w", encoding="utf-8") as f:
                f.write(source)
        with open(os.path.join(aside.sor, SMALL_KEY), "w", encoding="utf-8") as f:
            f.write('{"name":"small","pad":"' + "x" * 75 + '"}')
        make_frame(1000, args.seed).to_parquet(os.path.join(aside.sor, WARM_KEY))

        t0 = time.perf_counter()
        rows = rows_for(args.mib / 1024, args.seed)
        path = os.path.join(aside.sor, KEY)
        deep, file_size = write_frame(path, rows, args.seed, MEMORY_FACTOR, "--mib")
        facts["frame"] = (f"{rows:,} rows x 8 columns (frames_vs_pandas' generator, seed "
                          f"{args.seed}), {human(deep)} in pandas (deep), parquet snappy "
                          f"{human(file_size)}")
        print(f"  frame: {facts['frame']} ({time.perf_counter() - t0:.1f} s to make)")

        aside.start()
        print(f"  aside listening on 127.0.0.1:{aside.port} ({facts['aside']})")
        print()

        # -- 1. calls --------------------------------------------------------------------------
        print("1. calls: wrk against a function (through the worker pool) and a built-in read")
        echo_t = aside.target(function="echo", message="hi")
        read_t = aside.target(function="read", key=SMALL_KEY, **{"return": "data"})
        if aside.value(CALL_TIMEOUT, function="echo", message="hi") != "hi":
            raise BenchError("aside: echo did not answer its message")
        small = aside.value(CALL_TIMEOUT, function="read", key=SMALL_KEY, **{"return": "data"})
        if small.get("name") != "small":
            raise BenchError(f"aside: read of {SMALL_KEY} answered {small}")
        if aside.entry(SMALL_KEY).get("tier") != "memory":
            raise BenchError(f"aside: {SMALL_KEY} is not in memory after a read")
        print(f"  warm-up: echo, {WARMUP_SECONDS} s of wrk (starts the workers)")
        wrk_dir = os.path.join(tmp, "wrk")
        os.makedirs(wrk_dir)
        run_wrk(aside.base + echo_t, WARMUP_SECONDS, args.wrk_threads, args.connections,
                os.path.join(wrk_dir, "warmup.txt"))
        calls_before = aside.functions_telemetry().get("calls", 0)
        runs: dict[str, list[WrkRun]] = {"echo": [], "read": []}
        targets = {"echo": echo_t, "read": read_t}
        n = 0
        for i in range(args.rounds):
            for name in (["echo", "read"] if i % 2 == 0 else ["read", "echo"]):
                n += 1
                if not aside.alive():
                    raise BenchError("aside exited during the measurements")
                r = run_wrk(aside.base + targets[name], args.seconds, args.wrk_threads,
                            args.connections, os.path.join(wrk_dir, f"{n}-{name}.txt"))
                runs[name].append(r)
                print(f"  round {i + 1}/{args.rounds} {name:<4}  {r.rps:>10,.0f} req/s  p50 "
                      f"{secs(r.p50):>9}  p99 {secs(r.p99):>9}  ({r.report.requests:,} "
                      f"requests, 0 errors)", flush=True)
        tele = aside.functions_telemetry()
        echo_requests = sum(r.report.requests for r in runs["echo"])
        # wrk counts the requests that completed; the ones cut off at the end still ran.
        if not echo_requests <= tele.get("calls", 0) - calls_before <= echo_requests + 2 * \
                args.connections * args.rounds:
            raise BenchError(f"aside counted {tele.get('calls', 0) - calls_before} function "
                             f"calls during wrk's {echo_requests} echo requests")
        seq = {name: sequential(aside.port, t, SEQUENTIAL_CALLS) for name, t in targets.items()}
        print(f"  one connection, one call at a time ({SEQUENTIAL_CALLS} calls): " +
              ", ".join(f"{name} median {secs(statistics.median(v))}, p99 "
                        f"{secs(quantile(v, 0.99))}" for name, v in seq.items()))
        print()

        # -- 2. results ------------------------------------------------------------------------
        print(f"2. @compute_result: {FUNCTION}(key) on the frame, hit against miss")
        ref = pd.read_parquet(path)
        want = ref.groupby("g")["x"].mean()
        del ref
        gc.collect()
        load_s = time.perf_counter()
        aside.value(LOAD_TIMEOUT, function="info", key=KEY)
        load_s = time.perf_counter() - load_s
        frame_entry = aside.entry(KEY)
        if frame_entry is None or frame_entry.get("type") != "frame":
            raise BenchError(f"aside: {KEY} is not a cached frame after info: {frame_entry}")
        print(f"  input loaded into aside (first info, from the SOR): {secs(load_s)}; a "
              f"{frame_entry['type']} in {frame_entry['tier']}, generation "
              f"{frame_entry['generation']}")
        # Warm every worker's client and shared-memory path on a small frame.
        with concurrent.futures.ThreadPoolExecutor(int(workers) * 2) as ex:
            for v in ex.map(lambda _: aside.value(CALL_TIMEOUT, function="warm", key=WARM_KEY),
                            range(int(workers) * 4)):
                if v != 1000:
                    raise BenchError(f"aside: warm answered {v}")
        if aside.result_keys() is not None:
            raise BenchError(f"aside holds a result of {FUNCTION} before the first call")

        def call():
            t0 = time.perf_counter()
            records = aside.value(CALL_TIMEOUT, function=FUNCTION, key=KEY)
            return time.perf_counter() - t0, records

        miss_s, miss_records = call()
        keys = aside.result_keys()
        if keys is None:
            raise BenchError(f"aside holds no result of {FUNCTION} after the first call")
        result_key, deps_key = keys
        gen = aside.entry(result_key)
        if gen.get("type") != "frame":
            raise BenchError(f"aside: the result {result_key} is a {gen.get('type')}, not a frame")
        gen = gen["generation"]
        exact = records_check(miss_records, want)
        deps = aside.value(CALL_TIMEOUT, function="read", key=deps_key, **{"return": "data"})
        if deps.get("inputs") != {KEY: frame_entry["generation"]} or deps.get("result") != \
                result_key:
            raise BenchError(f"aside: the dependency document is not what the call read: {deps}")
        print(f"  miss (computes, stores the result): {secs(miss_s)}; {len(miss_records)} groups,"
              f" equal to pandas' groupby ({'bit-identical' if exact else f'within {REL:g}'}); "
              f"kept as {result_key} (a frame), inputs {deps['inputs']}")

        hits = []
        for i in range(args.hits):
            gc.collect()
            s, records = call()
            if records != miss_records:
                raise BenchError(f"aside: hit {i + 1}'s answer differs from the miss's")
            if aside.entry(result_key)["generation"] != gen:
                raise BenchError(f"aside: call {i + 1} after the miss stored its result again "
                                 "(a miss, not a hit)")
            hits.append(s)
        print(f"  {args.hits} hits: median {secs(statistics.median(hits))}, min "
              f"{secs(min(hits))}, max {secs(max(hits))}; each answer equals the miss's, the "
              "stored result's generation never changed")
        r = aside.session.get(aside.url, params={"function": FUNCTION, "key": KEY,
                                                 "return": "data", "format": "arrow"},
                              timeout=CALL_TIMEOUT)
        if r.status_code != 200:
            raise BenchError(f"aside: {FUNCTION} as Arrow answered {r.status_code}: {r.text[:300]}")
        got = pa.ipc.open_stream(r.content).read_pandas()
        try:
            pd.testing.assert_frame_equal(got, want.reset_index(), check_exact=False, rtol=REL)
        except AssertionError as e:
            raise BenchError(f"aside: the hit as Arrow is not pandas' frame: {e}") from None
        if aside.entry(result_key)["generation"] != gen:
            raise BenchError("aside: the Arrow call stored the result again (a miss)")
        print(f"  a hit as format=arrow decodes to a DataFrame equal to pandas' "
              f"groupby(\"g\")[\"x\"].mean().reset_index()")

        # Invalidation: a new file in the system of record, revalidated.
        df2 = make_frame(rows, args.seed + 1)
        want2 = df2.groupby("g")["x"].mean()
        write_parquet(df2, path, tmp)
        del df2
        gc.collect()
        meta = aside.value(LOAD_TIMEOUT, function="update", path=KEY)
        if meta.get("revalidated"):
            raise BenchError(f"aside: update of the rewritten {KEY} kept the old copy: {meta}")
        frame_gen2 = aside.entry(KEY)["generation"]
        if frame_gen2 == frame_entry["generation"]:
            raise BenchError("aside: the input's generation did not change on update")
        inval_s, inval_records = call()
        gen2 = aside.entry(result_key)["generation"]
        if gen2 == gen:
            raise BenchError("aside: the call after the update was a hit on the old result")
        exact2 = records_check(inval_records, want2)
        if inval_records == miss_records:
            raise BenchError("aside: the answer after the update equals the old one")
        deps2 = aside.value(CALL_TIMEOUT, function="read", key=deps_key, **{"return": "data"})
        if deps2.get("inputs") != {KEY: frame_gen2}:
            raise BenchError(f"aside: the dependency document after the update: {deps2}")
        after_s, after_records = call()
        if after_records != inval_records or aside.entry(result_key)["generation"] != gen2:
            raise BenchError("aside: the call after the recomputation was not a hit on it")
        print(f"  input replaced in the SOR + update: input generation {frame_entry['generation']}"
              f" -> {frame_gen2}; next call a miss again: {secs(inval_s)}, recomputed and stored "
              f"(result generation {gen} -> {gen2}), equal to pandas on the new file "
              f"({'bit-identical' if exact2 else f'within {REL:g}'}), differs from the old answer;"
              f" the call after it a hit: {secs(after_s)}")

        # The parts, timed in this process with the same client the workers use.
        client = aside_client.connect(aside.base)
        parts: dict[str, list[float]] = {"read": [], "groupby": [], "deps": [], "stats": [],
                                         "result": []}
        for _ in range(3):
            gc.collect()
            t0 = time.perf_counter()
            frame = client.read(KEY)
            t1 = time.perf_counter()
            frame.groupby("g")["x"].mean().reset_index()
            t2 = time.perf_counter()
            parts["read"].append(t1 - t0)
            parts["groupby"].append(t2 - t1)
            transport = client.last_transport
            del frame
        for _ in range(args.hits):
            t0 = time.perf_counter()
            client.read(deps_key)
            t1 = time.perf_counter()
            client.stats(KEY)
            t2 = time.perf_counter()
            client.read(result_key)
            t3 = time.perf_counter()
            parts["deps"].append(t1 - t0)
            parts["stats"].append(t2 - t1)
            parts["result"].append(t3 - t2)
        client.close()
        part = {k: statistics.median(v) for k, v in parts.items()}
        print(f"  the parts, in this process (medians): client.read(frame) over {transport} "
              f"{secs(part['read'])}, groupby {secs(part['groupby'])}; a hit's reads: the "
              f"dependency document {secs(part['deps'])}, the input's generation "
              f"{secs(part['stats'])}, the stored result {secs(part['result'])}")

        tele = aside.functions_telemetry()
        if tele.get("crashes") or tele.get("timeouts"):
            raise BenchError(f"aside's function workers: {tele}")
        if not aside.alive():
            raise BenchError("aside exited during the measurements")

        # -- the report ------------------------------------------------------------------------
        med = {name: (statistics.median(r.rps for r in rs), statistics.median(r.p50 for r in rs),
                      statistics.median(r.p99 for r in rs)) for name, rs in runs.items()}
        hit = statistics.median(hits)
        print()
        print(f"results (wrk: medians of {args.rounds} round(s) of {args.seconds} s, "
              f"{args.connections} connections; every response 2xx, no socket errors)")
        print()
        print(f"  {'call':<52}  {'req/s':>9}  {'p50':>9}  {'p99':>9}  {'1 at a time':>11}")
        print("  " + "-" * 98)
        for name, label in (("echo", "function echo (worker pool)"),
                            ("read", f"built-in read of {SMALL_KEY} (memory)")):
            rps, p50, p99 = med[name]
            print(f"  {label:<52}  {rps:>9,.0f}  {secs(p50):>9}  {secs(p99):>9}  "
                  f"{secs(statistics.median(seq[name])):>11}")
        print(f"  built-in / function: {med['read'][0] / med['echo'][0]:.1f}x the requests/s; "
              f"one at a time, a function call costs "
              f"{secs(statistics.median(seq['echo']) - statistics.median(seq['read']))} more")
        print()
        print(f"  @compute_result {FUNCTION} on {human(deep)} ({rows:,} rows):")
        print(f"    miss (first computation)        {secs(miss_s):>10}")
        print(f"    {f'hit (median of {args.hits})':<32}{secs(hit):>10}   "
              f"miss / hit = {miss_s / hit:.0f}x")
        print(f"    miss after the input's update   {secs(inval_s):>10}   (invalidation: "
              f"recomputed, equals pandas on the new data)")
        print()
        print(f"  function workers: {tele}")
        print()
        print_facts(facts, ("reproduce", "date", "machine", "aside", "python", "wrk", "frame"))
        print_problems(aside.problems())
    return run.status


if __name__ == "__main__":
    sys.exit(main())
