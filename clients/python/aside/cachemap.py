"""cachemap -- the ``cache`` argument of a user's function: the aside cache as a mapping.

A function run next to the data (``def main(cache, **kwargs)`` in the server's function folder)
receives a ``CacheMap``: a ``dict``-like view of the server's cache over an ``aside.Client``.
Reading a key is a cache-aside read (served from the cache, or loaded from the system of record
on a miss); frames arrive as pandas DataFrames through shared memory when the server runs on the
same machine. Nothing is held locally: every operation is one or two requests to the server, so
two ``CacheMap`` objects over the same server always agree.

The map remembers, in order, every key read through it (``reads``): the inputs of the
computation, which ``aside.compute_result`` records next to a stored result.

Costs: ``len``, iteration and ``keys()`` list every cached key (one request);
``key in cache`` asks the server about that key only (one request, nothing loaded).
"""

from __future__ import annotations

from typing import Any, Dict, Iterator, KeysView, List, MutableMapping, Optional

import pandas as pd

from .client import Client, Value
from .errors import NotFound

__all__ = ["CacheMap", "key_generation", "quoted_identifiers", "record_read"]

RECORDERS_ATTRIBUTE = "_aside_result_recorders"
"""Where ``aside.compute_result`` keeps, on a client, the inputs of the decorated calls under
way (a list of ``{key: generation}``, innermost last); absent when there are none."""


def quoted_identifiers(query: str) -> List[str]:
    """The double-quoted identifiers of an SQL text, in order, each once (``""`` is a quote).

    Quoted identifiers are how aside's SQL names cached frames (``FROM "sales.parquet"``), so
    the frames a query reads are among them; so are quoted column names, which are not keys.
    Quotes inside single-quoted string literals and ``--`` comments are skipped.
    """
    found: Dict[str, None] = {}
    i, n = 0, len(query)
    while i < n:
        ch = query[i]
        if ch == "-" and query.startswith("--", i):
            end = query.find("\n", i)
            i = n if end < 0 else end + 1
        elif ch == "'":
            i += 1
            while i < n:
                if query[i] == "'":
                    if query.startswith("''", i):
                        i += 2
                        continue
                    break
                i += 1
            i += 1
        elif ch == '"':
            name = []
            i += 1
            while i < n:
                if query[i] == '"':
                    if query.startswith('""', i):
                        name.append('"')
                        i += 2
                        continue
                    break
                name.append(query[i])
                i += 1
            i += 1
            if name:
                found.setdefault("".join(name), None)
        else:
            i += 1
    return list(found)


class CacheMap(MutableMapping):  # type: ignore[type-arg]
    """The aside cache as a mapping from keys to values, over ``client``.

    * ``cache[key]``: ``client.read(key)``: a DataFrame for a frame, the parsed document
      for JSON, a list, set, dict or int for a collection, else bytes; cache-aside (a key not cached is loaded from the system of
      record). ``KeyError`` when the key exists nowhere.
    * ``cache.get(key, default=None)``: the same, ``default`` instead of ``KeyError``.
    * ``cache[key] = value``: ``client.put(key, value)``: cached, the system of record untouched.
    * ``del cache[key]``: ``client.delete(key)``: ``KeyError`` when the key is not cached.
    * ``key in cache``: the key is cached now (the system of record is not asked).
    * ``len(cache)``, ``iter(cache)``, ``cache.keys()``: the cached keys (``stats_cache``).
    * ``cache.sql(query)``: a DataFrame, ``client.sql(query)``.
    * ``cache.info(key)``: pandas' ``df.info()`` of a frame, as ``client.info(key)``.

    Other errors of the server (``aside.AsideError`` and its subclasses) are raised as they are.

    Attributes:
        client: the ``aside.Client`` every request goes through.
    """

    def __init__(self, client: Client) -> None:
        self.client: Client = client
        self._reads: Dict[str, None] = {}

    def __repr__(self) -> str:
        return f"aside.CacheMap({self.client.url!r})"

    @property
    def reads(self) -> KeysView[str]:
        """The keys read through this map so far, in the order first read, each once (an
        ordered, set-like view). A key counts as read when ``cache[key]``, ``get``, ``info``
        succeeded for it, or when ``sql`` named it quoted and it is cached."""
        return self._reads.keys()

    def _record(self, key: str) -> None:
        self._reads.setdefault(key, None)
        record_read(self.client, key)

    # ---- the mapping -------------------------------------------------------------------

    def __getitem__(self, key: str) -> Value:
        try:
            value = self.client.read(key)
        except NotFound as exc:
            raise KeyError(key) from exc
        self._record(key)
        return value

    def __setitem__(self, key: str, value: Any) -> None:
        self.client.put(key, value)

    def __delitem__(self, key: str) -> None:
        try:
            self.client.delete(key)
        except NotFound as exc:
            raise KeyError(key) from exc

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        try:
            self.client.stats(key)
        except NotFound:
            return False
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(self.client.keys())

    def __len__(self) -> int:
        return len(self.client.keys())

    def keys(self) -> List[str]:  # type: ignore[override]
        """The cached keys, as the server lists them (``function=stats_cache``)."""
        return self.client.keys()

    def get(self, key: str, default: Any = None) -> Any:
        """``cache[key]``, or ``default`` when the key exists nowhere."""
        try:
            return self[key]
        except KeyError:
            return default

    # ---- beyond a mapping --------------------------------------------------------------

    def sql(self, query: str) -> pd.DataFrame:
        """One SQL ``SELECT`` over the cached frames, each named by its key in double quotes:
        ``SELECT g, avg(x) FROM "sales.parquet" GROUP BY g``. Returns the rows as a DataFrame.

        The quoted names that are cached keys once the query ran count as read."""
        frame = self.client.sql(query)
        for name in quoted_identifiers(query):
            if name in self._reads or name in self:
                self._record(name)
        return frame  # type: ignore[return-value]

    def info(self, key: str) -> Dict[str, Any]:
        """pandas' ``df.info()`` of the frame at ``key`` (``client.info``): ``class``, ``index``,
        ``entries``, ``columns``, ``dtypes``, ``memory_usage_bytes``, ``memory_usage``, ``text``.
        ``KeyError`` when the key exists nowhere."""
        try:
            value = self.client.info(key)
        except NotFound as exc:
            raise KeyError(key) from exc
        self._record(key)
        return value

    def generation(self, key: str) -> Optional[int]:
        """The key's current generation as the server's telemetry reports it (a number that
        changes whenever the value is replaced), or ``None`` when the key is not cached."""
        return key_generation(self.client, key)


def key_generation(client: Client, key: str) -> Optional[int]:
    """The generation of ``key`` in the server's telemetry (``client.stats(key)``), or ``None``
    when the key is not cached. A value replaced, rewritten or loaded again after leaving the
    cache gets a new generation; generations never repeat."""
    try:
        entries = client.stats(key).get("entries") or []
    except NotFound:
        return None
    for entry in entries:
        if entry.get("path") == key:
            generation = entry.get("generation")
            return generation if isinstance(generation, int) else None
    return None


def record_read(client: Client, key: str) -> None:
    """Count ``key`` as read by every ``compute_result`` / ``sql_result`` call under way on
    ``client``, with its current generation (the first generation seen for a key wins). A key
    that is not cached is not counted. Does nothing, and sends nothing, when no such call is
    under way."""
    recorders = client.__dict__.get(RECORDERS_ATTRIBUTE)
    if not recorders or all(key in recorder for recorder in recorders):
        return
    generation = key_generation(client, key)
    if generation is None:
        return
    for recorder in recorders:
        recorder.setdefault(key, generation)
