#!/usr/bin/env python3
"""s3_cold_load.py -- aside's cold load of one large S3 object, as a ratio of boto3's download.

  .venv/bin/python bench/s3_cold_load.py [--size 1GiB] [--runs 1]

On 127.0.0.1 only: starts a moto S3 server (a subprocess: its CPU stays out of this process),
uploads one object of --size random bytes, then, --runs times, alternately:

  boto3  client.download_file() with s3transfer's defaults (TransferConfig()): a HEAD, then
         parallel ranged GETs into a file. The bytes are checked (sha256) after the clock stops.
  aside  one GET ?path=KEY on a cold cache: aside HEADs the object, loads it with parallel ranged
         GETs into its disk tier, then memory, and answers {"source": "sor"}. Then two warm reads
         of the raw bytes over HTTP (&format=raw): the first hashed (sha256) while it streams,
         the second read and discarded (the HTTP path alone, the client does the least it can).
         The key is deleted from the cache afterwards, so that the next run is cold again.

Odd runs measure boto3 first, even runs aside first. The table shows every run, the median,
and the ratio boto3 time / aside time of the cold loads (> 1: aside is faster) against the
target of 1.0x. Both sides read from the same moto server, whose speed bounds both.

Environment (passed to aside; the table says what was used):
  ASIDE_SERVER          the server binary, relative to the repository root [build/aside-server]
  ASIDE_THREADS         worker threads [number of cores]
  ASIDE_S3_PART_SIZE    part size of aside's ranged GETs [8MiB]
  ASIDE_S3_CONCURRENCY  parts in flight per load [8]
  ASIDE_MEMORY_LIMIT    [twice the object, at least 1GiB: the object must fit in memory]
  ASIDE_DISK_LIMIT      [aside's default]

Exits 0 when everything ran and every byte matched, whatever the ratio (a benchmark reports,
it does not assert); non-zero otherwise. Everything it starts is stopped on exit, including on
failure and Ctrl-C; its files live in a temporary directory that is removed at the end.
"""
from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from aside_process import (AsideProcess, BenchError, core_count, env_line,  # noqa: E402
                           failure, install_signal_handlers, loopback_env, machine, positive_int,
                           print_facts, print_log_tail, print_problems, server_binary,
                           server_version, stop_process, utc_now)

PROG = "s3_cold_load"
VENV_BIN = os.path.dirname(sys.executable)
TARGET = 1.0
BUCKET = "aside-bench"
PREFIX = "bench/"
KEY = "cold-load.bin"
REGION = "us-east-1"
ANY_KEY_ID = "AKIAASIDEBENCHKEY001"
ANY_SECRET = "aside-bench-secret"
CHUNK = 8 << 20                 # generating, hashing and reading in chunks of this size
START_TIMEOUT = 30.0            # seconds for moto to start listening
STOP_TIMEOUT = 10.0             # seconds for a process to exit on SIGTERM before SIGKILL
IDLE_TIMEOUT = 120.0            # seconds an HTTP read to aside may see no byte at all
MIN_RATE = 1e6                  # bytes/s: below this, a load is a failure (bounds every wait)

UNITS = {"": 1, "b": 1, "k": 1 << 10, "kib": 1 << 10, "kb": 10**3, "m": 1 << 20, "mib": 1 << 20,
         "mb": 10**6, "g": 1 << 30, "gib": 1 << 30, "gb": 10**9}


def parse_size(text: str) -> int:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    if not m or m.group(2).lower() not in UNITS:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 64MiB, 1GiB, 500MB)")
    n = int(float(m.group(1)) * UNITS[m.group(2).lower()])
    if n <= 0:
        raise argparse.ArgumentTypeError("the size must be more than 0 bytes")
    return n


