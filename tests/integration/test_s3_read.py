"""Reads with S3 (moto) as the system of record: sources, exact bytes, key mapping, errors,
parallel ranged loads, integrity checks, single flight, request signing."""
from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

pytest.register_assert_rewrite("s3_fixtures")

from helpers import (API, assert_error, assert_nothing_cached, cached_keys, disk_sidecars,
                      disk_tmp_files, disk_values, put_sor, telemetry)
from s3_fixtures import ANY_KEY_ID, ANY_SECRET, PART, assert_ranges_tile, ranges_of, read_meta, read_raw

pytest_plugins = ["s3_fixtures"]

DOC = {"name": "file1", "values": [1, 2, 3], "nested": {"ok": True, "text": "é \"q\""}}


def test_first_s3_read_comes_from_sor_then_memory_then_disk_after_restart(s3, s3_server):
    raw = s3.put("file1.json", json.dumps(DOC))
    v = read_meta(s3_server, "file1.json")
    assert (v["source"], v["type"], v["bytes"]) == ("sor", "json", len(raw))
    assert read_meta(s3_server, "file1.json")["source"] == "memory"
    # the disk tier holds an identical copy and its sidecar, nothing else
    assert (s3_server.cache / "file1.json").read_bytes() == raw
    assert disk_values(s3_server) == ["file1.json"]
    assert disk_sidecars(s3_server) == ["file1.json"]
    assert disk_tmp_files(s3_server) == []
    s3_server.restart()
    assert read_meta(s3_server, "file1.json")["source"] == "disk"
    assert read_meta(s3_server, "file1.json")["source"] == "memory"
    assert telemetry(s3_server)["sor_fetches"] == 0


def test_s3_object_bytes_are_served_exactly_as_raw_and_as_data(s3, s3_server):
    blob = s3.put("blob.bin", bytes(range(256)) * 40 + b"\x00\xff\r\n")
    doc = s3.put("doc.json", json.dumps(DOC, indent=2))
    for expected_source in ("sor", "memory"):
        assert read_raw(s3_server, "blob.bin") == (200, blob, expected_source)
    r = s3_server.get(path="blob.bin", **{"return": "data"})
    assert base64.b64decode(r.json()["return"]["value"], validate=True) == blob
    r = s3_server.get(path="doc.json", **{"return": "data"})
    assert r.status_code == 200, r.text
    assert r.json() == {"return": {"uri": API, "path": "doc.json", "value": DOC}}
    assert read_raw(s3_server, "doc.json") == (200, doc, "memory")


def test_empty_s3_object_is_an_empty_value(s3, s3_server):
    s3.put("empty.bin", b"")
    v = read_meta(s3_server, "empty.bin")
    assert (v["source"], v["type"], v["bytes"]) == ("sor", "bytes", 0)
    assert read_raw(s3_server, "empty.bin") == (200, b"", "memory")
    assert (s3_server.cache / "empty.bin").read_bytes() == b""


@pytest.mark.parametrize("data_dir", ["data", "data/", "deep/er/", ""])
def test_keys_map_under_aws_data_dir_with_or_without_trailing_slash(make_server, s3, data_dir):
    s3.prefix = data_dir
    raw = s3.put("x/y/z.json", '{"where": "right"}')
    # decoys: the same key outside the prefix, or with a doubled slash
    if data_dir:
        s3.put("x/y/z.json", '{"where": "bucket root"}', prefix="")
        s3.client.put_object(Bucket=s3.bucket, Key=data_dir.rstrip("/") + "//x/y/z.json",
                             Body=b'{"where": "double slash"}')
    server = make_server(env=s3.env())
    assert read_raw(server, "x/y/z.json") == (200, raw, "sor")
    assert (server.cache / "x" / "y" / "z.json").read_bytes() == raw
    assert cached_keys(server) == ["x/y/z.json"]


def test_missing_s3_object_is_404_and_nothing_is_cached(s3, s3_server):
    s3.put("present.json", "{}")
    assert_error(s3_server.get(path="absent.json"), 404)
    assert_error(s3_server.get(path="dir/absent.bin", format="raw"), 404)
    assert_nothing_cached(s3_server)
    assert telemetry(s3_server)["misses"] >= 1


