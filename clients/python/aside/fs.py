"""fs -- an fsspec file system over the aside server: ``aside://<key>`` URLs.

With it, every library that opens files through fsspec reads through the cache:
``pd.read_parquet("aside://file1.snappy.parquet")``, ``pd.read_csv("aside://x.csv")``,
``fsspec.open("aside://file2.json")``. The part after ``aside://`` is the key; the server is
chosen by the options ``url`` (or ``aside_url``: pandas hands its ``storage_options`` to
``fsspec.core.url_to_fs(url, ...)``, whose own first parameter is named ``url``) and
``token``, by default ``ASIDE_URL`` or ``http://127.0.0.1:5000``.

A file is the value's bytes exactly as in the system of record (``read`` with
``format=raw``): fetched whole into memory when opened, from the cache, or from the system of
record on a miss (cache-aside). The server is not a seekable store: reading whole values is
what it is built for, and parquet readers' ranged reads are then served from local memory.
A file opened for writing ("wb") is buffered in memory and written on close with ``write``,
through to the system of record and into the cache; if the ``with`` block raises, nothing is
written.

Folders are the system of record's: ``ls`` lists it (``function=list``), and a folder exists
when some key starts with ``<folder>/``. ``rm`` is refused: fsspec's rm removes the object
from storage, which the server never does, and removing the cached copy only is
``Client.delete``.

Importing this module registers the protocol with fsspec; an installed package also
registers it through the ``fsspec.specs`` entry point, so ``import aside.fs`` is not needed
there.
"""

from __future__ import annotations

import io
from typing import Any, Dict, List, Optional, Union

import fsspec
from fsspec.spec import AbstractFileSystem
from fsspec.utils import stringify_path

from .client import Client
from .errors import Conflict, NotFound

__all__ = ["AsideFileSystem"]


