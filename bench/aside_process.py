"""aside_process.py -- what the Python benchmarks in bench/ share: aside-server as a child process.

Design. A benchmark here starts aside-server on 127.0.0.1 with an environment it builds, measures
it against something else, prints a report and stops everything it started. This module holds
the parts that are the same in every such script and nothing that differs between them:

  - the process: AsideProcess starts the binary with the given environment (port 0: the kernel
    picks one), learns the port from the "listening on http://127.0.0.1:PORT/" line of its log,
    and stops it with SIGTERM, then SIGKILL after a timeout (stop_process, which also serves the
    scripts' other children). Its log is one file, read whole (log) or as the lines above the
    info level (problems). A script subclasses it to add its own HTTP calls.
  - the environment: loopback_env is this process' environment less proxies and the prefixes a
    script names, so that nothing but what the script sets reaches aside or leaves the machine.
  - the run's frame: the server binary from ASIDE_SERVER, the facts a report states (cores, CPU,
    version, date, the environment that reproduces it), the signal handlers that turn Ctrl-C and
    SIGTERM into an orderly stop, and the report of a failure.

Everything specific to one benchmark (what it measures, its system of record, S3 or moto
settings, its timeouts and its sizes) stays in the script. Messages name the script (prog), so a
script's output is the same as if it had all of this inline. Scripts are run as
`.venv/bin/python bench/SCRIPT.py` and import this module from their own folder.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterable

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
START_TIMEOUT = 30.0            # seconds for aside to print its listening line
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
LOOPBACK = "127.0.0.1,localhost"


class BenchError(Exception):
    """A benchmark cannot go on; the message says why, and the script exits 1 after it."""


def positive_int(text: str) -> int:
    """argparse type: a whole number above 0."""
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n <= 0:
        raise argparse.ArgumentTypeError(f"not a positive whole number: {text!r}")
    return n


# -- processes ---------------------------------------------------------------------------------

def loopback_env(drop_prefixes: tuple[str, ...]) -> dict[str, str]:
    """This process' environment without proxy settings and without the variables whose names
    start with one of drop_prefixes; NO_PROXY and no_proxy name the loopback."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(drop_prefixes) and k.lower() not in PROXY_VARIABLES}
    env["NO_PROXY"] = env["no_proxy"] = LOOPBACK
    return env


def stop_process(proc: subprocess.Popen | None, name: str, prog: str,
                 timeout: float) -> int | None:
    """SIGTERM, up to timeout seconds to exit, then SIGKILL. Only for the script's own children.
    The exit status, or None when there is no process."""
    if proc is None:
        return None
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            print(f"{prog}: {name} did not stop on SIGTERM; killing it", file=sys.stderr)
            proc.kill()
            proc.wait(timeout=timeout)
    return proc.returncode


class AsideProcess:
    """aside-server on 127.0.0.1, port chosen by the kernel, its output in one log file."""

    def __init__(self, exe: str, cwd: str, cache_dir: str, sor_dir: str, log_path: str,
                 base_env: dict[str, str], env_extra: dict[str, str], prog: str,
                 stop_timeout: float) -> None:
        """exe: the binary; cache_dir and sor_dir: LOCAL_DATA_DIR and REMOTE_STORAGE;
        base_env: what the environment starts from (see loopback_env); env_extra: set last."""
        self.exe = exe
        self.cwd = cwd
        self.log_path = log_path
        self.prog = prog
        self.stop_timeout = stop_timeout
        self.env = dict(base_env)
        self.env.update({"LOCAL_DATA_DIR": cache_dir, "REMOTE_STORAGE": sor_dir,
                         "ASIDE_BIND": "127.0.0.1", "ASIDE_PORT": "0"})
        self.env.update(env_extra)
        self.proc: subprocess.Popen | None = None
        self.port = 0

    def start(self) -> None:
        """Start it and wait up to START_TIMEOUT seconds for its listening line: sets port."""
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([self.exe], env=self.env, cwd=self.cwd,
                                         stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)/", self.log())
            if m:
                self.port = int(m.group(1))
                return
            if self.proc.poll() is not None:
                raise BenchError(f"aside exited during start-up (status {self.proc.returncode})")
            time.sleep(0.05)
        raise BenchError("aside did not print 'listening on http://127.0.0.1:PORT/' "
                         f"within {START_TIMEOUT:.0f} s")

    def log(self) -> str:
        """Everything it has written so far ("" when the log cannot be read)."""
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def problems(self) -> list[str]:
        """Log lines above the info level (warnings, errors)."""
        out = []
        for line in self.log().splitlines():
            m = re.match(r"aside: (\w+): ", line)
            if (m and m.group(1) != "info") or (not m and line.strip()):
                out.append(line)
        return out

    def alive(self) -> bool:
        """Started and not exited."""
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> int | None:
        """SIGTERM, up to stop_timeout seconds to exit, then SIGKILL. Its exit status."""
        return stop_process(self.proc, "aside", self.prog, self.stop_timeout)


