#!/usr/bin/env python3
"""collections_vs_redis.py -- aside's collection operations against Redis, both on loopback.

  make bench-collections
  .venv/bin/python bench/collections_vs_redis.py [--seconds 3] [--rounds 3] [--connections 32]
                                                 [--wrk-threads 2] [--redis-benchmark-threads 1]
                                                 [--keys 100000] [--fsync everysec,always]
                                                 [--seed 1]

On 127.0.0.1 only. For each fsync mode (--fsync, in order), a fresh aside-server (ASIDE_FSYNC
set to the mode; its disk tier and system of record in a temporary directory) and a fresh
redis-server (--appendonly yes --appendfsync MODE, --save "", a temporary --dir), side by side;
then, for each workload, --rounds rounds that alternate which server goes first (round 1 aside,
round 2 Redis, ...). The same --connections connections for both, one request at a time on each
(HTTP/1.1 keep-alive for aside, -P 1 for Redis):

  workload            aside (wrk + bench/collections/ops.lua)       Redis (redis-benchmark)
  counter             counter_increment&key=c                       INCR c
  list push           list_push&key=l&value="xxx" (the back)        LPUSH l xxx
  map set             map_set&key=m&field=f<0..9999>&value=1        HSET m f__rand_int__ 1
                                                                    (-r 10000)
  set add             set_add&key=s&value=<0..999999>               SADD s __rand_int__ (-r 1000000)
  list range          list_range&key=r&start=0&stop=10              LRANGE r 0 9
  counter, 1 conn.    the counter on one connection (fsync always only: what group commit gives)

The map starts with its 10,000 fields and the list r with 100 items in both (loaded before the
first round), so that every map_set/HSET replaces a field and every read returns 10 items.
aside is loaded by wrk (--wrk-threads, --seconds per run, --latency); the Lua script draws the
fields and values with math.random, seeded with --seed + 100 x the round + the wrk thread.
Redis is loaded by redis-benchmark (--redis-benchmark-threads: 1 by default, its usual mode; its
multi-threaded mode ends a run on a 250 ms tick, which rounds its rates down), which counts
requests, not seconds: each workload's first run is sized from a short probe, later rounds from
the median rate so far, so that its runs also last about --seconds. redis-benchmark draws
__rand_int__ with a seed of its own. Reported for both: operations per second, latency p50 and
p99 (wrk's and redis-benchmark's percentiles of the same requests), each the median of the
rounds with their spread (lowest-highest), and aside/Redis: the ratio of the medians and each
round's ratio. Also the CPU time per operation of each server (/proc/PID/stat, user + system,
over the run) and of each load generator (getrusage of the waited-for child): on a machine with
few cores the load generator takes its share of them.

Checks, each of which stops the benchmark (exit 1): wrk saw no non-2xx answer and no socket
error, redis-benchmark reported no error; at the end of each mode aside's counter c lies between
the increments wrk answered (all 2xx) and those it sent (the Lua script counts them; the
difference is what was in flight when wrk's time was up), and Redis's counter equals the INCRs
redis-benchmark sent; the pushed list's length likewise; the map has 10,000 fields and the list
r's first 10 items are the same in both. Then, after the measurements of each mode, one rewrite
of each server's log, timed: aside's journal compaction (function=compact) and Redis's
BGREWRITEAOF (the time of its fork, the only part that stops Redis). How often either rewrote
its log during a run is printed with the run.

Memory per key, in the first mode, on the fresh servers before any workload: --keys counters
k/0, k/1, ... incremented once each (aside: pipelined HTTP/1.1 counter_increment requests on
one connection; Redis: pipelined INCRs on one connection); the growth of each server process'
VmRSS (/proc/PID/status) divided by --keys, and Redis's own count, INFO memory used_memory.
That is the whole process for aside; build/aside-trace --overhead measures aside's heap per key
precisely.

Exits 0 when everything ran and every check passed, whatever the numbers; 1 otherwise (also when
aside does not exit cleanly, status 0, on SIGTERM).

Environment (passed to aside; the output says what was used):
  ASIDE_SERVER   the server binary, relative to the repository root [build/aside-server]
  ASIDE_THREADS  event-loop threads [number of cores]

Needs wrk, redis-server and redis-benchmark (Debian: apt-get install wrk redis-server; Redis 7
for the percentiles in redis-benchmark's CSV) and the requests module. Everything it starts is
stopped on exit (SIGTERM, then a wait), including on failure and Ctrl-C; its files live in a
temporary directory that is removed at the end.
"""
from __future__ import annotations

