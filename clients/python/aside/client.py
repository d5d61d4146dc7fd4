"""client -- a Python client of the aside server's REST API.

A ``Client`` holds one ``requests.Session`` (so connections are kept alive between calls), the
endpoint URL, an optional bearer token and a timeout; nothing is kept at module level, and two
clients never share anything. Each public method is one of the server's functions, under the
same name (but ``objects`` is ``list`` and ``mmap`` is ``map``: collections took those names),
and sends ``GET /cache/api/v1.0/?function=<name>&...``; a method that sends a value (``put``,
``write``) POSTs the raw bytes as the body with the parameters in the query string. Operations
on collections and JSON documents (``list``, ``set``, ``map``, ``counter``, ``json``: the
objects of ``aside.structures``) POST ``{"data": {"function", "key", ...}}`` instead, so their
arguments keep their JSON types. Answers arrive in the envelope
``{"return": {"uri", "path", "value"}}`` and the methods return the ``value``; an error answer
becomes an exception from ``aside.errors`` carrying the server's code and message.

DataFrames never travel as JSON. Rows computed by the server (``head``, ``tail``, ``select``,
``sql``) are asked for with ``format=arrow`` and arrive as an Arrow IPC stream, which pyarrow
reads without parsing. A whole cached frame (``read``, ``read_table``) can take two roads:

* ``shm``: the ``map`` function (``Client.mmap``) makes the server publish the frame as an
  Arrow IPC file in shared memory and answers its path; the client memory-maps that file, so
  the Table's buffers are the server's pages and nothing is copied or sent over the socket.
  pyarrow keeps the mapping alive as long as any buffer of the Table is referenced.
* ``http``: ``read`` with ``return=data&format=arrow``: the frame as an Arrow IPC stream in the
  response body.

``transport="auto"`` tries ``shm`` when the server runs on this machine (its host is a loopback
address or one of this machine's addresses) and falls back to ``http`` when the file cannot be
opened or the server cannot map; the road taken is kept in ``Client.last_transport``. A server
that answers ``map`` with ``unknown_function`` is not asked again by the same client.

A URL ``http+unix://<the socket's path, percent-encoded>/...`` reaches a server over its Unix
socket (``_UnixAdapter``: the same HTTP, another road): that is how functions reach the server
from its sandbox, which has no network. Such a server is on this machine.

Which pandas: requests whose answers depend on pandas' version (``read``, ``map``, ``info``,
``describe``, ``head``, ``tail``, ``select``, ``sql``) carry ``pandas=<major>`` of the pandas
this client runs with (``PANDAS_MAJOR``), so the server answers as that pandas would. Under
pandas 3 a frame's strings become ``str`` columns backed by Arrow large_string, which is how
the server publishes them in shared memory: a ``read`` over ``shm`` then copies no string
(numeric columns are copied, as pandas' own readers do, so that the DataFrame is writable).
``read_table`` answers the frame's own types (string, or large_string when its source had
them so) by either road and with either pandas.

The cost of a ``read``: one small meta request to learn the value's type, then the value (for
a collection, its JSON text, whose ``X-Aside-Type`` header says which collection it is at the
moment it was read).
"""

from __future__ import annotations

import gzip
import ipaddress
import json
import os
import socket
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple, Union
from urllib.parse import unquote, urlsplit, urlunsplit

import pandas as pd
import pyarrow as pa
import requests
import requests.adapters
import urllib3
import urllib3.connection
import urllib3.exceptions

from .errors import AsideError, ConnectionFailed, ShmUnavailable, error_from_response
from .structures import (COLLECTION_TYPES, AsideCounter, AsideJson, AsideList, AsideMap,
                         AsideSet, decode)

__all__ = ["Client", "connect", "DEFAULT_URL", "API_PATH"]

DEFAULT_URL = "http://127.0.0.1:5000"
"""The server's URL when neither ``url`` nor ``ASIDE_URL`` is given."""

API_PATH = "/cache/api/v1.0/"
"""The endpoint's path, added to a URL that has no path of its own."""

ARROW_STREAM = "application/vnd.apache.arrow.stream"

_TRANSPORTS = ("auto", "shm", "http")
_DTYPE_BACKENDS = (None, "numpy", "pyarrow")

Value = Union[pd.DataFrame, Dict[str, Any], List[Any], Set[Any], bytes, str, int, float, bool,
              None]
"""What ``read`` may return: a DataFrame for a frame, the parsed document for JSON, a list, set,
dict or int for a collection, else bytes."""


