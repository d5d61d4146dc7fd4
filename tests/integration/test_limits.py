"""Memory and disk budgets, eviction, values larger than a tier."""
from __future__ import annotations

import base64
import hashlib
import json
import os

import pytest
import requests

from helpers import (assert_error, assert_nothing_cached, cached_keys, disk_sidecars,
                      disk_tmp_files, disk_values, put_sor, telemetry)

KIB = 1024


def sixteen_kib_files(server, n=10):
    files = {f"f{i:02}.bin": os.urandom(16 * KIB) for i in range(n)}
    for key, data in files.items():
        put_sor(server, key, data)
    return files


def raw(server, key):
    r = server.get(path=key, format="raw")
    assert r.status_code == 200, r.text
    return r.content, r.headers["X-Aside-Source"]


@pytest.mark.parametrize("policy", ["s3fifo", "lru"])
def test_memory_budget_is_kept_and_evicted_keys_come_from_disk(make_server, policy):
    server = make_server(args=["--memory-limit", "64KiB", "--policy", policy])
    files = sixteen_kib_files(server)
    for key, data in files.items():
        assert raw(server, key) == (data, "sor")
    v = telemetry(server)
    assert v["memory"]["limit_bytes"] == 65536
    assert v["memory"]["used_bytes"] <= 65536
    assert v["evictions"]["memory"] > 0 and v["evictions"]["disk"] == 0
    assert v["keys"] == 10
    tiers = {e["path"]: e["tier"] for e in v["entries"]}
    assert list(tiers.values()).count("memory") <= 4
    assert v["memory"]["used_bytes"] == 16 * KIB * list(tiers.values()).count("memory")
    # every key is still readable; those only on disk say so
    for key, data in files.items():
        expected_source = "memory" if tiers[key] == "memory" else "disk"
        content, source = raw(server, key)
        assert content == data
        assert source == expected_source
        tiers = {e["path"]: e["tier"] for e in telemetry(server)["entries"]}
    v = telemetry(server)
    assert v["memory"]["used_bytes"] <= 65536
    assert v["sor_fetches"] == 10 and v["misses"] == 10 and v["hits"] == 10
    assert disk_values(server) == sorted(files)


def test_meta_reads_report_disk_for_keys_evicted_from_memory(make_server):
    server = make_server(args=["--memory-limit", "32KiB"])
    files = sixteen_kib_files(server, 4)
    for key in files:
        assert server.get(path=key).json()["return"]["value"]["source"] == "sor"
    sources = [server.get(path=key).json()["return"]["value"]["source"] for key in files]
    assert "disk" in sources and set(sources) <= {"disk", "memory"}


def test_value_larger_than_the_memory_limit_is_served_from_disk(make_server):
    server = make_server(args=["--memory-limit", "64KiB"])
    data = put_sor(server, "huge.bin", os.urandom(1024 * KIB))
    assert raw(server, "huge.bin") == (data, "sor")
    assert raw(server, "huge.bin") == (data, "disk")
    r = server.get(path="huge.bin", **{"return": "data"})
    assert r.status_code == 200
    assert base64.b64decode(r.json()["return"]["value"]) == data
    r = server.get(path="huge.bin")
    assert r.json()["return"]["value"] == {"result": "success", "source": "disk",
                                           "type": "bytes", "bytes": len(data)}
    v = telemetry(server)
    [entry] = v["entries"]
    assert entry["tier"] == "disk" and entry["bytes"] == len(data)
    assert v["memory"]["used_bytes"] == 0
    assert v["disk"]["used_bytes"] == len(data)
    r = server.call("HEAD", params={"path": "huge.bin"})
    assert r.headers["X-Aside-Key-Tier"] == "disk"


def test_json_value_larger_than_the_memory_limit_is_served_whole(make_server):
    server = make_server(args=["--memory-limit", "64KiB"])
    doc = {"rows": [{"i": i, "s": "v" * 50} for i in range(3000)]}
    text = json.dumps(doc).encode()
    assert len(text) > 64 * KIB
    put_sor(server, "rows.json", text)
    for _ in range(2):
        r = server.get(path="rows.json", **{"return": "data"})
        assert r.status_code == 200
        assert r.json()["return"]["value"] == doc
    assert raw(server, "rows.json") == (text, "disk")


def test_value_exactly_the_memory_limit_is_held_in_memory(make_server):
    server = make_server(args=["--memory-limit", "64KiB"])
    data = put_sor(server, "exact.bin", os.urandom(64 * KIB))
    assert raw(server, "exact.bin") == (data, "sor")
    assert raw(server, "exact.bin") == (data, "memory")
    assert telemetry(server)["memory"]["used_bytes"] == 64 * KIB


@pytest.mark.parametrize("policy", ["s3fifo", "lru"])
def test_disk_budget_is_kept_and_evicted_keys_come_from_sor_again(make_server, policy):
    server = make_server(args=["--disk-limit", "64KiB", "--policy", policy])
    files = sixteen_kib_files(server)
    for key, data in files.items():
        assert raw(server, key) == (data, "sor")
    v = telemetry(server)
    assert v["disk"]["limit_bytes"] == 65536
    assert v["disk"]["used_bytes"] <= 65536
    assert v["evictions"]["disk"] > 0
    assert 0 < v["keys"] <= 4
    assert len(disk_values(server)) == v["keys"]
    assert disk_values(server) == cached_keys(server) == disk_sidecars(server)
    assert disk_tmp_files(server) == []
    assert v["memory"]["used_bytes"] <= v["disk"]["used_bytes"]  # memory is a subset of disk
    present = set(cached_keys(server))
    evicted = [k for k in files if k not in present]
    assert evicted
    for key in evicted[:3]:
        assert raw(server, key) == (files[key], "sor")
        v = telemetry(server)
        assert v["disk"]["used_bytes"] <= 65536
        assert len(disk_values(server)) == v["keys"]


