"""aside -- the Python client of the aside cache-aside data server.

    import aside
    df = aside.connect().read("file1.snappy.parquet")

``connect`` opens a ``Client`` whose methods are the server's functions (read, put, write,
update, delete, list, info, describe, head, tail, select, sql, map, ...). Frames come back as
pandas DataFrames (or pyarrow Tables with ``read_table``), through shared memory when the
server runs on the same machine, else as Arrow IPC over HTTP. Errors are the exceptions below,
each carrying the server's ``code``, ``message`` and HTTP ``status``.

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
    InvalidValue,
    NotFound,
    ServerError,
    ShmUnavailable,
    Timeout,
    TooLarge,
    Unauthorized,
    Unavailable,
)
from .results import compute_result, lru_cache, sql_result

__version__ = "0.1.0"

__all__ = [
    "API_PATH",
    "DEFAULT_URL",
    "Client",
    "connect",
    "serialize",
    "CacheMap",
    "compute_result",
    "sql_result",
    "lru_cache",
    "AsideError",
    "BadGateway",
    "BadRequest",
    "Conflict",
    "ConnectionFailed",
    "Forbidden",
    "InvalidValue",
    "NotFound",
    "ServerError",
    "ShmUnavailable",
    "Timeout",
    "TooLarge",
    "Unauthorized",
    "Unavailable",
    "__version__",
]
