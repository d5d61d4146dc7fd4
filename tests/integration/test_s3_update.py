"""update over S3: revalidation with the stored ETag (If-None-Match)."""
from __future__ import annotations

import json
import os

import pytest

pytest.register_assert_rewrite("s3_fixtures")

from helpers import assert_error, assert_nothing_cached, cached_keys, disk_values, telemetry  # noqa: E402
from s3_fixtures import PART, read_raw  # noqa: E402

pytest_plugins = ["s3_fixtures"]


def update(server, key, **params):
    return server.get(function="update", path=key, **params)


def revalidations(fault_proxy, key):
    """Requests for key that carried If-None-Match."""
    return [s for s in fault_proxy.requests(key=key) if "if-none-match" in s.headers]


@pytest.mark.parametrize("size", [100, 4 * PART])
def test_update_of_an_unchanged_object_revalidates_with_its_etag_and_keeps_the_copy(
        s3, proxied, fault_proxy, size):
    data = s3.put("same.bin", os.urandom(size))
    etag = s3.etag("same.bin")
    server = proxied()
    assert read_raw(server, "same.bin")[:2] == (200, data)
    before = telemetry(server)["sor_fetches"]
    fault_proxy.reset_log()
    r = update(server, "same.bin")
    assert r.status_code == 200, r.text
    v = r.json()["return"]["value"]
    assert v["revalidated"] is True, v
    assert v["bytes"] == size
    sent = revalidations(fault_proxy, "same.bin")
    assert len(sent) == 1, [(s.method, s.headers) for s in fault_proxy.requests()]
    assert sent[0].headers["if-none-match"].strip('"') == etag.strip('"')
    assert sent[0].status == 304
    # no body was transferred again: no ranged GET after the revalidation
    assert not [s for s in fault_proxy.requests("GET", "same.bin") if s.range]
    assert telemetry(server)["sor_fetches"] == before + 1
    assert read_raw(server, "same.bin")[:2] == (200, data)
    assert (server.cache / "same.bin").read_bytes() == data


def test_update_of_a_changed_object_serves_the_new_bytes(s3, proxied, fault_proxy):
    s3.put("c.json", '{"version": 1}')
    server = proxied()
    assert read_raw(server, "c.json")[:2] == (200, b'{"version": 1}')
    old_etag = s3.etag("c.json")
    new = s3.put("c.json", '{"version": 2, "longer": true}')
    fault_proxy.reset_log()
    r = update(server, "c.json", **{"return": "data"})
    assert r.status_code == 200, r.text
    assert r.json()["return"]["value"] == {"version": 2, "longer": True}
    sent = revalidations(fault_proxy, "c.json")
    assert sent and sent[0].headers["if-none-match"].strip('"') == old_etag.strip('"')
    r = update(server, "c.json")
    assert r.json()["return"]["value"].get("revalidated") is True  # the new ETag was stored
    assert read_raw(server, "c.json") == (200, new, "memory")
    assert (server.cache / "c.json").read_bytes() == new
    s3.put("c.json", '{"version": 3}')
    r = update(server, "c.json")
    assert r.status_code == 200, r.text
    v = r.json()["return"]["value"]
    assert v.get("revalidated", False) is False and v["bytes"] == len('{"version": 3}')
    server.restart()
    assert read_raw(server, "c.json") == (200, b'{"version": 3}', "disk")


def test_update_of_a_deleted_object_is_404_and_the_key_leaves_the_cache(s3, s3_server):
    s3.put("gone.bin", b"soon gone")
    s3.put("stays.bin", b"stays")
    for key in ("gone.bin", "stays.bin"):
        assert read_raw(s3_server, key)[0] == 200
    s3.delete("gone.bin")
    assert_error(update(s3_server, "gone.bin"), 404)
    assert cached_keys(s3_server) == ["stays.bin"]
    assert disk_values(s3_server) == ["stays.bin"]
    assert_error(s3_server.get(path="gone.bin"), 404)
    assert read_raw(s3_server, "stays.bin") == (200, b"stays", "memory")


def test_update_of_a_key_not_yet_cached_fetches_it_from_s3(s3, s3_server):
    s3.put("new.json", "[1, 2, 3]")
    r = update(s3_server, "new.json")
    assert r.status_code == 200, r.text
    v = r.json()["return"]["value"]
    assert v["source"] == "sor" and not v.get("revalidated")
    assert read_raw(s3_server, "new.json") == (200, b"[1, 2, 3]", "memory")


def test_update_to_invalid_json_is_422_and_the_old_copy_is_not_replaced_by_it(s3, s3_server):
    s3.put("v.json", '{"ok": 1}')
    assert read_raw(s3_server, "v.json")[0] == 200
    s3.put("v.json", '{"ok": ')
    assert_error(update(s3_server, "v.json"), 422)
    status, body, _ = read_raw(s3_server, "v.json")
    assert body != b'{"ok": '
    if status == 200:
        assert body == b'{"ok": 1}'
    assert b'{"ok": ' not in [p.read_bytes() for p in s3_server.cache.rglob("v.json")]


def test_update_when_s3_fails_keeps_the_old_copy(s3, proxied, fault_proxy):
    s3.put("keep.json", '{"keep": true}')
    server = proxied(ASIDE_S3_MAX_ATTEMPTS="2")
    assert read_raw(server, "keep.json")[0] == 200
    s3.put("keep.json", '{"keep": false}')
    fault_proxy.fail("status", method=None, status=500, times=100, path_contains="keep.json")
    r = update(server, "keep.json")
    assert r.status_code == 502, r.text
    fault_proxy.clear()
    assert read_raw(server, "keep.json") == (200, b'{"keep": true}', "memory")
    assert (server.cache / "keep.json").read_bytes() == b'{"keep": true}'
