"""A slow load from S3 waits on a load thread; the event loops keep answering memory hits."""
from __future__ import annotations

import threading

import pytest
import requests

pytest.register_assert_rewrite("s3_fixtures")

from s3_fixtures import read_raw, wait_for  # noqa: E402

pytest_plugins = ["s3_fixtures"]


# The slow load's HEAD is held by the proxy until the test releases it (or this long).
HOLD_S = 60.0


def test_memory_hits_are_served_while_a_slow_s3_load_is_in_flight(s3, proxied, fault_proxy):
    s3.put("hot.json", '{"hot": true}')
    slow = s3.put("slow.json", '{"slow": true}')
    # one event loop: if the slow load ran on it, no other request could be answered meanwhile
    server = proxied(ASIDE_THREADS="1", ASIDE_LOAD_THREADS="2", ASIDE_S3_TIMEOUT="120")
    assert read_raw(server, "hot.json")[0] == 200
    hold = fault_proxy.fail("delay", method="HEAD", delay=HOLD_S, path_contains="slow.json")
    slow_done = threading.Event()
    slow_result = {}

    def load_slow():
        r = requests.get(server.api, params={"path": "slow.json", "format": "raw"}, timeout=180)
        slow_result["status"], slow_result["body"] = r.status_code, r.content
        slow_done.set()

    loader = threading.Thread(target=load_slow)
    loader.start()
    try:
        # the slow load is observably in flight: its HEAD reached the proxy, which holds it
        assert wait_for(lambda: hold.applied == 1, timeout=30), "the slow load never started"
        with requests.Session() as session:
            for _ in range(20):
                r = session.get(server.api, params={"path": "hot.json", "format": "raw"},
                                timeout=30)
                assert r.status_code == 200 and r.content == b'{"hot": true}'
                assert r.headers["X-Aside-Source"] == "memory"
        assert not slow_done.is_set(), "the slow load ended while the proxy held it"
        assert [s.end for s in fault_proxy.requests("HEAD", "slow.json")] == [None]
    finally:
        hold.release.set()
        loader.join(timeout=60)
    assert slow_result == {"status": 200, "body": slow}
