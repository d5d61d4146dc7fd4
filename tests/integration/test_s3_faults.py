"""S3 failures between aside and the bucket, injected by the suite's proxy: retries with
backoff, the final status a client sees, and no damage left behind."""
from __future__ import annotations

import os
import time

import pytest

pytest.register_assert_rewrite("s3_fixtures")

from helpers import (assert_error, assert_nothing_cached, cached_keys, disk_tmp_files,  # noqa: E402
                      disk_values, telemetry)
from s3_fixtures import PART, assert_ranges_tile, ranges_of, read_raw  # noqa: E402

pytest_plugins = ["s3_fixtures"]

SMALL = b'{"small": "object", "n": [1, 2, 3]}'
# How long an injected hang or stall lasts: far past ASIDE_S3_TIMEOUT=1, so a test that ends
# sooner shows the request was abandoned, with room for a loaded machine's delays.
HANG_S = 8.0


def attempts(fault_proxy, key, method="GET", rng=None):
    return [s for s in fault_proxy.requests(method, key) if rng is None or s.range == rng]


def assert_no_files(server):
    assert disk_values(server) == []
    assert disk_tmp_files(server) == []


@pytest.mark.parametrize("kind,kw", [
    ("status", {"status": 500}),
    ("status", {"status": 503}),          # SlowDown
    ("reset", {}),
], ids=["500", "503-slowdown", "connection-reset"])
def test_transient_failures_are_retried_until_the_read_succeeds(s3, proxied, fault_proxy,
                                                                 kind, kw):
    s3.put("t.json", SMALL)
    server = proxied()   # default ASIDE_S3_MAX_ATTEMPTS: 3
    fault_proxy.fail(kind, method="GET", times=2, path_contains="t.json", **kw)
    t0 = time.monotonic()
    assert read_raw(server, "t.json") == (200, SMALL, "sor")
    gets = attempts(fault_proxy, "t.json")
    assert [g.fault for g in gets] == [kind, kind, None]
    assert len({g.range for g in gets}) == 1, "each retry asks for the same bytes"
    assert time.monotonic() - t0 < 20
    v = telemetry(server)
    assert v["sor_fetches"] == 1 and v["keys"] == 1
    assert disk_values(server) == ["t.json"] and disk_tmp_files(server) == []


# s3.c: the wait before retry k (k = 1, 2, ...) is drawn from [0, BACKOFF_BASE_S * 2^k].
BACKOFF_BASE_S = 0.1
BACKOFF_KEYS = 4
# Four reads of three retries wait 4 x (0.1 + 0.2 + 0.4) = 2.8 s on average (standard deviation
# 0.53 s). Their sum falls under MIN_TOTAL_BACKOFF_S once in about 10^5 runs; without a backoff
# it would be twelve loopback round trips, each far under 50 ms.
MIN_TOTAL_BACKOFF_S = 0.6
# What a loaded machine may add to one wait (scheduling, a slow proxy thread).
WAIT_SLACK_S = 2.0


def test_slowdown_retries_back_off_between_attempts(s3, proxied, fault_proxy):
    server = proxied(ASIDE_S3_MAX_ATTEMPTS="4")
    gaps = []
    for i in range(BACKOFF_KEYS):
        key = f"b{i}.json"
        s3.put(key, SMALL)
        fault_proxy.fail("status", method="GET", status=503, times=3, path_contains=key)
        assert read_raw(server, key)[:2] == (200, SMALL)
        gets = attempts(fault_proxy, key)
        assert [g.fault for g in gets] == ["status"] * 3 + [None]
        waits = [b.start - a.end for a, b in zip(gets, gets[1:])]
        # each wait within its full-jitter ceiling (plus what a loaded machine adds)
        for k, wait in enumerate(waits, start=1):
            assert 0 <= wait <= BACKOFF_BASE_S * 2 ** k + WAIT_SLACK_S, (k, waits)
        gaps += waits
    assert sum(gaps) > MIN_TOTAL_BACKOFF_S, gaps


@pytest.mark.parametrize("status,max_attempts", [(500, "2"), (503, "3")])
def test_a_persistent_5xx_is_502_after_exactly_max_attempts_and_nothing_is_cached(
        s3, proxied, fault_proxy, status, max_attempts):
    s3.put("down.json", SMALL)
    server = proxied(ASIDE_S3_MAX_ATTEMPTS=max_attempts)
    fault_proxy.fail("status", method=None, status=status, times=1000, path_contains="down.json")
    r = server.get(path="down.json")
    assert_error(r, 502)
    faulted = [s for s in fault_proxy.requests(key="down.json") if s.fault]
    # the first request that failed (HEAD or GET) was tried exactly max_attempts times
    assert len(faulted) == int(max_attempts), [(s.method, s.range) for s in faulted]
    assert len({(s.method, s.range) for s in faulted}) == 1
    assert_nothing_cached(server)
    fault_proxy.clear()
    assert read_raw(server, "down.json") == (200, SMALL, "sor")


def test_a_persistent_failure_of_one_part_is_502_and_no_partial_file_is_left(s3, proxied,
                                                                            fault_proxy):
    data = s3.put("parts.bin", os.urandom(6 * PART))
    server = proxied(ASIDE_S3_MAX_ATTEMPTS="2")
    third = f"bytes={2 * PART}-{3 * PART - 1}"
    fault_proxy.fail("status", method="GET", status=500, times=1000, range_value=third)
    assert_error(server.get(path="parts.bin"), 502)
    assert len(attempts(fault_proxy, "parts.bin", rng=third)) == 2
    assert_nothing_cached(server)
    fault_proxy.clear()
    assert read_raw(server, "parts.bin")[:2] == (200, data)


