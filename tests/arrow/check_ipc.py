"""pyarrow's side of the Arrow IPC tests (tests/arrow/test_arrow.c runs it).

    check_ipc.py dump PATH OUT.json   read an Arrow IPC file or stream with pyarrow and write
                                      what it holds as canonical JSON (below)
    check_ipc.py write DIR            write files for the C decoder to read, each NAME.arrow
                                      (or .arrows, .feather) with NAME.json describing it

Canonical values, the same rules as the C test's: null as null; booleans, integers and floats
as themselves, except uint64 as a decimal string; strings as strings; binary as lower-case hex;
date32 as days; timestamps as their int64 count of the unit; decimals as fixed-point strings;
categoricals (dictionary arrays) as their category strings.
"""
from __future__ import annotations

import base64
import decimal
import json
import pathlib
import sys
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq


def canonical(column: pa.ChunkedArray) -> list[Any]:
    """The column's values under the canonical rules."""
    t = column.type
    if pa.types.is_dictionary(t):
        return column.to_pylist()
    if pa.types.is_timestamp(t):
        return column.cast(pa.int64()).to_pylist()
    if pa.types.is_date32(t):
        return column.cast(pa.int32()).to_pylist()
    values = column.to_pylist()
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return [None if v is None else v.hex() for v in values]
    if pa.types.is_decimal(t):
        return [None if v is None else format(v, "f") for v in values]
    if pa.types.is_uint64(t):
        return [None if v is None else str(v) for v in values]
    return values


def describe(table: pa.Table) -> dict[str, Any]:
    """Names, types, null counts and canonical values of a table."""
    meta = table.schema.metadata or {}
    return {
        "names": table.column_names,
        "types": [str(f.type) for f in table.schema],
        "null_counts": [c.null_count for c in table.columns],
        "columns": [canonical(c) for c in table.columns],
        "num_rows": table.num_rows,
        "pandas": meta[b"pandas"].decode() if b"pandas" in meta else None,
    }


def read_any(path: pathlib.Path) -> tuple[str, pa.Table, int]:
    """The table in an IPC file or stream, which of the two it was, and its batch count."""
    data = path.read_bytes()
    if data[:6] == b"ARROW1":
        reader = pa.ipc.open_file(pa.BufferReader(data))
        batches = [reader.get_batch(i) for i in range(reader.num_record_batches)]
        return "file", pa.Table.from_batches(batches, schema=reader.schema), len(batches)
    reader = pa.ipc.open_stream(pa.BufferReader(data))
    batches = list(reader)
    return "stream", pa.Table.from_batches(batches, schema=reader.schema), len(batches)


def dump(path: pathlib.Path, out: pathlib.Path) -> None:
    """Read path with pyarrow (and pandas) and write its description to out."""
    kind, table, batch_count = read_any(path)
    table.validate(full=True)
    info = describe(table)
    info["format"] = kind
    info["batches"] = batch_count
    df = table.to_pandas()
    info["dtypes"] = [str(dt) for dt in df.dtypes]
    if isinstance(df.index, pd.RangeIndex):
        info["index"] = {"start": df.index.start, "step": df.index.step, "name": df.index.name}
    else:
        info["index"] = None
    out.write_text(json.dumps(info))


def every_type_table() -> pa.Table:
    """A table of every type the decoder reads, nulls, empty and multi-byte strings included."""
    categories = pa.array(["b", "a", None, "c", "a", "b", "a"]).dictionary_encode()
    many = pa.DictionaryArray.from_arrays(
        pa.array([0, 199, None, 5, 100, 150, 1], pa.int32()),
        pa.array([f"category {i:03d}" for i in range(200)]))
    unsigned_codes = pa.DictionaryArray.from_arrays(
        pa.array([1, 0, 1, None, 0, 0, 1], pa.uint16()), pa.array(["no", "yes"]))
    large_categories = pa.DictionaryArray.from_arrays(
        pa.array([0, 1, 0, 1, 0, 1, None], pa.int64()),
        pa.array(["x", "ÿ"], pa.large_string()))
    return pa.table({
        "b": pa.array([True, False, None, True, False, True, None]),
        "i8": pa.array([-128, 127, None, 0, 1, -1, 5], pa.int8()),
        "i16": pa.array([-32768, 32767, None, 0, 1, -1, 5], pa.int16()),
        "i32": pa.array([-2**31, 2**31 - 1, None, 0, 1, -1, 5], pa.int32()),
        "i64": pa.array([-2**63, 2**63 - 1, None, 0, 1, -1, 5], pa.int64()),
        "u8": pa.array([0, 255, None, 1, 2, 3, 4], pa.uint8()),
        "u16": pa.array([0, 65535, None, 1, 2, 3, 4], pa.uint16()),
        "u32": pa.array([0, 2**32 - 1, None, 1, 2, 3, 4], pa.uint32()),
        "u64": pa.array([0, 2**64 - 1, None, 1, 2, 3, 4], pa.uint64()),
        "f32": pa.array([1.5, -2.25, None, 0.0, 1e10, -0.5, 3.0], pa.float32()),
        "f64": pa.array([3.141592653589793, 1e300, None, -0.0, 2.5, -1e-300, 7.0]),
        "s": pa.array(["a", "", None, "héllo", "日本語", "emoji 😀", "x"]),
        "ls": pa.array(["long", "", None, "ünï", "b", "c", "d"], pa.large_string()),
        "bin": pa.array([b"\x00\x01", b"", None, b"\xff", b"abc", b"\x80", b"z"]),
        "lbin": pa.array([b"q", b"", None, b"\x00", b"r", b"s", b"t"], pa.large_binary()),
        "d": pa.array([0, 19000, None, -1, 1, 2, 3], pa.date32()),
        "ts_s": pa.array([0, 1, None, -1, 2, 3, 4], pa.timestamp("s")),
        "ts_ms": pa.array([0, 1700000000123, None, -1, 2, 3, 4], pa.timestamp("ms", "UTC")),
        "ts_us": pa.array([0, 1700000000123456, None, -1, 2, 3, 4], pa.timestamp("us")),
        "ts_ns": pa.array([0, 1700000000123456789, None, -1, 2, 3, 4],
                          pa.timestamp("ns", "America/New_York")),
        "dec": pa.array([None if v is None else decimal.Decimal(v) for v in
                         ["123.45", "-0.05", None, "0.00", "99999999.99", "1.00", "-1.10"]],
                        pa.decimal128(10, 2)),
        "cat": categories,
        "many": many,
        "ucodes": unsigned_codes,
        "lcat": large_categories,
    })