import argparse
import csv
import io
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from aside_process import (REPO, BenchError, BenchRun, LocalAside, core_count,  # noqa: E402
                           install_signal_handlers, modules, positive_int, print_facts,
                           print_log_tail, print_problems, run_facts, server_binary,
                           server_version, stop_process)
from bench_common import human, secs  # noqa: E402
from ratio import Report  # noqa: E402

PROG = "collections_vs_redis"
LUA = os.path.join(REPO, "bench", "collections", "ops.lua")
STOP_TIMEOUT = 20.0             # seconds for a server to exit on SIGTERM before SIGKILL
CALL_TIMEOUT = 60.0             # seconds an HTTP or RESP call may take
START_TIMEOUT = 20.0            # seconds for redis-server to answer PING
PROBE_REQUESTS = 3000           # redis-benchmark's probe of a workload, which sizes its first run
MIN_REQUESTS = 5000             # fewest requests of a measured redis-benchmark run
MAP_FIELDS = 10_000
SET_VALUES = 1_000_000
RANGE_ITEMS = 100
PIPELINE_BATCH = 1000           # requests in flight while loading the memory keys
TIME_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


@dataclass
class Workload:
    tag: str                    # short name: the progress lines, wrk's report files
    name: str                   # the report's label
    op: str                     # ops.lua's operation
    redis: list[str]            # redis-benchmark's command
    keyspace: int | None = None  # redis-benchmark -r
    connections: int = 0        # 0: --connections
    only_mode: str | None = None  # run in this fsync mode only


WORKLOADS = [
    Workload("counter", "counter increment (one key)", "counter", ["INCR", "c"]),
    Workload("list_push", "list push", "list_push", ["LPUSH", "l", "xxx"]),
    Workload("map_set", f"map set (1 of {MAP_FIELDS // 1000}k fields)", "map_set",
             ["HSET", "m", "f__rand_int__", "1"], MAP_FIELDS),
    Workload("set_add", f"set add (1 of {SET_VALUES // 1_000_000}M values)", "set_add",
             ["SADD", "s", "__rand_int__"], SET_VALUES),
    Workload("list_range", f"list range (first 10 of {RANGE_ITEMS})", "list_range",
             ["LRANGE", "r", "0", "9"]),
    # What group commit gives: the same increments one at a time on a single connection.
    Workload("counter_1c", "counter increment, 1 connection", "counter", ["INCR", "c"],
             connections=1, only_mode="always"),
]


@dataclass
class Measure:
    """One run against one server: operations/s, latency p50 and p99 in seconds."""
    ops: float
    p50: float
    p99: float
    requests: int               # completed (wrk) or sent (redis-benchmark)
    sent: int                   # written to the server
    extra: dict = field(default_factory=dict)


def rss_bytes(pid: int) -> int:
    """VmRSS of a process, in bytes."""
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        m = re.search(r"^VmRSS:\s+(\d+) kB", f.read(), re.M)
    if not m:
        raise BenchError(f"no VmRSS in /proc/{pid}/status")
    return int(m.group(1)) * 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/PID/stat), in seconds."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    """User + system CPU time of this process' waited-for children (the load generators)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- Redis -------------------------------------------------------------------------------------

class RespError(Exception):
    """An error reply of Redis."""


