#!/usr/bin/env python3
"""request_instructions.py -- the CPU instructions one memory hit costs the server, per build.

    .venv/bin/python bench/request_instructions.py BINARY [BINARY ...] [--requests N]

Each server binary runs under valgrind's callgrind (one event-loop thread) with a small JSON key
in its system of record. After a warm-up (the key loaded, the connection open) instrumentation
is switched on, N keep-alive GETs of the key with format=raw are made, and it is switched off
again: the instructions counted are those of the N requests alone, in the server's user space
(system calls are the kernel's and are not counted). Instruction counts do not wander with the
machine's load as times do, so two builds compared this way differ only by their code: this is
the check that a change did not make the hot path dearer, next to the throughput ratio against
nginx (bench/http_vs_nginx.sh), which shares the machine's noise.

Prints one line per binary and, with two or more, each one's ratio to the first.
"""
from __future__ import annotations

import argparse
import glob
import http.client
import os
import re
import shutil
import subprocess
import tempfile
import time

START_TIMEOUT_S = 120   # a server under valgrind starts slowly (DuckDB's initialisation)
WARMUP_REQUESTS = 50
VALUE = '{"a": 1, "b": [1, 2, 3], "c": "0123456789012345678901234567890123456789"}'


def measure(binary: str, requests: int) -> int:
    """Instructions the server ran for `requests` memory hits."""
    root = tempfile.mkdtemp(prefix="aside-instructions-")
    try:
        for folder in ("sor", "cache", "functions"):
            os.makedirs(os.path.join(root, folder))
        with open(os.path.join(root, "sor", "small.json"), "w") as f:
            f.write(VALUE)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ASIDE_", "AWS_"))}
        env.update(LOCAL_DATA_DIR=f"{root}/cache", REMOTE_STORAGE=f"{root}/sor",
                   LOCAL_FUNCTION_DIR=f"{root}/functions", ASIDE_PORT="0", ASIDE_THREADS="1",
                   ASIDE_LOAD_THREADS="1", ASIDE_FUNCTION_WORKERS="1")
        log_path = os.path.join(root, "server.log")
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                ["valgrind", "--tool=callgrind", "--instr-atstart=no",
                 f"--callgrind-out-file={root}/callgrind.%p", binary],
                env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            port = wait_for_port(log_path, proc)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            for _ in range(WARMUP_REQUESTS):
                get(conn)
            control(proc.pid, "on")
            for _ in range(requests):
                get(conn)
            control(proc.pid, "off")
            conn.close()
        finally:
            proc.terminate()
            proc.wait(timeout=START_TIMEOUT_S)
        return sum(totals(path) for path in glob.glob(f"{root}/callgrind.*"))
    finally:
        shutil.rmtree(root, ignore_errors=True)


def wait_for_port(log_path: str, proc: subprocess.Popen) -> int:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        with open(log_path, "rb") as f:
            match = re.search(rb"listening on http://[^:]+:(\d+)/", f.read())
        if match:
            return int(match.group(1))
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        time.sleep(0.1)
    raise RuntimeError("the server did not start in time")


def get(conn: http.client.HTTPConnection) -> None:
    conn.request("GET", "/cache/api/v1.0/?path=small.json&format=raw")
    response = conn.getresponse()
    body = response.read()
    if response.status != 200 or body != VALUE.encode():
        raise RuntimeError(f"unexpected answer {response.status}: {body[:200]!r}")


def control(pid: int, state: str) -> None:
    subprocess.run(["callgrind_control", "-i", state, str(pid)], check=True,
                   capture_output=True)


def totals(path: str) -> int:
    with open(path) as f:
        for line in f:
            if line.startswith("totals:"):
                return int(line.split()[1])
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("binaries", nargs="+")
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    print(f"{args.requests} memory hits of a {len(VALUE)}-byte key, format=raw, keep-alive; "
          "instructions in the server's user space (callgrind)")
    first = None
    for binary in args.binaries:
        per_request = measure(binary, args.requests) / args.requests
        first = first or per_request
        ratio = f"  {per_request / first:.3f}x the first" if binary != args.binaries[0] else ""
        print(f"  {binary}: {per_request:,.0f} instructions a request{ratio}")


if __name__ == "__main__":
    main()
