"""make_corpus.py -- write the fuzzers' seed corpora, tests/fuzz/corpus/<target>/.

Run once, and again when the formats change; the outputs are committed, so fuzzing needs no
Python. Each seed is a small, meaningful input in the form its harness reads (the top of each
fuzz_<target>.c says what that is): real requests, Arrow files and streams written by pyarrow,
specs, journal records, S3 listing pages, credential files. Files are named by their content's
digest, as libFuzzer names what it adds, so writing them again changes nothing.

    .venv/bin/python tests/fuzz/make_corpus.py
"""
from __future__ import annotations

import ctypes
import hashlib
import io
import json
import struct
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.ipc as ipc

CORPUS = Path(__file__).resolve().parent / "corpus"
API = "/cache/api/v1.0/"


def write(target: str, seeds: list[bytes]) -> None:
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    for seed in seeds:
        (folder / hashlib.sha1(seed).hexdigest()).write_bytes(seed)


# ---- HTTP ---------------------------------------------------------------------------------

def request(method: str, target: str, body: bytes = b"", headers: dict | None = None,
            version: str = "1.1") -> bytes:
    lines = [f"{method} {target} HTTP/{version}", "Host: 127.0.0.1"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body and "Transfer-Encoding" not in (headers or {}):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def post(data: dict) -> bytes:
    return request("POST", API, json.dumps({"data": data}).encode(),
                   {"Content-Type": "application/json"})


def http_seeds() -> list[bytes]:
    get = lambda query: request("GET", API + "?" + query)  # noqa: E731
    seeds = [
        get("path=a.json"),
        get("function=read&path=a.json&return=meta"),
        get("function=read&path=b.txt&format=raw"),
        request("HEAD", API),
        get("function=head"),
        get("function=stats_cache"),
        get("function=list&prefix="),
        get("function=info&path=a.json"),
        get("function=update&path=a.json"),
        request("DELETE", API + "?path=a.json"),
        request("PUT", API + "?function=put&path=new.json", b'{"x": [1, 2, 3]}'),
        request("POST", API + "?function=write&path=w.txt", b"written bytes"),
        request("PUT", API + "?function=put&path=l&type=list", b"[1, 2]"),
        post({"function": "list_push", "key": "l", "value": {"a": 1}}),
        post({"function": "list_range", "key": "l", "start": 0, "stop": -1}),
        post({"function": "list_pop", "key": "l", "end": "front"}),
        post({"function": "set_add", "key": "s", "value": "x"}),
        post({"function": "set_union", "key": "s", "keys": ["s", "t"]}),
        post({"function": "map_set", "key": "m", "field": "f", "value": 1}),
        post({"function": "map_increment", "key": "m", "field": "f", "by": 2.5}),
        post({"function": "counter_increment", "key": "c", "by": 3}),
        post({"function": "json_set", "key": "d", "pointer": "", "value": {"a": [1, 2]}}),
        post({"function": "json_set", "key": "d", "pointer": "/a/-", "value": 3}),
        post({"function": "json_get", "key": "d", "pointer": "/a/0"}),
        post({"function": "json_merge", "key": "d", "patch": {"a": None, "b": {"c": 1}}}),
        post({"function": "json_delete", "key": "d", "pointer": "/b"}),
        post({"function": "expire", "key": "d", "time": 60}),
        post({"function": "ttl", "key": "d"}),
        post({"function": "pin", "key": "a.json"}),
        post({"function": "evict", "key": "a.json"}),
        get("function=spec"),
        get("function=nope"),
        # pipelined: three requests in one read
        get("path=a.json") + get("function=head") + request("DELETE", API + "?path=b.txt"),
        # a chunked body, and a body announced by Expect: 100-continue
        request("PUT", API + "?function=put&path=chunked.txt", b"5\r\nhello\r\n0\r\n\r\n",
                {"Transfer-Encoding": "chunked"}),
        request("PUT", API + "?function=put&path=e.txt", b"expected",
                {"Expect": "100-continue"}),
        # HTTP/1.0 with keep-alive, then a second request
        request("GET", API + "?path=a.json", headers={"Connection": "keep-alive"},
                version="1.0") + get("function=head"),
        request("GET", API + "?path=a.json", headers={"Authorization": "Bearer x"}),
        # malformed: a bad escape, a bad protocol name, an oversized declared body
        get("path=%zz"),
        b"GET " + API.encode() + b" HTTX/1.1\r\n\r\n",
        request("POST", API, headers={"Content-Length": "99999999999"}),
    ]
    return seeds


def params_seeds() -> list[bytes]:
    def seed(flags: int, target: str, body: bytes = b"") -> bytes:
        return bytes([flags]) + target.encode() + b"\n" + body

    GET, POST, PUT, DELETE, HEAD = 0, 2, 3, 4, 1
    return [
        seed(GET, API + "?path=a%2Fb.json&q=x+y&q=%41%00z&flag"),
        seed(GET, API + "?function=read&path=a.json&type=json&max_age=5&stale_if_error=true"),
        seed(HEAD, API + "?path=a.json"),
        seed(DELETE, "/cache?path=a.json"),
        seed(POST, API, b'{"data": {"function": "list_push", "key": "l", "value": [1, {"a": 2}]}}'),
        seed(POST, API, b'{"data": {"function": "map_increment", "key": "m", "by": 1.5}}'),
        seed(POST, API + "?function=head", b'{"data": {"path": "x.json", "n": 5}}'),
        seed(PUT, API + "?function=put&path=x.json", b'{"raw": "body"}'),
        seed(GET | 8 | 16, API + "?path=a.json"),
        seed(GET | 8, API + "?path=a.json"),
        seed(GET, API + "?path=../etc/passwd"),
        seed(GET, API + "?format=csv&orient=records&path=f.parquet"),
        seed(POST, API, b'{"data": []}'),
        seed(POST, API, b'{"data": {"path": {"nested": 1}}}'),
    ]


# ---- JSON ---------------------------------------------------------------------------------

RFC6901_DOC = {"foo": ["bar", "baz"], "": 0, "a/b": 1, "c%d": 2, "e^f": 3, "g|h": 4,
               "i\\j": 5, "k\"l": 6, " ": 7, "m~n": 8}


def json_pointer_seeds() -> list[bytes]:
    doc = json.dumps(RFC6901_DOC).encode()
    pointers = ["", "/foo", "/foo/0", "/", "/a~1b", "/c%d", "/e^f", "/g|h", "/i\\j", "/k\"l",
                "/ ", "/m~0n", "/foo/-", "/foo/01", "/~2", "/foo/99999999999999999999"]
    seeds = [p.encode() + b"\n" + doc for p in pointers]
    seeds.append(b"/a/b/c\n" + json.dumps({"a": {"b": {"c": [1, {"d": None}]}}}).encode())
    seeds.append(b"/0/1\n[[1, 2], 3]")
    seeds.append(b"/x\n\"scalar\"")
    return seeds


def merge_patch_seeds() -> list[bytes]:
    # RFC 7386, appendix A
    cases = [
        ({"a": "b"}, {"a": "c"}), ({"a": "b"}, {"b": "c"}), ({"a": "b"}, {"a": None}),
        ({"a": "b", "b": "c"}, {"a": None}), ({"a": ["b"]}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}), ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}), (["a", "b"], ["c", "d"]), ({"a": "b"}, ["c"]),
        ({"a": "foo"}, None), ({"a": "foo"}, "bar"), ({"e": None}, {"a": 1}),
        ([1, 2], {"a": "b", "c": None}), ({}, {"a": {"bb": {"ccc": None}}}),
    ]
    return [json.dumps(t).encode() + b"\n" + json.dumps(p).encode() for t, p in cases]


