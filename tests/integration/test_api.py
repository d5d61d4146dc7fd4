"""The REST API's rows: functions, parameters, envelopes, telemetry."""
from __future__ import annotations

import base64
import json
import os
import re

import pytest

from helpers import (API, assert_error, assert_nothing_cached, cached_keys, disk_sidecars,
                      disk_tmp_files, disk_values, put_sor, telemetry)

DOC = {"name": "file1", "values": [1, 2, 3], "nested": {"ok": True, "text": "é \"q\""}}


def meta(r, source, type_="json", size=None):
    assert r.status_code == 200, r.text
    body = r.json()["return"]
    assert body["uri"] == API
    v = body["value"]
    assert v["result"] == "success"
    assert v["source"] == source, v
    assert v["type"] == type_
    if size is not None:
        assert v["bytes"] == size
    return body


def test_first_read_comes_from_sor_then_from_memory(server):
    raw = put_sor(server, "file1.json", json.dumps(DOC))
    first = meta(server.get(function="read", path="file1.json"), "sor", size=len(raw))
    assert first["path"] == "file1.json"
    assert "seconds" not in first["value"]
    meta(server.get(function="read", path="file1.json"), "memory", size=len(raw))
    # the disk tier holds an identical copy and its sidecar, nothing else
    assert (server.cache / "file1.json").read_bytes() == raw
    assert (server.cache / ".aside" / "meta" / "file1.json.meta").is_file()
    assert disk_values(server) == ["file1.json"]
    assert disk_tmp_files(server) == []
    assert cached_keys(server) == ["file1.json"]


@pytest.mark.parametrize("route", ["/cache/api/v1.0/", "/cache/api/v1.0", "/cache", "/cache/"])
def test_every_api_route_serves_reads(server, route):
    put_sor(server, "r.json", "[1, 2]")
    r = server.call("GET", server.base + route, params={"path": "r.json", "return": "data"})
    assert r.status_code == 200, r.text
    assert r.json()["return"]["value"] == [1, 2]
    assert r.json()["return"]["uri"] == API
    assert cached_keys(server) == ["r.json"]


@pytest.mark.parametrize("route", ["/", "/cache/api", "/cache/api/v1.0/x", "/cache/api/v2.0/",
                                   "/cachex", "/cache//", "/favicon.ico"])
def test_other_routes_are_404_json_errors_and_read_nothing(server, route):
    put_sor(server, "r.json", "{}")
    r = server.call("GET", server.base + route, params={"path": "r.json"})
    assert_error(r, 404)
    assert_nothing_cached(server)


def test_key_is_an_alias_of_path(server):
    put_sor(server, "k.json", '{"k": 1}')
    r = server.get(key="k.json", **{"return": "data"})
    assert r.status_code == 200, r.text
    assert r.json()["return"] == {"uri": API, "path": "k.json", "value": {"k": 1}}
    meta(server.get(function="read", key="k.json"), "memory")


def test_path_wins_over_key_when_both_are_given(server):
    put_sor(server, "p.json", '"p"')
    put_sor(server, "k.json", '"k"')
    r = server.get(path="p.json", key="k.json", **{"return": "data"})
    assert r.status_code == 200, r.text
    assert r.json()["return"]["value"] == "p"
    assert cached_keys(server) == ["p.json"]


def test_return_data_of_a_json_key_is_the_document(server):
    put_sor(server, "doc.json", json.dumps(DOC, indent=2))
    for _ in range(2):  # from the SOR, then from memory
        r = server.get(path="doc.json", **{"return": "data"})
        assert r.status_code == 200, r.text
        assert r.json() == {"return": {"uri": API, "path": "doc.json", "value": DOC}}


@pytest.mark.parametrize("document", ["42", '"text"', "null", "true", "[]", " {\"a\": [] } \n"])
def test_any_json_text_is_a_valid_json_value(server, document):
    put_sor(server, "scalar.json", document)
    r = server.get(path="scalar.json", **{"return": "data"})
    assert r.status_code == 200, r.text
    assert r.json()["return"]["value"] == json.loads(document)


