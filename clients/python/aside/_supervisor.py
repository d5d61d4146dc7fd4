"""_supervisor -- the process of ``python -m aside.worker`` that holds the server's socket.

Users' code never runs in this process. The server's socket (file descriptor 3) stays here;
each function runs in a *runner*, a child forked from this process (which has pandas, pyarrow
and the client imported but has run nothing of a user's), that talks to it over a socket pair
of its own and whose standard output and error are a pipe read here. So:

* nothing a function does reaches the server's socket: a runner closes every descriptor it
  inherited (fd 3 becomes ``/dev/null``) before it loads a function file, and what it writes
  on its own channel is checked here. Requests go to a runner with a fresh random id; a reply
  must be one frame (a length, a JSON object header with that id, a bounded payload); a reply
  with another id, or a malformed one, kills the runner and answers 500 ``worker_protocol``,
  and bytes a runner sends outside a reply get it killed before it is sent anything else. The
  server's id is put back on the reply, so the server checks what it sent.
* one runner per function (at most ``MAX_RUNNERS``, the least recently used one stopped to make
  room): a function never shares an interpreter with another, so a hook it installs (in
  ``sys.modules``, a shared module, ``builtins``) sees only its own calls. A function's first
  call in a worker costs a fork (about 10-30 ms), not a Python start.
* this process is the *subreaper* of everything below it: a runner's children that outlive it
  (daemons included, ``setsid`` or not) become its children, and are killed when their runner
  is stopped and when this process ends. The server kills the whole process group on a
  timeout; a runner dies with this process (``PR_SET_PDEATHSIG``); this process ends when the
  server's socket hangs up, even while a call runs, so a server that is killed leaves nothing.
* a call's output (what the function and its children print) is captured: the last
  ``OUTPUT_KEPT_BYTES`` are kept, the rest counted, and an error answer carries the last lines
  as ``"output"``; lines reach the server's log at most ``LOG_BYTES_PER_S`` on average (a
  burst of ``LOG_BURST_BYTES``), the rest counted in one line per call.

Requests other than ``call`` (``check``, ``describe``: syntax trees only; ``stats``: the
runners' figures as of their last calls) are answered here.
"""

from __future__ import annotations

import ctypes
import json
import os
import select
import signal
import socket
import struct
import sys
import time
from typing import Any, Dict, List, Optional, Tuple

from .client import Client
from .worker import (CallError, ProtocolError, STATUS_BAD_REQUEST, STATUS_ERROR, Worker,
                     _encode_header, function_file)

PROTOCOL_FD = 3
LENGTH = struct.Struct(">I")
MAX_HEADER_BYTES = 64 << 20        # as the server accepts
MAX_PAYLOAD_BYTES = 1 << 30        # as the server accepts
RELAY_CHUNK_BYTES = 1 << 20        # a reply's payload goes on to the server in pieces this big
MAX_RUNNERS = 8                    # functions with a process of their own, per worker
OUTPUT_KEPT_BYTES = 64 << 10       # of a call's output, kept for its error answer
OUTPUT_READ_BYTES = 64 << 10
OUTPUT_LINES = 50                  # lines of output an error answer carries at most
LOG_BYTES_PER_S = 4096             # output forwarded to the server's log, on average
LOG_BURST_BYTES = 16 << 10
DEATH_WAIT_S = 2.0                 # a runner that closed its channel has this long to exit
STRAY_ROUNDS = 64                  # rounds of killing orphans (each may orphan the next level)
REPLY_DEPTH = 2000                 # JSON nesting of a reply read here: the server's highest
                                   # ASIDE_JSON_MAX_DEPTH, past which it refuses a result anyway
RECURSION_MARGIN = 200             # the frames of this process below the decoder

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36

CODE_DIED = "worker_died"
CODE_PROTOCOL = "worker_protocol"

_libc = ctypes.CDLL(None, use_errno=True)


def _prctl(option: int, value: int) -> None:
    _libc.prctl(option, ctypes.c_ulong(value), ctypes.c_ulong(0), ctypes.c_ulong(0),
                ctypes.c_ulong(0))


class ServerGone(Exception):
    """The server closed its socket."""


class TooDeep(Exception):
    """A reply nested deeper than REPLY_DEPTH: the function's result cannot be answered."""