class AsideFileSystem(AbstractFileSystem):
    """fsspec file system whose files are the values of an aside server.

    Args:
        url: the server (see ``aside.connect``); default ``ASIDE_URL``, else
            ``http://127.0.0.1:5000``.
        aside_url: the same as ``url``, for callers that pass options through
            ``fsspec.core.url_to_fs(url, **options)``, where ``url`` is taken: pandas'
            ``read_parquet`` and ``to_parquet`` do, so there it is
            ``storage_options={"aside_url": ...}``.
        token: bearer token sent with every request.
        timeout: seconds per request.

    Attributes:
        client: the ``aside.Client`` used for every request.
    """

    protocol = "aside"
    root_marker = ""

    def __init__(self, url: Optional[str] = None, token: Optional[str] = None,
                 timeout: float = 60, aside_url: Optional[str] = None,
                 **storage_options: Any) -> None:
        super().__init__(url=url, token=token, timeout=timeout, aside_url=aside_url,
                         **storage_options)
        self.client = Client(url or aside_url, token, timeout=timeout)

    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        """The key: without ``aside://`` (or ``aside::``) and without leading or trailing /."""
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        path = stringify_path(path)
        for prefix in ("aside://", "aside::"):
            if path.startswith(prefix):
                path = path[len(prefix):]
                break
        return path.strip("/")

    # ---- reading -----------------------------------------------------------------------

    def _raw(self, path: str) -> bytes:
        try:
            return self.client._send("read", {"path": path, "format": "raw"}).content
        except (NotFound, Conflict) as exc:
            raise FileNotFoundError(path) from exc

    def cat_file(self, path: str, start: Optional[int] = None, end: Optional[int] = None,
                 **kwargs: Any) -> bytes:
        """The value's bytes, or the slice ``[start:end]`` of them."""
        data = self._raw(self._strip_protocol(path))
        return data[start:end] if start is not None or end is not None else data

    def _open(self, path: str, mode: str = "rb", block_size: Any = None,
              autocommit: bool = True, cache_options: Any = None,
              **kwargs: Any) -> io.BytesIO:
        path = self._strip_protocol(path)
        if mode == "rb":
            return _ReadFile(self, path, self._raw(path))
        if mode == "wb":
            return _WriteFile(self, path)
        raise NotImplementedError(f"aside files open as 'rb' or 'wb', not {mode!r}")

    def info(self, path: str, **kwargs: Any) -> Dict[str, Any]:
        """``{"name", "size", "type"}``: a file from the value's meta (``read`` with
        ``return=meta``, which caches the value on a miss), else a folder if some key of the
        system of record starts with ``<path>/``, else ``FileNotFoundError``."""
        path = self._strip_protocol(path)
        if path:
            try:
                meta = self.client._value("read", path=path, **{"return": "meta"})
                return {"name": path, "size": meta.get("bytes"), "type": "file",
                        "value_type": meta.get("type")}
            except (NotFound, Conflict):
                pass
        if not path or self.client.objects(prefix=path + "/"):
            return {"name": path, "size": 0, "type": "directory"}
        raise FileNotFoundError(path)

    def exists(self, path: str, **kwargs: Any) -> bool:
        """True if ``info`` finds a file or folder. Errors other than "not found" raise."""
        try:
            self.info(path)
            return True
        except FileNotFoundError:
            return False

    def ls(self, path: str, detail: bool = True,
           **kwargs: Any) -> Union[List[Dict[str, Any]], List[str]]:
        """The files and folders directly under ``path`` in the system of record; for a file,
        that file. Files carry ``size`` and ``last_modified``."""
        path = self._strip_protocol(path)
        prefix = path + "/" if path else ""
        entries: List[Dict[str, Any]] = []
        folders: Dict[str, Dict[str, Any]] = {}
        for obj in self.client.objects(prefix=path or None):
            key = obj["path"]
            if key == path:
                entries = [_file_entry(obj)]
                folders = {}
                break
            if not key.startswith(prefix):
                continue
            child, sep, _ = key[len(prefix):].partition("/")
            if sep:
                name = prefix + child
                folders.setdefault(name, {"name": name, "size": 0, "type": "directory"})
            else:
                entries.append(_file_entry(obj))
        entries.extend(folders.values())
        if not entries and path:
            raise FileNotFoundError(path)
        entries.sort(key=lambda e: e["name"])
        return entries if detail else [e["name"] for e in entries]

    # ---- writing -----------------------------------------------------------------------

    def pipe_file(self, path: str, value: bytes, mode: str = "overwrite", **kwargs: Any) -> None:
        """Write ``value`` as the object ``path`` (``write``: the system of record, then the
        cache)."""
        self.client.write(self._strip_protocol(path), bytes(value))

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        """Nothing to do: folders exist by the keys under them."""

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        """Nothing to do: folders exist by the keys under them."""

    def rm(self, path: Any, recursive: bool = False, maxdepth: Optional[int] = None) -> None:
        """Refused: the server never deletes from the system of record."""
        raise NotImplementedError(
            "aside does not delete from the system of record; to drop only the cached copy, "
            "use AsideFileSystem.client.delete(key)")

    def rm_file(self, path: Any) -> None:
        """Refused, as ``rm``."""
        self.rm(path)

    def _rm(self, path: Any) -> None:
        self.rm(path)


def _file_entry(obj: Dict[str, Any]) -> Dict[str, Any]:
    return {"name": obj["path"], "size": obj.get("bytes"), "type": "file",
            "last_modified": obj.get("last_modified")}


class _ReadFile(io.BytesIO):
    """A value's bytes, read whole."""

    def __init__(self, fs: AsideFileSystem, path: str, data: bytes) -> None:
        super().__init__(data)
        self.fs = fs
        self.path = path
        self.size = len(data)


class _WriteFile(io.BytesIO):
    """Buffered in memory; written through to the system of record on close, unless the
    ``with`` block that holds it raised."""

    def __init__(self, fs: AsideFileSystem, path: str) -> None:
        super().__init__()
        self.fs = fs
        self.path = path
        self._discard = False

    def close(self) -> None:
        if self.closed:
            return
        try:
            if not self._discard:
                self.fs.client.write(self.path, self.getvalue())
        finally:
            super().close()

    def discard(self) -> None:
        """Close without writing."""
        self._discard = True
        self.close()

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is not None:
            self._discard = True
        self.close()


fsspec.register_implementation("aside", AsideFileSystem, clobber=True)