def test_return_data_of_a_binary_key_is_base64(server):
    raw = put_sor(server, "blob.bin", bytes(range(256)) * 5 + b"\x00\xff")
    for _ in range(2):
        r = server.get(path="blob.bin", **{"return": "data"})
        assert r.status_code == 200, r.text
        assert base64.b64decode(r.json()["return"]["value"], validate=True) == raw
    meta(server.get(path="blob.bin"), "memory", type_="bytes", size=len(raw))


def test_empty_binary_file_is_an_empty_value(server):
    put_sor(server, "empty.bin", b"")
    meta(server.get(path="empty.bin"), "sor", type_="bytes", size=0)
    r = server.get(path="empty.bin", format="raw")
    assert r.status_code == 200 and r.content == b""
    r = server.get(path="empty.bin", **{"return": "data"})
    assert r.json()["return"]["value"] == ""


@pytest.mark.parametrize("value", ["true", "1", "TRUE"])
def test_time_true_adds_seconds(server, value):
    put_sor(server, "t.json", "{}")
    for _ in range(2):
        v = server.get(path="t.json", time=value).json()["return"]["value"]
        assert isinstance(v["seconds"], float) and 0 <= v["seconds"] < 10


@pytest.mark.parametrize("value", ["false", "0"])
def test_time_false_omits_seconds(server, value):
    put_sor(server, "t.json", "{}")
    v = server.get(path="t.json", time=value).json()["return"]["value"]
    assert "seconds" not in v and v["result"] == "success"


@pytest.mark.parametrize("name, value", [("return", "everything"), ("return", ""),
                                         ("format", "xml"), ("format", ""),
                                         ("time", "yes"), ("time", "2")])
def test_invalid_choice_parameter_is_400_and_names_it(server, name, value):
    put_sor(server, "c.json", "{}")
    err = assert_error(server.get(path="c.json", **{name: value}), 400)
    assert name in err["message"]


@pytest.mark.parametrize("key, content_type", [
    ("d.json", "application/json"),
    ("d.parquet", "application/vnd.apache.parquet"),
    ("d.csv", "text/csv; charset=utf-8"),
    ("d.bin", "application/octet-stream"),
    ("noext", "application/octet-stream"),
])
def test_format_raw_sends_the_bytes_with_a_content_type_by_extension(server, key, content_type):
    raw = put_sor(server, key, b'{"x": 1}' if key.endswith(".json") else b"a,b\n\x00\x01\xfe")
    # these bytes are no table: frame keys are read as plain bytes here
    as_bytes = {"type": "bytes"} if key.endswith((".parquet", ".csv")) else {}
    for source in ("sor", "memory"):
        r = server.get(path=key, format="raw", **as_bytes)
        assert r.status_code == 200
        assert r.content == raw
        assert r.headers["Content-Type"] == content_type
        assert r.headers["X-Aside-Source"] == source
        assert int(r.headers["Content-Length"]) == len(raw)


@pytest.mark.parametrize("accept", ["text/csv", "application/octet-stream", "image/png, text/*"])
def test_accept_header_without_json_gets_the_raw_bytes(server, accept):
    raw = put_sor(server, "a.csv", "x,y\n1,2\n")
    r = server.call("GET", params={"path": "a.csv"}, headers={"Accept": accept})
    assert r.status_code == 200
    assert r.content == raw
    assert r.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert r.headers["X-Aside-Source"] == "sor"


@pytest.mark.parametrize("accept", ["application/json", "*/*", "application/*",
                                    "text/html, application/json;q=0.9"])
def test_accept_header_that_takes_json_gets_the_envelope(server, accept):
    put_sor(server, "a.csv", "x,y\n")
    r = server.call("GET", params={"path": "a.csv"}, headers={"Accept": accept})
    meta(r, "sor", type_="frame", size=4)
    assert "X-Aside-Source" not in r.headers


def test_format_json_overrides_a_non_json_accept_header(server):
    put_sor(server, "a.csv", "x,y\n")
    r = server.call("GET", params={"path": "a.csv", "format": "json"},
                    headers={"Accept": "text/csv"})
    meta(r, "sor", type_="frame", size=4)