# ---- Arrow --------------------------------------------------------------------------------

def arrow_tables() -> list[pa.Table]:
    df = pd.DataFrame({
        "i": pd.array([1, None, 3], dtype="Int64"),
        "f": [1.5, float("nan"), -0.0],
        "s": ["a", None, "ccc"],
        "b": [True, False, None],
        "c": pd.Categorical(["x", "y", "x"]),
        "t": pd.to_datetime(["2024-01-01 00:00", "2024-06-30 12:00", None]).tz_localize("UTC"),
    })
    return [
        pa.Table.from_pandas(df),  # carries pandas metadata
        pa.table({"n": pa.array([1, 2, 3], pa.int32()), "u": pa.array([1, 2, 3], pa.uint8())}),
        pa.table({"bin": pa.array([b"\x00\x01", b"", None], pa.binary()),
                  "ls": pa.array(["x", "yy", None], pa.large_string()),
                  "d": pa.array([0, 19000, None], pa.date32()),
                  "ts": pa.array([0, 1, None], pa.timestamp("ms"))}),
        pa.table({"empty": pa.array([], pa.float64())}),
    ]


def ipc_bytes(table: pa.Table, stream: bool, compression: str | None) -> bytes:
    sink = io.BytesIO()
    options = ipc.IpcWriteOptions(compression=compression)
    writer = (ipc.new_stream if stream else ipc.new_file)(sink, table.schema, options=options)
    for batch in table.to_batches(max_chunksize=2):
        writer.write_batch(batch)
    writer.close()
    return sink.getvalue()


