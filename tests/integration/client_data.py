"""Data and helpers for the tests of the Python client (`aside` package).

The frames come from frame_data (every dtype the server maps, with nulls); what a test expects
is always what pandas or pyarrow make of the very bytes the server holds. The versioned values
at the end are written by several processes at once: each one carries its version in every
row, so a reader can tell a whole version from a torn one.
"""
from __future__ import annotations

import io
import pathlib
import random
import socket

import numpy as np
import pandas as pd

from frame_data import portable_file, read_expected, typed_feather, typed_parquet

SMALL = 50

# one frame key per format the client is asked to cover, and its bytes in the system of record
FRAME_KEYS = {
    "parquet": "typed.snappy.parquet",
    "csv": "portable.csv",
    "feather": "typed.feather",
}


def frame_file(fmt: str, n: int = SMALL) -> bytes:
    if fmt == "parquet":
        return typed_parquet(n)
    if fmt == "csv":
        return portable_file(n, "csv")
    if fmt == "feather":
        return typed_feather(n)
    raise ValueError(fmt)


def read_bytes_as(key: str, body: bytes) -> pd.DataFrame:
    """What pandas makes of `body` were it the file `key` (the reader chosen by extension)."""
    name = key.lower()
    buf = io.BytesIO(body)
    if name.endswith(".parquet"):
        return pd.read_parquet(buf)
    if name.endswith(".csv"):
        return pd.read_csv(buf, float_precision="round_trip")
    if name.endswith((".feather", ".arrow", ".ipc")) or "." not in name.rsplit("/", 1)[-1]:
        return pd.read_feather(buf)
    raise ValueError(key)


def as_read_back(df: pd.DataFrame) -> pd.DataFrame:
    """df as pandas reads it back from a parquet file it wrote: the same values, with the
    dtypes of the pandas in use (pandas 3 reads strings as its `str` dtype, pandas 2 as
    object)."""
    return pd.read_parquet(io.BytesIO(df.to_parquet()))


def sor_files(server) -> dict[str, bytes]:
    """Every file of the server's system of record: {relative path: bytes}."""
    return {p.relative_to(server.sor).as_posix(): p.read_bytes()
            for p in sorted(server.sor.rglob("*")) if p.is_file()}


def expected_frame(server, key: str) -> pd.DataFrame:
    return read_expected(pathlib.Path(server.sor) / key)


def describe_as_dict(df: pd.DataFrame) -> dict:
    """The client's describe DataFrame in the {column: {statistic: value}} shape of the JSON
    answer (NaN back to null), for frame_data.assert_describe_matches."""
    out = {}
    for col in df.columns:
        stats = {}
        for stat, value in df[col].items():
            if isinstance(value, float) and np.isnan(value):
                value = None
            elif isinstance(value, np.generic):
                value = value.item()
            stats[stat] = value
        out[col] = stats
    return out


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- versioned values for the concurrency test --------------------------------------------------

SHARED_FRAMES = ["shared/one.parquet", "shared/two.feather"]
SHARED_DOC = "shared/doc.json"
SHARED_KEYS = SHARED_FRAMES + [SHARED_DOC]
OPERATIONS = ["read_http", "read_shm", "read_auto", "put", "write", "update", "delete"]


def version_frame(v: int) -> pd.DataFrame:
    """Version v of a shared frame: its length, values and strings all depend on v."""
    rows = 300 + (v % 7) * 40
    i = np.arange(rows, dtype="int64")
    return pd.DataFrame({
        "version": np.full(rows, v, dtype="int64"),
        "i": i,
        "y": i * 0.25 + v,
        "s": pd.Series([f"v{v}-{k}" for k in range(rows)]),  # pandas' own string dtype
        "t": pd.date_range("2024-01-01", periods=rows, freq="min") + pd.Timedelta(seconds=v),
    })


def version_doc(v: int) -> dict:
    return {"version": v, "items": list(range(v % 5 + 1)), "name": f"doc {v}"}


def version_value(key: str, v: int):
    return version_doc(v) if key == SHARED_DOC else version_frame(v)


def version_of(key: str, value) -> int:
    """The version a value read back is; raises AssertionError unless it is exactly one."""
    if key == SHARED_DOC:
        assert isinstance(value, dict), (key, value)
        v = value["version"]
        assert value == version_doc(v), (key, value)
        return v
    assert isinstance(value, pd.DataFrame), (key, type(value))
    assert len(value) > 0, key
    v = int(value["version"].iloc[0])
    pd.testing.assert_frame_equal(value, version_frame(v), check_exact=True, obj=f"{key} v{v}")
    return v


def concurrent_worker(args: tuple) -> dict:
    """One client process: `iterations` operations on the shared keys, each checked.

    Returns the versions it put and wrote, how many reads took each transport, and every
    error the client raised (operation, key, transport, exception class, text): the parent
    fails on any of them, after checking the keys. A value read that is not one whole version
    raises at once."""
    import aside

    base, worker, iterations, seed = args
    rng = random.Random(seed)
    done = {"put": [], "write": [], "transports": {"shm": 0, "http": 0}, "reads": 0,
            "deletes_of_absent_keys": 0, "errors": []}
    with aside.connect(base, timeout=60) as client:
        for it in range(iterations):
            key = rng.choice(SHARED_KEYS)
            op = rng.choice(OPERATIONS)
            version = worker * 1000 + it + 1
            step = (op, key, None)
            try:
                if op.startswith("read_"):
                    transport = op[len("read_"):]
                    step = (op, key, transport)
                    value = client.read(key, transport=transport)
                    version_of(key, value)
                    done["reads"] += 1
                    if key != SHARED_DOC:
                        assert client.last_transport in ("shm", "http"), client.last_transport
                        if transport != "auto":
                            assert client.last_transport == transport, (transport,
                                                                        client.last_transport)
                        done["transports"][client.last_transport] += 1
                        transport = "shm" if it % 2 else "http"
                        step = ("read_table", key, transport)
                        table = client.read_table(key, transport=transport)
                        version_of(key, table.to_pandas())
                elif op == "put":
                    answer = client.put(key, version_value(key, version))
                    assert answer["result"] == "success", answer
                    done["put"].append((key, version))
                elif op == "write":
                    answer = client.write(key, version_value(key, version))
                    assert answer["result"] == "success", answer
                    done["write"].append((key, version))
                elif op == "update":
                    answer = client.update(key)
                    assert answer["result"] == "success", answer
                elif op == "delete":
                    try:
                        client.delete(key)
                    except aside.NotFound:
                        # another process deleted it first, and nobody has read it since
                        done["deletes_of_absent_keys"] += 1
            except aside.AsideError as exc:
                cause = exc.__cause__
                done["errors"].append((*step, type(exc).__name__, str(exc),
                                       f"{type(cause).__name__}: {cause}" if cause else None))
    return done