class Resp:
    """A minimal RESP2 client on one connection: call() and pipeline()."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=CALL_TIMEOUT)
        self.buf = b""

    def close(self) -> None:
        self.sock.close()

    @staticmethod
    def encode(args) -> bytes:
        parts = [b"*%d\r\n" % len(args)]
        for a in args:
            b = a if isinstance(a, bytes) else str(a).encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(b), b))
        return b"".join(parts)

    def _line(self) -> bytes:
        while (i := self.buf.find(b"\r\n")) < 0:
            self._fill()
        line, self.buf = self.buf[:i], self.buf[i + 2:]
        return line

    def _fill(self) -> None:
        d = self.sock.recv(1 << 20)
        if not d:
            raise BenchError("redis: the connection closed")
        self.buf += d

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return RespError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self._fill()
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise BenchError(f"redis: unexpected reply {line[:80]!r}")

    def call(self, *args):
        self.sock.sendall(self.encode(args))
        r = self._reply()
        if isinstance(r, RespError):
            raise BenchError(f"redis: {' '.join(map(str, args))[:60]}: {r}")
        return r

    def pipeline(self, commands, batch: int) -> list:
        """Every command, batch of them in flight at a time; the replies (errors raise)."""
        out = []
        for i in range(0, len(commands), batch):
            part = commands[i:i + batch]
            self.sock.sendall(b"".join(self.encode(c) for c in part))
            for c in part:
                r = self._reply()
                if isinstance(r, RespError):
                    raise BenchError(f"redis: {' '.join(map(str, c))[:60]}: {r}")
                out.append(r)
        return out

    def info(self, section: str) -> dict[str, str]:
        text = self.call("INFO", section).decode()
        return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


class Redis:
    """redis-server on 127.0.0.1, a free port, its data in a directory of its own, AOF on."""

    def __init__(self, directory: str, fsync: str) -> None:
        self.dir = directory
        self.fsync = fsync
        self.log_path = os.path.join(directory, "redis.log")
        os.makedirs(directory, exist_ok=True)
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.client: Resp | None = None

    def start(self) -> None:
        """Start it on a free port (a few attempts: a port found free may be taken) and wait
        until it answers PING."""
        for _ in range(5):
            self.port = free_port()
            cmd = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                   "--dir", self.dir, "--save", "", "--appendonly", "yes",
                   "--appendfsync", self.fsync, "--daemonize", "no"]
            with open(self.log_path, "wb") as log:
                self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                             stderr=subprocess.STDOUT)
            deadline = time.monotonic() + START_TIMEOUT
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    self.client = Resp(self.port)
                    if self.client.call("PING") == "PONG":
                        return
                except (OSError, BenchError):
                    if self.client is not None:
                        self.client.close()
                    self.client = None
                time.sleep(0.05)
            self.stop()
            if "Address already in use" not in self.log():
                raise BenchError(f"redis-server did not start:\n{self.log()[-2000:]}")
        raise BenchError("redis-server did not start (no free port after 5 attempts)")

    def log(self) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> int | None:
        if self.client is not None:
            self.client.close()
            self.client = None
        return stop_process(self.proc, "redis-server", PROG, STOP_TIMEOUT)


def run_redis_benchmark(redis: Redis, w: Workload, n: int, threads: int,
                        connections: int) -> Measure:
    cmd = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(redis.port), "-c", str(connections),
           "-n", str(n), "-P", "1", "--threads", str(threads), "--csv"]
    if w.keyspace:
        cmd += ["-r", str(w.keyspace)]
    cmd += w.redis
    server0, client0 = cpu_seconds(redis.proc.pid), children_cpu()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                           timeout=600)
    except subprocess.TimeoutExpired:
        raise BenchError(f"redis-benchmark did not finish within 600 s: {' '.join(cmd)}") \
            from None
    out = p.stdout + p.stderr
    if p.returncode != 0 or re.search(r"error", out, re.I):
        raise BenchError(f"redis-benchmark ({' '.join(w.redis)}) exited {p.returncode}:\n{out}")
    rows = list(csv.DictReader(io.StringIO(p.stdout)))
    if len(rows) != 1 or "p99_latency_ms" not in rows[0]:
        raise BenchError(f"redis-benchmark's CSV is not one row with percentiles (Redis 7 "
                         f"prints them):\n{p.stdout}")
    r = rows[0]
    return Measure(float(r["rps"]), float(r["p50_latency_ms"]) * 1e-3,
                   float(r["p99_latency_ms"]) * 1e-3, n, n,
                   {"server_cpu": (cpu_seconds(redis.proc.pid) - server0) / n,
                    "client_cpu": (children_cpu() - client0) / n})


# -- aside -------------------------------------------------------------------------------------

class Aside(LocalAside):
    def journal(self) -> dict:
        """cache_head's journal telemetry (bytes, compactions), asked about the read list r, which
        exists from the start."""
        return self.value(CALL_TIMEOUT, function="cache_head", path="r")["log"]

    def pipelined(self, targets: list[str], batch: int) -> None:
        """GET every target on one keep-alive connection, batch of them in flight at a time;
        each answer must be 200."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=CALL_TIMEOUT) as s:
            buf = b""
            for i in range(0, len(targets), batch):
                part = targets[i:i + batch]
                s.sendall(b"".join(f"GET {t} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
                                   for t in part))
                got = 0
                while got < len(part):
                    h = buf.find(b"\r\n\r\n")
                    m = re.search(rb"\r\ncontent-length:\s*(\d+)", buf[:h], re.I) if h >= 0 \
                        else None
                    if h < 0 or (m and len(buf) < h + 4 + int(m.group(1))):
                        d = s.recv(1 << 20)
                        if not d:
                            raise BenchError("aside closed the connection while loading")
                        buf += d
                        continue
                    if not m:
                        raise BenchError(f"aside: an answer without Content-Length: {buf[:h]!r}")
                    if not buf.startswith(b"HTTP/1.1 200"):
                        raise BenchError(f"aside: {part[got]} answered "
                                         f"{buf[:h + 4 + int(m.group(1))][:300]!r}")
                    buf = buf[h + 4 + int(m.group(1)):]
                    got += 1


