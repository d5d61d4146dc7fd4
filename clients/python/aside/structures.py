"""structures -- the server's collections and JSON documents as Python objects.

A key of the cache can hold a list, a set, a map or a counter that the server changes in place,
atomically per key, or a JSON document edited at JSON Pointers. The objects here are handles on
such a key: they hold only the client and the key, never a copy of the data, so every
operation is one request and sees the server's current state (two handles on one key, in one
process or in two, see the same collection). An operation on a key that is not cached creates
the collection (reads of a missing key see an empty one).

Arguments travel as a POST body ``{"data": {"function": ..., "key": ..., ...}}``, so their
JSON types are kept: ``lst.append("5")`` stores the string "5", ``lst.append(5)`` the number.
Members, elements and map values are any JSON value; a Python tuple is sent as an array.

Where Python has a convention for a failure, the objects follow it: an empty ``pop`` and an
index out of range raise ``IndexError``, a missing map field or set member ``KeyError``. Other
failures are the client's exceptions: ``WrongType`` (409) when the key holds another type,
``Full`` (507) when the collection would pass the server's memory budget, ``BadRequest`` for a
bad argument (such as a malformed JSON Pointer, code ``bad_pointer``).
"""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from typing import (TYPE_CHECKING, Any, Dict, Iterable, Iterator, List, Mapping, Optional,
                    Set, Tuple, Union)

from .errors import NotFound

if TYPE_CHECKING:  # pragma: no cover
    from .client import Client

__all__ = ["AsideList", "AsideSet", "AsideMap", "AsideCounter", "AsideJson", "set_members",
           "COLLECTION_TYPES"]

COLLECTION_TYPES = ("list", "set", "map", "counter")
"""The server's type names of collection keys."""


def _hashable(value: Any) -> Any:
    """A JSON value as a member of a Python set: arrays become tuples (recursively)."""
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        raise TypeError("a set member that is a JSON object has no Python set equivalent; "
                        "use AsideSet.to_list()")
    return value


def set_members(members: Iterable[Any]) -> Set[Any]:
    """The members of a server set (a JSON array) as a Python ``set``.

    JSON arrays become tuples; a member that is a JSON object raises ``TypeError`` (a dict is
    not hashable). Python's own equality applies: ``1``, ``1.0`` and ``True``, distinct
    members for the server, are one member of the Python set.
    """
    return {_hashable(m) for m in members}


def _given(**args: Any) -> Dict[str, Any]:
    """The optional arguments that were given (not None): the others are not sent, so the
    server applies its defaults. Values are always sent, null included."""
    return {name: value for name, value in args.items() if value is not None}


class _Handle:
    """What every object holds: the client and the key."""

    def __init__(self, client: "Client", key: str) -> None:
        self.client = client
        self.key = key

    def __repr__(self) -> str:
        return f"aside.{type(self).__name__}({self.key!r})"

    def _op(self, function: str, **args: Any) -> Any:
        return self.client._op(function, self.key, **args)


# ---- lists ----------------------------------------------------------------------------------

class AsideList(_Handle):
    """A list kept by the server under ``key`` (``client.list(key)``).

    ``len(lst)``, ``lst[i]`` (negatives from the end), ``lst[a:b]`` (Python slice semantics,
    computed by the server), iteration (over one snapshot, ``list_range``), ``append``,
    ``appendleft``, ``extend``, ``extendleft``, ``pop``, ``popleft``, ``trim``, ``to_list``.
    """

    def append(self, value: Any) -> int:
        """Add ``value`` at the end (``list_push``). Returns the new length."""
        return self._op("list_push", value=value)

    def appendleft(self, value: Any) -> int:
        """Add ``value`` at the front (``list_push``, ``end=front``). Returns the new length."""
        return self._op("list_push", value=value, end="front")

    def extend(self, values: Iterable[Any]) -> int:
        """Add every value at the end, in order, in one atomic request. Returns the new length."""
        return self._op("list_push", values=list(values))

    def extendleft(self, values: Iterable[Any]) -> int:
        """Add every value at the front, one after the other, as ``deque.extendleft`` does (so
        they end up in reverse order), in one atomic request. Returns the new length."""
        return self._op("list_push", values=list(values), end="front")

    def pop(self, count: Optional[int] = None) -> Any:
        """Remove and return the last element (``list_pop``); ``IndexError`` when the list is
        empty. With ``count``: a list of up to ``count`` elements, last first (``[]`` when
        empty)."""
        return self._pop("back", count)

    def popleft(self, count: Optional[int] = None) -> Any:
        """Remove and return the first element; with ``count`` a list of up to ``count``
        elements, first first. ``IndexError`` when empty (without ``count``)."""
        return self._pop("front", count)

    def _pop(self, end: str, count: Optional[int]) -> Any:
        try:
            return self._op("list_pop", end=end, **_given(count=count))
        except NotFound as exc:
            if exc.code == "empty":
                raise IndexError(f"pop from an empty list: {self.key}") from exc
            raise

    def trim(self, start: Optional[int] = None, stop: Optional[int] = None) -> int:
        """Keep only ``lst[start:stop]`` (Python slice semantics; ``list_trim``). Returns the new
        length."""
        return self._op("list_trim", **_given(start=start, stop=stop))

    def to_list(self) -> List[Any]:
        """Every element (``list_range``)."""
        return self._op("list_range")

    def __len__(self) -> int:
        return self._op("list_length")

    def __getitem__(self, index: Union[int, slice]) -> Any:
        if isinstance(index, slice):
            if index.step not in (None, 1):
                return self.to_list()[index]
            return self._op("list_range", **_given(start=index.start, stop=index.stop))
        if not isinstance(index, int) or isinstance(index, bool):
            raise TypeError(f"list indices must be integers or slices, not {type(index).__name__}")
        try:
            return self._op("list_index", index=index)
        except NotFound as exc:
            if exc.code in ("out_of_range", "empty"):
                raise IndexError(f"list index {index} out of range: {self.key}") from exc
            raise

    def __iter__(self) -> Iterator[Any]:
        return iter(self.to_list())