def pandas_frame() -> pd.DataFrame:
    """A DataFrame whose pandas metadata matters: a RangeIndex, extension dtypes, a category."""
    df = pd.DataFrame({
        "n": pd.array([1, None, 3, 4], dtype="Int64"),
        "flag": pd.array([True, None, False, True], dtype="boolean"),
        "color": pd.Categorical(["red", "blue", None, "red"], categories=["blue", "red"],
                                ordered=True),
        "when": pd.to_datetime(["2024-01-01 00:00", None, "2024-03-01 12:00",
                                "2024-12-31 00:00"]).tz_localize("America/New_York"),
    }, index=pd.RangeIndex(10, 18, 2, name="row"))
    return df


def write_case(out: pathlib.Path, name: str, table: pa.Table, writer) -> None:
    """Write table with writer into out/name and its description into out/<stem>.json."""
    path = out / name
    writer(table, path)
    (out / (path.stem + ".json")).write_text(json.dumps(describe(table)))


def ipc_stream(options: pa.ipc.IpcWriteOptions | None = None, chunk: int = 3):
    def write(table: pa.Table, path: pathlib.Path) -> None:
        with pa.ipc.new_stream(path, table.schema, options=options) as w:
            w.write_table(table, max_chunksize=chunk)
    return write


def ipc_file(chunk: int = 3):
    def write(table: pa.Table, path: pathlib.Path) -> None:
        with pa.ipc.new_file(path, table.schema) as w:
            w.write_table(table, max_chunksize=chunk)
    return write


def feather_file(compression: str):
    def write(table: pa.Table, path: pathlib.Path) -> None:
        feather.write_feather(table, path, compression=compression, chunksize=4)
    return write


def write(out: pathlib.Path) -> None:
    """Every file the C decoder is tested on."""
    table = every_type_table()
    write_case(out, "stream.arrows", table, ipc_stream())
    write_case(out, "stream_zstd.arrows", table,
               ipc_stream(pa.ipc.IpcWriteOptions(compression="zstd")))
    write_case(out, "file.arrow", table, ipc_file())
    for compression in ("uncompressed", "lz4", "zstd"):
        write_case(out, f"feather_{compression}.feather", table, feather_file(compression))
    write_case(out, "empty.arrow", table.slice(0, 0), ipc_file())
    write_case(out, "empty_stream.arrows", table.slice(0, 0), ipc_stream())

    df_table = pa.Table.from_pandas(pandas_frame())
    write_case(out, "pandas.feather", df_table, feather_file("uncompressed"))
    pq.write_table(df_table, out / "pandas.parquet")
    kv = pq.ParquetFile(out / "pandas.parquet").metadata.metadata
    (out / "schema.bin").write_bytes(base64.b64decode(kv[b"ARROW:schema"]))

    nested = pa.table({"ok": pa.array([1, 2]), "items": pa.array([[1], [2, 3]])})
    write_case(out, "list.arrow", nested, ipc_file())
    halves = pa.table({"h": pa.array([1, 2], pa.float16())})
    write_case(out, "float16.arrow", halves, ipc_file())


def main(argv: list[str]) -> int:
    if len(argv) == 4 and argv[1] == "dump":
        dump(pathlib.Path(argv[2]), pathlib.Path(argv[3]))
        return 0
    if len(argv) == 3 and argv[1] == "write":
        write(pathlib.Path(argv[2]))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
