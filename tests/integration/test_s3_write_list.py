"""function=write (object to the SOR, then into the cache) and function=list, over S3 and sd."""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import stat
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.register_assert_rewrite("s3_fixtures")

from helpers import (assert_error, assert_nothing_cached, cached_keys, disk_tmp_files,  # noqa: E402
                      disk_values, put_sor, telemetry)
from s3_fixtures import read_raw  # noqa: E402

pytest_plugins = ["s3_fixtures"]

MiB = 1024 * 1024


def write(server, key, body: bytes, method="POST", **params):
    return server.call(method, params={"function": "write", "path": key, **params}, data=body,
                       headers={"Content-Type": "application/octet-stream"}, timeout=60)


def written(r, size) -> dict:
    assert r.status_code == 200, (r.status_code, r.text)
    v = r.json()["return"]["value"]
    assert v["result"] == "success" and v["bytes"] == size, v
    return v


def same_etag(a: str, b: str) -> bool:
    return a.strip('"') == b.strip('"')


# -- write to S3 -----------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_write_puts_the_body_to_s3_and_the_cache_serves_it_without_a_fetch(s3, s3_server,
                                                                          method):
    body = os.urandom(3000) + b"\x00\r\n"
    v = written(write(s3_server, "out/dir/w.bin", body, method), len(body))
    assert s3.get("out/dir/w.bin") == body
    assert s3.keys() == [s3.full("out/dir/w.bin")]
    assert same_etag(v["etag"], s3.etag("out/dir/w.bin"))
    status, got, source = read_raw(s3_server, "out/dir/w.bin")
    assert (status, got) == (200, body) and source in ("memory", "disk")
    assert (s3_server.cache / "out" / "dir" / "w.bin").read_bytes() == body
    assert telemetry(s3_server)["misses"] == 0


def test_write_replaces_a_cached_value_in_s3_and_in_the_cache(s3, s3_server):
    s3.put("doc.json", '{"v": 1}')
    assert read_raw(s3_server, "doc.json")[:2] == (200, b'{"v": 1}')
    new = b'{"v": 2, "list": [1, 2, 3]}'
    written(write(s3_server, "doc.json", new), len(new))
    assert s3.get("doc.json") == new
    r = s3_server.get(path="doc.json", **{"return": "data"})
    assert r.json()["return"]["value"] == {"v": 2, "list": [1, 2, 3]}
    assert r.headers.get("X-Aside-Source", "memory") != "sor"
    s3_server.restart()
    assert read_raw(s3_server, "doc.json") == (200, new, "disk")


def test_write_body_that_looks_like_an_api_envelope_is_stored_verbatim(s3, s3_server):
    body = json.dumps({"data": {"function": "delete", "path": "other.json"}}).encode()
    written(write(s3_server, "envelope.json", body), len(body))
    assert s3.get("envelope.json") == body
    assert read_raw(s3_server, "envelope.json")[:2] == (200, body)


def test_write_above_the_threshold_is_a_multipart_upload_equal_to_the_body(s3, proxied,
                                                                          fault_proxy):
    server = proxied(ASIDE_S3_MULTIPART_THRESHOLD="5MiB", ASIDE_S3_PART_SIZE="5MiB")
    body = os.urandom(12 * MiB)
    v = written(write(server, "big/upload.bin", body), len(body))
    assert s3.get("big/upload.bin") == body
    etag = s3.etag("big/upload.bin")
    assert etag.strip('"').endswith("-3"), etag     # S3's multipart ETag: 3 parts
    assert same_etag(v["etag"], etag)
    seen = fault_proxy.requests(key="big/upload.bin")
    assert any(s.method == "POST" and "uploads" in s.query for s in seen)
    parts = [s for s in seen if s.method == "PUT" and "partNumber=" in s.query]
    assert sorted(s.body_len for s in parts) == [2 * MiB, 5 * MiB, 5 * MiB]
    assert any(s.method == "POST" and "uploadId=" in s.query for s in seen)
    status, got, source = read_raw(server, "big/upload.bin")
    assert (status, got == body, source in ("memory", "disk")) == (200, True, True)


def test_write_below_the_threshold_is_a_single_put(s3, proxied, fault_proxy):
    server = proxied(ASIDE_S3_MULTIPART_THRESHOLD="5MiB", ASIDE_S3_PART_SIZE="5MiB")
    body = os.urandom(MiB)
    written(write(server, "one.bin", body), len(body))
    seen = fault_proxy.requests(key="one.bin")
    puts = [s for s in seen if s.method == "PUT"]
    assert len(puts) == 1 and puts[0].query == "" and puts[0].body_len == len(body)
    assert not [s for s in seen if s.method == "POST"]
    assert s3.get("one.bin") == body


