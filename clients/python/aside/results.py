"""results -- results kept in aside, checked against their inputs when asked for again.

Three decorators, exported from ``aside``:

* ``@compute_result``: the function's result is stored in the aside cache under a key made of
  the function's name and a hash of its source and arguments, together with a JSON document of
  its inputs: the keys the computation read through the cache and each key's *generation* (the
  number the server's telemetry gives a value; it changes whenever the value is replaced, and a
  key that leaves the cache loses it). A later call with the same arguments checks, at call
  time, that the stored documents exist and that every input still has the generation it had;
  then it returns the stored result without running the function (a hit). Otherwise the
  function runs and its result replaces the stored one (a miss). Nothing expires by time, and
  nothing is invalidated ahead of time: an input updated, rewritten, deleted or evicted is
  noticed by the next call.
* ``@sql_result``: the same for a function that returns an SQL query: the query's answer (a
  frame) is the stored result, the frames the query names are its inputs.
* ``@lru_cache``: per-process memoisation (``functools.lru_cache``) whose statistics are
  registered so that the worker running users' functions can report them.

Where results are stored: ``<prefix><name>-<hash>.<ext>`` (default prefix ``results/``), the
value itself: ``.parquet`` for a DataFrame or pyarrow Table, ``.json`` for a JSON value,
``.bin`` for bytes (nothing is pickled: any other result is a ``TypeError``); next to it
``<prefix><name>-<hash>.deps.json``, its dependencies:
``{"function", "args", "result", "inputs": {key: generation}}`` (``sql_result`` adds
``"query"``). ``info`` of a result therefore lives in that document. Both are cached with
``put``: they never reach the system of record, and leave the cache as any value does (the next
call then computes again).

How inputs are found: through the cache object the function received. With an
``aside.CacheMap`` (what users' functions get), every successful ``cache[key]``, ``get``,
``info``, and every double-quoted name of a ``cache.sql`` query that is a cached key, is an
input. With an ``aside.Client``, the function gets the same client in a recording form (an
instance of a ``Client`` subclass sharing the client's state) whose ``read``, ``read_table``,
``mmap``, ``info``, ``describe``, ``head``, ``tail``, ``select`` and ``sql`` count their key the
same way. The generation is asked for just after the read (one telemetry request per input).
Reads that fail (a key that exists nowhere) are not inputs: a result that depends on a key's
absence is not invalidated when the key appears; nor are requests the function makes some
other way (``cache.client.read(...)``, ``call``). Nested decorated functions pass their inputs
to the calls around them, on a hit too.

Global state: the hit and miss counts of ``compute_result`` and ``sql_result``, and the
registry of ``lru_cache`` functions, are per process (module level), by design: they are what
``compute_result.stats()``, ``sql_result.stats()``, ``lru_cache.stats()`` report.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import inspect
import json
import marshal
import math
from contextlib import contextmanager
from typing import (Any, Callable, Dict, ItemsView, Iterator, KeysView, Optional, Tuple,
                    TypeVar, Union, ValuesView, overload)

import numpy as np
import pandas as pd
import pyarrow as pa

from .cachemap import (RECORDERS_ATTRIBUTE, CacheMap, key_generation, quoted_identifiers,
                       record_read)
from .client import Client, serialize
from .errors import NotFound

__all__ = ["compute_result", "sql_result", "lru_cache", "json_value", "qualified_name",
           "FUNCTION_MODULE_PREFIX", "DEFAULT_KEY_PREFIX"]

F = TypeVar("F", bound=Callable[..., Any])

FUNCTION_MODULE_PREFIX = "aside_functions."
"""The module name under which ``python -m aside.worker`` loads a function file ``NAME.py``
(``aside_functions.NAME``); names shown to users drop it (``NAME.main``)."""

DEFAULT_KEY_PREFIX = "results/"
"""Where ``compute_result`` and ``sql_result`` store results, unless told otherwise."""

_DEFAULT_LRU_MAXSIZE = 128  # functools.lru_cache's own default

# Server functions that read the value of their ``path`` (or ``key``) parameter: a successful
# request to one of them makes the key an input of the computation being recorded.
_READ_FUNCTIONS = frozenset({
    "read", "data_read", "create", "cache_create", "map", "info", "cache_item_stats",
    "stats_cache_item", "describe", "head", "tail", "shape", "columns", "dtypes", "select",
})


# ---- names and JSON -----------------------------------------------------------------------

def qualified_name(func: Callable[..., Any]) -> str:
    """``module.qualname`` of a function, with the worker's module prefix dropped: the
    ``main`` of a function file ``pi.py`` is ``pi.main``."""
    module = getattr(func, "__module__", None) or "?"
    if module.startswith(FUNCTION_MODULE_PREFIX):
        module = module[len(FUNCTION_MODULE_PREFIX):]
    name = getattr(func, "__qualname__", None) or getattr(func, "__name__", "?")
    return f"{module}.{name}"


def _result_name(func: Callable[..., Any]) -> str:
    """The ``<name>`` part of a result's key: the function's name, or for the ``main`` of a
    function file, the file's name."""
    module = getattr(func, "__module__", "") or ""
    if func.__name__ == "main" and module.startswith(FUNCTION_MODULE_PREFIX):
        return module[len(FUNCTION_MODULE_PREFIX):]
    return func.__name__