def test_s3_json_object_that_does_not_parse_is_422_and_nothing_is_cached(s3, s3_server):
    s3.put("bad.json", b'{"broken": [1, 2')
    assert_error(s3_server.get(path="bad.json"), 422)
    assert_error(s3_server.get(path="bad.json", **{"return": "data"}), 422)
    assert_nothing_cached(s3_server)


def test_storage_sd_and_s3_work_side_by_side_and_a_key_is_one_entry(s3, s3_server):
    from_s3 = s3.put("both.json", '{"from": "s3"}')
    put_sor(s3_server, "both.json", '{"from": "sd"}')
    only_sd = put_sor(s3_server, "only-sd.bin", b"local bytes")
    s3.put("only-s3.bin", b"cloud bytes")
    # default storage is s3 when a bucket is configured
    assert_error(s3_server.get(path="only-sd.bin"), 404)
    assert read_raw(s3_server, "only-sd.bin", storage="sd") == (200, only_sd, "sor")
    assert_error(s3_server.get(path="only-s3.bin", storage="sd"), 404)
    assert read_raw(s3_server, "only-s3.bin", storage="s3") == (200, b"cloud bytes", "sor")
    assert read_raw(s3_server, "both.json") == (200, from_s3, "sor")
    # once cached, the key is served from the cache whichever storage is named
    assert read_raw(s3_server, "both.json", storage="sd") == (200, from_s3, "memory")
    assert read_raw(s3_server, "only-sd.bin") == (200, only_sd, "memory")
    assert cached_keys(s3_server) == ["both.json", "only-s3.bin", "only-sd.bin"]


def test_update_with_storage_sd_refetches_a_key_loaded_from_s3_from_remote_storage(s3,
                                                                                  s3_server):
    s3.put("moved.json", '{"from": "s3"}')
    assert read_raw(s3_server, "moved.json")[:2] == (200, b'{"from": "s3"}')
    local = put_sor(s3_server, "moved.json", '{"from": "sd"}')
    r = s3_server.get(function="update", path="moved.json", storage="sd", format="raw")
    assert (r.status_code, r.content) == (200, local)
    assert read_raw(s3_server, "moved.json") == (200, local, "memory")
    assert cached_keys(s3_server) == ["moved.json"]


def test_storage_named_in_the_json_body_picks_the_sor(s3, s3_server):
    put_sor(s3_server, "b.json", '"sd"')
    s3.put("b.json", '"s3"')
    r = s3_server.post({"function": "read", "path": "b.json", "storage": "sd",
                        "return": "data"})
    assert r.status_code == 200, r.text
    assert r.json()["return"]["value"] == "sd"


def test_storage_s3_without_a_bucket_is_400_and_sd_stays_the_default(make_server):
    server = make_server(env={"AWS_EC2_METADATA_DISABLED": "true"})
    raw = put_sor(server, "f.json", '{"sd": true}')
    assert_error(server.get(path="f.json", storage="s3"), 400)
    assert_error(server.post({"function": "read", "path": "f.json", "storage": "s3"}), 400)
    assert_nothing_cached(server)
    assert read_raw(server, "f.json") == (200, raw, "sor")
    assert read_raw(server, "f.json", storage="sd") == (200, raw, "memory")


def test_sor_fetches_counts_each_s3_fetch(s3, s3_server):
    for i in range(3):
        s3.put(f"t{i}.json", json.dumps({"i": i}))
    before = telemetry(s3_server)
    assert before["sor_fetches"] == 0
    for _ in range(2):
        for i in range(3):
            assert s3_server.get(path=f"t{i}.json").status_code == 200
    v = telemetry(s3_server)
    assert v["sor_fetches"] == 3 and v["misses"] == 3 and v["hits"] == 3 and v["keys"] == 3
    s3_server.get(path="absent.json")
    assert telemetry(s3_server)["sor_fetches"] == 4


