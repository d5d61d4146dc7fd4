"""worker -- runs users' functions next to the data, for the aside server's worker pool.

    python -m aside.worker

The server starts this process with a connected ``AF_UNIX`` ``SOCK_STREAM`` socket on file
descriptor 3 and the environment ``ASIDE_URL`` (the server's API, for the ``cache`` argument),
``ASIDE_TOKEN_FD`` (optional: a descriptor to read the bearer token from, once; ``ASIDE_TOKEN``
is also read, and both are removed from the environment) and ``ASIDE_FUNCTION_DIR`` (the folder
of ``NAME.py`` files, absolute); ``ASIDE_STDERR_FD`` names the standard error it was started
with, which it puts back on descriptor 2 at once (until then 2 is a pipe the server reads only
when the worker dies before serving: an import that failed is said to the caller). It answers one request at a time, in order, until the server
closes the socket (end of file: exit status 0). This process runs no user code: it is a
supervisor (``aside._supervisor``) that runs each function in a forked process of its own,
where ``Worker`` below serves the same protocol over a private socket pair. An exception in a
user's function, ``SystemExit`` included, is an error answer; the worker keeps serving. Only
``KeyboardInterrupt`` (SIGINT) ends it, and a protocol violation (a message cut short, exit
status 1). A call's ``"timeout_ms"``, when given, limits the CPU time of the function's process
(``RLIMIT_CPU``: the timeout and a second more than it used so far).

Framing, both ways: a 4-byte big-endian length N, then N bytes of UTF-8 JSON (the header); when
the header has ``"payload_bytes": n`` (n > 0), exactly n raw bytes follow (a request's payload
is read and ignored: no request has one yet). Requests carry an integer ``"id"``, echoed in the
answer, and an ``"op"``:

* ``{"op": "call", "id", "function": NAME, "args": {...}, "text": bool}``: run
  ``main(cache, **args)`` of ``NAME.py``. With ``text`` true (a GET), values are strings and
  the numeric-looking ones become int or float, unless the parameter is annotated ``str``.
* ``{"op": "check", "id", "source": "...", "name": NAME (optional)}``: compile the source and
  check that it has a top-level ``def main`` taking a positional parameter; nothing runs.
* ``{"op": "describe", "id"}``: every ``NAME.py`` of the folder with ``main``'s signature and
  the first line of its docstring, read with ``ast`` (nothing runs).
* ``{"op": "stats", "id"}``: the ``aside.lru_cache`` statistics of the functions' processes as
  of their last calls (and the hits and misses of ``aside.compute_result`` /
  ``aside.sql_result``).

Answers: ``{"id", "ok": true, "kind": "json", "value": ...}``; ``{"id", "ok": true, "kind":
"frame", "payload_bytes": n}`` + an Arrow IPC stream; ``{"id", "ok": true, "kind": "bytes",
"payload_bytes": n}`` + the bytes (a call's success also carries ``"stats"``, as the stats op
answers them); or ``{"id", "ok": false, "error": {"status", "type",
"message", "traceback"}}`` with status 404 (no such function), 400 (arguments that do not fit
``main``, a check that fails, a malformed request), 507 (``MemoryError``), else 500. The
traceback holds only the frames of the function folder's files, one line per item. The
supervisor adds ``"output"`` (the last lines the call printed), and ``"code"``
(``worker_died``, ``worker_protocol``) when the function's process died or broke the protocol.

Function files are loaded by path, each as its own module ``aside_functions.NAME`` (so a file
``json.py`` shadows nothing), and loaded again when the file's modification time, size or inode
changes. The source is read once per load and is what tracebacks and ``inspect.getsource``
show; no bytecode is written next to it.
"""

from __future__ import annotations

import ast
import errno
import gc
import importlib.util
import inspect
import json
import linecache
import os
import re
import resource
import socket
import struct
import sys
import traceback
import types
from typing import Any, Dict, List, Optional, Tuple, Union