def connect(url: Optional[str] = None, token: Optional[str] = None, *,
            timeout: float = 60) -> "Client":
    """Open a client of the aside server at ``url``.

    Args:
        url: the server, such as ``"http://127.0.0.1:5000"``. Default: the environment variable
            ``ASIDE_URL``, else ``"http://127.0.0.1:5000"``. A URL without a path gets the API's
            path ``/cache/api/v1.0/``; a URL with a path is used as it is. ``http://`` is
            assumed when no scheme is given.
        token: sent as ``Authorization: Bearer <token>`` on every request when given.
        timeout: seconds to wait for the server to connect or to send data, per request.

    Returns:
        A ``Client``. Nothing is sent until the first call. Close it with ``close()`` or use it
        as a context manager.
    """
    return Client(url, token, timeout=timeout)


def _endpoint(url: Optional[str]) -> str:
    url = url or os.environ.get("ASIDE_URL") or DEFAULT_URL
    if "://" not in url:
        url = "http://" + url
    parts = urlsplit(url)
    path = parts.path if parts.path not in ("", "/") else API_PATH
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _query(function: str, params: Dict[str, Any]) -> Dict[str, str]:
    """The query string: None is left out, booleans are true/false, sequences comma-joined."""
    query = {"function": function}
    for name, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            query[name] = "true" if value else "false"
        elif isinstance(value, (list, tuple)):
            query[name] = ",".join(str(v) for v in value)
        else:
            query[name] = str(value)
    return query


PANDAS_MAJOR = int(pd.__version__.split(".", 1)[0])
"""The major version of the pandas this client runs with; sent as ``pandas=`` on the requests
whose answers depend on pandas' version (``info``, ``describe``, ``dtypes``, rows, ``read``,
``map``)."""

_WIDTH_KEY = b"aside:width"
"""The field metadata key in which a shared-memory publication names a string or bytes
column's own type: the publication holds every such column as large_string or large_binary
(pandas 3's own layout, see ``_to_pandas``), whatever width the frame's source gave it."""

_WIDTHS = {b"string": pa.string(), b"large_string": pa.large_string(),
           b"binary": pa.binary(), b"large_binary": pa.large_binary()}
_NARROW = {pa.large_string(): b"string", pa.large_binary(): b"binary"}


def _without_width(field: pa.Field) -> pa.Field:
    rest = {k: v for k, v in (field.metadata or {}).items() if k != _WIDTH_KEY}
    return field.with_metadata(rest) if rest else field.remove_metadata()


def _mark_widths(table: pa.Table) -> pa.Table:
    """A publication of a server that does not name its columns' widths: its strings are all
    of the frame's width, string and binary. Marked so (no data copied) for ``_own_widths``."""
    if any(f.metadata and _WIDTH_KEY in f.metadata for f in table.schema):
        return table
    fields = [f.with_metadata({**(f.metadata or {}), _WIDTH_KEY: _NARROW[f.type]})
              if f.type in _NARROW else f for f in table.schema]
    return pa.Table.from_arrays(table.columns,
                                schema=pa.schema(fields, metadata=table.schema.metadata))


def _own_widths(table: pa.Table) -> pa.Table:
    """table with each column of the type its frame's source had: a column a publication
    widened is narrowed back to string (or binary), one whose source had large_string is kept
    as it is (no copy); the width metadata is left out. Other columns are left as they are."""
    if not any(f.metadata and _WIDTH_KEY in f.metadata for f in table.schema):
        return table
    fields = [_without_width(f.with_type(_WIDTHS.get(f.metadata[_WIDTH_KEY], f.type)))
              if f.metadata and _WIDTH_KEY in f.metadata else f for f in table.schema]
    schema = pa.schema(fields, metadata=table.schema.metadata)
    columns = [column if column.type == field.type else column.cast(field.type)
               for column, field in zip(table.columns, schema)]
    return pa.Table.from_arrays(columns, schema=schema)


def _pandas_string(t: pa.DataType) -> pa.DataType:
    """The Arrow type pandas' own strings convert to (large_string under pandas 3, string
    under 2) for a string type or a dictionary of strings; any other type as it is."""
    string = pa.large_string() if PANDAS_MAJOR >= 3 else pa.string()
    if t in (pa.string(), pa.large_string()):
        return string
    if pa.types.is_dictionary(t) and t.value_type in (pa.string(), pa.large_string()):
        return pa.dictionary(t.index_type, string, t.ordered)
    return t