def _json_key(key: Any) -> str:
    if isinstance(key, np.generic):
        key = key.item()
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "null"
    if isinstance(key, int):
        return str(int(key))
    if isinstance(key, float):
        return float.__repr__(key)
    raise TypeError(f"cannot return a dict with a {type(key).__name__} key")


def json_value(value: Any) -> Any:
    """``value`` as plain JSON values (dict with str keys, list, str, int, float, bool, None).

    Tuples, lists, dict views and sets become lists (sets sorted, so that equal sets give equal
    JSON); numpy scalars and arrays become numbers and lists; ``datetime``, ``date`` and
    ``time`` become ISO 8601 strings; a float NaN or infinity becomes ``None`` (JSON has no
    such numbers). Dict keys that are numbers, booleans or None become strings as ``json``
    writes them. Anything else raises ``TypeError("cannot return <type>")``.
    """
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {_json_key(k): json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, KeysView, ValuesView, ItemsView)):
        return [json_value(v) for v in value]
    if isinstance(value, (set, frozenset)):
        items = [json_value(v) for v in value]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, np.generic):
        return json_value(value.item())
    if isinstance(value, np.ndarray):
        return json_value(value.tolist())
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    raise TypeError(f"cannot return {type(value).__name__}")


def _canonical(args: Dict[str, Any]) -> str:
    return json.dumps(json_value(args), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False, allow_nan=False)


# ---- watching what a computation reads ----------------------------------------------------

