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
  - aside on a folder: LocalAside, for the scripts whose system of record is a folder of their
    temporary directory: its API over HTTP (a requests session, value) and the whole of a key as
    an Arrow stream read with http.client (arrow_discard, arrow_body).
  - the run's frame: the server binary from ASIDE_SERVER, the Python modules a script needs
    (modules: a missing one is an error message, not a traceback), the facts a report states
    (cores, CPU, version, date, the environment that reproduces it: run_facts, print_facts), the
    signal handlers that turn Ctrl-C and SIGTERM into an orderly stop, the report of a failure,
    and BenchRun, the body of a script's main: a temporary directory, and on the way out the
    error reported, aside stopped (its exit status checked) and the directory removed.

Everything specific to one benchmark (what it measures, its system of record, S3 or moto
settings, its timeouts and its sizes) stays in the script. Messages name the script (prog), so a
script's output is the same as if it had all of this inline. Scripts are run as
`.venv/bin/python bench/SCRIPT.py` and import this module from their own folder.
"""
from __future__ import annotations

import argparse
import datetime as dt
import http.client
import importlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from types import ModuleType

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
START_TIMEOUT = 30.0            # seconds for aside to print its listening line
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
LOOPBACK = "127.0.0.1,localhost"
API = "/cache/api/v1.0/"
ARROW_STREAM = "application/vnd.apache.arrow.stream"


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
                         "ASIDE_BIND": "127.0.0.1", "ASIDE_PORT": "0",
                         "ASIDE_DRAIN_SECONDS": "0"})
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


class LocalAside(AsideProcess):
    """aside-server on 127.0.0.1 with folders of the run's temporary directory as its system of
    record (sor) and its disk tier (cache), its log in aside.log there; its API over HTTP."""

    DROP = ("ASIDE_", "LOCAL_DATA_DIR", "REMOTE_STORAGE", "AWS_")

    def __init__(self, exe: str, tmp: str, env_extra: dict[str, str], prog: str,
                 stop_timeout: float, drop: tuple[str, ...] = ()) -> None:
        """The environment is loopback_env without the variables starting with DROP or drop,
        then env_extra. Nothing starts before start()."""
        self.sor = os.path.join(tmp, "sor")
        self.cache = os.path.join(tmp, "cache")
        os.makedirs(self.sor, exist_ok=True)
        os.makedirs(self.cache, exist_ok=True)
        super().__init__(exe, tmp, self.cache, self.sor, os.path.join(tmp, "aside.log"),
                         loopback_env(self.DROP + drop), env_extra, prog, stop_timeout)
        self._session = None

    @property
    def session(self):
        """A requests.Session for the API, made on first use; loopback: no proxy, no netrc."""
        if self._session is None:
            import requests
            self._session = requests.Session()
            self._session.trust_env = False
        return self._session

    def stop(self) -> int | None:
        """Closes the HTTP session; SIGTERM, up to stop_timeout seconds to exit, then SIGKILL.
        Its exit status."""
        if self._session is not None:
            self._session.close()
        return super().stop()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return self.base + API

    @staticmethod
    def target(**params: str) -> str:
        """The request target (path and query) of an API call."""
        return API + "?" + urllib.parse.urlencode(params)

    def get(self, timeout: float, **params: str):
        """One GET on the session; the response, which must be 200."""
        r = self.session.get(self.url, params=params, timeout=timeout)
        if r.status_code != 200:
            raise BenchError(f"aside: {params.get('function')} answered {r.status_code}: "
                             f"{r.text[:500]}")
        return r

    def value(self, timeout: float, **params: str):
        """One GET on the session; the parsed {"return": {"value": ...}}."""
        r = self.get(timeout, **params)
        try:
            return r.json()["return"]["value"]
        except (ValueError, KeyError, TypeError):
            raise BenchError(f"aside: {params.get('function')} answered no return.value: "
                             f"{r.text[:500]}") from None

    def arrow_discard(self, target: str, timeout: float, chunk: int) -> tuple[int, float, float]:
        """GET target, an Arrow stream, read with http.client into one reused buffer of chunk
        bytes and dropped: (bytes, seconds to the response's headers, seconds to the last
        byte)."""
        view = memoryview(bytearray(chunk))
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            t0 = time.perf_counter()
            conn.request("GET", target)
            resp = conn.getresponse()
            t_head = time.perf_counter() - t0
            check_arrow(resp)
            got = 0
            while n := resp.readinto(view):
                got += n
            seconds = time.perf_counter() - t0
        finally:
            conn.close()
        length = resp.getheader("Content-Length")
        if length is not None and int(length) != got:
            raise BenchError(f"aside: Arrow body of {got} bytes, Content-Length {length}")
        return got, t_head, seconds

    def arrow_body(self, target: str, timeout: float, chunk: int,
                   need_length: bool = False) -> tuple[bytearray, float]:
        """GET target, an Arrow stream, kept: read with http.client readinto() into a bytearray
        of its Content-Length (read in blocks of chunk bytes when there is none, unless
        need_length). (body, seconds from the request to the last byte)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            t0 = time.perf_counter()
            conn.request("GET", target)
            resp = conn.getresponse()
            check_arrow(resp)
            length = resp.getheader("Content-Length")
            if length is not None:
                body = bytearray(int(length))
                view = memoryview(body)
                got = 0
                while got < len(body) and (n := resp.readinto(view[got:])):
                    got += n
                if got != len(body):
                    raise BenchError(f"aside: Arrow body ended after {got} of {length} bytes")
            elif need_length:
                raise BenchError("aside: the Arrow stream came without a Content-Length")
            else:
                body = bytearray()
                while block := resp.read(chunk):
                    body += block
            seconds = time.perf_counter() - t0
        finally:
            conn.close()
        return body, seconds