def arrow_seeds() -> list[bytes]:
    seeds = []
    for table in arrow_tables():
        seeds.append(ipc_bytes(table, True, None))
        seeds.append(ipc_bytes(table, False, None))
    first = arrow_tables()[0]
    seeds.append(ipc_bytes(first, True, "lz4"))
    seeds.append(ipc_bytes(first, False, "zstd"))
    sink = io.BytesIO()
    feather.write_feather(first, sink)  # Feather v2, LZ4 by default
    seeds.append(sink.getvalue())
    seeds.append(first.schema.serialize().to_pybytes())  # a bare Schema message
    return seeds


# ---- the spec -----------------------------------------------------------------------------

SPEC_FULL = """\
version: 1
preload_threads: 4
defaults:
  storage: sd
  preload: true
datasets:
  - key: sales/2024.parquet
    type: frame
    columns: {region: object, amount: float64, day: "datetime64[ns]"}
    ttl: 1h
    pin: true
    preload: true
    revalidate: 10m
  - glob: "logs/*.json"
  - prefix: raw/2024/
views:
  - name: reports/totals.parquet
    query: SELECT region, sum(amount) AS total FROM "sales/2024.parquet" GROUP BY region
functions:
  - frame_summary
  - {name: clean, storage: s3}
"""


def spec_seeds() -> list[str]:
    return [s.encode() for s in [
        SPEC_FULL,
        "version: 1\n",
        "version: 1\ndatasets:\n  - key: a.json\n    type: json\n    ttl: 30s\n",
        "version: 1\ndatasets:\n  - glob: 'x/*.csv'\n    columns:\n      t: datetime64[ns, UTC]\n",
        "version: 1\ndatasets: &d\n  - prefix: p/\nviews: *d\n",
        "version: 2\n",
        "version: 1\nunknown: field\n",
        "version: 1\ndatasets:\n  - key: a\n    key: b\n",
        "version: 1\nfunctions: [a, {name: b}]\n",
        "- [unbalanced\n",
    ]]


# ---- the journal --------------------------------------------------------------------------

def xxh3(payload: bytes) -> int:
    lib = ctypes.CDLL("libxxhash.so.0")
    lib.XXH3_64bits.restype = ctypes.c_uint64
    lib.XXH3_64bits.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
    return lib.XXH3_64bits(payload, len(payload))


def framed(payloads: list[bytes]) -> bytes:
    return b"".join(struct.pack("<IIQ", 0x314A5341, len(p), xxh3(p)) + p for p in payloads)


JOURNAL_RECORDS = [
    {"k": "l", "o": "list_push", "a": {"value": [1, {"a": 2}]}},
    {"k": "l", "o": "list_pop", "a": {"end": "front"}},
    {"k": "s", "o": "set_add", "a": {"value": "x"}},
    {"k": "m", "o": "map_set", "a": {"field": "f", "value": {"nested": True}}},
    {"k": "m", "o": "map_increment", "a": {"field": "n", "by": 2}},
    {"k": "c", "o": "counter_increment", "a": {"by": 5}},
    {"k": "d", "o": "json_set", "a": {"pointer": "", "value": {"a": [1, 2]}}},
    {"k": "d", "o": "json_merge", "a": {"patch": {"b": 1, "a": None}}},
    {"k": "d", "o": "json_delete", "a": {"pointer": "/b"}},
    {"k": "l", "o": "expire_at", "a": 4102444800000},
    {"k": "s", "o": "del"},
    {"k": "snap", "t": "list", "v": [1, 2, 3], "x": 0},
    {"k": "snapm", "t": "map", "v": {"a": 1}, "x": 0},
    {"k": "snapd", "t": "json", "v": {"doc": ["x"]}, "x": 0},
]