class _RecordingClient(Client):
    """What a decorated function gets instead of the ``aside.Client`` it was called with: the
    same client (it shares the client's attributes, session included), whose reading methods
    also count the key they read as an input of the calls under way."""

    def __init__(self, client: Client) -> None:  # pylint: disable=super-init-not-called
        self.__dict__ = client.__dict__

    def read(self, path: str, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        value = super().read(path, *args, **kwargs)
        record_read(self, path)
        return value

    def read_table(self, path: str, *args: Any, **kwargs: Any) -> pa.Table:  # type: ignore[override]
        value = super().read_table(path, *args, **kwargs)
        record_read(self, path)
        return value

    def mmap(self, path: str, *args: Any,  # type: ignore[override]
             **kwargs: Any) -> Dict[str, Any]:
        value = super().mmap(path, *args, **kwargs)
        record_read(self, path)
        return value

    def info(self, path: str, *args: Any, **kwargs: Any) -> Dict[str, Any]:  # type: ignore[override]
        value = super().info(path, *args, **kwargs)
        record_read(self, path)
        return value

    def describe(self, path: str, *args: Any, **kwargs: Any) -> pd.DataFrame:  # type: ignore[override]
        value = super().describe(path, *args, **kwargs)
        record_read(self, path)
        return value

    def head(self, path: str, *args: Any, **kwargs: Any) -> pd.DataFrame:  # type: ignore[override]
        value = super().head(path, *args, **kwargs)
        record_read(self, path)
        return value

    def tail(self, path: str, *args: Any, **kwargs: Any) -> pd.DataFrame:  # type: ignore[override]
        value = super().tail(path, *args, **kwargs)
        record_read(self, path)
        return value

    def select(self, path: str, *args: Any, **kwargs: Any) -> pd.DataFrame:  # type: ignore[override]
        value = super().select(path, *args, **kwargs)
        record_read(self, path)
        return value

    def sql(self, query: str, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        value = super().sql(query, *args, **kwargs)
        for name in quoted_identifiers(query):
            record_read(self, name)
        return value


def _plain(client: Client) -> Client:
    """The client without recording: requests the decorator makes for itself are no inputs."""
    if type(client) is Client:
        return client
    plain = Client.__new__(Client)
    plain.__dict__ = client.__dict__
    return plain


@contextmanager
def _recording(client: Client) -> Iterator[Dict[str, int]]:
    """Collect the inputs read on ``client`` (through a CacheMap over it or the recording
    client) until the block ends; nested blocks also count for the blocks around them."""
    inputs: Dict[str, int] = {}
    recorders = client.__dict__.setdefault(RECORDERS_ATTRIBUTE, [])
    recorders.append(inputs)
    try:
        yield inputs
    finally:
        recorders.pop()
        if not recorders:
            del client.__dict__[RECORDERS_ATTRIBUTE]


def _add_inputs(client: Client, inputs: Dict[str, int]) -> None:
    """A hit's inputs count for the calls around it, with the generations it checked."""
    for recorder in client.__dict__.get(RECORDERS_ATTRIBUTE) or []:
        for key, generation in inputs.items():
            recorder.setdefault(key, generation)


def _client_of(cache: Any, name: str) -> Client:
    if isinstance(cache, CacheMap):
        return cache.client
    if isinstance(cache, Client):
        return cache
    raise TypeError(f"{name}: the first argument must be the cache (an aside.CacheMap or an "
                    f"aside.Client), not {type(cache).__name__}")


# ---- storing and finding results ----------------------------------------------------------

def _encode(base: str, value: Any, name: str) -> Tuple[str, bytes, Optional[str]]:
    """(key, body, type) under which a result is put."""
    if isinstance(value, (pd.DataFrame, pa.Table)):
        key = base + ".parquet"
        body, _ = serialize(key, value)
        return key, body, None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base + ".bin", bytes(value), "bytes"
    try:
        doc = json_value(value)
    except TypeError as exc:
        raise TypeError(f"{name}: cannot store the result: {exc} (results are DataFrames, "
                        "pyarrow Tables, JSON values or bytes)") from exc
    body = json.dumps(doc, ensure_ascii=False, allow_nan=False).encode("utf-8")
    return base + ".json", body, "json"


def _decode_read(client: Client, key: str) -> Any:
    if key.endswith(".json"):
        return client.read(key, type="json")
    if key.endswith(".bin"):
        return client.read(key, type="bytes")
    return client.read(key)


def _lookup(client: Client, deps_key: str) -> Optional[Tuple[Any, Dict[str, int]]]:
    """(stored result, its inputs) when the result is still valid, else None."""
    try:
        deps = client.read(deps_key, type="json")
    except NotFound:
        return None
    if not isinstance(deps, dict) or not isinstance(deps.get("inputs"), dict) \
            or not isinstance(deps.get("result"), str):
        return None
    inputs: Dict[str, int] = deps["inputs"]
    for key, generation in inputs.items():
        if key_generation(client, key) != generation:
            return None
    try:
        return _decode_read(client, deps["result"]), inputs
    except NotFound:
        return None


def _source_of(func: Callable[..., Any]) -> bytes:
    try:
        return inspect.getsource(func).encode("utf-8")
    except (OSError, TypeError):
        # no source file (defined in an interactive session): the compiled code stands for it
        return marshal.dumps(func.__code__)


class _Counts:
    def __init__(self) -> None:
        self.by_function: Dict[str, Dict[str, int]] = {}

    def count(self, name: str, outcome: str) -> None:
        entry = self.by_function.setdefault(name, {"hits": 0, "misses": 0})
        entry[outcome] += 1


class _ResultDecorator:
    """What ``compute_result`` and ``sql_result`` share: the decorator's two forms, the key,
    the lookup and the store; subclasses say how the result is computed."""

    def __init__(self) -> None:
        self._counts = _Counts()

    @overload
    def __call__(self, func: F) -> F: ...

    @overload
    def __call__(self, func: None = None, *, key_prefix: str = DEFAULT_KEY_PREFIX
                 ) -> Callable[[F], F]: ...

    def __call__(self, func: Optional[F] = None, *, key_prefix: str = DEFAULT_KEY_PREFIX
                 ) -> Union[F, Callable[[F], F]]:
        if func is None:
            return lambda f: self._wrap(f, key_prefix)
        return self._wrap(func, key_prefix)

    def stats(self) -> Dict[str, Dict[str, int]]:
        """Hits and misses in this process, per decorated function (``module.qualname``):
        ``{"pi.main": {"hits": 3, "misses": 1}}``."""
        return {name: dict(counts) for name, counts in self._counts.by_function.items()}

    def _compute(self, func: Callable[..., Any], client: Client, args: Tuple[Any, ...],
                 kwargs: Dict[str, Any], deps: Dict[str, Any]) -> Any:
        raise NotImplementedError

    def _key_material(self, func: Callable[..., Any], client: Client, args: Tuple[Any, ...],
                      kwargs: Dict[str, Any], deps: Dict[str, Any]) -> bytes:
        return b""

    def _wrap(self, func: F, key_prefix: str) -> F:
        label = qualified_name(func)
        signature = inspect.signature(func)
        params = list(signature.parameters.values())
        if not params or params[0].kind not in (inspect.Parameter.POSITIONAL_ONLY,
                                                inspect.Parameter.POSITIONAL_OR_KEYWORD):
            raise TypeError(f"{label}: the first parameter must be the cache")
        cache_name = params[0].name
        source = _source_of(func)
        name = _result_name(func)
        counts = self._counts

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            cache = bound.arguments[cache_name]
            client = _client_of(cache, label)
            if isinstance(cache, Client) and not isinstance(cache, _RecordingClient):
                bound.arguments[cache_name] = _RecordingClient(cache)
            plain = _plain(client)
            call_args = {k: v for k, v in bound.arguments.items() if k != cache_name}
            try:
                canonical = _canonical(call_args)
            except TypeError as exc:
                raise TypeError(f"{label}: the arguments must be JSON values to be part of "
                                f"the result's key: {exc}") from exc
            with _recording(client) as inputs:
                deps: Dict[str, Any] = {"function": label, "args": json.loads(canonical)}
                extra = self._key_material(func, plain, bound.args, bound.kwargs, deps)
                digest = hashlib.sha256(source + b"\0" + canonical.encode("utf-8") + b"\0"
                                        + extra).hexdigest()
                base = f"{key_prefix}{name}-{digest}"
                found = _lookup(plain, base + ".deps.json")
                if found is not None:
                    counts.count(label, "hits")
                    value, stored_inputs = found
                else:
                    counts.count(label, "misses")
                    value = self._compute(func, plain, bound.args, bound.kwargs, deps)
                    key, body, kind = _encode(base, value, label)
                    deps["result"] = key
                    deps["inputs"] = stored_inputs = dict(inputs)
                    plain.put(key, body, type=kind)
                    plain.put(base + ".deps.json",
                              json.dumps(deps, ensure_ascii=False).encode("utf-8"), type="json")
            _add_inputs(client, stored_inputs)
            return value

        return wrapper  # type: ignore[return-value]


class ComputeResult(_ResultDecorator):
    """``@compute_result`` or ``@compute_result(key_prefix="results/")``: keep a function's
    result in aside, valid as long as the keys it read keep their generation.

    The function's first parameter is the cache (an ``aside.CacheMap``, as users' functions
    receive, or an ``aside.Client``); the other arguments must be JSON values (they are part of
    the result's key). The result must be a DataFrame, a pyarrow Table, a JSON value or bytes.

    A miss runs the function and returns its value as it is; a hit returns the stored value:
    a DataFrame for a frame (a pyarrow Table comes back as a DataFrame), JSON as ``json``
    parses it (tuples come back as lists), bytes as bytes. See the module's documentation for
    the keys, the dependency document and when a result stops being valid.
    """

    def _compute(self, func: Callable[..., Any], client: Client, args: Tuple[Any, ...],
                 kwargs: Dict[str, Any], deps: Dict[str, Any]) -> Any:
        return func(*args, **kwargs)


class SqlResult(_ResultDecorator):
    """``@sql_result`` or ``@sql_result(key_prefix="results/")``: the function returns an SQL
    ``SELECT`` over the cached frames; the wrapper runs it on the server (``cache.sql``) and
    keeps the answer, a DataFrame, as ``compute_result`` keeps a result.

    The function is called on every call, to learn the query (it should only build a string);
    the query is part of the result's key and of its dependency document (``"query"``). The
    inputs are the double-quoted names in the query that are cached keys once it ran (quoted
    column names are not keys and are left out), with their generations; keys the function
    itself read are inputs too.
    """

    def _key_material(self, func: Callable[..., Any], client: Client, args: Tuple[Any, ...],
                      kwargs: Dict[str, Any], deps: Dict[str, Any]) -> bytes:
        query = func(*args, **kwargs)
        if not isinstance(query, str):
            raise TypeError(f"{qualified_name(func)}: an sql_result function returns an SQL "
                            f"string, not {type(query).__name__}")
        deps["query"] = query
        return query.encode("utf-8")

    def _compute(self, func: Callable[..., Any], client: Client, args: Tuple[Any, ...],
                 kwargs: Dict[str, Any], deps: Dict[str, Any]) -> Any:
        frame = client.sql(deps["query"])
        for name in quoted_identifiers(deps["query"]):
            record_read(client, name)
        return frame


class LruCache:
    """``@lru_cache``, ``@lru_cache(maxsize=128, typed=False)``: ``functools.lru_cache``
    (per process, arguments must be hashable), with the statistics of every function so
    decorated registered under its ``module.qualname`` for ``lru_cache.stats()``, which the
    worker running users' functions reports. A function defined again under the same name (a
    function file reloaded) replaces the earlier one in the registry.
    """

    def __init__(self) -> None:
        self._functions: Dict[str, Any] = {}

    @overload
    def __call__(self, maxsize: F) -> F: ...

    @overload
    def __call__(self, maxsize: Optional[int] = _DEFAULT_LRU_MAXSIZE, typed: bool = False
                 ) -> Callable[[F], F]: ...

    def __call__(self, maxsize: Any = _DEFAULT_LRU_MAXSIZE, typed: bool = False) -> Any:
        if callable(maxsize):
            return self._wrap(maxsize, _DEFAULT_LRU_MAXSIZE, False)
        if maxsize is not None and not isinstance(maxsize, int):
            raise TypeError("maxsize must be an int or None")
        return lambda func: self._wrap(func, maxsize, typed)

    def _wrap(self, func: F, maxsize: Optional[int], typed: bool) -> F:
        cached = functools.lru_cache(maxsize=maxsize, typed=typed)(func)
        self._functions[qualified_name(func)] = cached
        return cached  # type: ignore[return-value]

    def stats(self) -> Dict[str, Dict[str, Optional[int]]]:
        """``{"module.qualname": {"hits", "misses", "maxsize", "currsize"}}`` for every
        function decorated in this process (``maxsize`` is None when unbounded)."""
        out: Dict[str, Dict[str, Optional[int]]] = {}
        for name, cached in self._functions.items():
            info = cached.cache_info()
            out[name] = {"hits": info.hits, "misses": info.misses, "maxsize": info.maxsize,
                         "currsize": info.currsize}
        return out

    def forget_module(self, module: str) -> None:
        """Drop the registered functions of ``module`` (before it is loaded again)."""
        for name in [n for n, f in self._functions.items()
                     if getattr(f, "__module__", None) == module]:
            del self._functions[name]


compute_result = ComputeResult()
sql_result = SqlResult()
lru_cache = LruCache()