def human(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size and n % size == 0:
            return f"{n // size}{unit}"
    return f"{n}B"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def max_seconds(size: int) -> float:
    """The longest a whole transfer of size bytes may take before it counts as failed."""
    return 300.0 + size / MIN_RATE


# -- processes we start ------------------------------------------------------------------------

def wait_listening(port: int, proc: subprocess.Popen, name: str) -> bool:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    raise BenchError(f"{name} did not listen on 127.0.0.1:{port} within {START_TIMEOUT:.0f} s")


class Moto:
    """moto_server on 127.0.0.1, in a subprocess; its spilled object files go under tmp."""

    def __init__(self, tmp: str, log_path: str) -> None:
        self.proc: subprocess.Popen | None = None
        spool = os.path.join(tmp, "moto")
        os.makedirs(spool, exist_ok=True)
        env = loopback_env(("AWS_",))        # everything here is on loopback
        env["TMPDIR"] = spool
        exe = os.path.join(VENV_BIN, "moto_server")
        if not os.access(exe, os.X_OK):
            raise BenchError("moto_server not found next to this Python (pip install 'moto[server]')")
        for _ in range(5):      # a port found free may be taken before moto binds it
            port = free_port()
            with open(log_path, "ab") as log:
                self.proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)], env=env,
                                             stdin=subprocess.DEVNULL, stdout=log, stderr=log)
            if wait_listening(port, self.proc, "moto_server"):
                self.port = port
                self.endpoint = f"http://127.0.0.1:{port}"
                return
            stop_process(self.proc, "moto_server", PROG, STOP_TIMEOUT)
        raise BenchError("moto_server did not start (no free port after 5 attempts?)")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        stop_process(self.proc, "moto_server", PROG, STOP_TIMEOUT)


