#!/usr/bin/env python3
"""startup.py -- how long aside takes to start on a disk tier of many small keys, against Redis
loading the same keys.

  .venv/bin/python bench/startup.py [--keys 200000] [--value-bytes 16] [--rounds 3]
                                    [--connections 8] [--dir /dev/shm] [--no-redis]

A start-up costs per key: aside scans its disk tier (a value file and a sidecar per key) and
indexes every key before it listens; Redis reads its append-only file or its RDB snapshot into
memory. The script fills a fresh aside with --keys small values (`put`, keys s/<n/1000>/<n> of
--value-bytes bytes, on --connections connections), stops it (SIGTERM), and starts it again
--rounds times on the same folders, timing each start from the process' creation until it
answers an HTTP request (`head`, its telemetry, which must count every key). It reports the
median, the spread, and the figure that scales: seconds per million keys beyond the fixed cost
of a start on an empty tier (measured first), of the wall time and of the start's CPU time
(the process' own, from /proc, read when it answers). Then Redis gets the same keys and
values (SET, pipelined), writes them as an AOF (appendonly yes, appendfsync everysec) and as an
RDB snapshot (SAVE), and is restarted --rounds times on each until it answers PING with DBSIZE
equal to --keys.

The folders live under --dir (default /dev/shm when it is writable: a RAM file system, so the
fill takes a minute rather than the hours 200,000 fsyncs of four files each would take on a
disk, and a start measures the scan and the indexing, not the disk's seek time; the page cache
would hold the tier after a fill on a disk anyway). Both servers run on the same machine in the
same run, one at a time.

Environment (passed to aside; the output says what was used):
  ASIDE_SERVER   the server binary, relative to the repository root [build/aside-server]

Needs redis-server for the comparison (Debian: apt-get install redis-server; --no-redis skips it)
and the requests module. Everything it starts is stopped on exit (SIGTERM, then a wait),
including on failure and Ctrl-C; its files live in a temporary directory that is removed at the
end.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from aside_process import (BenchError, BenchRun, LocalAside, core_count,  # noqa: E402
                           install_signal_handlers, modules, positive_int, print_facts,
                           print_problems, run_facts, server_binary, server_version,
                           stop_process)
from collections_vs_redis import Resp, free_port  # noqa: E402

PROG = "startup"
STOP_TIMEOUT = 120.0        # seconds for a server to exit on SIGTERM before SIGKILL
START_TIMEOUT = 600.0       # seconds a start may take before the run is given up
CALL_TIMEOUT = 60.0         # seconds an HTTP call may take
POLL_S = 0.005              # between attempts to reach a starting server
PIPELINE = 1000             # Redis commands in flight while filling
KEYS_PER_FOLDER = 1000      # aside keys s/<n // 1000>/<n>: folders of a thousand files


def key_of(n: int) -> str:
    return f"s/{n // KEYS_PER_FOLDER}/{n}"


def process_cpu_s(pid: int) -> float:
    """User and system CPU seconds of a running process, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- aside -------------------------------------------------------------------------------------

def fill_aside(aside: LocalAside, keys: int, value: bytes, connections: int) -> None:
    """put every key, connections threads each with its own session."""
    import requests
    errors: list[str] = []

    def work(first: int) -> None:
        with requests.Session() as s:
            s.trust_env = False
            for n in range(first, keys, connections):
                r = s.post(aside.url, params={"function": "put", "key": key_of(n)},
                           data=value, timeout=CALL_TIMEOUT)
                if r.status_code != 200:
                    errors.append(f"put {key_of(n)}: {r.status_code} {r.text[:200]}")
                    return

    threads = [threading.Thread(target=work, args=(i,)) for i in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise BenchError(errors[0])


def aside_keys(aside: LocalAside) -> int | None:
    """The keys aside counts, or None while it does not answer."""
    import requests
    try:
        r = aside.session.get(aside.url, params={"function": "head"}, timeout=CALL_TIMEOUT)
    except requests.ConnectionError:
        return None
    return r.json()["return"]["value"]["keys"] if r.status_code == 200 else None


def time_aside_start(aside: LocalAside, keys: int) -> tuple[float, float]:
    """Start aside; seconds until it answers with every key, and its CPU seconds by then."""
    t0 = time.perf_counter()
    aside.start()  # returns at its listening line: the scan is done by then
    while (count := aside_keys(aside)) is None:
        if time.perf_counter() - t0 > START_TIMEOUT:
            raise BenchError("aside did not answer in time")
        time.sleep(POLL_S)
    elapsed = time.perf_counter() - t0
    cpu = process_cpu_s(aside.proc.pid)
    if count != keys:
        raise BenchError(f"aside started with {count} keys, not {keys}")
    return elapsed, cpu


# -- Redis -------------------------------------------------------------------------------------

class RedisServer:
    """redis-server on 127.0.0.1 with its files in a folder of its own."""

    def __init__(self, directory: str) -> None:
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.proc: subprocess.Popen | None = None
        self.port = 0

    def start(self, appendonly: bool) -> Resp:
        """Start it and return a client once it answers PING (it answers only after loading)."""
        self.port = free_port()
        cmd = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir",
               self.dir, "--save", "", "--appendonly", "yes" if appendonly else "no",
               "--appendfsync", "everysec", "--daemonize", "no"]
        with open(os.path.join(self.dir, "redis.log"), "ab") as log:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT)
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < START_TIMEOUT and self.proc.poll() is None:
            try:
                client = Resp(self.port)
            except OSError:
                time.sleep(POLL_S)
                continue
            try:
                if client.call("PING") == "PONG":
                    return client
            except BenchError:  # LOADING: not yet
                pass
            client.close()
            time.sleep(POLL_S)
        raise BenchError("redis-server did not start")

    def stop(self) -> None:
        code = stop_process(self.proc, "redis-server", PROG, STOP_TIMEOUT)
        self.proc = None
        if code not in (None, 0):
            raise BenchError(f"redis-server exited with status {code}")