# ---- sets -----------------------------------------------------------------------------------

def _operand(other: Union[str, "AsideSet"]) -> str:
    if isinstance(other, AsideSet):
        return other.key
    if isinstance(other, str):
        return other
    raise TypeError(f"a set operand is a key or an AsideSet, not {type(other).__name__}")


class AsideSet(_Handle):
    """A set kept by the server under ``key`` (``client.set(key)``).

    ``value in s`` (``set_contains``), ``len(s)``, iteration over the members (one snapshot,
    in the order of their JSON text), ``add``, ``update``, ``discard``, ``remove``,
    ``members()`` (a Python ``set``), ``to_list()``, and ``union``, ``intersection``,
    ``difference`` with other keys, computed by the server.
    """

    def add(self, value: Any) -> int:
        """Add ``value`` (``set_add``). Returns 1 if it was new, else 0."""
        return self._op("set_add", value=value)

    def update(self, *iterables: Iterable[Any]) -> int:
        """Add every value of every iterable, in one atomic request. Returns how many were new."""
        values = [v for iterable in iterables for v in iterable]
        return self._op("set_add", values=values)

    def discard(self, value: Any) -> int:
        """Remove ``value`` if present (``set_remove``). Returns 1 if it was there, else 0."""
        return self._op("set_remove", value=value)

    def remove(self, value: Any) -> None:
        """Remove ``value``; ``KeyError`` if it is not a member."""
        if self.discard(value) == 0:
            raise KeyError(value)

    def to_list(self) -> List[Any]:
        """The members as the server lists them (``set_members``: sorted by their JSON text),
        JSON objects and arrays included as they are."""
        return self._op("set_members")

    def members(self) -> Set[Any]:
        """The members as a Python ``set`` (see ``set_members`` for arrays and objects)."""
        return set_members(self.to_list())

    def union(self, *others: Union[str, "AsideSet"]) -> Set[Any]:
        """The members of this set or of any of ``others`` (keys or ``AsideSet``s; a missing
        key is an empty set), as a Python ``set``."""
        return self._algebra("set_union", others)

    def intersection(self, *others: Union[str, "AsideSet"]) -> Set[Any]:
        """The members of this set that are in every one of ``others``."""
        return self._algebra("set_intersection", others)

    def difference(self, *others: Union[str, "AsideSet"]) -> Set[Any]:
        """The members of this set that are in none of ``others``."""
        return self._algebra("set_difference", others)

    def _algebra(self, function: str, others: Tuple[Union[str, "AsideSet"], ...]) -> Set[Any]:
        keys = [_operand(o) for o in others]
        return set_members(self._op(function, keys=keys))

    def __contains__(self, value: Any) -> bool:
        return bool(self._op("set_contains", value=value))

    def __len__(self) -> int:
        return self._op("set_size")

    def __iter__(self) -> Iterator[Any]:
        return iter(self.to_list())


# ---- maps -----------------------------------------------------------------------------------

