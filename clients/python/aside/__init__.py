"""aside -- the Python client of the aside cache-aside data server.

    import aside
    df = aside.connect().read("file1.snappy.parquet")

``connect`` opens a ``Client`` whose methods are the server's functions (read, put, write,
update, delete, objects, info, describe, head, tail, select, sql, mmap, ...). Frames come back as
pandas DataFrames (or pyarrow Tables with ``read_table``), through shared memory when the
server runs on the same machine, else as Arrow IPC over HTTP. Errors are the exceptions below,
each carrying the server's ``code``, ``message`` and HTTP ``status``.

Collections kept by the server, changed atomically per key, are Python objects over a key:
``client.list(key)`` (``AsideList``), ``client.set(key)`` (``AsideSet``), ``client.map(key)``
(``AsideMap``, a ``MutableMapping``), ``client.counter(key)`` (``AsideCounter``); a JSON
document is edited at JSON Pointers through ``client.json(key)`` (``AsideJson``).

Functions run next to the data (``NAME.py`` files with ``def main(cache, **kwargs)``, run by
the server's workers, ``python -m aside.worker``) receive the cache as an ``aside.CacheMap``.
Their results can be kept in aside with ``@aside.compute_result`` and ``@aside.sql_result``
(valid as long as the keys they read keep their generation) and memoised in the process with
``@aside.lru_cache``; these also work in any client code.

The fsspec file system (``aside://`` URLs, for ``pd.read_parquet("aside://key")``) lives in
``aside.fs`` and needs the optional dependency fsspec; it is not imported here.
"""

from .cachemap import CacheMap
from .client import API_PATH, DEFAULT_URL, Client, connect, serialize
from .errors import (
    AsideError,
    BadGateway,
    BadRequest,
    Conflict,
    ConnectionFailed,
    Forbidden,
    Full,
    InvalidValue,
    NotFound,
    ServerError,
    ShmUnavailable,
    Timeout,
    TooLarge,
    Unauthorized,
    Unavailable,
    WrongType,
)
from .structures import AsideCounter, AsideJson, AsideList, AsideMap, AsideSet
from .results import compute_result, lru_cache, sql_result

__version__ = "0.1.0"  # the version of the client, the server and the packages: the one source

__all__ = [
    "API_PATH",
    "DEFAULT_URL",
    "Client",
    "connect",
    "serialize",
    "CacheMap",
    "AsideList",
    "AsideSet",
    "AsideMap",
    "AsideCounter",
    "AsideJson",
    "compute_result",
    "sql_result",
    "lru_cache",
    "AsideError",
    "BadGateway",
    "BadRequest",
    "Conflict",
    "ConnectionFailed",
    "Forbidden",
    "Full",
    "InvalidValue",
    "NotFound",
    "ServerError",
    "ShmUnavailable",
    "Timeout",
    "TooLarge",
    "Unauthorized",
    "Unavailable",
    "WrongType",
    "__version__",
]