def _pandas_widths(table: pa.Table) -> pa.Table:
    """table with its strings and categories of the width ``pa.Table.from_pandas`` gives of
    pandas' own DataFrame: what a frame function (``head``, ``select``, ...) computes is a
    DataFrame pandas made, so its ``dtype_backend="pyarrow"`` columns are that DataFrame's."""
    schema = pa.schema([f.with_type(_pandas_string(f.type)) for f in table.schema],
                       metadata=table.schema.metadata)
    return table if schema.equals(table.schema) else table.cast(schema)


def _to_pandas(table: pa.Table, dtype_backend: Optional[str]) -> pd.DataFrame:
    """A DataFrame of table (as read from the server: strings of their own width, or widened
    by a shared-memory publication), as pandas' own readers make it.

    Under pandas 3, ``str`` columns hold the table's large_string arrays (a shared-memory
    publication's own: the strings are not copied, and pandas never writes into them: a change
    makes new arrays). Numeric columns are copied into pandas' blocks, as ``read_parquet``
    does, under either pandas: zero-copy NumPy views of the mapping would be read-only, and
    pandas 3.1 writes into a block it holds the only reference to in place, so ``df.loc[0,
    "x"] = 1`` would fail. ``dtype_backend="pyarrow"`` gives ``pd.ArrowDtype`` columns of the
    frame's own types (``string[pyarrow]``, or ``large_string[pyarrow]`` when the source had
    large_string) under either pandas."""
    if dtype_backend == "pyarrow":
        return _own_widths(table).to_pandas(types_mapper=pd.ArrowDtype)
    return table.to_pandas()


def _check_dtype_backend(dtype_backend: Optional[str]) -> None:
    if dtype_backend not in _DTYPE_BACKENDS:
        raise ValueError(f"dtype_backend must be None, 'numpy' or 'pyarrow', not {dtype_backend!r}")


def _ipc_file(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def serialize(path: str, value: Any) -> Tuple[bytes, Optional[str]]:
    """The body ``put`` and ``write`` send for ``value`` at key ``path``, and the ``type`` to send.

    * DataFrame or pyarrow Table, by the key's extension: ``.parquet`` -> parquet (pyarrow,
      the index kept as pandas does); ``.csv`` -> CSV, ``.csv.gz`` -> gzip'd CSV, ``.jsonl`` /
      ``.ndjson`` -> JSON lines (the index is not written); ``.json`` -> a JSON array of records
      with type ``frame``; any other key -> an Arrow IPC file (``pa.Table.from_pandas(df)``,
      the index kept) with type ``frame``.
    * dict or list -> JSON (UTF-8), type ``json`` unless the key ends with ``.json``. NaN and
      infinities are refused (``ValueError``): they are not JSON.
    * bytes, bytearray, memoryview -> as they are; str -> UTF-8; no type, so the server types
      the key by its extension (``.json`` validated, ``.parquet`` a frame, ...).

    Anything else raises ``TypeError``.
    """
    key = path.lower()
    if isinstance(value, (pd.DataFrame, pa.Table)):
        if key.endswith(".parquet"):
            import pyarrow.parquet as pq
            table = value if isinstance(value, pa.Table) else pa.Table.from_pandas(value)
            sink = pa.BufferOutputStream()
            pq.write_table(table, sink)
            return sink.getvalue().to_pybytes(), None
        if key.endswith((".csv", ".csv.gz", ".jsonl", ".ndjson", ".json")):
            df = value.to_pandas() if isinstance(value, pa.Table) else value
            if key.endswith(".csv"):
                return df.to_csv(index=False).encode("utf-8"), None
            if key.endswith(".csv.gz"):
                return gzip.compress(df.to_csv(index=False).encode("utf-8")), None
            if key.endswith(".json"):
                return df.to_json(orient="records", date_format="iso").encode("utf-8"), "frame"
            return (df.to_json(orient="records", lines=True, date_format="iso").encode("utf-8"),
                    None)
        table = value if isinstance(value, pa.Table) else pa.Table.from_pandas(value)
        return _ipc_file(table), "frame"
    if isinstance(value, (dict, list)):
        body = json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")
        return body, None if key.endswith(".json") else "json"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value), None
    if isinstance(value, str):
        return value.encode("utf-8"), None
    raise TypeError(f"cannot send a {type(value).__name__}: give a DataFrame, a pyarrow Table, "
                    "a dict or list (JSON), bytes or str")


def _local_addresses() -> set:
    names = {"localhost", socket.gethostname()}
    found = set()
    for name in names:
        try:
            found.update(info[4][0] for info in socket.getaddrinfo(name, None))
        except OSError:
            pass
    return found