def check_arrow(resp: http.client.HTTPResponse) -> None:
    """Raises BenchError unless resp is a 200 with an Arrow stream's Content-Type."""
    if resp.status != 200:
        raise BenchError(f"aside: read as Arrow answered {resp.status}: "
                         f"{resp.read(500).decode('utf-8', 'replace')}")
    ctype = resp.getheader("Content-Type", "")
    if not ctype.startswith(ARROW_STREAM):
        raise BenchError(f"aside: read as Arrow answered Content-Type {ctype!r}")


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


def modules(prog: str, names: Sequence[str], pip: str) -> list[ModuleType]:
    """The modules named, imported, in that order. When one is missing, says so on stderr with
    what to install (pip: the words after `pip install`) and exits with status 1 (before the
    script has started anything)."""
    try:
        return [importlib.import_module(name) for name in names]
    except ImportError as e:
        print(f"{prog}: error: {e} (pip install {pip})", file=sys.stderr)
        raise SystemExit(1) from None


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


def failure(prog: str, e: BaseException, interrupted: list[int]) -> int:
    """Report an exception (KeyboardInterrupt or an Exception) that stopped the run; the exit
    status: 130 on Ctrl-C, 128 + the signal when a signal caused it, else 1 after the error."""
    if isinstance(e, KeyboardInterrupt) or interrupted:
        print(f"\n{prog}: interrupted", file=sys.stderr)
        return 130 if isinstance(e, KeyboardInterrupt) else 128 + interrupted[0]
    what = str(e) if isinstance(e, BenchError) else f"{type(e).__name__}: {e}"
    print(f"\n{prog}: error: {what}", file=sys.stderr)
    return 1


def run_facts(exe: str, aside_env: dict[str, str], command: str, cores: int) -> dict[str, str]:
    """The facts every report starts with: reproduce (env_line, then .venv/bin/python and
    command, the script and its arguments), date and machine."""
    return {"reproduce": f"{env_line(exe, aside_env)} .venv/bin/python {command}",
            "date": utc_now(), "machine": machine(cores)}


def print_facts(facts: dict[str, str], keys: Iterable[str]) -> None:
    """The report's facts, one a line, in the order of keys."""
    for k in keys:
        print(f"  {k + ':':<11} {facts[k]}")


class BenchRun:
    """The body of a script's main, `with BenchRun(PROG, interrupted, "aside-x-") as run:`.

    It makes the run's temporary directory (tmp). The script sets run.aside once it has made its
    aside and appends to run.closers what must be closed before aside stops. On the way out: a
    KeyboardInterrupt or an Exception is reported (failure) and goes no further; the closers run;
    aside is stopped, and when it does not exit with status 0, or the run failed, and no signal
    came, the end of its log is printed; tmp is removed. SystemExit (the signal handlers') passes
    through after the same clean-up. status is then the script's exit status: 0 when the body ran
    to its end and aside exited cleanly, else 1 or failure's."""

    def __init__(self, prog: str, interrupted: list[int], tmp_prefix: str) -> None:
        self.prog = prog
        self.interrupted = interrupted
        self.tmp = tempfile.mkdtemp(prefix=tmp_prefix)
        self.aside: AsideProcess | None = None
        self.closers: list[Callable[[], object]] = []
        self.status = 1

    def __enter__(self) -> BenchRun:
        return self

    def __exit__(self, exc_type, exc, _tb) -> bool:
        handled = exc_type is not None and issubclass(exc_type, (KeyboardInterrupt, Exception))
        ok = exc_type is None
        if handled:
            self.status = failure(self.prog, exc, self.interrupted)
        try:
            for close in self.closers:
                close()
            if self.aside is not None:
                code = self.aside.stop()
                if code not in (None, 0):
                    print(f"{self.prog}: aside exited with status {code} on SIGTERM",
                          file=sys.stderr)
                    ok = False
                if not ok and not self.interrupted:
                    print_log_tail(self.aside.log())
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)
        if exc_type is None:
            self.status = 0 if ok else 1
        return handled


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