# -- parallel ranged loads through the recording proxy ------------------------------------------

@pytest.mark.parametrize("size", [1024 * 1024, 3 * PART + 1])
def test_large_object_is_one_head_then_ranged_gets_tiling_it_exactly(s3, proxied, fault_proxy,
                                                                      size):
    data = s3.put("big.bin", os.urandom(size))
    server = proxied()
    fault_proxy.reset_log()
    assert read_raw(server, "big.bin") == (200, data, "sor")
    heads = fault_proxy.requests("HEAD", "big.bin")
    gets = fault_proxy.requests("GET", "big.bin")
    assert len(heads) == 1
    assert heads[0].start <= min(g.start for g in gets), "HEAD comes first"
    assert len(gets) >= 2, [g.range for g in gets]
    ranges = ranges_of(gets)
    assert_ranges_tile(ranges, size)
    assert max(end - start + 1 for start, end in ranges) <= PART
    assert (server.cache / "big.bin").read_bytes() == data
    assert disk_tmp_files(server) == []
    assert telemetry(server)["sor_fetches"] == 1


def test_a_part_size_of_1kib_is_honoured(s3, proxied, fault_proxy):
    data = s3.put("tiny-parts.bin", os.urandom(10 * 1024 + 3))
    server = proxied(ASIDE_S3_PART_SIZE="1KiB")
    assert read_raw(server, "tiny-parts.bin") == (200, data, "sor")
    ranges = ranges_of(fault_proxy.requests("GET", "tiny-parts.bin"))
    assert_ranges_tile(ranges, len(data))
    assert len(ranges) == 11 and max(e - s + 1 for s, e in ranges) == 1024


def test_ranged_gets_run_in_parallel_but_never_above_the_concurrency_setting(s3, proxied,
                                                                             fault_proxy):
    data = s3.put("par.bin", os.urandom(16 * PART))
    server = proxied(ASIDE_S3_CONCURRENCY="3")
    fault_proxy.latency = 0.15
    fault_proxy.reset_log()
    assert read_raw(server, "par.bin") == (200, data, "sor")
    gets = fault_proxy.requests("GET", "par.bin")
    assert_ranges_tile(ranges_of(gets), len(data))
    assert 2 <= fault_proxy.max_inflight <= 3, fault_proxy.max_inflight


def test_a_part_corrupted_in_transit_is_never_served_or_cached(s3, proxied, fault_proxy):
    data = s3.put("md5.bin", os.urandom(8 * PART))   # single PUT: the ETag is the MD5
    assert s3.etag("md5.bin").strip('"') == hashlib.md5(data).hexdigest()
    server = proxied()
    fault_proxy.fail("corrupt", method="GET", ranged=True, times=1, skip=2)
    status, body, _ = read_raw(server, "md5.bin")
    assert any(s.fault == "corrupt" for s in fault_proxy.requests("GET", "md5.bin"))
    if status == 200:       # the implementation refetched: the answer must be the true bytes
        assert body == data
        assert (server.cache / "md5.bin").read_bytes() == data
    else:
        assert status == 502, (status, body[:300])
        assert_nothing_cached(server)
    fault_proxy.clear()
    assert read_raw(server, "md5.bin")[:2] == (200, data)
    assert (server.cache / "md5.bin").read_bytes() == data


def test_16_concurrent_reads_of_one_s3_object_fetch_it_once(s3, proxied, fault_proxy):
    data = s3.put("hot.bin", os.urandom(1024 * 1024))
    digest = hashlib.sha256(data).hexdigest()
    server = proxied(ASIDE_THREADS="8")
    fault_proxy.latency = 0.05
    barrier = threading.Barrier(16, timeout=30)

    def read(_):
        barrier.wait()
        r = requests.get(server.api, params={"path": "hot.bin", "format": "raw"}, timeout=60)
        return r.status_code, hashlib.sha256(r.content).hexdigest()
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(read, range(16), timeout=120))
    assert results == [(200, digest)] * 16
    assert len(fault_proxy.requests("HEAD", "hot.bin")) == 1
    assert_ranges_tile(ranges_of(fault_proxy.requests("GET", "hot.bin")), len(data))
    v = telemetry(server)
    assert v["sor_fetches"] == 1 and v["keys"] == 1
    assert v["hits"] + v["misses"] == 16
    assert disk_values(server) == ["hot.bin"] and disk_tmp_files(server) == []