class RunnerFailed(Exception):
    """A runner broke the protocol or died: the call's answer is this error."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# ---- output --------------------------------------------------------------------------------

class LogBudget:
    """A token bucket of bytes for the server's log, shared by every runner."""

    def __init__(self) -> None:
        self.tokens = float(LOG_BURST_BYTES)
        self.at = time.monotonic()

    def take(self, n: int) -> bool:
        now = time.monotonic()
        self.tokens = min(LOG_BURST_BYTES, self.tokens + (now - self.at) * LOG_BYTES_PER_S)
        self.at = now
        if n > self.tokens:
            return False
        self.tokens -= n
        return True


class Output:
    """What one runner printed since its current call began: a bounded tail, a count."""

    def __init__(self, function: str, budget: LogBudget) -> None:
        self.function = function
        self.budget = budget
        self.tail = bytearray()
        self.total = 0
        self.unlogged = 0
        self.partial = bytearray()  # a line not yet ended, for the log

    def reset(self) -> None:
        self.tail.clear()
        self.total = 0
        self.unlogged = 0

    def add(self, data: bytes) -> None:
        self.total += len(data)
        self.tail += data[-OUTPUT_KEPT_BYTES:]
        if len(self.tail) > OUTPUT_KEPT_BYTES:
            del self.tail[:len(self.tail) - OUTPUT_KEPT_BYTES]
        self._log(data)

    def _log(self, data: bytes) -> None:
        self.partial += data
        *lines, rest = self.partial.split(b"\n")
        self.partial = bytearray(rest[-OUTPUT_KEPT_BYTES:])
        if len(rest) > OUTPUT_KEPT_BYTES:
            self.unlogged += len(rest) - OUTPUT_KEPT_BYTES
        for line in lines:
            text = f"aside.worker: {self.function}: " + line.decode("utf-8", "replace") + "\n"
            if self.budget.take(len(text)):
                sys.stderr.write(text)
            else:
                self.unlogged += len(line) + 1

    def lines(self) -> List[str]:
        """The last lines printed (the first may be cut)."""
        text = self.tail.decode("utf-8", "replace")
        return text.splitlines()[-OUTPUT_LINES:]

    def finish(self) -> None:
        """The call is answered: say in the log what it left out."""
        if self.unlogged:
            sys.stderr.write(f"aside.worker: {self.function}: {self.unlogged} bytes of output "
                             f"(of {self.total}) not logged\n")
        sys.stderr.flush()
        self.unlogged = 0


# ---- runners -------------------------------------------------------------------------------

class Runner:
    """A forked process serving the calls of one function."""

    def __init__(self, function: str, pid: int, sock: socket.socket, out: int,
                 budget: LogBudget) -> None:
        self.function = function
        self.pid = pid
        self.sock = sock
        self.out: Optional[int] = out
        self.output = Output(function, budget)
        self.used = time.monotonic()
        self.stats: Optional[Dict[str, Any]] = None

    def drain(self, block: bool = False) -> None:
        """Read what the runner printed (without waiting unless block)."""
        while self.out is not None:
            if not block and not select.select([self.out], [], [], 0)[0]:
                return
            data = os.read(self.out, OUTPUT_READ_BYTES)
            if not data:
                os.close(self.out)
                self.out = None
                return
            self.output.add(data)
            block = False

    def has_stray_bytes(self) -> bool:
        """The runner sent something outside a reply (or closed its channel)."""
        try:
            self.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            return True  # a byte, or the end of the channel
        except BlockingIOError:
            return False
        except OSError:
            return True


def _children_of(pid: int) -> List[int]:
    """The processes whose parent is pid, from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


def _reap(pid: int, wait_s: float = 0.0) -> Optional[int]:
    """pid's wait status once it ended (waiting up to wait_s), or None."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return 0
        if done == pid:
            return status
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.01)


def _death_message(status: Optional[int]) -> str:
    if status is not None and os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        return f"the function's worker died: {signal.strsignal(sig)} (signal {sig})"
    if status is not None and os.WIFEXITED(status):
        return f"the function's worker exited with status {os.WEXITSTATUS(status)}"
    return "the function's worker stopped answering"


# ---- the supervisor ------------------------------------------------------------------------