def test_post_body_dispatches_like_the_query(server):
    raw = put_sor(server, "file1.json", json.dumps(DOC))
    body = meta(server.post({"function": "read", "path": "file1.json"}), "sor", size=len(raw))
    assert body["path"] == "file1.json"
    r = server.post({"function": "read", "path": "file1.json", "return": "data"})
    assert r.json()["return"]["value"] == DOC


def test_post_without_function_is_create_which_reads(server):
    put_sor(server, "c.json", "[]")
    meta(server.post({"path": "c.json"}), "sor")
    meta(server.post({"path": "c.json"}), "memory")
    assert cached_keys(server) == ["c.json"]


def test_post_body_overrides_the_query(server):
    put_sor(server, "body.json", '"body"')
    put_sor(server, "query.json", '"query"')
    r = server.call("POST", params={"path": "query.json", "return": "meta"},
                    json={"data": {"path": "body.json", "return": "data"}})
    assert r.status_code == 200, r.text
    assert r.json()["return"] == {"uri": API, "path": "body.json", "value": "body"}
    assert cached_keys(server) == ["body.json"]


def test_post_body_takes_booleans_and_numbers(server):
    put_sor(server, "123", b"digits")
    r = server.post({"path": 123, "time": True})
    v = meta(r, "sor", type_="bytes", size=6)["value"]
    assert isinstance(v["seconds"], float)
    v = server.post({"path": "123", "time": False}).json()["return"]["value"]
    assert "seconds" not in v


def test_post_body_null_values_are_ignored(server):
    put_sor(server, "n.json", "{}")
    meta(server.post({"path": "n.json", "function": None, "return": None}), "sor")


@pytest.mark.parametrize("bad", [{"x": 1}, [1, 2], []])
def test_post_body_object_or_array_values_are_400(server, bad):
    put_sor(server, "n.json", "{}")
    assert_error(server.post({"path": "n.json", "function": bad}), 400)
    assert_error(server.post({"path": bad}), 400)
    assert_nothing_cached(server)


def test_put_without_function_is_update_from_sor(server):
    put_sor(server, "u.json", '{"v": 1}')
    meta(server.get(path="u.json"), "sor")
    put_sor(server, "u.json", '{"v": 22}')
    r = server.call("PUT", params={"path": "u.json"})
    meta(r, "sor", size=9)
    r = server.get(path="u.json", **{"return": "data"})
    assert r.json()["return"]["value"] == {"v": 22}


def test_delete_without_function_is_delete(server):
    put_sor(server, "d.json", "{}")
    server.get(path="d.json")
    r = server.call("DELETE", params={"path": "d.json"})
    assert r.status_code == 200, r.text
    assert r.json() == {"return": {"uri": API, "path": "d.json", "value": {"result": "success"}}}
    assert_nothing_cached(server)
    assert (server.sor / "d.json").read_bytes() == b"{}"


def test_get_without_function_is_read_and_empty_function_is_the_default(server):
    put_sor(server, "g.json", "{}")
    meta(server.get(path="g.json"), "sor")
    meta(server.get(path="g.json", function=""), "memory")


@pytest.mark.parametrize("alias, expected", [("read", "read"), ("data_read", "read"),
                                             ("create", "read"), ("cache_create", "read")])
def test_read_aliases_read(server, alias, expected):
    raw = put_sor(server, "a.json", '{"alias": 1}')
    meta(server.get(function=alias, path="a.json"), "sor", size=len(raw))
    meta(server.get(function=alias, path="a.json"), "memory", size=len(raw))


def test_post_create_and_cache_create_read_through(server):
    put_sor(server, "a.json", "{}")
    meta(server.post({"function": "create", "path": "a.json"}), "sor")
    meta(server.post({"function": "cache_create", "path": "a.json"}), "memory")


@pytest.mark.parametrize("alias", ["delete", "cache_delete"])
def test_delete_aliases_delete(server, alias):
    put_sor(server, "x.json", "{}")
    server.get(path="x.json")
    r = server.get(function=alias, path="x.json")
    assert r.status_code == 200 and r.json()["return"]["value"] == {"result": "success"}
    assert_nothing_cached(server)