def whole_cache(seed: bytes) -> bytes:
    """seed with bytes appended (a record cut short, which replay drops) so that its XXH3 is 0
    modulo 128: fuzz_journal opens a whole cache on it."""
    for nonce in range(1 << 20):
        candidate = seed + nonce.to_bytes(4, "little")
        if xxh3(candidate) % 128 == 0:
            return candidate
    raise RuntimeError("no nonce found")


def journal_seeds() -> list[bytes]:
    lines = [json.dumps(r).encode() for r in JOURNAL_RECORDS]
    whole = framed(lines)
    return [
        b"\x00" + b"\n".join(lines),            # payloads, framed by the harness
        b"\x00" + lines[0],
        b"\x00" + b"\n".join(lines[6:9]),
        b"\x00not json\n{}\n{\"k\": 1}",
        b"\x01" + whole,                        # the file as it is
        b"\x01" + whole[:-5],                   # a record cut short
        b"\x01" + whole[:20] + b"\xff" + whole[21:],  # a damaged checksum region
        whole_cache(b"\x01" + whole),  # the same file, through a whole cache (slow: one seed)
    ]


# ---- S3 -----------------------------------------------------------------------------------

def listing(contents: list[tuple[str, int, str]], truncated: bool, token: str = "") -> bytes:
    items = "".join(
        f"<Contents><Key>{k}</Key><LastModified>{m}</LastModified><ETag>&quot;abc&quot;</ETag>"
        f"<Size>{s}</Size><StorageClass>STANDARD</StorageClass></Contents>"
        for k, s, m in contents)
    more = f"<NextContinuationToken>{token}</NextContinuationToken>" if token else ""
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws'
            f'.com/doc/2006-03-01/"><Name>bucket</Name><Prefix>data/</Prefix><KeyCount>'
            f"{len(contents)}</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>"
            f"{'true' if truncated else 'false'}</IsTruncated>{items}{more}"
            f"</ListBucketResult>").encode()


def s3_list_seeds() -> list[bytes]:
    when = "2024-05-01T12:34:56.000Z"
    return [
        listing([("data/a.json", 12, when), ("data/sub/b.parquet", 4096, when)], False),
        listing([("data/dir/", 0, when), ("data/x &amp; y.txt", 3, when)], True, "tok/en=="),
        listing([("other/outside.json", 1, when), ("data/../up", 1, when)], False),
        listing([], True),  # truncated without a token: an error
        listing([("data/" + "k" * 1100, 1, when)], False),
        b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>",
    ]


# ---- credentials --------------------------------------------------------------------------

def credentials_seeds() -> list[bytes]:
    shared = (b"# comment\n[default]\naws_access_key_id = AKIDEXAMPLE\n"
              b"aws_secret_access_key=wJalrXUtnFEMI/K7MDENG\naws_session_token = tok\n"
              b"[dev]\naws_access_key_id=AKIDDEV\naws_secret_access_key=devsecret\n")
    config = (b"[default]\nregion = us-east-1\n; other\n[profile dev]\n"
              b"aws_access_key_id=AKIDCONF\naws_secret_access_key = confsecret\n")
    temporary = {"AccessKeyId": "ASIA123", "SecretAccessKey": "secret", "Token": "session",
                 "Expiration": "2030-01-01T00:00:00Z", "Code": "Success"}
    return [
        b"\x00" + shared,
        b"\x04" + shared,
        b"\x02" + config,
        b"\x00[default\naws_access_key_id\n=\n",
        b"\x01" + json.dumps(temporary).encode(),
        b"\x01" + json.dumps({"AccessKeyId": "A", "SecretAccessKey": ""}).encode(),
    ]


def main() -> None:
    write("http", http_seeds())
    write("params", params_seeds())
    write("json_pointer", json_pointer_seeds())
    write("merge_patch", merge_patch_seeds())
    write("arrow", arrow_seeds())
    write("spec", spec_seeds())
    write("journal", journal_seeds())
    write("s3_list", s3_list_seeds())
    write("credentials", credentials_seeds())


if __name__ == "__main__":
    main()
