"""A slow load from S3 waits on a load thread; the event loops keep answering memory hits."""
from __future__ import annotations

import threading

import pytest
import requests

pytest.register_assert_rewrite("s3_fixtures")

from s3_fixtures import read_raw  # noqa: E402

pytest_plugins = ["s3_fixtures"]


def test_memory_hits_are_served_while_a_slow_s3_load_is_in_flight(s3, proxied, fault_proxy):
    s3.put("hot.json", '{"hot": true}')
    slow = s3.put("slow.json", '{"slow": true}')
    # one event loop: if the slow load ran on it, no other request could be answered meanwhile
    server = proxied(ASIDE_THREADS="1", ASIDE_LOAD_THREADS="2", ASIDE_S3_TIMEOUT="10")
    assert read_raw(server, "hot.json")[0] == 200
    fault_proxy.fail("delay", method="HEAD", delay=4.0, path_contains="slow.json")
    slow_done = threading.Event()
    slow_result = {}

    def load_slow():
        r = requests.get(server.api, params={"path": "slow.json", "format": "raw"}, timeout=30)
        slow_result["status"], slow_result["body"] = r.status_code, r.content
        slow_done.set()

    loader = threading.Thread(target=load_slow)
    loader.start()
    try:
        answered_while_loading = 0
        with requests.Session() as session:
            for _ in range(20):
                r = session.get(server.api, params={"path": "hot.json", "format": "raw"},
                                timeout=30)
                assert r.status_code == 200 and r.content == b'{"hot": true}'
                assert r.headers["X-Aside-Source"] == "memory"
                answered_while_loading += not slow_done.is_set()
        assert answered_while_loading == 20, "hits waited for the slow load"
    finally:
        loader.join(timeout=30)
    assert slow_result == {"status": 200, "body": slow}