def test_one_failed_part_is_retried_and_the_object_is_assembled_exactly(s3, proxied,
                                                                        fault_proxy):
    data = s3.put("retry-part.bin", os.urandom(5 * PART + 123))
    server = proxied()
    second = f"bytes={PART}-{2 * PART - 1}"
    fault_proxy.fail("status", method="GET", status=500, times=1, range_value=second)
    assert read_raw(server, "retry-part.bin") == (200, data, "sor")
    assert [s.fault for s in attempts(fault_proxy, "retry-part.bin", rng=second)] == \
        ["status", None]
    assert_ranges_tile(ranges_of([s for s in attempts(fault_proxy, "retry-part.bin")
                                  if not s.fault and s.status == 206]), len(data))
    assert (server.cache / "retry-part.bin").read_bytes() == data


def test_a_request_that_hangs_past_the_timeout_is_504(s3, proxied, fault_proxy):
    s3.put("slow.json", SMALL)
    server = proxied(ASIDE_S3_TIMEOUT="1", ASIDE_S3_MAX_ATTEMPTS="2")
    fault_proxy.fail("delay", method=None, delay=HANG_S, times=1000, path_contains="slow.json")
    t0 = time.monotonic()
    assert_error(server.get(path="slow.json"), 504)
    elapsed = time.monotonic() - t0
    # two attempts of ~1 s each, never one wait for the answer
    assert 1.5 <= elapsed < HANG_S, elapsed
    assert len([s for s in fault_proxy.requests(key="slow.json") if s.fault]) == 2
    assert_nothing_cached(server)


def test_one_hang_past_the_timeout_is_abandoned_and_retried(s3, proxied, fault_proxy):
    s3.put("hang-once.json", SMALL)
    server = proxied(ASIDE_S3_TIMEOUT="1")
    fault_proxy.fail("delay", method="GET", delay=HANG_S, times=1, path_contains="hang-once.json")
    t0 = time.monotonic()
    assert read_raw(server, "hang-once.json") == (200, SMALL, "sor")
    assert 0.9 <= time.monotonic() - t0 < HANG_S
    assert [s.fault for s in attempts(fault_proxy, "hang-once.json")] == ["delay", None]


def test_a_body_that_stalls_midway_is_abandoned_after_the_timeout(s3, proxied, fault_proxy):
    data = s3.put("stall.bin", os.urandom(3 * PART))
    server = proxied(ASIDE_S3_TIMEOUT="1")
    fault_proxy.fail("stall", method="GET", ranged=True, delay=HANG_S, times=1)
    t0 = time.monotonic()
    status, body, _ = read_raw(server, "stall.bin")
    elapsed = time.monotonic() - t0
    stalled = [s for s in fault_proxy.requests("GET", "stall.bin") if s.fault == "stall"]
    assert len(stalled) == 1
    # abandoned about 1 s after the bytes stopped, not when the peer finally closed; the part
    # is then retried alone (one stall, three attempts) and the object assembled
    assert elapsed < HANG_S, (elapsed, status)
    assert status == 200, (status, body[:300])
    assert body == data
    assert (server.cache / "stall.bin").read_bytes() == data


@pytest.mark.parametrize("ranged", [False, True], ids=["small", "ranged-part"])
def test_a_body_cut_midway_is_retried_and_never_cached_partially(s3, proxied, fault_proxy,
                                                                 ranged):
    key = "cut.bin"
    data = s3.put(key, os.urandom(4 * PART if ranged else 5000))
    server = proxied()
    fault_proxy.fail("cut", method="GET", times=1, path_contains=key)
    status, body, _ = read_raw(server, key)
    assert any(s.fault == "cut" for s in attempts(fault_proxy, key))
    # one cut, three attempts: the retry reads it whole
    assert status == 200, (status, body[:300])
    assert body == data
    assert (server.cache / key).read_bytes() == data
    assert disk_tmp_files(server) == []


def test_bodies_always_cut_are_a_502_and_nothing_is_left_on_disk(s3, proxied, fault_proxy):
    s3.put("always-cut.bin", os.urandom(5000))
    server = proxied(ASIDE_S3_MAX_ATTEMPTS="2")
    fault_proxy.fail("cut", method="GET", times=1000, path_contains="always-cut.bin")
    assert_error(server.get(path="always-cut.bin"), 502)
    assert len(attempts(fault_proxy, "always-cut.bin")) == 2
    assert_nothing_cached(server)


@pytest.mark.parametrize("code,message", [
    ("AccessDenied", "Access Denied by the aside test proxy"),
    ("InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records."),
])
def test_s3_403_is_403_with_s3s_code_and_message_and_is_not_retried(s3, proxied, fault_proxy,
                                                                      code, message):
    s3.put("denied.json", SMALL)
    server = proxied()
    fault_proxy.fail("status", method=None, status=403, code=code, message=message, times=1000,
                     path_contains="denied.json")
    err = assert_error(server.get(path="denied.json"), 403, code)
    assert message in err["message"]
    # not retried: each kind of request at most once (a HEAD carries no error body, so a GET
    # may follow it to read S3's code and message)
    methods = [s.method for s in fault_proxy.requests(key="denied.json")]
    assert methods and len(methods) == len(set(methods)), methods
    assert_nothing_cached(server)


def test_an_s3_404_answered_by_the_endpoint_is_404(s3, proxied, fault_proxy):
    server = proxied()
    assert_error(server.get(path="nothing-here.json"), 404)
    assert len(fault_proxy.requests(key="nothing-here.json")) == 1, "a 404 is not retried"
    assert cached_keys(server) == []