import pandas as pd
import pyarrow as pa

from .cachemap import CacheMap
from .client import Client
from .results import (FUNCTION_MODULE_PREFIX, compute_result, json_value, lru_cache,
                      sql_result)

__all__ = ["Worker", "main", "convert_text_args", "describe_source", "PROTOCOL_FD"]

PROTOCOL_FD = 3
"""The file descriptor of the socket to the server."""

_LENGTH = struct.Struct(">I")  # the 4-byte big-endian length before every header

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_INT = re.compile(r"[+-]?[0-9]+\Z")
_FLOAT = re.compile(r"[+-]?([0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)([eE][+-]?[0-9]+)?\Z")

STATUS_BAD_REQUEST = 400
STATUS_NOT_FOUND = 404
STATUS_ERROR = 500
STATUS_NO_MEMORY = 507  # HTTP "Insufficient Storage": the function ran out of its memory limit
CPU_GRACE_S = 1  # CPU seconds a call may use past its timeout before SIGXCPU


class ProtocolError(Exception):
    """The server sent something that is not a message of the protocol."""


class CallError(Exception):
    """An error answer decided by the worker itself (not an exception of the user's code)."""

    def __init__(self, status: int, type_name: str, message: str,
                 trace: Optional[List[str]] = None) -> None:
        super().__init__(message)
        self.status = status
        self.type_name = type_name
        self.message = message
        self.trace = trace or []


# ---- arguments ----------------------------------------------------------------------------

def _text_value(text: str) -> Any:
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text):
        return float(text)
    return text


def _is_str_annotation(annotation: Any) -> bool:
    return annotation is str or annotation in ("str", "builtins.str")


def convert_text_args(signature: Optional[inspect.Signature],
                      args: Dict[str, Any]) -> Dict[str, Any]:
    """Query-string values (strings) as ``main`` gets them: a value that looks like an integer
    (``"42"``, ``"-7"``) becomes an int, one that looks like a decimal number (``"2.5"``,
    ``"1e3"``, ``".5"``) a float; anything else stays a string (``"true"``, ``"nan"``,
    ``"0x10"``, ``"1_000"`` included). A parameter annotated ``str`` keeps its string."""
    params = signature.parameters if signature is not None else {}
    out: Dict[str, Any] = {}
    for name, value in args.items():
        param = params.get(name)
        keep = param is not None and _is_str_annotation(param.annotation)
        out[name] = _text_value(value) if isinstance(value, str) and not keep else value
    return out


# ---- describing without running ------------------------------------------------------------

def _param_text(arg: ast.arg, default: Optional[ast.expr] = None) -> str:
    text = arg.arg
    if arg.annotation is not None:
        text += ": " + ast.unparse(arg.annotation)
    if default is not None:
        text += (" = " if arg.annotation is not None else "=") + ast.unparse(default)
    return text


def _signature_text(args: ast.arguments) -> str:
    """``inspect.signature``'s rendering, from the syntax tree."""
    positional = list(args.posonlyargs) + list(args.args)
    defaults: List[Optional[ast.expr]] = [None] * (len(positional) - len(args.defaults))
    defaults += list(args.defaults)
    parts = []
    for i, (arg, default) in enumerate(zip(positional, defaults)):
        parts.append(_param_text(arg, default))
        if args.posonlyargs and i == len(args.posonlyargs) - 1:
            parts.append("/")
    if args.vararg is not None:
        parts.append("*" + _param_text(args.vararg))
    elif args.kwonlyargs:
        parts.append("*")
    for arg, kw_default in zip(args.kwonlyargs, args.kw_defaults):
        parts.append(_param_text(arg, kw_default))
    if args.kwarg is not None:
        parts.append("**" + _param_text(args.kwarg))
    return "(" + ", ".join(parts) + ")"


def _find_main(tree: ast.Module) -> Optional[ast.FunctionDef]:
    found = None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "main":
            found = node  # the last definition is the one the module ends with
    return found