def test_write_of_invalid_json_is_422_and_changes_neither_s3_nor_the_cache(s3, s3_server):
    s3.put("cfg.json", '{"good": true}')
    assert read_raw(s3_server, "cfg.json")[0] == 200
    assert_error(write(s3_server, "cfg.json", b'{"good": tru'), 422)
    assert_error(write(s3_server, "fresh.json", b"not json"), 422)
    assert s3.get("cfg.json") == b'{"good": true}'
    assert s3.head("fresh.json") is None
    assert read_raw(s3_server, "cfg.json") == (200, b'{"good": true}', "memory")
    assert cached_keys(s3_server) == ["cfg.json"]
    assert disk_values(s3_server) == ["cfg.json"] and disk_tmp_files(s3_server) == []


@pytest.mark.parametrize("status,code,expect", [
    (403, "AccessDenied", 403),
    (500, "InternalError", 502),
])
def test_a_failed_put_changes_neither_s3_nor_the_cache(s3, proxied, fault_proxy, status, code,
                                                      expect):
    s3.put("kept.json", '{"kept": 1}')
    server = proxied(ASIDE_S3_MAX_ATTEMPTS="2")
    assert read_raw(server, "kept.json")[0] == 200
    fault_proxy.fail("status", method="PUT", status=status, times=1000)
    err = assert_error(write(server, "kept.json", b'{"kept": 2}'), expect)
    if expect == 403:
        assert err["code"] == code
    assert_error(write(server, "never.bin", b"never"), expect)
    assert len(fault_proxy.requests("PUT", "never.bin")) == (1 if status == 403 else 2)
    fault_proxy.clear()
    assert s3.get("kept.json") == b'{"kept": 1}'
    assert s3.head("never.bin") is None
    assert read_raw(server, "kept.json") == (200, b'{"kept": 1}', "memory")
    assert cached_keys(server) == ["kept.json"]
    assert disk_values(server) == ["kept.json"] and disk_tmp_files(server) == []


def test_a_multipart_upload_that_fails_midway_leaves_no_object_and_nothing_cached(
        s3, proxied, fault_proxy):
    server = proxied(ASIDE_S3_MULTIPART_THRESHOLD="5MiB", ASIDE_S3_PART_SIZE="5MiB",
                     ASIDE_S3_MAX_ATTEMPTS="2")
    fault_proxy.fail("status", method="PUT", status=500, times=1000, skip=1)
    r = write(server, "mp-fail.bin", os.urandom(11 * MiB))
    assert r.status_code == 502, r.text
    assert s3.head("mp-fail.bin") is None
    # the upload was aborted: no incomplete multipart upload left to pay for
    assert s3.client.list_multipart_uploads(Bucket=s3.bucket).get("Uploads", []) == []
    assert_nothing_cached(server)


def test_write_with_storage_sd_writes_the_file_into_remote_storage(make_server):
    server = make_server(env={"AWS_EC2_METADATA_DISABLED": "true"})
    body = b"local " * 1000
    written(write(server, "sub/dir/local.bin", body, storage="sd"), len(body))
    assert (server.sor / "sub" / "dir" / "local.bin").read_bytes() == body
    # written atomically: no temporary file left next to it
    assert sorted(p.relative_to(server.sor).as_posix()
                  for p in server.sor.rglob("*") if p.is_file()) == ["sub/dir/local.bin"]
    status, got, source = read_raw(server, "sub/dir/local.bin")
    assert (status, got) == (200, body) and source in ("memory", "disk")
    # the default storage without a bucket is sd too
    written(write(server, "plain.json", b'{"sd": 1}'), 9)
    assert (server.sor / "plain.json").read_bytes() == b'{"sd": 1}'


def test_a_written_file_has_the_mode_a_new_file_gets_or_the_mode_it_replaces(make_server):
    server = make_server(env={"AWS_EC2_METADATA_DISABLED": "true"})
    mask = os.umask(0)
    os.umask(mask)
    written(write(server, "new.bin", b"new", storage="sd"), 3)
    assert stat.S_IMODE((server.sor / "new.bin").stat().st_mode) == 0o666 & ~mask
    put_sor(server, "kept.bin", b"old")
    (server.sor / "kept.bin").chmod(0o640)
    written(write(server, "kept.bin", b"newer", storage="sd"), 5)
    assert stat.S_IMODE((server.sor / "kept.bin").stat().st_mode) == 0o640