@pytest.mark.parametrize("alias", ["head", "cache_head"])
def test_head_aliases_report_telemetry(server, alias):
    put_sor(server, "x.json", "{}")
    server.get(path="x.json")
    r = server.get(function=alias)
    assert r.status_code == 200
    v = r.json()["return"]["value"]
    assert v["keys"] == 1 and [e["path"] for e in v["entries"]] == ["x.json"]


def test_unknown_function_is_404_and_lists_the_known_ones(server):
    put_sor(server, "x.json", "{}")
    err = assert_error(server.get(function="explode", path="x.json"), 404, "unknown_function")
    assert "explode" in err["message"]
    for name in ("read", "create", "update", "delete", "head", "data_read", "cache_create",
                 "cache_delete", "cache_head", "stats_cache"):
        assert re.search(rf"\b{name}\b", err["message"]), name
    assert_error(server.post({"function": "READ", "path": "x.json"}), 404, "unknown_function")
    assert_nothing_cached(server)


def test_stats_cache_lists_cached_keys_sorted(server):
    assert cached_keys(server) == []
    for key in ("zeta.json", "alpha.bin", "m/n/o.csv", "beta.json"):
        put_sor(server, key, "1")
        assert server.get(path=key).status_code == 200
    r = server.get(function="stats_cache")
    assert r.json()["return"] == {"uri": API, "path": None,
                                  "value": ["alpha.bin", "beta.json", "m/n/o.csv", "zeta.json"]}


def test_delete_forgets_the_key_but_leaves_the_sor_file(server):
    raw = put_sor(server, "del.json", '{"d": 1}')
    put_sor(server, "keep.json", '{"k": 1}')
    server.get(path="del.json")
    server.get(path="keep.json")
    r = server.get(function="delete", path="del.json")
    assert r.status_code == 200
    assert cached_keys(server) == ["keep.json"]
    assert disk_values(server) == ["keep.json"]
    assert disk_sidecars(server) == ["keep.json"]
    assert (server.sor / "del.json").read_bytes() == raw
    assert_error(server.get(function="head", path="del.json"), 404)
    meta(server.get(path="del.json"), "sor")  # the next read goes back to the SOR


def test_second_delete_of_same_key_is_404(server):
    put_sor(server, "x.json", "{}")
    server.get(path="x.json")
    assert server.get(function="delete", path="x.json").status_code == 200
    assert_error(server.get(function="delete", path="x.json"), 404)


def test_delete_of_a_key_never_cached_is_404_even_if_in_sor(server):
    raw = put_sor(server, "never.json", "{}")
    assert_error(server.get(function="delete", path="never.json"), 404)
    assert_error(server.call("DELETE", params={"path": "nowhere.json"}), 404)
    assert (server.sor / "never.json").read_bytes() == raw
    assert_nothing_cached(server)


def test_update_serves_the_new_content_of_a_changed_sor_file(server):
    put_sor(server, "u.bin", b"old content")
    server.get(path="u.bin")
    new = put_sor(server, "u.bin", b"brand new content")
    meta(server.get(path="u.bin"), "memory", type_="bytes", size=11)  # a cache: still old
    r = server.get(function="update", path="u.bin", format="raw")
    assert r.status_code == 200 and r.content == new
    assert r.headers["X-Aside-Source"] == "sor"
    r = server.get(path="u.bin", format="raw")
    assert r.content == new and r.headers["X-Aside-Source"] == "memory"
    assert (server.cache / "u.bin").read_bytes() == new
    assert disk_values(server) == ["u.bin"] and disk_tmp_files(server) == []


def test_update_of_a_key_not_yet_cached_fetches_it(server):
    put_sor(server, "u.json", "{}")
    meta(server.get(function="update", path="u.json"), "sor")
    meta(server.get(path="u.json"), "memory")