def time_redis_start(redis: RedisServer, appendonly: bool, keys: int) -> tuple[float, float]:
    t0 = time.perf_counter()
    client = redis.start(appendonly)
    elapsed = time.perf_counter() - t0
    cpu = process_cpu_s(redis.proc.pid)
    count = client.call("DBSIZE")
    client.close()
    redis.stop()
    if count != keys:
        raise BenchError(f"Redis started with {count} keys, not {keys}")
    return elapsed, cpu


def fill_redis(redis: RedisServer, keys: int, value: bytes) -> None:
    """SET every key (AOF on), then write an RDB snapshot too, and stop."""
    client = redis.start(appendonly=True)
    for first in range(0, keys, PIPELINE * 10):
        last = min(keys, first + PIPELINE * 10)
        client.pipeline([("SET", key_of(n), value) for n in range(first, last)], PIPELINE)
    client.call("SAVE")
    client.close()
    redis.stop()


# -- the report --------------------------------------------------------------------------------

def summary(name: str, runs: list[tuple[float, float]], keys: int,
            fixed: tuple[float, float] = (0.0, 0.0)) -> str:
    """A line of the report: median seconds (spread), then seconds per million keys of the
    wall and CPU time beyond the fixed cost."""
    walls = [w for w, _ in runs]
    cpus = [c for _, c in runs]
    wall = statistics.median(walls)
    cpu = statistics.median(cpus)
    per_million = 1e6 / keys
    wall, cpu = wall - fixed[0], cpu - fixed[1]
    return (f"  {name:<26} {statistics.median(walls):8.3f} s  ({min(walls):.3f}-{max(walls):.3f})"
            f"   {wall * per_million:7.2f} s/M keys   CPU {statistics.median(cpus):7.3f} s, "
            f"{cpu * per_million:6.2f} s/M keys")


def default_dir() -> str:
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else tempfile.gettempdir()


def main() -> int:
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    ap.add_argument("--keys", type=positive_int, default=200_000)
    ap.add_argument("--value-bytes", type=positive_int, default=16)
    ap.add_argument("--rounds", type=positive_int, default=3)
    ap.add_argument("--connections", type=positive_int, default=8)
    ap.add_argument("--dir", default=default_dir(), help="where the servers' files live")
    ap.add_argument("--no-redis", action="store_true", help="measure aside alone")
    args = ap.parse_args()
    interrupted = install_signal_handlers(PROG)
    exe, exe_path = server_binary(PROG)
    modules(PROG, ["requests"], "requests")
    with_redis = not args.no_redis
    if with_redis and not shutil.which("redis-server"):
        raise SystemExit(f"{PROG}: redis-server not found (apt-get install redis-server), "
                         "or run with --no-redis")
    tempfile.tempdir = args.dir
    value = b"v" * args.value_bytes
    env = {"ASIDE_THREADS": "2", "ASIDE_MEMORY_LIMIT": "1GiB"}
    with BenchRun(PROG, interrupted, "aside-startup-") as run:
        cores = core_count()
        facts = run_facts(exe, env, " ".join(["bench/startup.py", *sys.argv[1:]]), cores)
        aside = LocalAside(exe_path, run.tmp, env, PROG, STOP_TIMEOUT)
        run.aside = aside
        print(f"{PROG}: filling aside with {args.keys:,} keys of {args.value_bytes} B under "
              f"{args.dir} ...", flush=True)
        empty = time_aside_start(aside, 0)  # the fixed cost: an empty tier
        t0 = time.perf_counter()
        fill_aside(aside, args.keys, value, args.connections)
        fill_s = time.perf_counter() - t0
        results = [f"  {'aside, empty tier':<26} {empty[0]:8.3f} s   CPU {empty[1]:7.3f} s "
                   "(the fixed cost, not counted per key)"]
        aside_runs = []
        for _ in range(args.rounds):
            aside.stop()
            aside_runs.append(time_aside_start(aside, args.keys))
        results.append(summary("aside (disk tier scan)", aside_runs, args.keys, empty))
        problems = aside.problems()
        if with_redis:
            redis = RedisServer(os.path.join(run.tmp, "redis"))
            run.closers.append(lambda: stop_process(redis.proc, "redis-server", PROG,
                                                    STOP_TIMEOUT))
            fill_redis(redis, args.keys, value)
            for appendonly, name in ((True, "Redis (AOF everysec)"), (False, "Redis (RDB)")):
                runs = [time_redis_start(redis, appendonly, args.keys)
                        for _ in range(args.rounds)]
                results.append(summary(name, runs, args.keys))
            version = subprocess.run(["redis-server", "--version"], capture_output=True,
                                     text=True).stdout.strip()
            facts["redis"] = version
        print()
        print(f"start-up with {args.keys:,} keys of {args.value_bytes} B (filled in "
              f"{fill_s:.0f} s), median of {args.rounds} starts (lowest-highest), until the "
              "server answers with every key:")
        for line in results:
            print(line)
        print_problems(problems)
        print()
        facts["aside"] = server_version(exe_path)
        print_facts(facts, [k for k in ("reproduce", "date", "machine", "aside", "redis")
                            if k in facts])
    return run.status


if __name__ == "__main__":
    sys.exit(main())