def test_value_larger_than_the_disk_limit_is_413_and_nothing_is_cached(make_server):
    server = make_server(args=["--disk-limit", "64KiB"])
    put_sor(server, "small.json", "{}")
    assert server.get(path="small.json").status_code == 200
    put_sor(server, "toobig.bin", os.urandom(64 * KIB + 1))
    assert_error(server.get(path="toobig.bin"), 413)
    assert_error(server.get(path="toobig.bin", format="raw"), 413)
    assert cached_keys(server) == ["small.json"]
    assert disk_values(server) == ["small.json"]
    assert disk_tmp_files(server) == []
    assert telemetry(server)["evictions"] == {"memory": 0, "disk": 0}


def test_value_larger_than_the_disk_limit_on_an_empty_cache_leaves_it_empty(make_server):
    server = make_server(args=["--disk-limit", "64KiB"])
    put_sor(server, "toobig.bin", os.urandom(200 * KIB))
    assert_error(server.get(path="toobig.bin"), 413)
    assert_nothing_cached(server)


def test_value_exactly_the_disk_limit_is_cached(make_server):
    server = make_server(args=["--disk-limit", "64KiB"])
    data = put_sor(server, "exact.bin", os.urandom(64 * KIB))
    assert raw(server, "exact.bin") == (data, "sor")
    assert raw(server, "exact.bin")[1] in ("memory", "disk")
    assert disk_values(server) == ["exact.bin"]


def test_update_that_grows_a_value_past_the_disk_limit_is_413(make_server):
    server = make_server(args=["--disk-limit", "64KiB"])
    put_sor(server, "g.bin", b"small")
    assert raw(server, "g.bin") == (b"small", "sor")
    put_sor(server, "g.bin", os.urandom(65 * KIB))
    assert_error(server.get(function="update", path="g.bin"), 413)
    assert disk_tmp_files(server) == []
    # the key either keeps its old value or is gone, and the tier matches the index
    assert disk_values(server) == cached_keys(server) == disk_sidecars(server)
    assert telemetry(server)["disk"]["used_bytes"] <= 65536


def test_large_value_round_trips_raw_and_as_data(server):
    data = put_sor(server, "large.bin", os.urandom(8 * 1024 * KIB))
    digest = hashlib.sha256(data).digest()
    for expected in ("sor", "memory"):
        with requests.get(server.api, params={"path": "large.bin", "format": "raw"},
                          timeout=60, stream=True) as r:
            body = r.raw.read()
            assert r.status_code == 200 and r.headers["X-Aside-Source"] == expected
        assert hashlib.sha256(body).digest() == digest
    r = server.get(path="large.bin", **{"return": "data"})
    assert hashlib.sha256(base64.b64decode(r.json()["return"]["value"])).digest() == digest


def test_memory_limit_from_the_environment_shows_in_telemetry(make_server):
    server = make_server(env={"ASIDE_MEMORY_LIMIT": "64KiB", "ASIDE_DISK_LIMIT": "1MiB"})
    v = telemetry(server)
    assert v["memory"]["limit_bytes"] == 65536
    assert v["disk"]["limit_bytes"] == 1048576
    r = server.call("HEAD")
    assert r.headers["X-Aside-Memory-Limit"] == "65536"
    assert r.headers["X-Aside-Disk-Limit"] == "1048576"


def test_flag_overrides_the_environment_variable(make_server):
    server = make_server(args=["--memory-limit", "128KiB", "--disk-limit", "2MiB"],
                         env={"ASIDE_MEMORY_LIMIT": "64KiB", "ASIDE_DISK_LIMIT": "1MiB"})
    v = telemetry(server)
    assert v["memory"]["limit_bytes"] == 131072
    assert v["disk"]["limit_bytes"] == 2 * 1048576


def test_decimal_and_binary_size_units(make_server):
    server = make_server(args=["--memory-limit", "100KB", "--disk-limit", "1m"])
    v = telemetry(server)
    assert v["memory"]["limit_bytes"] == 100_000
    assert v["disk"]["limit_bytes"] == 1048576


@pytest.mark.parametrize("policy", ["s3fifo", "lru"])
def test_budgets_hold_under_a_long_mixed_workload(make_server, policy):
    server = make_server(args=["--memory-limit", "48KiB", "--disk-limit", "96KiB",
                               "--policy", policy])
    files = {f"w{i:02}.bin": os.urandom(4 * KIB * (1 + i % 5)) for i in range(30)}
    for key, data in files.items():
        put_sor(server, key, data)
    order = [f"w{(i * 7) % 30:02}.bin" for i in range(60)] + [f"w{i % 5:02}.bin" for i in range(40)]
    for key in order:
        content, source = raw(server, key)
        assert content == files[key], key
    v = telemetry(server)
    assert v["memory"]["used_bytes"] <= 48 * KIB
    assert v["disk"]["used_bytes"] <= 96 * KIB
    assert v["hits"] + v["misses"] == len(order)
    assert v["misses"] == v["sor_fetches"]
    entries = v["entries"]
    assert v["memory"]["used_bytes"] == sum(e["bytes"] for e in entries if e["tier"] == "memory")
    assert v["disk"]["used_bytes"] == sum(e["bytes"] for e in entries)
    assert disk_values(server) == [e["path"] for e in entries] == disk_sidecars(server)
    assert disk_tmp_files(server) == []
