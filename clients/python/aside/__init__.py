"""aside -- the Python client of the aside cache-aside data server.

    import aside
    df = aside.connect().read("file1.snappy.parquet")

``connect`` opens a ``Client`` whose methods are the server's functions (read, put, write,
update, delete, list, info, describe, head, tail, select, sql, map, ...). Frames come back as
pandas DataFrames (or pyarrow Tables with ``read_table``), through shared memory when the
server runs on the same machine, else as Arrow IPC over HTTP. Errors are the exceptions below,
each carrying the server's ``code``, ``message`` and HTTP ``status``.

The fsspec file system (``aside://`` URLs, for ``pd.read_parquet("aside://key")``) lives in
``aside.fs`` and needs the optional dependency fsspec; it is not imported here.
"""

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

__version__ = "0.1.0"

__all__ = [
    "API_PATH",
    "DEFAULT_URL",
    "Client",
    "connect",
    "serialize",
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