def test_update_when_the_sor_file_is_gone_is_404_and_forgets_the_key(server):
    put_sor(server, "gone.json", "{}")
    put_sor(server, "other.json", "{}")
    server.get(path="gone.json")
    server.get(path="other.json")
    (server.sor / "gone.json").unlink()
    assert_error(server.get(function="update", path="gone.json"), 404)
    assert cached_keys(server) == ["other.json"]
    assert disk_values(server) == ["other.json"]
    assert disk_sidecars(server) == ["other.json"]
    assert_error(server.get(path="gone.json"), 404)


def test_update_to_invalid_json_is_422_and_never_serves_it(server):
    put_sor(server, "v.json", '{"good": true}')
    server.get(path="v.json")
    put_sor(server, "v.json", '{"good": tru')
    assert_error(server.get(function="update", path="v.json"), 422)
    r = server.get(path="v.json", **{"return": "data"})
    # either the old valid copy is still served or the key is gone; never the broken bytes
    if r.status_code == 200:
        assert r.json()["return"]["value"] == {"good": True}
    else:
        assert_error(r, 422)
    assert disk_tmp_files(server) == []
    for key in disk_values(server):
        assert (server.cache / key).read_bytes() == b'{"good": true}'


def test_key_missing_from_sor_is_404_and_nothing_is_cached(server):
    err = assert_error(server.get(path="missing.json"), 404)
    assert "missing.json" in err["message"]
    assert_error(server.get(path="missing/deeper.json"), 404)
    assert_nothing_cached(server)


@pytest.mark.parametrize("text", ['{"a": 1', "{'a': 1}", "", "nope", '{"a": 1} trailing'])
def test_invalid_json_file_is_422_and_nothing_is_cached(server, text):
    put_sor(server, "bad.json", text)
    assert_error(server.get(path="bad.json"), 422)
    assert_error(server.get(path="bad.json", format="raw"), 422)
    assert_nothing_cached(server)
    assert telemetry(server)["memory"]["used_bytes"] == 0


def test_invalid_json_is_only_checked_for_json_keys(server):
    raw = put_sor(server, "bad.txt", '{"a": 1')
    r = server.get(path="bad.txt", format="raw")
    assert r.status_code == 200 and r.content == raw
    assert r.headers["Content-Type"] == "text/plain; charset=utf-8"


def test_json_type_is_chosen_by_a_case_insensitive_extension(server):
    put_sor(server, "UP.JSON", '{"u": 1}')
    meta(server.get(path="UP.JSON"), "sor", type_="json")


def test_nested_keys_work(server):
    raw = put_sor(server, "a/b/c.json", '{"deep": [1]}')
    meta(server.get(path="a/b/c.json"), "sor", size=len(raw))
    r = server.get(path="a/b/c.json", **{"return": "data"})
    assert r.json()["return"] == {"uri": API, "path": "a/b/c.json", "value": {"deep": [1]}}
    assert (server.cache / "a" / "b" / "c.json").read_bytes() == raw
    assert disk_sidecars(server) == ["a/b/c.json"]
    assert cached_keys(server) == ["a/b/c.json"]


def test_reserved_name_below_the_top_level_is_an_ordinary_folder(server):
    raw = put_sor(server, "x/.aside/y.json", "[0]")
    meta(server.get(path="x/.aside/y.json"), "sor", size=len(raw))
    assert disk_values(server) == ["x/.aside/y.json"]


def test_symlink_inside_the_root_to_a_file_inside_the_root_is_served(server):
    raw = put_sor(server, "real/target.json", '{"t": 1}')
    (server.sor / "link.json").symlink_to(server.sor / "real" / "target.json")
    (server.sor / "rel.json").symlink_to("real/target.json")
    for key in ("link.json", "rel.json"):
        r = server.get(path=key, format="raw")
        assert r.status_code == 200 and r.content == raw
    assert cached_keys(server) == ["link.json", "rel.json"]


def test_unicode_and_space_keys_round_trip(server):
    raw = put_sor(server, "dir with space/été ü.json", '"ok"')
    r = server.get(path="dir with space/été ü.json", **{"return": "data"})
    assert r.status_code == 200, r.text
    assert r.json()["return"]["path"] == "dir with space/été ü.json"
    assert r.json()["return"]["value"] == "ok"
    assert (server.cache / "dir with space" / "été ü.json").read_bytes() == raw