class Supervisor:
    """Serves the protocol on ``sock`` (the server's), running each function in a runner."""

    def __init__(self, sock: socket.socket, function_dir: str, url: Optional[str],
                 token: Optional[str]) -> None:
        self.sock = sock
        self.function_dir = os.path.realpath(function_dir)
        self.url = url
        self.token = token
        self.local = Worker(sock, self.function_dir, None)  # type: ignore[arg-type]
        self.runners: Dict[str, Runner] = {}
        self.budget = LogBudget()
        self.recursion_limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(self.recursion_limit, REPLY_DEPTH + RECURSION_MARGIN))

    # -- the server's side ------------------------------------------------------------------

    def _wait_for_server(self) -> None:
        """Wait until the server sends, draining the runners' output meanwhile."""
        while True:
            outs = {r.out: r for r in self.runners.values() if r.out is not None}
            ready = select.select([self.sock, *outs], [], [])[0]
            for fd in ready:
                if fd in outs:
                    outs[fd].drain()
            if self.sock in ready:
                return

    def serve(self) -> None:
        """Answer requests until the server closes its socket."""
        while True:
            self._wait_for_server()
            self._reap_children()
            request = self.local.receive()
            if request is None:
                return
            header, _ = request
            if header.get("op") == "call" and "_malformed" not in header:
                self.call(header)
            elif header.get("op") == "stats":
                self._send({"id": header.get("id"), "ok": True, "kind": "json",
                            "value": self.stats()})
            else:
                self.local.send(*self.local.answer(header, bytearray()))

    def _reap_children(self) -> None:
        """Reap the children that ended meanwhile (orphans we adopted, a runner that died
        between calls: it is replaced on its function's next call), so that no zombie stays
        counted against the worker's processes."""
        while True:
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return
            if info is None or not info.si_pid:
                return
            for runner in self.runners.values():
                if runner.pid == info.si_pid:
                    runner.pid = 0
            try:
                os.waitpid(info.si_pid, 0)
            except ChildProcessError:
                return

    def _send(self, header: Dict[str, Any]) -> None:
        self.local.send(_encode_header(header))

    def _send_error(self, rid: Any, status: int, type_name: str, message: str,
                    code: Optional[str] = None, output: Optional[List[str]] = None) -> None:
        error: Dict[str, Any] = {"status": status, "type": type_name, "message": message,
                                 "traceback": []}
        if code:
            error["code"] = code
        if output:
            error["output"] = output
        self._send({"id": rid, "ok": False, "error": error})

    def stats(self) -> Dict[str, Any]:
        """The runners' figures as of their last calls, summed."""
        out: Dict[str, Dict[str, Any]] = {"functions": {}, "results": {}}
        for runner in self.runners.values():
            for part in ("functions", "results"):
                for name, figures in ((runner.stats or {}).get(part) or {}).items():
                    into = out[part].setdefault(name, {})
                    for what, n in figures.items():
                        if isinstance(n, int):
                            into[what] = into.get(what, 0) + n
        return out

    # -- a call -----------------------------------------------------------------------------

    def call(self, header: Dict[str, Any]) -> None:
        rid = header.get("id")
        name = header.get("function")
        try:
            function_file(self.function_dir, name)
        except CallError as exc:
            self._send_error(rid, exc.status, exc.type_name, exc.message)
            return
        runner = self._runner(name)
        runner.output.reset()
        try:
            reply, payload_bytes = self._ask(runner, header)
        except RunnerFailed as exc:
            runner.drain()
            output = runner.output.lines()
            runner.output.finish()
            self._stop(runner)
            self._send_error(rid, STATUS_ERROR, "WorkerError", exc.message, exc.code, output)
            return
        except TooDeep:  # what would follow it is unknown: the runner cannot go on
            runner.output.finish()
            self._stop(runner)
            self._send_error(rid, STATUS_BAD_REQUEST, "ValueError", "the function's result is "
                             f"nested deeper than {REPLY_DEPTH} levels")
            return
        runner.drain()
        if isinstance(reply.get("stats"), dict):
            runner.stats = reply["stats"]
            reply["stats"] = self.stats()
        if reply.get("ok") is not True and isinstance(reply.get("error"), dict):
            reply["error"]["output"] = runner.output.lines()
            reply["error"].pop("code", None)  # a runner does not choose the server's codes
        runner.output.finish()
        reply["id"] = rid
        self.local.send(_encode_header(reply))
        self._relay(runner, payload_bytes)
        if runner.has_stray_bytes():
            self._log(f"{runner.function}: its process sent bytes outside a reply: stopped")
            self._stop(runner)

    def _ask(self, runner: Runner, header: Dict[str, Any]) -> Tuple[Dict[str, Any], int]:
        """Send the call to runner; its reply's header, checked, and its payload's size."""
        inner_id = int.from_bytes(os.urandom(8), "big") >> 1
        forward = {k: v for k, v in header.items() if k != "payload_bytes"}  # read and ignored
        raw = json.dumps({**forward, "id": inner_id}).encode("utf-8")
        try:
            runner.sock.sendall(LENGTH.pack(len(raw)) + raw)
        except OSError:
            raise RunnerFailed(CODE_DIED, self._death(runner)) from None
        self._wait_for_reply(runner)
        head = self._recv(runner, LENGTH.size)
        (length,) = LENGTH.unpack(head)
        if length > MAX_HEADER_BYTES:
            raise RunnerFailed(CODE_PROTOCOL, f"the function's process sent a header of "
                                              f"{length} bytes")
        try:
            reply = json.loads(self._recv(runner, length).decode("utf-8"))
        except RecursionError:
            raise TooDeep() from None
        except (UnicodeDecodeError, ValueError):
            raise RunnerFailed(CODE_PROTOCOL, "the function's process sent a reply that is "
                                              "not JSON") from None
        if not isinstance(reply, dict) or reply.get("id") != inner_id:
            raise RunnerFailed(CODE_PROTOCOL, "the function's process sent a reply to "
                                              "another request")
        n = reply.get("payload_bytes", 0)
        if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= MAX_PAYLOAD_BYTES:
            raise RunnerFailed(CODE_PROTOCOL, "the function's process sent a bad payload size")
        return reply, n

    def _wait_for_reply(self, runner: Runner) -> None:
        """Wait until runner answers, reading its output; ServerGone if the server hangs up."""
        while True:
            watch = [runner.sock, self.sock] + ([runner.out] if runner.out is not None else [])
            ready = select.select(watch, [], [])[0]
            if runner.out in ready:
                runner.drain()
            if self.sock in ready:
                raise ServerGone()  # the server sends nothing while a call runs: it left
            if runner.sock in ready:
                return

    def _recv(self, runner: Runner, n: int) -> bytes:
        data = bytearray()
        while len(data) < n:
            try:
                chunk = runner.sock.recv(min(n - len(data), RELAY_CHUNK_BYTES))
            except InterruptedError:
                continue
            except OSError:
                chunk = b""
            if not chunk:
                raise RunnerFailed(CODE_DIED, self._death(runner))
            data += chunk
        return bytes(data)

    def _relay(self, runner: Runner, n: int) -> None:
        """Pass n bytes of payload from runner to the server. A runner that stops short is
        stopped; the server then sees its socket close in the middle of a reply."""
        while n:
            try:
                chunk = self._recv(runner, min(n, RELAY_CHUNK_BYTES))
            except RunnerFailed:
                self._stop(runner)
                raise ProtocolError("a function's process stopped in the middle of a reply")
            self.sock.sendall(chunk)
            n -= len(chunk)

    def _death(self, runner: Runner) -> str:
        """Why runner closed its channel (it is then reaped)."""
        status = _reap(runner.pid, DEATH_WAIT_S)
        if status is None:
            return "the function's process closed its channel"
        runner.pid = 0
        return _death_message(status)

    # -- runners ----------------------------------------------------------------------------

    def _runner(self, function: str) -> Runner:
        runner = self.runners.get(function)
        if runner is not None and (not runner.pid or runner.has_stray_bytes()):
            if runner.pid:
                self._log(f"{function}: its process sent bytes outside a reply: stopped")
            self._stop(runner)
            runner = None
        if runner is None:
            if len(self.runners) >= MAX_RUNNERS:
                self._stop(min(self.runners.values(), key=lambda r: r.used))
            runner = self._spawn(function)
            self.runners[function] = runner
        runner.used = time.monotonic()
        return runner

    def _spawn(self, function: str) -> Runner:
        ours, theirs = socket.socketpair()
        out_r, out_w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the runner: never returns
            code = 1
            try:
                code = self._become_runner(theirs, out_w)
            finally:
                os._exit(code)
        theirs.close()
        os.close(out_w)
        return Runner(function, pid, ours, out_r, self.budget)

    def _become_runner(self, channel: socket.socket, out: int) -> int:
        """In the forked child: keep only the channel and the output pipe, then serve."""
        parent = os.getppid()
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:
            return 1
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        sys.setrecursionlimit(self.recursion_limit)  # functions get Python's own
        self.sock.detach()  # the server's socket object must never close a reused number
        for runner in self.runners.values():
            runner.sock.detach()
        keep = channel.fileno()
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(out, 2)
        for fd in map(int, os.listdir("/proc/self/fd")):
            if fd > 2 and fd != keep:
                try:
                    os.close(fd)
                except OSError:
                    pass
        if keep != PROTOCOL_FD:
            os.dup2(os.open(os.devnull, os.O_RDWR), PROTOCOL_FD)  # fd 3 leads nowhere
        client = Client(self.url, self.token)
        self.token = None
        worker = Worker(channel, self.function_dir, client)
        try:
            worker.serve()
        except (ProtocolError, OSError):
            return 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        return 0

    def _stop(self, runner: Runner) -> None:
        """Kill runner and everything it started."""
        if self.runners.get(runner.function) is runner:
            del self.runners[runner.function]
        if runner.pid:
            try:
                os.kill(runner.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            _reap(runner.pid, DEATH_WAIT_S)
            runner.pid = 0
        runner.sock.close()
        if runner.out is not None:
            os.close(runner.out)
            runner.out = None
        self.kill_strays()

    def kill_strays(self) -> None:
        """Kill every process that became ours (orphans of stopped runners) and reap it."""
        runners = {r.pid for r in self.runners.values()}
        for _ in range(STRAY_ROUNDS):
            strays = [pid for pid in _children_of(os.getpid()) if pid not in runners]
            if not strays:
                return
            for pid in strays:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            for pid in strays:
                _reap(pid, DEATH_WAIT_S)

    def stop_all(self) -> None:
        for runner in list(self.runners.values()):
            self._stop(runner)
        self.kill_strays()

    @staticmethod
    def _log(message: str) -> None:
        sys.stderr.write(f"aside.worker: {message}\n")
        sys.stderr.flush()


def _read_token() -> Optional[str]:
    """The bearer token, from the pipe ASIDE_TOKEN_FD names (closed after) or ASIDE_TOKEN;
    either is removed from the environment that runners inherit."""
    token = os.environ.pop("ASIDE_TOKEN", None) or None
    fd_text = os.environ.pop("ASIDE_TOKEN_FD", None)
    if fd_text and fd_text.isdigit():
        fd = int(fd_text)
        data = bytearray()
        try:
            while True:
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                data += chunk
            os.close(fd)
        except OSError:
            pass
        token = data.decode("utf-8", "replace").strip() or token
    return token


def _restore_stderr() -> None:
    """Put back the standard error the server started us with (the descriptor
    ASIDE_STDERR_FD names): until now, descriptor 2 was a pipe the server reads only if we
    die before serving, to say why (an import that failed, say)."""
    fd_text = os.environ.pop("ASIDE_STDERR_FD", None)
    if not fd_text or not fd_text.isdigit():
        return
    sys.stderr.flush()
    try:
        os.dup2(int(fd_text), 2)
        os.close(int(fd_text))
    except OSError:
        pass


def _on_signal(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def main() -> int:
    """Serve fd 3 until end of file (0); a malformed request ends with 1."""
    _restore_stderr()
    function_dir = os.environ.get("ASIDE_FUNCTION_DIR") or os.path.abspath("functions")
    try:
        sock = socket.socket(fileno=PROTOCOL_FD)
    except OSError as exc:
        print(f"aside.worker: file descriptor {PROTOCOL_FD} is not a socket: {exc}",
              file=sys.stderr)
        return 2
    token = _read_token()
    sys.dont_write_bytecode = True
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(line_buffering=True)
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)
    supervisor = Supervisor(sock, function_dir, os.environ.get("ASIDE_URL"), token)
    try:
        supervisor.serve()
    except ProtocolError as exc:
        print(f"aside.worker: protocol error: {exc}", file=sys.stderr)
        return 1
    except (ServerGone, BrokenPipeError, ConnectionResetError):
        return 0
    except KeyboardInterrupt:
        return 130
    finally:
        for sig in (signal.SIGTERM, signal.SIGHUP):  # the cleanup is not cut short
            signal.signal(sig, signal.SIG_IGN)
        supervisor.stop_all()
    return 0