# -- signing, region, endpoint --------------------------------------------------------------------

@pytest.mark.parametrize("region_env,region", [
    ({"AWS_REGION": "eu-west-3"}, "eu-west-3"),
    ({"AWS_REGION": None, "AWS_DEFAULT_REGION": "ap-south-1"}, "ap-south-1"),
    ({"AWS_REGION": "eu-west-3", "AWS_DEFAULT_REGION": "ap-south-1"}, "eu-west-3"),
    ({"AWS_REGION": None}, "us-east-1"),
])
def test_every_s3_request_is_sigv4_signed_for_the_configured_region(s3, proxied, fault_proxy,
                                                                     region_env, region):
    data = s3.put("sig.bin", os.urandom(2 * PART + 5))
    s3.put("small.json", "[1]")
    server = proxied(**region_env)
    fault_proxy.reset_log()
    assert read_raw(server, "sig.bin")[:2] == (200, data)
    assert read_raw(server, "small.json")[:2] == (200, b"[1]")
    seen = fault_proxy.requests()
    assert seen
    for s in seen:
        assert s.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential="), s.headers
        scope = s.scope
        assert scope[0] == ANY_KEY_ID
        assert re.fullmatch(r"\d{8}", scope[1])
        assert scope[2:] == [region, "s3", "aws4_request"], scope
        signed = re.search(r"SignedHeaders=([^,\s]+)", s.headers["authorization"]).group(1)
        assert {"host", "x-amz-content-sha256", "x-amz-date"} <= set(signed.split(";"))
        missing = [h for h in signed.split(";") if h not in s.headers]
        assert not missing, f"{s.method} signs headers it does not send: {missing}"
        assert s.headers["authorization"].endswith(", Signature=" + expected_signature(s, region))
        assert re.fullmatch(r"[0-9a-f]{64}|UNSIGNED-PAYLOAD", s.headers["x-amz-content-sha256"])
        assert re.fullmatch(r"\d{8}T\d{6}Z", s.headers["x-amz-date"])
        assert "x-amz-security-token" not in s.headers
        assert s.bare_path.startswith(f"/{s3.bucket}/data/"), s.path  # path-style addressing


def test_endpoint_url_s3_wins_over_the_general_endpoint_url(s3, make_server):
    raw = s3.put("e.json", '"endpoint"')
    dead = f"http://127.0.0.1:{_closed_port()}"
    server = make_server(env=s3.env(AWS_ENDPOINT_URL=dead, ASIDE_S3_MAX_ATTEMPTS="1"))
    assert read_raw(server, "e.json") == (200, raw, "sor")


def test_general_endpoint_url_is_used_when_no_s3_specific_one_is_set(s3, make_server):
    raw = s3.put("e.json", '"general"')
    env = s3.env(AWS_ENDPOINT_URL=s3.endpoint)
    del env["AWS_ENDPOINT_URL_S3"]
    server = make_server(env=env)
    assert read_raw(server, "e.json") == (200, raw, "sor")


def expected_signature(seen, region: str) -> str:
    """The SigV4 signature botocore computes for this request with the fixture's secret."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    signed = re.search(r"SignedHeaders=([^,\s]+)", seen.headers["authorization"]).group(1)
    headers = {k: v for k, v in seen.headers.items() if k in signed.split(";")}
    request = AWSRequest(method=seen.method, url=seen.path, data=b"", headers=headers)
    request.context["timestamp"] = seen.headers["x-amz-date"]
    auth = S3SigV4Auth(Credentials(ANY_KEY_ID, ANY_SECRET), "s3", region)
    canonical = auth.canonical_request(request)
    return auth.signature(auth.string_to_sign(request, canonical), request)


def _closed_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