# -- telemetry ---------------------------------------------------------------------------------

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def test_telemetry_of_an_empty_cache(server):
    r = server.get(function="head")
    assert r.status_code == 200
    body = r.json()["return"]
    assert body["uri"] == API and body["path"] is None
    v = body["value"]
    assert v["keys"] == 0 and v["entries"] == []
    assert v["hits"] == v["misses"] == v["sor_fetches"] == 0
    assert v["evictions"] == {"memory": 0, "disk": 0}
    assert v["memory"]["used_bytes"] == 0 and v["memory"]["limit_bytes"] > 0
    assert v["disk"]["used_bytes"] == 0 and v["disk"]["limit_bytes"] > 0
    assert isinstance(v["uptime_seconds"], (int, float)) and v["uptime_seconds"] >= 0


def test_telemetry_counts_hits_misses_and_fetches(server):
    a = put_sor(server, "a.json", '{"a": 1}')
    b = put_sor(server, "b.bin", b"\x01" * 100)
    server.get(path="a.json")          # miss
    server.get(path="a.json")          # hit
    server.get(path="a.json", format="raw")  # hit
    server.get(path="b.bin")           # miss
    server.get(path="missing.json")    # needs the SOR, fails
    v = telemetry(server)
    assert v["keys"] == 2
    assert v["hits"] == 2
    assert v["misses"] == 3
    assert v["sor_fetches"] == 3
    assert v["memory"]["used_bytes"] == len(a) + len(b)
    assert v["disk"]["used_bytes"] == len(a) + len(b)
    entries = {e["path"]: e for e in v["entries"]}
    assert [e["path"] for e in v["entries"]] == ["a.json", "b.bin"]
    assert entries["a.json"]["type"] == "json" and entries["a.json"]["bytes"] == len(a)
    assert entries["b.bin"]["type"] == "bytes" and entries["b.bin"]["bytes"] == 100
    assert entries["a.json"]["hits"] == 2 and entries["b.bin"]["hits"] == 0
    for e in entries.values():
        assert e["tier"] == "memory"
        assert ISO_Z.match(e["last_access"]), e["last_access"]


def test_telemetry_with_path_reports_only_that_key(server):
    put_sor(server, "a.json", "{}")
    put_sor(server, "b.json", "[]")
    server.get(path="a.json")
    server.get(path="b.json")
    server.get(path="b.json")
    r = server.get(function="head", path="b.json")
    assert r.status_code == 200
    body = r.json()["return"]
    assert body["path"] == "b.json"
    assert body["value"]["keys"] == 2
    [entry] = body["value"]["entries"]
    assert entry["path"] == "b.json" and entry["hits"] == 1 and entry["bytes"] == 2
    assert_error(server.get(function="head", path="c.json"), 404)
    assert cached_keys(server) == ["a.json", "b.json"]


def test_http_head_reports_telemetry_in_headers_without_a_body(server):
    raw = put_sor(server, "h.json", '{"h": 1}')
    server.get(path="h.json")
    server.get(path="h.json")
    r = server.call("HEAD")
    assert r.status_code == 200
    assert r.content == b""
    h = r.headers
    assert h["X-Aside-Keys"] == "1"
    assert h["X-Aside-Memory-Used"] == str(len(raw))
    assert int(h["X-Aside-Memory-Limit"]) > 0
    assert h["X-Aside-Disk-Used"] == str(len(raw))
    assert int(h["X-Aside-Disk-Limit"]) > 0
    assert h["X-Aside-Hits"] == "1" and h["X-Aside-Misses"] == "1"
    assert h["X-Aside-Evictions"] == "0" and h["X-Aside-Sor-Fetches"] == "1"
    assert float(h["X-Aside-Uptime"]) >= 0
    assert "X-Aside-Key-Type" not in h
    r = server.call("HEAD", params={"path": "h.json"})
    assert r.status_code == 200 and r.content == b""
    assert r.headers["X-Aside-Key-Type"] == "json"
    assert r.headers["X-Aside-Key-Bytes"] == str(len(raw))
    assert r.headers["X-Aside-Key-Tier"] == "memory"
    assert r.headers["X-Aside-Key-Hits"] == "1"
    r = server.call("HEAD", params={"path": "absent.json"})
    assert r.status_code == 404 and r.content == b""
    # HEAD never reads a value, whatever function it names
    put_sor(server, "other.json", "{}")
    r = server.call("HEAD", params={"function": "read", "path": "other.json"})
    assert r.status_code == 404 and r.content == b""
    assert cached_keys(server) == ["h.json"]


