"""max_age (stale-while-revalidate) and stale_if_error over S3."""
from __future__ import annotations

import time

import pytest

pytest.register_assert_rewrite("s3_fixtures")

from s3_fixtures import read_raw, wait_for  # noqa: E402

pytest_plugins = ["s3_fixtures"]


def read_data(server, key, **params):
    r = server.get(path=key, **{"return": "data"}, **params)
    assert r.status_code == 200, r.text
    return r.json()["return"]["value"]


def test_copy_older_than_max_age_is_served_then_revalidated_in_the_background(s3, s3_server):
    s3.put("age.json", '{"v": 1}')
    assert read_data(s3_server, "age.json", max_age=1) == {"v": 1}
    s3.put("age.json", '{"v": 2}')
    time.sleep(1.3)
    r = s3_server.get(path="age.json", max_age=1)
    value = r.json()["return"]["value"]
    assert value["stale"] is True and value["source"] == "memory", value
    assert wait_for(lambda: read_data(s3_server, "age.json") == {"v": 2}, timeout=10)
    assert s3_server.get(path="age.json", max_age=60).json()["return"]["value"].get("stale") is None


def test_one_revalidation_per_key_at_a_time(s3, proxied, fault_proxy):
    """README (max_age): reads of a stale copy are answered at once while one revalidation of
    the key is in flight; they start no other."""
    s3.put("busy.json", '{"v": 1}')
    server = proxied()
    assert read_raw(server, "busy.json")[0] == 200
    time.sleep(1.3)  # the copy is now older than max_age=1
    fault_proxy.reset_log()
    hold = fault_proxy.fail("delay", method=None, delay=60.0, path_contains="busy.json")
    try:
        r = server.get(path="busy.json", max_age=1)
        assert r.json()["return"]["value"]["stale"] is True
        assert wait_for(lambda: hold.applied == 1, timeout=30), "no revalidation started"
        for _ in range(10):
            r = server.get(path="busy.json", max_age=1)
            value = r.json()["return"]["value"]
            assert value["stale"] is True and value["source"] == "memory", value
        assert len(fault_proxy.requests(key="busy.json")) == 1
    finally:
        hold.release.set()


def test_copy_younger_than_max_age_is_not_revalidated(s3, proxied, fault_proxy):
    s3.put("young.json", '{"v": 1}')
    server = proxied()
    assert read_raw(server, "young.json")[0] == 200
    fault_proxy.reset_log()
    for _ in range(5):
        r = server.get(path="young.json", max_age=3600)
        assert r.status_code == 200 and "stale" not in r.json()["return"]["value"]
    time.sleep(0.3)
    assert fault_proxy.requests(key="young.json") == []


def test_server_wide_max_age_applies_without_the_parameter(s3, make_server):
    s3.put("wide.json", '{"v": 1}')
    server = make_server(env=s3.env(ASIDE_MAX_AGE="1"))
    assert read_data(server, "wide.json") == {"v": 1}
    s3.put("wide.json", '{"v": 2}')
    time.sleep(1.3)
    server.get(path="wide.json")
    assert wait_for(lambda: read_data(server, "wide.json") == {"v": 2}, timeout=10)


def test_background_revalidation_that_fails_keeps_serving_the_copy(s3, proxied, fault_proxy):
    s3.put("keep.json", '{"v": 1}')
    server = proxied(ASIDE_S3_MAX_ATTEMPTS="1")
    assert read_data(server, "keep.json") == {"v": 1}
    fault_proxy.fail("status", method=None, status=500, times=100, path_contains="keep.json")
    time.sleep(1.3)
    for _ in range(3):
        assert read_data(server, "keep.json", max_age=1) == {"v": 1}
        time.sleep(0.2)
    assert "background revalidation of keep.json" in server.log_text()


def test_update_with_stale_if_error_answers_the_cached_copy_when_s3_fails(
        s3, proxied, fault_proxy):
    s3.put("s.json", '{"good": true}')
    server = proxied(ASIDE_S3_MAX_ATTEMPTS="1")
    assert read_raw(server, "s.json")[0] == 200
    fault_proxy.fail("status", method=None, status=503, code="SlowDown", times=100,
                     path_contains="s.json")
    plain = server.get(function="update", path="s.json")
    assert plain.status_code == 502, plain.text
    r = server.get(function="update", path="s.json", stale_if_error="true")
    assert r.status_code == 200, r.text
    assert r.json()["return"]["value"]["stale"] is True
    data = server.get(function="update", path="s.json", stale_if_error="true",
                      **{"return": "data"})
    assert data.json()["return"]["value"] == {"good": True}


def test_stale_if_error_does_not_hide_a_deleted_object(s3, s3_server):
    s3.put("gone.json", '{"v": 1}')
    assert read_raw(s3_server, "gone.json")[0] == 200
    s3.delete("gone.json")
    r = s3_server.get(function="update", path="gone.json", stale_if_error="true")
    assert r.status_code == 404, r.text


def test_stale_if_error_without_a_cached_copy_is_the_error(s3, proxied, fault_proxy):
    server = proxied(ASIDE_S3_MAX_ATTEMPTS="1")
    fault_proxy.fail("status", method=None, status=500, times=100, path_contains="never.json")
    r = server.get(function="update", path="never.json", stale_if_error="true")
    assert r.status_code == 502, r.text


@pytest.mark.parametrize("params", [{"max_age": "-1"}, {"max_age": "soon"},
                                    {"stale_if_error": "maybe"}])
def test_bad_freshness_parameters_are_400(s3, s3_server, params):
    s3.put("p.json", "{}")
    r = s3_server.get(path="p.json", **params)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "bad_request"