_SHM_ATTEMPTS = 5  # map, then open: a key rewritten in between is asked for again

UNIX_SCHEME = "http+unix"
"""The scheme of a URL whose host is the percent-encoded path of the server's Unix socket."""


class _UnixConnection(urllib3.connection.HTTPConnection):
    """An HTTP connection over a Unix socket (its path given as ``socket_path``)."""

    def __init__(self, *args: Any, socket_path: str, **kwargs: Any) -> None:
        kwargs["socket_options"] = []  # TCP options mean nothing here
        super().__init__(*args, **kwargs)
        self._socket_path = socket_path

    def _new_conn(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if isinstance(self.timeout, (int, float)):
            sock.settimeout(self.timeout)
        try:
            sock.connect(self._socket_path)
        except OSError as exc:
            sock.close()
            raise urllib3.exceptions.NewConnectionError(
                self, f"cannot connect to {self._socket_path}: {exc}") from exc
        return sock


class _UnixPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _UnixConnection


class _UnixAdapter(requests.adapters.HTTPAdapter):
    """Sends every request of the URLs it is mounted for to one Unix socket."""

    def __init__(self, socket_path: str) -> None:
        super().__init__()
        self._pool = _UnixPool("localhost", socket_path=socket_path)

    def get_connection_with_tls_context(self, request: Any, verify: Any, proxies: Any = None,
                                        cert: Any = None) -> urllib3.HTTPConnectionPool:
        return self._pool

    def get_connection(self, url: Any, proxies: Any = None) -> urllib3.HTTPConnectionPool:
        return self._pool

    def close(self) -> None:
        self._pool.close()
        super().close()


class Client:
    """A client of one aside server. See ``connect`` for the arguments.

    Attributes:
        url: the endpoint every request goes to (``http://host:port/cache/api/v1.0/``).
        timeout: seconds per request.
        last_transport: ``"shm"`` or ``"http"``: how the last frame read by ``read`` or
            ``read_table`` arrived; ``None`` before the first.

    A client is not meant to be shared between threads; open one per thread.
    """

    def __init__(self, url: Optional[str] = None, token: Optional[str] = None, *,
                 timeout: float = 60) -> None:
        self.url: str = _endpoint(url)
        self.timeout: float = timeout
        self.last_transport: Optional[str] = None
        self._session = requests.Session()
        if token:
            self._session.headers["Authorization"] = f"Bearer {token}"
        self._server_is_local: Optional[bool] = None
        parts = urlsplit(self.url)
        if parts.scheme == UNIX_SCHEME:
            self._session.mount(f"{UNIX_SCHEME}://", _UnixAdapter(unquote(parts.netloc)))
            self._server_is_local = True
        self._server_maps = True

    def __repr__(self) -> str:
        return f"aside.Client({self.url!r})"

    def close(self) -> None:
        """Close the client's connections. The client is not to be used after."""
        self._session.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- requests ----------------------------------------------------------------------

    def _send(self, function: str, params: Dict[str, Any],
              body: Optional[bytes] = None) -> requests.Response:
        """One request; raises the matching AsideError for an error answer or no answer."""
        query = _query(function, params)
        try:
            if body is None:
                response = self._session.get(self.url, params=query, timeout=self.timeout)
            else:
                response = self._session.post(
                    self.url, params=query, data=body, timeout=self.timeout,
                    headers={"Content-Type": "application/octet-stream"})
        except requests.RequestException as exc:
            raise ConnectionFailed("connection_failed", f"{self.url}: {exc}") from exc
        if response.status_code >= 400:
            raise error_from_response(response.status_code, response.content, response.reason)
        return response

    def _send_json(self, data: Dict[str, Any]) -> requests.Response:
        """One POST of ``{"data": data}`` (arguments as JSON values); errors raise as for
        _send. NaN and infinities are refused (``ValueError``): they are not JSON."""
        body = json.dumps({"data": data}, ensure_ascii=False, allow_nan=False).encode("utf-8")
        try:
            response = self._session.post(self.url, data=body, timeout=self.timeout,
                                           headers={"Content-Type": "application/json"})
        except requests.RequestException as exc:
            raise ConnectionFailed("connection_failed", f"{self.url}: {exc}") from exc
        if response.status_code >= 400:
            raise error_from_response(response.status_code, response.content, response.reason)
        return response

    def _fetch_body(self, function: str, params: Dict[str, Any]) -> bytearray:
        """The whole body of a GET, read in one piece into one buffer (an Arrow stream is read
        without the copies a chunked read would make); errors raise as for _send."""
        query = _query(function, params)
        try:
            response = self._session.get(self.url, params=query, timeout=self.timeout,
                                         stream=True)
        except requests.RequestException as exc:
            raise ConnectionFailed("connection_failed", f"{self.url}: {exc}") from exc
        with response:
            if response.status_code >= 400:
                raise error_from_response(response.status_code, response.content,
                                          response.reason)
            length = int(response.headers.get("Content-Length", "-1"))
            if length < 0 or response.headers.get("Content-Encoding"):
                return bytearray(response.content)
            body = bytearray(length)
            view = memoryview(body)
            got = 0
            # urllib3's readinto reads into a temporary and copies; the http.client response
            # under it reads straight into our buffer
            stream = getattr(response.raw, "_fp", None) or response.raw
            try:
                while got < length:
                    n = stream.readinto(view[got:])
                    if not n:
                        raise ConnectionFailed("connection_failed",
                                               f"{self.url}: the body ended after {got} of "
                                               f"{length} bytes")
                    got += n
            except ConnectionFailed:  # an OSError too: raised above, as it is
                raise
            except (requests.RequestException, OSError) as exc:
                raise ConnectionFailed("connection_failed", f"{self.url}: {exc}") from exc
            return body

    @staticmethod
    def _is_json(response: requests.Response) -> bool:
        media = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        return media == "application/json"

    def _value(self, function: str, body: Optional[bytes] = None, **params: Any) -> Any:
        """The envelope's value of a JSON answer."""
        return self._unwrap(function, self._send(function, params, body))

    def _op(self, function: str, key: str, **args: Any) -> Any:
        """The envelope's value of an operation on a collection or document, its arguments
        sent as JSON (every one given, None as null)."""
        return self._unwrap(function, self._send_json(dict(args, function=function, key=key)))

    @staticmethod
    def _unwrap(function: str, response: requests.Response) -> Any:
        try:
            return response.json()["return"]["value"]
        except (ValueError, KeyError, TypeError) as exc:
            raise AsideError("bad_answer", f"{function}: the answer is not an aside envelope: "
                             f"{response.text[:200]!r}", response.status_code) from exc

    def _frame(self, function: str, dtype_backend: Optional[str], **params: Any) -> pd.DataFrame:
        """A frame function's rows, asked for as an Arrow IPC stream."""
        _check_dtype_backend(dtype_backend)
        body = self._fetch_body(function, dict(params, format="arrow", pandas=PANDAS_MAJOR))
        table = pa.ipc.open_stream(pa.py_buffer(body)).read_all()
        return _to_pandas(_pandas_widths(table) if dtype_backend == "pyarrow" else table,
                          dtype_backend)

    # ---- reading -----------------------------------------------------------------------

    def read(self, path: str, *, type: Optional[str] = None, storage: Optional[str] = None,
             transport: str = "auto", dtype_backend: Optional[str] = None) -> Value:
        """Read a value, from the cache or, on a miss, from the system of record (cache-aside).

        Args:
            path: the key, a relative path under the system of record's root.
            type: ``"frame"``, ``"json"`` or ``"bytes"``: read the key as that type (a ``.json``
                file holding an array of records is a frame with ``type="frame"``). Default:
                the server's type for the key's extension.
            storage: ``"s3"`` or ``"sd"``: the system of record a miss loads from.
            transport: for frames: ``"auto"``, ``"shm"`` or ``"http"`` (see ``read_table``).
            dtype_backend: for frames: ``None`` or ``"numpy"``: ``table.to_pandas()``;
                ``"pyarrow"``: ``table.to_pandas(types_mapper=pd.ArrowDtype)``, whose columns
                keep the Arrow buffers (with ``shm``, the shared memory itself).

        Returns:
            A ``pandas.DataFrame`` for a frame; the parsed document (dict, list, str, number,
            bool or None) for JSON; for a collection a ``list``, a ``set`` (JSON arrays among
            its members as tuples, see ``aside.structures.set_members``), a ``dict`` (map) or
            an ``int`` (counter); ``bytes`` (the file as it is) for anything else.
        """
        _check_transport(transport)
        _check_dtype_backend(dtype_backend)
        meta = self._value("read", path=path, type=type, storage=storage, pandas=PANDAS_MAJOR,
                           **{"return": "meta"})
        kind = meta.get("type") if isinstance(meta, dict) else None
        if kind != "frame":
            response = self._send("read", dict(path=path, type=type, storage=storage,
                                               format="raw"))
            # the type of what was just read: the key may have changed since the meta answer
            kind = response.headers.get("X-Aside-Type", kind)
            if kind != "frame":
                return _decode_raw(kind, response.content)
        return _to_pandas(self._table(path, type, storage, transport), dtype_backend)

    def read_table(self, path: str, *, type: Optional[str] = None,
                   storage: Optional[str] = None, transport: str = "auto") -> pa.Table:
        """Read a frame as a ``pyarrow.Table``.

        Args:
            path, type, storage: as for ``read``.
            transport: ``"shm"``: map the server's shared-memory copy (no copy, no socket
                transfer); raises the server's error if ``map`` fails, or ``ShmUnavailable`` if
                the file cannot be opened here. ``"http"``: the frame as an Arrow IPC stream in
                the answer. ``"auto"`` (default): ``shm`` when the server is on this machine
                and it works, else ``http``.

        The transport used is kept in ``self.last_transport``. A key that is not a frame is
        refused by the server (``BadRequest``, code ``not_a_frame``).
        """
        _check_transport(transport)
        return _own_widths(self._table(path, type, storage, transport))

    def _table(self, path: str, type: Optional[str], storage: Optional[str],
               transport: str) -> pa.Table:
        """read_table's Table, its strings as they came (over shm: large_string, their own
        width in each field's metadata, see ``_own_widths``)."""
        if transport == "shm" or (transport == "auto" and self._server_maps
                                  and self._is_server_local()):
            try:
                table = self._table_shm(path, type, storage)
                self.last_transport = "shm"
                return table
            except ConnectionFailed:
                raise
            except AsideError as exc:
                if exc.code == "unknown_function":
                    self._server_maps = False
                if transport == "shm":
                    raise
        body = self._fetch_body("read", dict(path=path, type=type, storage=storage,
                                             format="arrow", pandas=PANDAS_MAJOR,
                                             **{"return": "data"}))
        table = pa.ipc.open_stream(pa.py_buffer(body)).read_all()
        self.last_transport = "http"
        return table

    def _table_shm(self, path: str, type: Optional[str], storage: Optional[str]) -> pa.Table:
        # The key may get a new content between the server's answer and our open: its old
        # file is then gone, and asking again gives the new one (a bounded number of times).
        for attempt in range(_SHM_ATTEMPTS):
            published = self.mmap(path, type=type, storage=storage)
            try:
                file = published["path"]
                with pa.memory_map(file, "r") as mm:
                    size = mm.size()
                    table = pa.ipc.open_file(mm).read_all()
                break
            except FileNotFoundError as exc:
                if attempt + 1 == _SHM_ATTEMPTS:
                    raise ShmUnavailable("shm_unavailable",
                                         f"{published.get('path')!r} kept being replaced: "
                                         f"{exc}") from exc
            except (OSError, pa.ArrowException, KeyError, TypeError) as exc:
                raise ShmUnavailable("shm_unavailable",
                                     f"cannot map {published.get('path')!r}: {exc}") from exc
        # A file of the same name on another machine would open too: check it is the one meant.
        rows, size_meant = published.get("rows"), published.get("bytes")
        if (rows is not None and rows != table.num_rows) or (size_meant is not None
                                                             and size_meant != size):
            raise ShmUnavailable("shm_unavailable",
                                 f"{file} is not the frame the server published "
                                 f"({table.num_rows} rows, {size} bytes; expected {rows} rows, "
                                 f"{size_meant} bytes)")
        return _mark_widths(table)

    def _is_server_local(self) -> bool:
        if self._server_is_local is None:
            host = urlsplit(self.url).hostname or ""
            try:
                addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
            except OSError:
                addresses = set()
            self._server_is_local = any(
                ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses
            ) or bool(addresses & _local_addresses())
        return self._server_is_local

    def mmap(self, path: str, *, type: Optional[str] = None,
             storage: Optional[str] = None) -> Dict[str, Any]:
        """Ask the server to publish a frame in shared memory (``function=map``).

        Returns the server's answer: ``{"result": "success", "path": <Arrow IPC file under
        /dev/shm>, "generation": int, "bytes": int, "rows": int, "columns": [{"name",
        "dtype"}]}``. ``read_table(transport="shm")`` opens that file.
        """
        return self._value("map", path=path, type=type, storage=storage, pandas=PANDAS_MAJOR)

    def info(self, path: str, *, type: Optional[str] = None) -> Dict[str, Any]:
        """pandas' ``df.info()`` of a frame, computed by the server (``function=info``).

        Returns a dict with ``class``, ``index``, ``entries``, ``columns`` (a list of
        ``{"position", "name", "non_null", "dtype"}``), ``dtypes``, ``memory_usage_bytes``,
        ``memory_usage`` and ``text`` (the report pandas prints).
        """
        return self._value("info", path=path, type=type, pandas=PANDAS_MAJOR)

    def describe(self, path: str, include: Optional[str] = None, *,
                 type: Optional[str] = None) -> pd.DataFrame:
        """pandas' ``df.describe()`` of a frame (``function=describe``, ``orient=split``).

        ``include="all"`` adds count, unique, top and freq for non-numeric columns. The
        DataFrame is ``pd.DataFrame(data, index=index, columns=columns)`` from the server's
        answer, the server's nulls made NaN: statistics as the index (``count``, ``mean``, ...),
        the frame's columns as columns, NaN where a statistic does not apply.
        """
        value = self._value("describe", path=path, include=include, type=type, orient="split",
                            pandas=PANDAS_MAJOR)
        data = [[float("nan") if cell is None else cell for cell in row] for row in value["data"]]
        return pd.DataFrame(data, index=value["index"], columns=value["columns"])

    def head(self, path: str, n: int = 5, *, type: Optional[str] = None,
             dtype_backend: Optional[str] = None) -> pd.DataFrame:
        """The first ``n`` rows of a frame (a negative ``n``: all but the last ``-n``)."""
        return self._frame("head", dtype_backend, path=path, n=n, type=type)

    def tail(self, path: str, n: int = 5, *, type: Optional[str] = None,
             dtype_backend: Optional[str] = None) -> pd.DataFrame:
        """The last ``n`` rows of a frame (a negative ``n``: all but the first ``-n``)."""
        return self._frame("tail", dtype_backend, path=path, n=n, type=type)

    def select(self, path: str, columns: Union[Sequence[str], str, None] = None,
               where: Optional[str] = None, order_by: Union[Sequence[str], str, None] = None,
               limit: Optional[int] = None, offset: Optional[int] = None, *,
               type: Optional[str] = None,
               dtype_backend: Optional[str] = None) -> pd.DataFrame:
        """Rows and columns of a frame, computed by the server (``function=select``).

        Args:
            columns: the columns to keep, in that order (a list is sent comma-joined, so a
                column name may not contain a comma). Default: all.
            where: an SQL condition over the frame, such as ``"x > 2 AND g = 'a'"``.
            order_by: an SQL ordering, such as ``"x DESC"`` (a list is sent comma-joined).
            limit, offset: at most ``limit`` rows, after skipping ``offset``.
        """
        return self._frame("select", dtype_backend, path=path, columns=columns, where=where,
                           order_by=order_by, limit=limit, offset=offset, type=type)

    def sql(self, query: str, into: Optional[str] = None, *,
            dtype_backend: Optional[str] = None) -> Union[pd.DataFrame, Dict[str, Any]]:
        """Run one SQL ``SELECT`` over the cached frames (``function=sql``).

        Every frame is a table named by its key, quoted:
        ``SELECT g, avg(x) FROM "sales.parquet" GROUP BY g``; a frame the query names that is
        not cached is loaded first.

        Returns the result as a DataFrame; with ``into=KEY`` the result is kept by the server
        as a new cached frame instead and the server's answer is returned:
        ``{"result": "success", "path": KEY, "rows": int, "columns": int}``.
        """
        if into is not None:
            return self._value("sql", query=query, into=into)
        return self._frame("sql", dtype_backend, query=query)

    # ---- writing -----------------------------------------------------------------------

    def put(self, path: str, value: Any, *, type: Optional[str] = None) -> Dict[str, Any]:
        """Cache ``value`` under ``path`` without touching the system of record (``function=put``).

        ``value`` is serialized as ``serialize`` describes (DataFrame, pyarrow Table, dict,
        list, bytes, str); ``type`` overrides the type sent. Returns the server's answer.
        """
        body, inferred = serialize(path, value)
        return self._value("put", body=body, path=path, type=type or inferred)

    def write(self, path: str, value: Any, *, type: Optional[str] = None,
              storage: Optional[str] = None) -> Dict[str, Any]:
        """Write ``value`` to the system of record as the object ``path``, then cache it
        (``function=write``).

        Serialized as for ``put``. Returns the server's answer: ``{"result": "success",
        "bytes": int, "etag": str}``. Invalid JSON for a ``.json`` key is ``InvalidValue``
        and nothing is written.
        """
        body, inferred = serialize(path, value)
        return self._value("write", body=body, path=path, type=type or inferred, storage=storage)

    # ---- the cache ---------------------------------------------------------------------

    def update(self, path: str, storage: Optional[str] = None) -> Dict[str, Any]:
        """Revalidate a cached value with the system of record (``function=update``).

        Returns the meta answer (``"revalidated": true`` when unchanged). A key gone from the
        system of record leaves the cache and raises ``NotFound``.
        """
        return self._value("update", path=path, storage=storage)

    def delete(self, path: str) -> Dict[str, Any]:
        """Remove a key from the cache (memory and disk tier), never from the system of record.

        Returns ``{"result": "success"}``; a key not cached raises ``NotFound``.
        """
        return self._value("delete", path=path)

    def keys(self) -> List[str]:
        """The cached keys (``function=stats_cache``)."""
        return self._value("stats_cache")

    def stats(self, path: Optional[str] = None) -> Dict[str, Any]:
        """The server's telemetry (``function=cache_head``), or one key's with ``path``.

        Returns ``{"uptime_seconds", "keys", "memory": {"used_bytes", "limit_bytes"}, "disk":
        {...}, "hits", "misses", "evictions": {"memory", "disk"}, "sor_fetches", "entries":
        [{"path", "type", "bytes", "tier", "hits", "last_access"}]}``.
        """
        return self._value("cache_head", path=path)

    def objects(self, prefix: Optional[str] = None,
                storage: Optional[str] = None) -> List[Dict[str, Any]]:
        """The system of record's objects whose key starts with ``prefix``, sorted
        (``function=list``): ``[{"path", "bytes", "last_modified"}]``."""
        return self._value("list", prefix=prefix, storage=storage)

    # ---- collections and JSON documents ------------------------------------------------

    def list(self, key: str) -> AsideList:
        """The list kept by the server under ``key``: ``append``, ``pop``, ``lst[i]``,
        ``lst[a:b]``, ``len``, ... (see ``aside.AsideList``). Nothing is sent until it is
        used; the first change creates the list."""
        return AsideList(self, key)

    def set(self, key: str) -> AsideSet:
        """The set kept by the server under ``key``: ``add``, ``remove``, ``in``, ``len``,
        ``union``, ... (see ``aside.AsideSet``)."""
        return AsideSet(self, key)

    def map(self, key: str) -> AsideMap:
        """The map kept by the server under ``key``, a ``MutableMapping`` of fields to JSON
        values, with ``increment`` (see ``aside.AsideMap``)."""
        return AsideMap(self, key)

    def counter(self, key: str) -> AsideCounter:
        """The counter kept by the server under ``key``: ``increment``, ``decrement``,
        ``value`` (see ``aside.AsideCounter``)."""
        return AsideCounter(self, key)

    def json(self, key: str) -> AsideJson:
        """The JSON document under ``key``, read and edited at JSON Pointers: ``get``, ``set``,
        ``delete``, ``merge`` (see ``aside.AsideJson``)."""
        return AsideJson(self, key)

    def call(self, function: str, *, body: Optional[bytes] = None, **params: Any) -> Any:
        """Call any server function: the escape hatch for what has no method.

        Sends GET with ``params`` in the query string, or POST with ``body`` (bytes) when it is
        given. ``None`` parameters are left out, booleans sent as ``true``/``false``, lists and
        tuples comma-joined; a parameter named by a Python keyword goes through a dict:
        ``client.call("read", path="a.json", **{"return": "data"})``.

        Returns the envelope's ``value`` for an enveloped JSON answer, the parsed JSON for a
        bare JSON answer (``format=json``), else the body as ``bytes`` (``format=raw``,
        ``format=arrow``, ...). Errors raise as for every method. Like every frame method, it
        asks for the answer of the pandas this client runs with (``pandas=PANDAS_MAJOR``) unless
        ``pandas`` is given.
        """
        params.setdefault("pandas", PANDAS_MAJOR)
        response = self._send(function, params, body)
        if not self._is_json(response):
            return response.content
        doc = response.json()
        if isinstance(doc, dict) and isinstance(doc.get("return"), dict) \
                and "value" in doc["return"]:
            return doc["return"]["value"]
        return doc


def _decode_raw(kind: Optional[str], raw: bytes) -> Value:
    """A value read with format=raw, as ``read`` returns it for its type."""
    if kind == "json":
        return json.loads(raw)
    if kind in COLLECTION_TYPES:
        return decode(kind, raw)
    return raw


def _check_transport(transport: str) -> None:
    if transport not in _TRANSPORTS:
        raise ValueError(f"transport must be 'auto', 'shm' or 'http', not {transport!r}")