def test_format_raw_wins_over_return_data(server):
    raw = put_sor(server, "both.json", '{"both": 1}')
    r = server.get(path="both.json", format="raw", **{"return": "data"})
    assert r.status_code == 200 and r.content == raw
    assert r.headers["X-Aside-Source"] == "sor"


def test_update_with_return_data_answers_the_new_document(server):
    put_sor(server, "u.json", '{"v": 1}')
    server.get(path="u.json")
    put_sor(server, "u.json", '{"v": 2}')
    r = server.get(function="update", path="u.json", **{"return": "data"})
    assert r.status_code == 200
    assert r.json()["return"] == {"uri": API, "path": "u.json", "value": {"v": 2}}


def test_update_and_delete_keep_the_byte_counters_exact(server):
    put_sor(server, "a.bin", b"a" * 100)
    put_sor(server, "b.bin", b"b" * 1000)
    server.get(path="a.bin")
    server.get(path="b.bin")
    put_sor(server, "a.bin", b"A" * 300)
    assert server.get(function="update", path="a.bin").status_code == 200
    v = telemetry(server)
    assert v["keys"] == 2
    assert v["memory"]["used_bytes"] == v["disk"]["used_bytes"] == 1300
    assert server.get(function="delete", path="b.bin").status_code == 200
    v = telemetry(server)
    assert v["keys"] == 1
    assert v["memory"]["used_bytes"] == v["disk"]["used_bytes"] == 300
    assert server.get(function="delete", path="a.bin").status_code == 200
    v = telemetry(server)
    assert v["memory"]["used_bytes"] == v["disk"]["used_bytes"] == v["keys"] == 0


def test_long_accept_header_that_lists_json_last_gets_the_envelope(server):
    put_sor(server, "x.json", '{"x": 1}')
    accept = ", ".join(f"text/x-type-{i};q=0.{i % 9 + 1}" for i in range(40))
    accept += ", application/json"
    r = server.call("GET", params={"path": "x.json"}, headers={"Accept": accept})
    assert r.status_code == 200
    assert "X-Aside-Source" not in r.headers, ("raw bytes instead of the envelope", r.content)
    assert r.json()["return"]["value"]["source"] == "sor", r.text


def test_fifo_in_the_sor_is_404_and_does_not_hang(server):
    os.mkfifo(server.sor / "pipe.bin")
    assert_error(server.get(path="pipe.bin"), 404)
    assert_nothing_cached(server)


def test_component_longer_than_a_file_name_can_be_is_not_found_not_a_sor_failure(server):
    key = "n" * 300 + ".json"  # under the 1024-byte key limit, over any file system's NAME_MAX
    r = server.get(path=key)
    assert r.status_code in (400, 404), (r.status_code, r.text)
    assert_error(r, r.status_code)
    assert_nothing_cached(server)


def test_file_in_the_way_of_a_folder_in_the_disk_tier_is_409_until_updated(server):
    put_sor(server, "a", b"a file")
    assert server.get(path="a").status_code == 200
    (server.sor / "a").unlink()
    put_sor(server, "a/b.json", "{}")
    assert_error(server.get(path="a/b.json"), 409)
    assert disk_tmp_files(server) == []
    assert cached_keys(server) == ["a"]
    r = server.get(path="a", format="raw")  # the cached value is unharmed
    assert r.status_code == 200 and r.content == b"a file"
    assert_error(server.get(function="update", path="a"), 404)  # gone from the SOR: forgotten
    meta(server.get(path="a/b.json"), "sor")
    assert cached_keys(server) == ["a/b.json"]
    assert disk_values(server) == ["a/b.json"]