def run_wrk(aside: Aside, w: Workload, seconds: int, threads: int, connections: int,
            seed: int, out: str) -> Measure:
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", LUA,
           aside.base, "--", w.op, str(seed)]
    server0, client0 = cpu_seconds(aside.proc.pid), children_cpu()
    with open(out, "wb") as f:
        try:
            rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                timeout=seconds + 60).returncode
        except subprocess.TimeoutExpired:
            raise BenchError(f"wrk did not finish within {seconds + 60} s") from None
    rep = Report(out)
    with open(out, encoding="utf-8", errors="replace") as f:
        text = f.read()
    m = re.search(r"^\s*50(?:\.0+)?%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
    p50 = float(m.group(1)) * TIME_UNITS[m.group(2)] if m else None
    s = re.search(r"^sent: (\d+)$", text, re.M)
    errors = list(rep.errors)
    if p50 is None:
        errors.append("no 50% latency in the wrk report")
    if s is None:
        errors.append("no 'sent:' line from ops.lua")
    if rc != 0 or errors:
        raise BenchError(f"wrk ({w.op}) exited {rc}: " + "; ".join(errors) + "\n" + text)
    sent = int(s.group(1))
    return Measure(rep.req_per_s, p50, rep.p99_s, rep.requests, sent,
                   {"bytes_per_response": rep.bytes_per_s / rep.req_per_s,
                    "server_cpu": (cpu_seconds(aside.proc.pid) - server0) / sent,
                    "client_cpu": (children_cpu() - client0) / sent})


# -- the report --------------------------------------------------------------------------------

def fmt_ops(x: float) -> str:
    return f"{x:,.0f}"


def spread(xs: list[float], fmt) -> str:
    return f"{fmt(min(xs))}-{fmt(max(xs))}"


def lat(x: float) -> str:
    return secs(x).replace(" ", "")


def us(x: float) -> str:
    return f"{x * 1e6:.1f}µs"


def summary(runs: dict[str, list[Measure]]) -> dict:
    """Medians and spreads of each side's rounds, and the ratios aside / Redis."""
    s = {}
    for side in ("aside", "redis"):
        ms = runs[side]
        s[side] = {k: statistics.median(getattr(m, k) for m in ms) for k in ("ops", "p50", "p99")}
        s[side].update({k + "_all": [getattr(m, k) for m in ms] for k in ("ops", "p50", "p99")})
        s[side].update({k: statistics.median(m.extra[k] for m in ms)
                        for k in ("server_cpu", "client_cpu")})
    s["ratio"] = s["aside"]["ops"] / s["redis"]["ops"]
    s["ratios"] = [a.ops / r.ops for a, r in zip(runs["aside"], runs["redis"])]
    return s


def print_table(results: dict[str, dict[str, dict]], rounds: int, connections: int) -> None:
    def m_conns(w: Workload) -> int:
        return w.connections or connections

    print(f"results: medians of {rounds} round(s), (lowest-highest); aside/Redis = the ratio of "
          "the median ops/s [each round's ratio]")
    for mode, per in results.items():
        print()
        print(f"  fsync {mode}")
        print(f"  {'workload':<27} {'aside ops/s':>25} {'Redis ops/s':>25} {'aside/Redis':>22}")
        for name, s in per.items():
            a, r = s["aside"], s["redis"]
            each = "[" + " ".join(f"{x:.2f}" for x in s["ratios"]) + "]"
            print(f"  {name:<27} {fmt_ops(a['ops']):>7} ({spread(a['ops_all'], fmt_ops):>15}) "
                  f"{fmt_ops(r['ops']):>7} ({spread(r['ops_all'], fmt_ops):>15}) "
                  f"{s['ratio']:>5.2f}x {each:>16}")
        print(f"  {'latency':<27} {'aside p50':>9} {'aside p99 (low-high)':>27}   "
              f"{'Redis p50':>9} {'Redis p99 (low-high)':>27}")
        for name, s in per.items():
            a, r = s["aside"], s["redis"]
            print(f"  {name:<27} {lat(a['p50']):>9} {lat(a['p99']):>9} "
                  f"({spread(a['p99_all'], lat):>15})   {lat(r['p50']):>9} {lat(r['p99']):>9} "
                  f"({spread(r['p99_all'], lat):>15})")
        print(f"  {'CPU per operation':<27} {'aside':>9} {'Redis':>9} {'wrk':>9} "
              f"{'redis-benchmark':>16}")
        for name, s in per.items():
            a, r = s["aside"], s["redis"]
            print(f"  {name:<27} {us(a['server_cpu']):>9} {us(r['server_cpu']):>9} "
                  f"{us(a['client_cpu']):>9} {us(r['client_cpu']):>16}")
        one = [w for w in WORKLOADS if w.only_mode == mode and w.op == "counter"]
        many = [w for w in WORKLOADS if w.only_mode is None and w.op == "counter"]
        if one and many and one[0].name in per and many[0].name in per:
            o, m = per[one[0].name], per[many[0].name]
            print(f"  group commit: counter increments/s with {m_conns(many[0])} connections over "
                  f"1 connection: aside {m['aside']['ops'] / o['aside']['ops']:.1f}x, Redis "
                  f"{m['redis']['ops'] / o['redis']['ops']:.1f}x")


# -- main --------------------------------------------------------------------------------------

def memory_per_key(aside: Aside, redis: Redis, keys: int) -> dict:
    """keys counters k/0 ... incremented once in each server: the growth of each process' RSS,
    and of Redis's used_memory, per key."""
    out = {}
    targets = [aside.target(function="counter_increment", key=f"k/{i}") for i in range(keys)]
    before = rss_bytes(aside.proc.pid)
    t0 = time.perf_counter()
    aside.pipelined(targets, PIPELINE_BATCH)
    load_s = time.perf_counter() - t0
    time.sleep(0.2)
    after = rss_bytes(aside.proc.pid)
    for i in (0, keys // 2, keys - 1):
        if aside.value(CALL_TIMEOUT, function="counter_get", key=f"k/{i}") != 1:
            raise BenchError(f"aside: k/{i} is not 1 after the load")
    out["aside"] = {"before": before, "after": after, "seconds": load_s}

    rc = redis.client
    info0 = rc.info("memory")
    before = rss_bytes(redis.proc.pid)
    t0 = time.perf_counter()
    replies = rc.pipeline([("INCR", f"k/{i}") for i in range(keys)], PIPELINE_BATCH)
    load_s = time.perf_counter() - t0
    time.sleep(0.2)
    after = rss_bytes(redis.proc.pid)
    info1 = rc.info("memory")
    if replies != [1] * keys or rc.call("DBSIZE") != keys:
        raise BenchError(f"redis: the {keys} INCRs did not make {keys} keys of value 1")
    out["redis"] = {"before": before, "after": after, "seconds": load_s,
                    "used_before": int(info0["used_memory"]),
                    "used_after": int(info1["used_memory"])}
    return out


def prefill(aside: Aside, redis: Redis) -> None:
    """The map's 10,000 fields and the read list's 100 items, in both."""
    r = aside.session.post(aside.url, json={"data": {
        "function": "map_set", "key": "m", "fields": {f"f{i}": 1 for i in range(MAP_FIELDS)}}},
        timeout=CALL_TIMEOUT)
    if r.status_code != 200 or r.json()["return"]["value"] != MAP_FIELDS:
        raise BenchError(f"aside: map_set of {MAP_FIELDS} fields answered {r.status_code}: "
                         f"{r.text[:300]}")
    items = [f"item-{i:03d}" for i in range(RANGE_ITEMS)]
    r = aside.session.post(aside.url, json={"data": {
        "function": "list_push", "key": "r", "values": items}}, timeout=CALL_TIMEOUT)
    if r.status_code != 200 or r.json()["return"]["value"] != RANGE_ITEMS:
        raise BenchError(f"aside: list_push of {RANGE_ITEMS} items answered {r.status_code}: "
                         f"{r.text[:300]}")
    rc = redis.client
    fields = []
    for i in range(MAP_FIELDS):      # redis-benchmark's __rand_int__: 12 digits
        fields += [f"f{i:012d}", "1"]
    if rc.call("HSET", "m", *fields) != MAP_FIELDS:
        raise BenchError("redis: HSET of the map's fields did not add them all")
    if rc.call("RPUSH", "r", *items) != RANGE_ITEMS:
        raise BenchError("redis: RPUSH of the read list's items")


def check_state(aside: Aside, redis: Redis, runs: dict[str, dict[str, list[Measure]]],
                probes: dict[str, int], workloads: list[Workload]) -> list[str]:
    """The counter, the lists and the map against what was sent; the report's lines."""
    lines = []
    rc = redis.client
    counters = [w.tag for w in workloads if w.op == "counter"]
    ca = [m for t in counters for m in runs[t]["aside"]]
    sent = sum(m.sent for m in ca)
    done = sum(m.requests for m in ca)
    value = aside.value(CALL_TIMEOUT, function="counter_get", key="c")
    lines.append(f"aside counter c = {value:,}: wrk read {done:,} answers to increments, all "
                 f"2xx, and sent {sent:,} ({sent - done} in flight when its time was up; "
                 f"{value - done} of them applied)")
    if not done <= value <= sent:
        raise BenchError(f"aside: counter c is {value}, outside [{done}, {sent}]: wrk read "
                         f"{done} 2xx answers to increments and sent {sent}")
    want = sum(m.sent for t in counters for m in runs[t]["redis"]) + \
        sum(probes[t] for t in counters)
    got = int(rc.call("GET", "c"))
    lines.append(f"Redis counter c = {got:,}: redis-benchmark sent {want:,} INCRs "
                 f"(probe included)")
    if got != want:
        raise BenchError(f"redis: counter c is {got}, redis-benchmark sent {want} INCRs")
    la = aside.value(CALL_TIMEOUT, function="list_length", key="l")
    want_a = sum(m.sent for m in runs["list_push"]["aside"])
    lr = rc.call("LLEN", "l")
    want_r = sum(m.sent for m in runs["list_push"]["redis"]) + probes["list_push"]
    done_a = sum(m.requests for m in runs["list_push"]["aside"])
    lines.append(f"list l: aside {la:,} items ({done_a:,} pushes answered, {want_a:,} sent), "
                 f"Redis {lr:,} ({want_r:,} sent)")
    if not done_a <= la <= want_a or lr != want_r:
        raise BenchError("the pushed list's length is not the number of pushes sent")
    ma = aside.value(CALL_TIMEOUT, function="map_length", key="m")
    mr = rc.call("HLEN", "m")
    sa = aside.value(CALL_TIMEOUT, function="set_size", key="s")
    sr = rc.call("SCARD", "s")
    ra = aside.value(CALL_TIMEOUT, function="list_range", key="r", start="0", stop="10")
    rr = [x.decode() for x in rc.call("LRANGE", "r", "0", "9")]
    lines.append(f"map m: aside {ma:,} fields, Redis {mr:,}; set s: aside {sa:,} members, Redis "
                 f"{sr:,}; list r's first 10 the same in both: {ra == rr}")
    if ma != MAP_FIELDS or mr != MAP_FIELDS or ra != rr or len(ra) != 10:
        raise BenchError(f"the map has {ma} / {mr} fields, or list r reads {ra} / {rr}")
    return lines


def rewrites(aside: Aside, redis: Redis) -> list[str]:
    """The journal and the AOF after the runs, then one rewrite of each, timed: aside's
    compaction holds the cache's lock throughout; Redis rewrites in a child process and stops
    for the fork. The report's lines."""
    journal = aside.journal()
    rc = redis.client
    aof = rc.info("persistence")
    t0 = time.perf_counter()
    compacted = aside.value(CALL_TIMEOUT, function="compact")
    compact_s = time.perf_counter() - t0
    rc.call("BGREWRITEAOF")
    deadline = time.monotonic() + CALL_TIMEOUT
    while True:
        now = rc.info("persistence")
        if now["aof_rewrite_in_progress"] == "0" and now["aof_rewrite_scheduled"] == "0" and \
                int(now["aof_rewrites"]) > int(aof["aof_rewrites"]):
            break
        if time.monotonic() > deadline:
            raise BenchError("redis: BGREWRITEAOF did not finish")
        time.sleep(0.05)
    fork_us = int(rc.info("stats")["latest_fork_usec"])
    return [f"aside's journal {human(journal['bytes'])}, compacted {journal['compactions']}x "
            f"during the runs; a compaction now (function=compact, every request waits for it) "
            f"took {secs(compact_s)} and left {human(compacted['log_bytes'])}",
            f"Redis's AOF {human(int(aof['aof_current_size']))}, rewritten "
            f"{aof['aof_rewrites']}x during the runs; a BGREWRITEAOF now took "
            f"{now['aof_last_rewrite_time_sec']} s (whole seconds) in a child process, and its "
            f"fork stopped "
            f"Redis for {secs(fork_us * 1e-6)}; the AOF is now "
            f"{human(int(now['aof_current_size']))}"]


def main() -> int:
    ap = argparse.ArgumentParser(description="aside's collection operations against Redis on "
                                             "loopback: ops/s, p50, p99, memory per key")
    ap.add_argument("--seconds", type=positive_int, default=3, help="seconds per run [3]")
    ap.add_argument("--rounds", type=positive_int, default=3,
                    help="runs of each workload on each server, alternating the order [3]")
    ap.add_argument("--connections", type=positive_int, default=32,
                    help="connections of both load generators [32]")
    ap.add_argument("--wrk-threads", type=positive_int, default=2, help="wrk's threads [2]")
    ap.add_argument("--redis-benchmark-threads", type=positive_int, default=1,
                    help="redis-benchmark's threads (1: its default mode) [1]")
    ap.add_argument("--keys", type=positive_int, default=100_000,
                    help="counters of the memory per key measurement [100000]")
    ap.add_argument("--fsync", default="everysec,always",
                    help="the fsync modes, in order: everysec, always [everysec,always]")
    ap.add_argument("--seed", type=int, default=1, help="seed of the wrk script's draws [1]")
    args = ap.parse_args()
    modes = [m.strip() for m in args.fsync.split(",") if m.strip()]
    if not modes or any(m not in ("everysec", "always") for m in modes):
        ap.error(f"--fsync: a list of everysec and always, not {args.fsync!r}")

    exe, exe_path = server_binary(PROG)
    for tool, pkg in (("wrk", "wrk"), ("redis-server", "redis-server"),
                      ("redis-benchmark", "redis-tools")):
        if shutil.which(tool) is None:
            print(f"{PROG}: error: {tool} not found in PATH (Debian: apt-get install {pkg})",
                  file=sys.stderr)
            return 1
    modules(PROG, ("requests",), "requests")

    interrupted = install_signal_handlers(PROG)
    cores = core_count()
    threads = os.environ.get("ASIDE_THREADS", str(cores))
    aside_env = {"ASIDE_THREADS": threads}
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True,
                                 timeout=10).stdout.split("\n")[0].split(" ")[1:2]
    redis_version = subprocess.run(["redis-server", "--version"], capture_output=True, text=True,
                                   timeout=10).stdout.split()
    redis_version = next((w[2:] for w in redis_version if w.startswith("v=")), "?")
    facts = run_facts(exe, aside_env, f"bench/collections_vs_redis.py --seconds {args.seconds} "
                      f"--rounds {args.rounds} --connections {args.connections} "
                      f"--wrk-threads {args.wrk_threads} --redis-benchmark-threads "
                      f"{args.redis_benchmark_threads} --keys {args.keys} "
                      f"--fsync {','.join(modes)} --seed {args.seed}", cores)
    facts.update({
        "aside": f"{server_version(exe_path)}, {threads} event-loop threads, ASIDE_FSYNC per "
                 "mode, journal in the disk tier",
        "redis": f"Redis {redis_version}, one thread, --appendonly yes --appendfsync per mode, "
                 "--save \"\"",
        "load": f"wrk {(wrk_version or ['?'])[0]} ({args.wrk_threads} threads, --latency, "
                f"{args.seconds} s per run) and redis-benchmark ({args.redis_benchmark_threads} "
                f"thread(s), --csv, -P 1, requests for about {args.seconds} s), both "
                f"{args.connections} connections",
    })

    print("aside collections against Redis on 127.0.0.1: "
          f"{', '.join(w.tag for w in WORKLOADS)}; fsync {', '.join(modes)}")
    t_start = time.perf_counter()
    results: dict[str, dict[str, dict]] = {}
    checks: dict[str, list[str]] = {}
    memory = None
    with BenchRun(PROG, interrupted, "aside-collections-") as run:
        for mi, mode in enumerate(modes):
            base = os.path.join(run.tmp, mode)
            os.makedirs(base)
            redis = Redis(os.path.join(base, "redis"), mode)
            run.closers.append(redis.stop)
            aside = run.aside = Aside(exe_path, os.path.join(base, "aside"),
                                      {**aside_env, "ASIDE_FSYNC": mode}, PROG, STOP_TIMEOUT)
            aside.start()
            redis.start()
            print()
            print(f"fsync {mode}: aside on 127.0.0.1:{aside.port}, Redis on "
                  f"127.0.0.1:{redis.port}")
            if mi == 0:
                memory = memory_per_key(aside, redis, args.keys)
                a, r = memory["aside"], memory["redis"]
                print(f"  memory: {args.keys:,} counters loaded into aside in "
                      f"{secs(a['seconds'])}, into Redis in {secs(r['seconds'])}; per key: aside "
                      f"RSS {(a['after'] - a['before']) / args.keys:.0f} B, Redis RSS "
                      f"{(r['after'] - r['before']) / args.keys:.0f} B, Redis used_memory "
                      f"{(r['used_after'] - r['used_before']) / args.keys:.0f} B")
            prefill(aside, redis)
            wrk_dir = os.path.join(base, "wrk")
            os.makedirs(wrk_dir)
            runs: dict[str, dict[str, list[Measure]]] = {}
            probes: dict[str, int] = {}
            workloads = [w for w in WORKLOADS if w.only_mode in (None, mode)]
            for w in workloads:
                conns = w.connections or args.connections
                runs[w.tag] = {"aside": [], "redis": []}
                probes[w.tag] = max(100, PROBE_REQUESTS * conns // args.connections)
                rate = run_redis_benchmark(redis, w, probes[w.tag], args.redis_benchmark_threads,
                                           conns).ops
                for i in range(args.rounds):
                    order = ["aside", "redis"] if i % 2 == 0 else ["redis", "aside"]
                    for side in order:
                        if not aside.alive():
                            raise BenchError("aside exited during the measurements")
                        if not redis.alive():
                            raise BenchError("redis-server exited during the measurements")
                        if side == "aside":
                            before = aside.journal()["compactions"]
                            m = run_wrk(aside, w, args.seconds, min(args.wrk_threads, conns),
                                        conns, args.seed + 100 * i,
                                        os.path.join(wrk_dir, f"{w.tag}-{i + 1}.txt"))
                            m.extra["rewrites"] = aside.journal()["compactions"] - before
                        else:
                            n = max(100, MIN_REQUESTS * conns // args.connections,
                                    int(rate * args.seconds))
                            before = int(redis.client.info("persistence")["aof_rewrites"])
                            m = run_redis_benchmark(redis, w, n, args.redis_benchmark_threads,
                                                    conns)
                            m.extra["rewrites"] = int(redis.client.info("persistence")
                                                      ["aof_rewrites"]) - before
                        runs[w.tag][side].append(m)
                    rate = statistics.median(m.ops for m in runs[w.tag]["redis"])
                    a, r = runs[w.tag]["aside"][-1], runs[w.tag]["redis"][-1]
                    print(f"  {w.tag:<10} round {i + 1}/{args.rounds} ({order[0]} first): aside "
                          f"{fmt_ops(a.ops):>7} ops/s p50 {lat(a.p50):>7} p99 {lat(a.p99):>7} "
                          f"| Redis {fmt_ops(r.ops):>7} ops/s p50 {lat(r.p50):>7} p99 "
                          f"{lat(r.p99):>7} | {a.ops / r.ops:.2f}x | CPU/op aside "
                          f"{us(a.extra['server_cpu'])} Redis {us(r.extra['server_cpu'])}"
                          + (f" | aside's journal compacted {a.extra['rewrites']}x"
                             if a.extra["rewrites"] else "")
                          + (f" | Redis's AOF rewritten {r.extra['rewrites']}x"
                             if r.extra["rewrites"] else ""), flush=True)
            checks[mode] = check_state(aside, redis, runs, probes, workloads)
            for line in checks[mode]:
                print(f"  check: {line}")
            for line in rewrites(aside, redis):
                print(f"  persistence: {line}")
            print("  aside's answers (headers included: wrk's Transfer/sec over Requests/sec): "
                  + ", ".join(f"{w.tag} " + str(round(statistics.median(
                      m.extra["bytes_per_response"] for m in runs[w.tag]["aside"]))) + " B"
                      for w in workloads if w.connections == 0))
            results[mode] = {w.name: summary(runs[w.tag]) for w in workloads}
            print_problems(aside.problems())
            # Stop both now: the next mode starts fresh ones.
            code = aside.stop()
            if code != 0:
                print_log_tail(aside.log())
                raise BenchError(f"aside exited with status {code} on SIGTERM")
            run.aside = None
            code = redis.stop()
            if code != 0:
                raise BenchError(f"redis-server exited with status {code} on SIGTERM:\n"
                                 f"{redis.log()[-2000:]}")

        print()
        print_table(results, args.rounds, args.connections)
        if memory:
            a, r = memory["aside"], memory["redis"]
            k = args.keys
            print()
            key_bytes = sum(len(f"k/{i}") for i in range(k)) / k
            print(f"memory per key: {k:,} counters k/0 ... (keys of {key_bytes:.1f} B on average, "
                  f"values 8 B), incremented once each on fresh servers (fsync {modes[0]})")
            print(f"  aside VmRSS   {human(a['before']):>11} -> {human(a['after']):>11}   "
                  f"{(a['after'] - a['before']) / k:7.1f} B/key (the whole process)")
            print(f"  Redis VmRSS   {human(r['before']):>11} -> {human(r['after']):>11}   "
                  f"{(r['after'] - r['before']) / k:7.1f} B/key (the whole process)")
            print(f"  Redis used_memory {human(r['used_before']):>7} -> "
                  f"{human(r['used_after']):>11}   "
                  f"{(r['used_after'] - r['used_before']) / k:7.1f} B/key (its allocator's count)")
            print(f"  aside RSS / Redis RSS per key: "
                  f"{(a['after'] - a['before']) / max(1, r['after'] - r['before']):.1f}x")
        print()
        print_facts(facts, ("reproduce", "date", "machine", "aside", "redis", "load"))
        print(f"  {'runtime:':<11} {time.perf_counter() - t_start:.0f} s")
    return run.status


if __name__ == "__main__":
    sys.exit(main())