def _takes_cache(main: ast.FunctionDef) -> bool:
    return bool(main.args.posonlyargs or main.args.args or main.args.vararg)


def _first_line(doc: Optional[str]) -> Optional[str]:
    if not doc:
        return None
    for line in doc.strip().splitlines():
        if line.strip():
            return line.strip()
    return None


def describe_source(name: str, source: str) -> Dict[str, Any]:
    """``{"name", "signature", "doc"}`` of a function file, from its syntax tree (nothing is
    run). ``doc`` is the first line of ``main``'s docstring, else of the module's, else None.
    A file that does not parse or has no top-level ``def main`` gets ``"signature": None`` and
    an ``"error"`` saying why."""
    try:
        tree = ast.parse(source, filename=f"{name}.py")
    except (SyntaxError, ValueError) as exc:
        return {"name": name, "signature": None, "doc": None, "error": _syntax_message(exc)}
    main = _find_main(tree)
    doc = _first_line((ast.get_docstring(main) if main else None) or ast.get_docstring(tree))
    if main is None:
        return {"name": name, "signature": None, "doc": doc,
                "error": "no top-level def main"}
    return {"name": name, "signature": _signature_text(main.args), "doc": doc}


def _syntax_message(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        where = f"line {exc.lineno}" if exc.lineno else "unknown line"
        if exc.offset:
            where += f", offset {exc.offset}"
        text = (exc.text or "").strip()
        name = os.path.basename(exc.filename) if exc.filename else "<source>"
        return f"{exc.msg} ({name}, {where})" + (f": {text}" if text else "")
    return str(exc) or type(exc).__name__


# ---- results ------------------------------------------------------------------------------

Payload = Union[bytes, memoryview, pa.Buffer]
"""Bytes to send after a header: anything with the buffer protocol, sent without a copy."""


def _arrow_stream(table: pa.Table) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def encode_result(value: Any) -> Tuple[Dict[str, Any], Payload]:
    """The answer's header fields (without ``id``) and payload for a function's result.

    DataFrame, pyarrow Table or RecordBatch -> ``frame`` (an Arrow IPC stream; a DataFrame's
    index is not kept); bytes, bytearray, memoryview -> ``bytes``; JSON values as
    ``json_value`` converts them -> ``json``; anything else raises ``TypeError``."""
    if isinstance(value, pd.DataFrame):
        value = pa.Table.from_pandas(value, preserve_index=False)
    if isinstance(value, pa.RecordBatch):
        value = pa.Table.from_batches([value])
    if isinstance(value, pa.Table):
        stream = _arrow_stream(value)
        return {"ok": True, "kind": "frame", "payload_bytes": stream.size}, stream
    if isinstance(value, (bytes, bytearray, memoryview)):
        view = memoryview(value)
        data = view.cast("B") if view.c_contiguous else memoryview(view.tobytes())
        return {"ok": True, "kind": "bytes", "payload_bytes": data.nbytes}, data
    return {"ok": True, "kind": "json", "value": json_value(value)}, b""


def _encode_header(header: Dict[str, Any]) -> bytes:
    return json.dumps(header, ensure_ascii=False, allow_nan=False).encode("utf-8")


def function_file(function_dir: str, name: Any) -> Tuple[str, os.stat_result]:
    """The path and status of ``NAME.py`` in the function folder; ``CallError`` 404 for a name
    that is no Python identifier or a file that is not there."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise CallError(STATUS_NOT_FOUND, "FileNotFoundError",
                        f"no function {name!r}: names are Python identifiers")
    path = os.path.join(function_dir, name + ".py")
    try:
        st = os.stat(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(errno.ENOENT, "not a file", path)
    except FileNotFoundError:
        raise CallError(STATUS_NOT_FOUND, "FileNotFoundError",
                        f"no function {name}: {name}.py is not in the function folder") from None
    return path, st


def limit_cpu(timeout_ms: Any) -> None:
    """Let this process (and the children it starts from now on) use the CPU for at most the
    call's timeout from here, plus a second: past it the kernel sends SIGXCPU, which ends the
    process. A hard limit is never lowered, so the next call can set its own."""
    if not isinstance(timeout_ms, int) or isinstance(timeout_ms, bool) or timeout_ms <= 0:
        return
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used_s = int(usage.ru_utime + usage.ru_stime)
    soft = used_s + -(-timeout_ms // 1000) + CPU_GRACE_S
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


# ---- the worker ---------------------------------------------------------------------------

class _Loaded:
    def __init__(self, key: Tuple[int, int, int], module: types.ModuleType) -> None:
        self.key = key
        self.module = module


class Worker:
    """Serves the protocol on ``sock`` for the function files of ``function_dir``, with a
    ``CacheMap`` over ``client`` as every call's ``cache``."""

    def __init__(self, sock: socket.socket, function_dir: str, client: Client) -> None:
        self.sock = sock
        self.function_dir = os.path.realpath(function_dir)
        self.client = client
        self._modules: Dict[str, _Loaded] = {}

    # -- framing --------------------------------------------------------------------------

    def _recv_exact(self, n: int, at_boundary: bool = False) -> Optional[bytearray]:
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            try:
                k = self.sock.recv_into(view[got:])
            except InterruptedError:
                continue
            if k == 0:
                if got == 0 and at_boundary:
                    return None
                raise ProtocolError(f"end of file after {got} of {n} bytes")
            got += k
        return buf

    def receive(self) -> Optional[Tuple[Dict[str, Any], bytearray]]:
        """The next request (header, payload), or None at end of file."""
        head = self._recv_exact(_LENGTH.size, at_boundary=True)
        if head is None:
            return None
        (length,) = _LENGTH.unpack(head)
        raw = self._recv_exact(length) if length else bytearray()
        assert raw is not None
        try:
            header = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            header = {"op": None, "_malformed": f"the header is not UTF-8 JSON: {exc}"}
        if not isinstance(header, dict):
            header = {"op": None, "_malformed": "the header is not a JSON object"}
        n = header.get("payload_bytes", 0)
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise ProtocolError(f"bad payload_bytes: {n!r}")
        payload = (self._recv_exact(n) if n else None) or bytearray()
        return header, payload

    def send(self, raw_header: bytes, payload: Payload = b"") -> None:
        """One answer: length, header (already encoded), then the payload."""
        self.sock.sendall(_LENGTH.pack(len(raw_header)) + raw_header)
        if len(memoryview(payload)):
            self.sock.sendall(payload)

    # -- serving --------------------------------------------------------------------------

    def serve(self) -> None:
        """Answer requests until end of file."""
        while True:
            request = self.receive()
            if request is None:
                return
            raw_header, body = self.answer(*request)
            del request  # the request's arguments are freed before the next one is read
            self.send(raw_header, body)

    def answer(self, header: Dict[str, Any], payload: bytearray) -> Tuple[bytes, Payload]:
        """The answer to one request, encoded: (header, payload). Never raises, except
        KeyboardInterrupt."""
        rid = header.get("id")
        try:
            if "_malformed" in header:
                raise CallError(STATUS_BAD_REQUEST, "ProtocolError", header["_malformed"])
            op = header.get("op")
            if op == "call":
                fields, body = self.call(header)
            elif op == "check":
                fields, body = self.check(header), b""
            elif op == "describe":
                fields, body = {"ok": True, "kind": "json", "value": self.describe()}, b""
            elif op == "stats":
                fields, body = {"ok": True, "kind": "json", "value": self.stats()}, b""
            else:
                raise CallError(STATUS_BAD_REQUEST, "ProtocolError", f"unknown op {op!r}")
            if op == "call":  # the server keeps each worker's latest, for its telemetry
                fields["stats"] = self.stats()
            # a string that is not valid Unicode fails here, as an error of the call
            return _encode_header({"id": rid, **fields}), body
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: B036 -- users' SystemExit is an error too
            error = self._error(exc)
        try:
            return _encode_header({"id": rid, "ok": False, "error": error}), b""
        except (TypeError, ValueError):  # the user's message is not valid Unicode
            error = {**error, "message": error["message"].encode("utf-8", "replace").decode(),
                     "traceback": [line.encode("utf-8", "replace").decode()
                                   for line in error["traceback"]]}
            return _encode_header({"id": rid if isinstance(rid, int) else None, "ok": False,
                                   "error": error}), b""

    def _error(self, exc: BaseException) -> Dict[str, Any]:
        if isinstance(exc, CallError):
            return {"status": exc.status, "type": exc.type_name, "message": exc.message,
                    "traceback": exc.trace}
        if isinstance(exc, MemoryError):
            gc.collect()
            status = STATUS_NO_MEMORY
        else:
            status = STATUS_ERROR
        try:
            message = _syntax_message(exc) if isinstance(exc, SyntaxError) else str(exc)
        except Exception:  # a __str__ that fails
            message = ""
        try:
            trace = self._user_frames(exc)
        except Exception:
            trace = []
        return {"status": status, "type": type(exc).__name__,
                "message": message or type(exc).__name__, "traceback": trace}

    def _user_frames(self, exc: BaseException) -> List[str]:
        lines: List[str] = []
        for frame in traceback.extract_tb(exc.__traceback__):
            rel = self._relative(frame.filename)
            if rel is None:
                continue
            lines.append(f'  File "{rel}", line {frame.lineno}, in {frame.name}')
            if frame.line:
                lines.append(f"    {frame.line.strip()}")
        if isinstance(exc, SyntaxError) and exc.filename:
            rel = self._relative(exc.filename)
            if rel is not None:
                lines.append(f'  File "{rel}", line {exc.lineno}')
                if exc.text:
                    lines.append(f"    {exc.text.strip()}")
        return lines

    def _relative(self, filename: str) -> Optional[str]:
        """The file's path inside the function folder, or None for a file elsewhere."""
        try:
            path = os.path.realpath(filename)
        except (OSError, ValueError):
            return None
        if os.path.dirname(path) == self.function_dir or \
                path.startswith(self.function_dir + os.sep):
            return os.path.relpath(path, self.function_dir)
        return None

    # -- call -----------------------------------------------------------------------------

    def _load(self, name: str) -> types.ModuleType:
        try:
            path, st = function_file(self.function_dir, name)
        except CallError:
            if isinstance(name, str):
                self._forget(name)
            raise
        key = (st.st_mtime_ns, st.st_size, st.st_ino)
        loaded = self._modules.get(name)
        if loaded is not None and loaded.key == key:
            return loaded.module
        self._forget(name)
        with open(path, "rb") as f:
            source = importlib.util.decode_source(f.read())
        module_name = FUNCTION_MODULE_PREFIX + name
        spec = importlib.util.spec_from_loader(module_name, loader=None, origin=path)
        assert spec is not None
        module = importlib.util.module_from_spec(spec)
        module.__file__ = path
        # tracebacks and inspect.getsource show the source that was loaded, not the file's
        # current content; mtime None keeps linecache from checking it against the file
        lines = source.splitlines(keepends=True)
        linecache.cache[path] = (len(source), None, lines, path)
        code = compile(source, path, "exec", dont_inherit=True)
        sys.modules[module_name] = module
        try:
            exec(code, module.__dict__)
        except BaseException:
            sys.modules.pop(module_name, None)
            raise
        self._modules[name] = _Loaded(key, module)
        return module

    def _forget(self, name: str) -> None:
        module_name = FUNCTION_MODULE_PREFIX + name
        if self._modules.pop(name, None) is not None or module_name in sys.modules:
            sys.modules.pop(module_name, None)
            lru_cache.forget_module(module_name)

    def call(self, header: Dict[str, Any]) -> Tuple[Dict[str, Any], Payload]:
        name = header.get("function")
        args = header.get("args") or {}
        if not isinstance(args, dict):
            raise CallError(STATUS_BAD_REQUEST, "TypeError", "args must be a JSON object")
        limit_cpu(header.get("timeout_ms"))
        module = self._load(name)  # type: ignore[arg-type]
        main = getattr(module, "main", None)
        if not callable(main):
            raise CallError(STATUS_ERROR, "AttributeError", f"{name}.py defines no function main")
        try:
            signature: Optional[inspect.Signature] = inspect.signature(main)
        except (TypeError, ValueError):
            signature = None
        if header.get("text"):
            args = convert_text_args(signature, args)
        cache = CacheMap(self.client)
        if signature is not None:
            try:
                bound = signature.bind(cache, **args)
            except TypeError as exc:
                raise CallError(STATUS_BAD_REQUEST, "TypeError", f"{name}: {exc}") from None
            value = main(*bound.args, **bound.kwargs)
        else:
            value = main(cache, **args)
        try:
            return encode_result(value)
        except (TypeError, ValueError, pa.ArrowException) as exc:
            raise CallError(STATUS_ERROR, type(exc).__name__, str(exc)) from None

    # -- check, describe, stats -----------------------------------------------------------

    def check(self, header: Dict[str, Any]) -> Dict[str, Any]:
        source = header.get("source")
        name = header.get("name") or "function"
        if not isinstance(source, str):
            raise CallError(STATUS_BAD_REQUEST, "TypeError", "source must be a string")
        filename = f"{name}.py"
        try:
            compile(source, filename, "exec", dont_inherit=True)
            tree = ast.parse(source, filename=filename)
        except SyntaxError as exc:
            trace = [line.rstrip("\n") for line in traceback.format_exception_only(
                type(exc), exc)]
            error = CallError(STATUS_BAD_REQUEST, type(exc).__name__, _syntax_message(exc),
                              [line for chunk in trace for line in chunk.split("\n") if line])
            raise error from None
        except ValueError as exc:  # null bytes
            raise CallError(STATUS_BAD_REQUEST, "SyntaxError", str(exc)) from None
        main = _find_main(tree)
        if main is None:
            raise CallError(STATUS_BAD_REQUEST, "ValueError",
                            f"{filename} has no top-level def main(cache, ...)")
        if not _takes_cache(main):
            raise CallError(STATUS_BAD_REQUEST, "ValueError",
                            f"{filename}: main must take the cache as its first positional "
                            "parameter: def main(cache, ...)")
        return {"ok": True, "kind": "json",
                "value": {"signature": _signature_text(main.args),
                          "doc": _first_line(ast.get_docstring(main) or
                                             ast.get_docstring(tree))}}

    def describe(self) -> List[Dict[str, Any]]:
        out = []
        try:
            names = sorted(os.listdir(self.function_dir))
        except FileNotFoundError:
            names = []
        for filename in names:
            stem, ext = os.path.splitext(filename)
            path = os.path.join(self.function_dir, filename)
            if ext != ".py" or not _NAME.match(stem) or not os.path.isfile(path):
                continue
            try:
                with open(path, "rb") as f:
                    source = importlib.util.decode_source(f.read())
            except (OSError, UnicodeDecodeError, SyntaxError) as exc:
                out.append({"name": stem, "signature": None, "doc": None,
                            "error": f"cannot read {filename}: {exc}"})
                continue
            out.append(describe_source(stem, source))
        return out

    def stats(self) -> Dict[str, Any]:
        results = dict(compute_result.stats())
        results.update(sql_result.stats())
        return {"functions": lru_cache.stats(), "results": results}


def main() -> int:
    """Entry point of ``python -m aside.worker``: serve fd 3 until end of file, running the
    functions in processes of their own (see ``aside._supervisor``)."""
    from ._supervisor import main as supervise
    return supervise()


if __name__ == "__main__":
    sys.exit(main())