class AsideMap(_Handle, MutableMapping):
    """A map (string fields to JSON values) kept by the server under ``key``
    (``client.map(key)``), as a ``MutableMapping``.

    ``m[field]`` (``map_get``; ``KeyError`` when absent), ``m[field] = value`` (``map_set``),
    ``del m[field]`` (``map_delete``; ``KeyError`` when absent), ``len(m)``, iteration over the
    fields, ``update`` (one request), ``increment``, ``to_dict``. ``keys()``, ``values()`` and
    ``items()`` are those of one snapshot (``map_all``); the other mapping methods (``get``,
    ``pop``, ``setdefault``, ...) are ``MutableMapping``'s, built on the ones above, so they
    take more than one request and are not atomic.
    """

    def __getitem__(self, field: str) -> Any:
        try:
            return self._op("map_get", field=field)
        except NotFound as exc:
            if exc.code == "no_field":
                raise KeyError(field) from exc
            raise

    def __setitem__(self, field: str, value: Any) -> None:
        self._op("map_set", field=field, value=value)

    def __delitem__(self, field: str) -> None:
        if self._op("map_delete", field=field) == 0:
            raise KeyError(field)

    def __len__(self) -> int:
        return self._op("map_length")

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def to_dict(self) -> Dict[str, Any]:
        """Every field and its value (``map_all``)."""
        return self._op("map_all")

    def keys(self):  # type: ignore[override]
        return self.to_dict().keys()

    def values(self):  # type: ignore[override]
        return self.to_dict().values()

    def items(self):  # type: ignore[override]
        return self.to_dict().items()

    def update(self,  # type: ignore[override]
               other: Union[Mapping[str, Any], Iterable[Tuple[str, Any]]] = (),
               **fields: Any) -> int:
        """Set many fields in one atomic request (``map_set`` with ``fields``), as
        ``dict.update`` takes them. Returns how many fields were new."""
        merged = dict(other)
        merged.update(fields)
        if not merged:
            return 0
        return self._op("map_set", fields=merged)

    def increment(self, field: str, by: Union[int, float] = 1) -> Union[int, float]:
        """Add ``by`` to the number at ``field`` (a missing field counts as 0), atomically
        (``map_increment``). Returns the new value: an int when both are ints. A field holding
        something else than a number raises ``WrongType``."""
        return self._op("map_increment", field=field, by=by)

    def clear(self) -> None:
        """Remove every field present now (``map_all``, then one ``map_delete``)."""
        fields = list(self.to_dict())
        if fields:
            self._op("map_delete", fields=fields)


# ---- counters -------------------------------------------------------------------------------

class AsideCounter(_Handle):
    """A 64-bit integer counter kept by the server under ``key`` (``client.counter(key)``).

    ``increment(by)``, ``decrement(by)``, ``value`` (0 for a key not cached), ``int(c)``.
    """

    def increment(self, by: int = 1) -> int:
        """Add ``by`` atomically (``counter_increment``). Returns the new value."""
        return self._op("counter_increment", by=by)

    def decrement(self, by: int = 1) -> int:
        """Subtract ``by`` atomically (``counter_decrement``). Returns the new value."""
        return self._op("counter_decrement", by=by)

    @property
    def value(self) -> int:
        """The current value (``counter_get``)."""
        return self._op("counter_get")

    def __int__(self) -> int:
        return self.value


# ---- JSON documents -------------------------------------------------------------------------

class AsideJson(_Handle):
    """A JSON document under ``key``, read and edited at JSON Pointers (RFC 6901) on the
    server (``client.json(key)``).

    A pointer is ``""`` (the whole document) or ``"/"``-separated tokens, ``~1`` standing for
    ``/`` and ``~0`` for ``~``; array elements are numbered from 0, and ``"-"`` appends. A
    malformed pointer raises ``BadRequest`` (code ``bad_pointer``), one naming nothing
    ``NotFound`` (code ``no_such_pointer``). A key loaded from the system of record is read
    through first; after an edit the key lives in the cache only (the system of record keeps
    the old file).
    """

    def get(self, pointer: str = "") -> Any:
        """The value at ``pointer`` (``json_get``)."""
        return self._op("json_get", pointer=pointer)

    def set(self, pointer: str, value: Any) -> None:
        """Set the value at ``pointer`` (``json_set``): a member is added or replaced, an array
        element replaced (or appended at the size, or ``"-"``); ``""`` replaces the document,
        and creates it when the key is not cached."""
        self._op("json_set", pointer=pointer, value=value)

    def delete(self, pointer: str) -> None:
        """Remove the member or element at ``pointer`` (``json_delete``)."""
        self._op("json_delete", pointer=pointer)

    def merge(self, patch: Any) -> Any:
        """Apply a JSON merge patch (RFC 7386: ``None`` removes a member, objects merge
        recursively, anything else replaces) and return the new document (``json_merge``)."""
        return self._op("json_merge", patch=patch)


def decode(kind: str, raw: bytes) -> Any:
    """A collection read raw (JSON text) as Python: list, set, dict or int."""
    value = json.loads(raw)
    return set_members(value) if kind == "set" else value