def test_write_with_storage_sd_and_invalid_json_leaves_remote_storage_alone(make_server):
    server = make_server(env={"AWS_EC2_METADATA_DISABLED": "true"})
    put_sor(server, "x.json", '{"x": 1}')
    assert_error(write(server, "x.json", b"{oops", storage="sd"), 422)
    assert (server.sor / "x.json").read_bytes() == b'{"x": 1}'
    assert [p.name for p in server.sor.rglob("*")] == ["x.json"]
    assert_nothing_cached(server)


def test_write_with_storage_s3_without_a_bucket_is_400(make_server):
    server = make_server(env={"AWS_EC2_METADATA_DISABLED": "true"})
    assert_error(write(server, "x.bin", b"x", storage="s3"), 400)
    assert list(server.sor.rglob("*")) == []
    assert_nothing_cached(server)


# -- list -------------------------------------------------------------------------------------------

def listing(server, **params) -> list:
    r = server.get(function="list", **params)
    assert r.status_code == 200, (r.status_code, r.text)
    value = r.json()["return"]["value"]
    assert isinstance(value, list), value
    return value


TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


def parse_time(text: str) -> dt.datetime:
    assert TIME.fullmatch(text), text
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_list_gives_the_objects_under_the_data_dir_sorted_with_sizes_and_times(make_server, s3):
    s3.prefix = "data"   # no trailing slash: must not list "database/..."
    objects = {"b.json": b"{}", "a/x.bin": b"x" * 10, "a/y/z.txt": b"zzz", "a.txt": b""}
    for key, raw in objects.items():
        s3.put(key, raw)
    s3.put("evil.json", b"[]", prefix="database/")
    s3.put("root.json", b"[]", prefix="")
    server = make_server(env=s3.env())
    value = listing(server)
    assert [e["path"] for e in value] == sorted(objects)
    truth = {o["Key"]: o for o in s3.client.list_objects_v2(Bucket=s3.bucket)["Contents"]}
    for e in value:
        assert e["bytes"] == len(objects[e["path"]])
        when = parse_time(e["last_modified"])
        assert abs((when - truth["data/" + e["path"]]["LastModified"]).total_seconds()) < 2
    assert cached_keys(server) == []          # listing loads nothing


def test_list_with_a_prefix_lists_only_the_keys_under_it(s3, s3_server):
    for key in ("a/x.bin", "a/y/z.txt", "ab.txt", "b.json"):
        s3.put(key, b"1")
    assert [e["path"] for e in listing(s3_server, prefix="a/")] == ["a/x.bin", "a/y/z.txt"]
    assert [e["path"] for e in listing(s3_server, prefix="a/y/")] == ["a/y/z.txt"]
    assert listing(s3_server, prefix="nothing/") == []
    r = s3_server.post({"function": "list", "prefix": "a/"})
    assert [e["path"] for e in r.json()["return"]["value"]] == ["a/x.bin", "a/y/z.txt"]


def test_list_of_an_empty_data_dir_is_an_empty_list(s3, s3_server):
    s3.put("elsewhere.json", b"{}", prefix="other/")
    assert listing(s3_server) == []


def test_list_pages_through_more_than_1000_objects(s3, proxied, fault_proxy):
    keys = [f"many/{i:05d}.json" for i in range(1100)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: s3.put(k, b"[]"), keys, timeout=60))
    server = proxied()
    value = listing(server)
    assert [e["path"] for e in value] == keys
    assert all(e["bytes"] == 2 for e in value)
    pages = [s for s in fault_proxy.requests("GET") if "list-type=2" in s.query]
    assert len(pages) >= 2
    assert "continuation-token=" in pages[-1].query


def test_list_with_storage_sd_lists_remote_storage_recursively(s3, s3_server):
    for rel, raw in {"top.json": b"{}", "d/e/f.bin": b"123456", "d/g.txt": b"g"}.items():
        put_sor(s3_server, rel, raw)
    s3.put("only-in-s3.json", b"{}")
    value = listing(s3_server, storage="sd")
    assert [(e["path"], e["bytes"]) for e in value] == [
        ("d/e/f.bin", 6), ("d/g.txt", 1), ("top.json", 2)]
    now = dt.datetime.now(dt.timezone.utc)
    for e in value:
        assert abs((parse_time(e["last_modified"]) - now).total_seconds()) < 120
    assert [e["path"] for e in listing(s3_server, storage="sd", prefix="d/")] == \
        ["d/e/f.bin", "d/g.txt"]
    assert [e["path"] for e in listing(s3_server)] == ["only-in-s3.json"]


def test_list_with_storage_s3_without_a_bucket_is_400(make_server):
    server = make_server(env={"AWS_EC2_METADATA_DISABLED": "true"})
    put_sor(server, "a.json", "{}")
    assert_error(server.get(function="list", storage="s3"), 400)
    assert [e["path"] for e in listing(server)] == ["a.json"]
