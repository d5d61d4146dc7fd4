"""Many clients at once: single flight, mixed reads, reads racing updates and deletes."""
from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import requests

from helpers import cached_keys, disk_sidecars, disk_tmp_files, disk_values, put_sor, telemetry


def run_parallel(n, fn):
    """Run fn(i) on n threads started together; returns their results (exceptions re-raised)."""
    barrier = threading.Barrier(n, timeout=30)

    def wrapped(i):
        barrier.wait()
        return fn(i)
    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(wrapped, range(n), timeout=120))


def test_concurrent_reads_of_one_missing_key_fetch_it_once(make_server):
    server = make_server(env={"ASIDE_THREADS": "8"})
    data = put_sor(server, "big.bin", os.urandom(20 * 1024 * 1024))
    digest = hashlib.sha256(data).hexdigest()
    before = telemetry(server)

    def read(i):
        with requests.get(server.api, params={"path": "big.bin", "format": "raw"}, timeout=60,
                          stream=True) as r:
            body = r.raw.read()  # one read: iterating in small chunks is slow in Python
            return r.status_code, hashlib.sha256(body).hexdigest(), r.headers["X-Aside-Source"]
    results = run_parallel(32, read)
    assert all(status == 200 for status, _, _ in results), results
    assert all(h == digest for _, h, _ in results)
    after = telemetry(server)
    assert after["sor_fetches"] - before["sor_fetches"] == 1
    assert after["hits"] + after["misses"] - before["hits"] - before["misses"] == 32
    assert after["keys"] == 1
    assert disk_values(server) == ["big.bin"] and disk_tmp_files(server) == []
    assert (server.cache / "big.bin").stat().st_size == len(data)


def test_concurrent_reads_of_one_missing_key_that_fails_all_get_the_error(make_server):
    server = make_server(env={"ASIDE_THREADS": "8"})
    put_sor(server, "bad.json", b'{"broken": ' + b"1" * 5_000_000)

    def read(i):
        return requests.get(server.api, params={"path": "bad.json"}, timeout=60).status_code
    assert run_parallel(16, read) == [422] * 16
    assert cached_keys(server) == [] and disk_values(server) == []
    assert disk_tmp_files(server) == []


def test_64_clients_doing_mixed_reads_all_get_correct_bodies(make_server):
    server = make_server(env={"ASIDE_THREADS": "4"})
    shared = {f"shared/s{i}.json": json.dumps({"shared": i, "pad": "x" * (100 * i)}).encode()
              for i in range(8)}
    own = {f"own/c{i:02}.bin": os.urandom(1000 + 37 * i) for i in range(64)}
    for key, data in {**shared, **own}.items():
        put_sor(server, key, data)
    for key in list(shared)[:4]:  # half of the shared keys are warm: memory hits
        assert server.get(path=key).status_code == 200
    shared_keys = sorted(shared)

    def client(i):
        errors = []
        with requests.Session() as s:
            for round_ in range(6):
                key = shared_keys[(i + round_) % len(shared_keys)]
                r = s.get(server.api, params={"path": key, "return": "data"}, timeout=30)
                if r.status_code != 200 or \
                        r.json()["return"]["value"] != json.loads(shared[key]):
                    errors.append((key, r.status_code, r.text[:200]))
                r = s.get(server.api, params={"path": key, "format": "raw"}, timeout=30)
                if r.status_code != 200 or r.content != shared[key]:
                    errors.append((key, "raw", r.status_code))
                mine = f"own/c{i:02}.bin"
                if round_ % 2:
                    r = s.get(server.api, params={"path": mine, "format": "raw"}, timeout=30)
                    ok = r.status_code == 200 and r.content == own[mine]
                else:
                    r = s.get(server.api, params={"path": mine, "return": "data"}, timeout=30)
                    ok = r.status_code == 200 and \
                        base64.b64decode(r.json()["return"]["value"]) == own[mine]
                if not ok:
                    errors.append((mine, r.status_code))
                r = s.get(server.api, params={"path": f"absent/{i}.json"}, timeout=30)
                if r.status_code != 404:
                    errors.append(("absent", r.status_code))
        return errors
    results = run_parallel(64, client)
    assert [e for errs in results for e in errs] == []
    v = telemetry(server)
    assert v["keys"] == 72
    # each key came from the SOR once; each absent key was asked for six times
    assert v["sor_fetches"] == 72 + 64 * 6
    assert cached_keys(server) == sorted({**shared, **own})
    assert disk_values(server) == sorted({**shared, **own})
    assert disk_sidecars(server) == disk_values(server)
    assert disk_tmp_files(server) == []