# -- the run -----------------------------------------------------------------------------------

def server_binary(prog: str) -> tuple[str, str]:
    """ASIDE_SERVER (default build/aside-server, relative to the repository root): (as given,
    path). When it is not an executable file, says so on stderr and exits with status 1 (before
    the script has started anything)."""
    exe = os.environ.get("ASIDE_SERVER", "build/aside-server")
    exe_path = exe if os.path.isabs(exe) else os.path.join(REPO, exe)
    if not os.access(exe_path, os.X_OK):
        print(f"{prog}: error: server binary '{exe}' not found or not executable "
              "(build it first: ninja -C build, or set ASIDE_SERVER)", file=sys.stderr)
        raise SystemExit(1)
    return exe, exe_path


def core_count() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def server_version(exe_path: str) -> str:
    """What `aside-server --version` prints."""
    return subprocess.run([exe_path, "--version"], capture_output=True, text=True,
                          timeout=10).stdout.strip() or "aside-server"


def machine(cores: int) -> str:
    """Cores, CPU model (from /proc/cpuinfo, when it says) and kernel, for the report."""
    cpu = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            m = re.search(r"^model name\s*:\s*(.*)$", f.read(), re.M)
            cpu = m.group(1).strip() if m else ""
    except OSError:
        pass
    return f"{cores} cores{', ' + cpu if cpu else ''}, {os.uname().sysname} {os.uname().release}"


def utc_now() -> str:
    """The date and time of the run, for the report."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def env_line(exe: str, aside_env: dict[str, str]) -> str:
    """The variables that reproduce the run, shell-quoted: ASIDE_SERVER, then aside_env sorted."""
    return " ".join(f"{k}={shlex.quote(v)}" for k, v in
                    [("ASIDE_SERVER", exe)] + sorted(aside_env.items()))


def install_signal_handlers(prog: str) -> list[int]:
    """SIGINT raises KeyboardInterrupt; SIGTERM and SIGHUP raise SystemExit(128 + signal), so
    that the script's finally blocks stop what it started. The list returned collects the
    signals received."""
    interrupted: list[int] = []

    def on_interrupt(signum, _frame):
        interrupted.append(signum)
        raise KeyboardInterrupt

    def on_signal(signum, _frame):
        interrupted.append(signum)
        print(f"\n{prog}: stopping on signal {signum}", file=sys.stderr)
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGINT, on_interrupt)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    return interrupted


def failure(prog: str, e: Exception, interrupted: list[int]) -> int | None:
    """Report an exception that stopped the run. The exit status when a signal caused it (the
    script returns it at once); None after printing the error."""
    if interrupted:
        print(f"\n{prog}: interrupted", file=sys.stderr)
        return 128 + interrupted[0]
    what = str(e) if isinstance(e, BenchError) else f"{type(e).__name__}: {e}"
    print(f"\n{prog}: error: {what}", file=sys.stderr)
    return None


def print_problems(problems: Iterable[str]) -> None:
    """The report's note of aside's log lines above info, the last ten; nothing when none."""
    problems = list(problems)
    if problems:
        print()
        print(f"  aside's log has {len(problems)} line(s) above info; the last ones:")
        for line in problems[-10:]:
            print(f"    {line}")


def print_log_tail(log: str) -> None:
    """The last 20 lines of aside's log on stderr, after a failure."""
    tail = log.splitlines()[-20:]
    if tail:
        print("--- aside log (last lines)", file=sys.stderr)
        print("\n".join(tail), file=sys.stderr)