class Aside(AsideProcess):
    """aside-server on 127.0.0.1 with S3 (the moto server) as its system of record."""

    def __init__(self, exe: str, tmp: str, endpoint: str, env_extra: dict[str, str]) -> None:
        self.cache_dir = os.path.join(tmp, "aside-cache")
        sor_dir = os.path.join(tmp, "aside-sor")
        os.makedirs(self.cache_dir)
        os.makedirs(sor_dir)
        s3_env = {
            "AWS_BUCKET_NAME": BUCKET,
            "AWS_DATA_DIR": PREFIX,
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ENDPOINT_URL_S3": endpoint,
            "AWS_ACCESS_KEY_ID": ANY_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": ANY_SECRET,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_SHARED_CREDENTIALS_FILE": os.path.join(tmp, "no-such-credentials"),
            "AWS_CONFIG_FILE": os.path.join(tmp, "no-such-config"),
        }
        super().__init__(exe, tmp, self.cache_dir, sor_dir, os.path.join(tmp, "aside.log"),
                         loopback_env(("AWS_",)), {**s3_env, **env_extra}, PROG, STOP_TIMEOUT)
        self.start()

    def _url(self, **params: str) -> str:
        return "/cache/api/v1.0/?" + urllib.parse.urlencode(params)

    def call(self, timeout: float, **params: str) -> tuple[int, dict]:
        """One GET; the JSON answer. timeout: seconds without a byte from aside."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", self._url(**params))
            resp = conn.getresponse()
            body = resp.read()
        finally:
            conn.close()
        try:
            return resp.status, json.loads(body)
        except ValueError:
            return resp.status, {"unparsed": body[:200].decode("utf-8", "replace")}

    def read_raw(self, key: str, size: int, digest: str | None) -> float:
        """GET &format=raw: the seconds to read size bytes; hashed and checked against digest
        when given, else discarded."""
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        deadline = time.monotonic() + max_seconds(size)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=IDLE_TIMEOUT)
        h = hashlib.sha256() if digest else None
        try:
            t0 = time.perf_counter()
            conn.request("GET", self._url(path=key, format="raw"))
            resp = conn.getresponse()
            if resp.status != 200:
                raise BenchError(f"aside: raw read answered {resp.status}: "
                                 f"{resp.read(200).decode('utf-8', 'replace')}")
            length = resp.getheader("Content-Length")
            if length is not None and int(length) != size:
                raise BenchError(f"aside: raw read has Content-Length {length}, expected {size}")
            got = 0
            while True:
                n = resp.readinto(view)
                if not n:
                    break
                got += n
                if h:
                    h.update(view[:n])
                if time.monotonic() > deadline:
                    raise BenchError("aside: raw read too slow (over "
                                     f"{max_seconds(size):.0f} s)")
            seconds = time.perf_counter() - t0
        finally:
            conn.close()
        if got != size:
            raise BenchError(f"aside: raw read gave {got} bytes, expected {size}")
        if h and h.hexdigest() != digest:
            raise BenchError("aside: raw read bytes differ from the source (sha256)")
        return seconds


# -- the measurements --------------------------------------------------------------------------

@dataclass
class Run:
    n: int
    order: str
    boto3_s: float = 0.0
    aside_s: float = 0.0
    warm1_s: float = 0.0
    warm2_s: float = 0.0
    notes: list[str] = field(default_factory=list)


def s3_client(endpoint: str):
    import boto3
    from botocore.config import Config
    return boto3.client("s3", endpoint_url=endpoint, region_name=REGION,
                        aws_access_key_id=ANY_KEY_ID, aws_secret_access_key=ANY_SECRET,
                        config=Config(s3={"addressing_style": "path"}))


def make_source(path: str, size: int) -> str:
    """size random bytes into path; their sha256."""
    h = hashlib.sha256()
    left = size
    with open(path, "wb") as f:
        while left:
            block = os.urandom(min(CHUNK, left))
            h.update(block)
            f.write(block)
            left -= len(block)
    return h.hexdigest()


def boto3_download(client, path: str, size: int, digest: str) -> float:
    from boto3.s3.transfer import TransferConfig
    t0 = time.perf_counter()
    client.download_file(BUCKET, PREFIX + KEY, path, Config=TransferConfig())
    seconds = time.perf_counter() - t0
    got = os.path.getsize(path)
    if got != size:
        raise BenchError(f"boto3: downloaded {got} bytes, expected {size}")
    if sha256_file(path) != digest:
        raise BenchError("boto3: downloaded bytes differ from the source (sha256)")
    os.unlink(path)
    return seconds


def aside_cold(aside: Aside, size: int) -> float:
    t0 = time.perf_counter()
    status, answer = aside.call(max_seconds(size), path=KEY)
    seconds = time.perf_counter() - t0
    value = answer.get("return", {}).get("value", {}) if isinstance(answer, dict) else {}
    if status != 200 or value.get("result") != "success":
        raise BenchError(f"aside: cold GET answered {status}: {json.dumps(answer)[:300]}")
    if value.get("source") != "sor":
        raise BenchError(f"aside: cold GET was not a cold load (source {value.get('source')!r}); "
                         "the cache was not empty")
    if value.get("bytes") != size:
        raise BenchError(f"aside: cold GET reports {value.get('bytes')} bytes, expected {size}")
    return seconds


def aside_run(aside: Aside, run: Run, size: int, digest: str) -> None:
    run.aside_s = aside_cold(aside, size)
    run.warm1_s = aside.read_raw(KEY, size, digest)
    run.warm2_s = aside.read_raw(KEY, size, None)
    # Drop the key so that the next run is cold again (never deletes from S3).
    status, answer = aside.call(60.0, function="delete", path=KEY)
    if status != 200:
        raise BenchError(f"aside: delete answered {status}: {json.dumps(answer)[:300]}")


# -- the report --------------------------------------------------------------------------------

def mbps(size: int, seconds: float) -> str:
    return f"{size / seconds / 1e6:8.1f}" if seconds > 0 else "       -"


def gbps(size: int, seconds: float) -> str:
    return f"{size / seconds / 1e9:6.2f}" if seconds > 0 else "     -"


def report(runs: list[Run], size: int, info: dict[str, str]) -> None:
    print()
    print(f"results: one {human(size)} object ({size} bytes); MB/s = 10^6 bytes/s, "
          "GB/s = 10^9 bytes/s")
    print("  ratio = boto3 download time / aside cold load time (> 1: aside is faster)")
    print("  warm1, warm2 = aside's warm reads of the raw bytes over HTTP: hashed, discarded")
    print()
    head = (f"  {'run':<7} {'order':<13} {'boto3 s':>8} {'MB/s':>8}   {'aside s':>8} {'MB/s':>8}"
            f"   {'ratio':>6}   {'warm1 GB/s':>10} {'warm2 GB/s':>10}")
    print(head)
    print("  " + "-" * (len(head) - 2))
    for r in runs:
        print(f"  {r.n:<7} {r.order:<13} {r.boto3_s:8.2f} {mbps(size, r.boto3_s)}   "
              f"{r.aside_s:8.2f} {mbps(size, r.aside_s)}   {r.boto3_s / r.aside_s:5.2f}x   "
              f"{gbps(size, r.warm1_s):>10} {gbps(size, r.warm2_s):>10}")
    b = statistics.median(r.boto3_s for r in runs)
    a = statistics.median(r.aside_s for r in runs)
    w1 = statistics.median(r.warm1_s for r in runs)
    w2 = statistics.median(r.warm2_s for r in runs)
    ratio = b / a
    print("  " + "-" * (len(head) - 2))
    print(f"  {'median':<7} {'':<13} {b:8.2f} {mbps(size, b)}   {a:8.2f} {mbps(size, a)}   "
          f"{ratio:5.2f}x   {gbps(size, w1):>10} {gbps(size, w2):>10}")
    print()
    verdict = "met" if ratio >= TARGET else "missed"
    print(f"  aside cold load vs boto3 download_file: {ratio:.2f}x, target >= {TARGET:.1f}x: "
          f"{verdict} by {abs(ratio / TARGET - 1) * 100:.0f}%")
    print(f"  aside warm read over HTTP: {gbps(size, w1).strip()} GB/s hashed (sha256) as read, "
          f"{gbps(size, w2).strip()} GB/s discarded (medians)")
    print(f"  upload (boto3 upload_file to moto, informative): {info['upload_s']}")
    print()
    print_facts(info, ("reproduce", "date", "machine", "aside", "aside S3", "boto3", "moto",
                       "moto part"))


# -- main --------------------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description="aside's cold load of one S3 object (moto) as a "
                                             "ratio of boto3's download_file")
    ap.add_argument("--size", type=parse_size, default=1 << 30,
                    help="object size, e.g. 64MiB, 1GiB [1GiB]")
    ap.add_argument("--runs", type=positive_int, default=1,
                    help="cold loads per side, interleaved [1]")
    args = ap.parse_args()
    size, n_runs = args.size, args.runs

    exe, exe_path = server_binary(PROG)
    try:
        import boto3
        import botocore
        import moto
        import s3transfer
        from boto3.s3.transfer import TransferConfig
    except ImportError as e:
        print(f"{PROG}: error: {e} (pip install boto3 'moto[server]')", file=sys.stderr)
        return 1

    cores = core_count()
    threads = os.environ.get("ASIDE_THREADS", str(cores))
    part = os.environ.get("ASIDE_S3_PART_SIZE", "8MiB")
    concurrency = os.environ.get("ASIDE_S3_CONCURRENCY", "8")
    memory = os.environ.get("ASIDE_MEMORY_LIMIT", human(max(2 * size, 1 << 30)))
    aside_env = {"ASIDE_THREADS": threads, "ASIDE_S3_PART_SIZE": part,
                 "ASIDE_S3_CONCURRENCY": concurrency, "ASIDE_MEMORY_LIMIT": memory}
    if "ASIDE_DISK_LIMIT" in os.environ:
        aside_env["ASIDE_DISK_LIMIT"] = os.environ["ASIDE_DISK_LIMIT"]

    # Ctrl-C also reaches moto and aside (same process group), so what fails right after it is
    # reported as the interruption. Other signals unwind through the finally blocks below too.
    interrupted = install_signal_handlers(PROG)
    os.environ.pop("AWS_PROFILE", None)
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"

    tc = TransferConfig()
    version = server_version(exe_path)
    info = {
        "reproduce": f"{env_line(exe, aside_env)} .venv/bin/python bench/s3_cold_load.py "
                     f"--size {human(size)} --runs {n_runs}",
        "date": utc_now(),
        "machine": machine(cores),
        "aside": f"{version}, {threads} threads, memory limit {memory}",
        "aside S3": f"HEAD, then ranged GETs of {part}, {concurrency} in flight "
                    f"(ASIDE_S3_PART_SIZE, ASIDE_S3_CONCURRENCY)",
        "boto3": f"boto3 {boto3.__version__}, botocore {botocore.__version__}, s3transfer "
                 f"{s3transfer.__version__}, TransferConfig() defaults: HEAD, then ranged GETs of "
                 f"{human(tc.multipart_chunksize)}, {tc.max_request_concurrency} threads "
                 f"(multipart above {human(tc.multipart_threshold)}"
                 f"{', classic client' if not getattr(boto3.s3.transfer, 'HAS_CRT', False) else ''})",
        "moto": f"moto {moto.__version__}, moto_server in a subprocess, authentication off",
        "upload_s": "?",
        "moto part": "?",
    }

    print(f"aside cold load from S3 (moto on 127.0.0.1) vs boto3 download_file, "
          f"{human(size)}, {n_runs} run(s)")
    print(f"  aside: {threads} threads, parts {part}, {concurrency} in flight; boto3: parts "
          f"{human(tc.multipart_chunksize)}, {tc.max_request_concurrency} threads")

    tmp = tempfile.mkdtemp(prefix="aside-s3-cold-")
    moto_srv: Moto | None = None
    aside: Aside | None = None
    ok = False
    try:
        free = os.statvfs(tmp)
        need = 4 * size + (64 << 20)
        if free.f_bavail * free.f_frsize < need:
            raise BenchError(f"not enough free space in the temporary directory: needs about "
                             f"{need / 1e9:.1f} GB (source, moto's copy, boto3's copy, aside's disk tier)")
        src = os.path.join(tmp, "source.bin")
        t0 = time.perf_counter()
        digest = make_source(src, size)
        print(f"  source: {size} random bytes, sha256 {digest[:16]}... "
              f"({time.perf_counter() - t0:.1f} s)")

        moto_srv = Moto(tmp, os.path.join(tmp, "moto.log"))
        client = s3_client(moto_srv.endpoint)
        client.create_bucket(Bucket=BUCKET)
        t0 = time.perf_counter()
        client.upload_file(src, BUCKET, PREFIX + KEY)
        upload_s = time.perf_counter() - t0
        head = client.head_object(Bucket=BUCKET, Key=PREFIX + KEY)
        if head["ContentLength"] != size:
            raise BenchError(f"moto holds {head['ContentLength']} bytes, expected {size}")
        info["upload_s"] = f"{upload_s:.2f} s ({size / upload_s / 1e6:.1f} MB/s), ETag {head['ETag']}"
        print(f"  upload to moto: {upload_s:.2f} s, ETag {head['ETag']}")

        # What one part costs moto alone (informative): both sides pay it for every part.
        part_bytes = min(tc.multipart_chunksize, size)
        one = []
        for _ in range(3):
            t0 = time.perf_counter()
            body = client.get_object(Bucket=BUCKET, Key=PREFIX + KEY,
                                     Range=f"bytes=0-{part_bytes - 1}")["Body"].read()
            one.append(time.perf_counter() - t0)
            if len(body) != part_bytes:
                raise BenchError(f"moto: a ranged GET gave {len(body)} bytes, expected "
                                 f"{part_bytes}")
        parts = -(-size // part_bytes)
        one_s = statistics.median(one)
        info["moto part"] = (f"one ranged GET of {human(part_bytes)}, alone: {one_s:.3f} s "
                             f"(median of 3); x {parts} parts = {one_s * parts:.1f} s if served "
                             "one at a time")
        print(f"  moto: {info['moto part']}")

        aside = Aside(exe_path, tmp, moto_srv.endpoint, aside_env)
        print(f"  aside listening on 127.0.0.1:{aside.port}, disk tier empty")
        print()

        runs = []
        for i in range(1, n_runs + 1):
            boto3_first = i % 2 == 1
            run = Run(i, "boto3, aside" if boto3_first else "aside, boto3")
            for side in (("boto3", "aside") if boto3_first else ("aside", "boto3")):
                if not moto_srv.alive():
                    raise BenchError("moto_server is no longer running")
                if not aside.alive():
                    raise BenchError("aside is no longer running")
                print(f"  run {i}/{n_runs}  {side:<5} ", end="", flush=True)
                if side == "boto3":
                    run.boto3_s = boto3_download(client, os.path.join(tmp, "boto3.bin"), size,
                                                 digest)
                    print(f"download {run.boto3_s:7.2f} s  {mbps(size, run.boto3_s).strip()} MB/s"
                          "  (sha256 ok)")
                else:
                    aside_run(aside, run, size, digest)
                    print(f"cold load {run.aside_s:6.2f} s  {mbps(size, run.aside_s).strip()} "
                          f"MB/s; warm reads {gbps(size, run.warm1_s).strip()}, "
                          f"{gbps(size, run.warm2_s).strip()} GB/s  (sha256 ok)")
            runs.append(run)

        if not aside.alive():
            raise BenchError("aside exited during the measurements")
        report(runs, size, info)
        print_problems(aside.problems())
        ok = True
    except (KeyboardInterrupt, Exception) as e:  # boto3 or HTTP failures too: report, stop all
        return failure(PROG, e, interrupted)
    finally:
        if aside is not None:
            aside.stop()
            if not ok and not interrupted:
                print_log_tail(aside.log())
        if moto_srv is not None:
            moto_srv.stop()
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