def test_reads_racing_updates_see_whole_old_or_whole_new_values(make_server):
    server = make_server(env={"ASIDE_THREADS": "4"})
    size = 256 * 1024
    versions = [bytes([65 + v]) * size for v in range(6)]
    put_sor(server, "race.bin", versions[0])
    assert server.get(path="race.bin").status_code == 200
    done = threading.Event()
    seen = set()

    def reader(i):
        bad = []
        with requests.Session() as s:
            for _ in range(40):
                if done.is_set():
                    break
                r = s.get(server.api, params={"path": "race.bin", "format": "raw"}, timeout=30)
                if r.status_code != 200 or r.content not in versions:
                    bad.append((r.status_code, r.content[:8], len(r.content)))
                else:
                    seen.add(r.content[:1])
        return bad

    def updater():
        with requests.Session() as s:
            for version in versions[1:]:
                tmp = server.sor / "race.bin.tmp"
                tmp.write_bytes(version)
                os.replace(tmp, server.sor / "race.bin")
                r = s.get(server.api, params={"path": "race.bin", "function": "update"},
                          timeout=30)
                assert r.status_code == 200, r.text
    with ThreadPoolExecutor(max_workers=9) as pool:
        futures = [pool.submit(reader, i) for i in range(8)]
        pool.submit(updater).result(timeout=60)
        done.set()
        bad = [b for f in futures for b in f.result(timeout=60)]
    assert bad == []
    r = server.get(path="race.bin", format="raw")
    assert r.content == versions[-1]
    assert (server.cache / "race.bin").read_bytes() == versions[-1]
    assert disk_values(server) == ["race.bin"] and disk_tmp_files(server) == []
    assert telemetry(server)["keys"] == 1


def test_reads_racing_deletes_keep_the_disk_tier_consistent(make_server):
    server = make_server(env={"ASIDE_THREADS": "4"})
    files = {f"d{i}.json": json.dumps({"i": i, "pad": "y" * 3000}).encode() for i in range(6)}
    for key, data in files.items():
        put_sor(server, key, data)
    keys = sorted(files)

    def worker(i):
        bad = []
        with requests.Session() as s:
            for n in range(30):
                key = keys[(i + n) % len(keys)]
                if i % 4 == 0:
                    r = s.delete(server.api, params={"path": key}, timeout=30)
                    if r.status_code not in (200, 404):
                        bad.append(("delete", key, r.status_code, r.text))
                else:
                    r = s.get(server.api, params={"path": key, "format": "raw"}, timeout=30)
                    if r.status_code != 200 or r.content != files[key]:
                        bad.append(("read", key, r.status_code, r.content[:50]))
        return bad
    results = run_parallel(16, worker)
    assert [b for bs in results for b in bs] == []
    keys_now = cached_keys(server)
    assert disk_values(server) == keys_now == disk_sidecars(server)
    assert telemetry(server)["keys"] == len(keys_now)
    assert disk_tmp_files(server) == []
    for key, data in files.items():
        r = server.get(path=key, format="raw")
        assert r.status_code == 200 and r.content == data


def test_concurrent_reads_and_updates_under_tight_budgets_keep_the_tiers_consistent(make_server):
    server = make_server(args=["--memory-limit", "64KiB", "--disk-limit", "160KiB"],
                         env={"ASIDE_THREADS": "8"})
    files = {f"t{i:02}.bin": os.urandom(1024 * (8 + (i * 5) % 17)) for i in range(40)}
    for key, data in files.items():
        put_sor(server, key, data)
    keys = sorted(files)

    def worker(i):
        bad = []
        with requests.Session() as s:
            for n in range(40):
                key = keys[(i * 11 + n * 7) % len(keys)]
                function = "update" if (i + n) % 5 == 0 else "read"
                r = s.get(server.api, params={"path": key, "format": "raw",
                                              "function": function}, timeout=30)
                if r.status_code != 200 or r.content != files[key]:
                    bad.append((function, key, r.status_code, r.content[:80]))
        return bad
    results = run_parallel(16, worker)
    assert [b for bs in results for b in bs] == []
    v = telemetry(server)
    assert v["memory"]["used_bytes"] <= 64 * 1024
    assert v["disk"]["used_bytes"] <= 160 * 1024
    assert disk_tmp_files(server) == []
    listed = [e["path"] for e in v["entries"]]
    assert disk_values(server) == listed == disk_sidecars(server)
    assert v["disk"]["used_bytes"] == sum((server.cache / k).stat().st_size for k in listed)
    for key in listed:  # every key the index lists is served whole from its tier
        r = server.get(path=key, format="raw")
        assert r.status_code == 200 and r.content == files[key]
        assert r.headers["X-Aside-Source"] in ("memory", "disk")
