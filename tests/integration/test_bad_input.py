"""Bad input gets a clear error and changes nothing."""
from __future__ import annotations

import json

import pytest
import requests

from helpers import API, assert_error, assert_nothing_cached, cached_keys, put_sor, raw_request

# Query strings are written by hand so that the exact bytes reach the server.
BAD_PATHS = {
    "absolute": "%2Fetc%2Fpasswd",
    "absolute_unencoded": "/etc/passwd",
    "dotdot_first": "../secret.json",
    "dotdot_middle": "a/../secret.json",
    "dotdot_last": "a/..",
    "dotdot_alone": "..",
    "dot_first": "./x.json",
    "dot_middle": "a/./x.json",
    "dot_alone": ".",
    "empty_component": "a//x.json",
    "trailing_slash": "a/",
    "only_slash": "/",
    "nul": "x%00.json",
    "nul_only": "%00",
    "control_01": "x%01.json",
    "control_newline": "x%0A.json",
    "control_tab": "x%09.json",
    "del_7f": "x%7f.json",
    "empty": "",
    "too_long": "a" * 1025,
    "too_long_nested": "/".join(["d" * 200] * 6),
    "reserved_meta": ".aside/meta/x.json.meta",
    "reserved_tmp": ".aside/tmp/v.123",
    "reserved_alone": ".aside",
}


def plant_targets(server, outside):
    """Files that a bad path might reach if it were not refused."""
    put_sor(server, "x.json", "{}")
    put_sor(server, "a/x.json", "{}")
    (outside / "secret.json").write_text('{"secret": 1}')


@pytest.fixture
def outside(tmp_path):
    d = tmp_path / "outside"
    d.mkdir()
    return d


@pytest.mark.parametrize("function", ["read", "update", "delete", "head"])
@pytest.mark.parametrize("name", sorted(BAD_PATHS))
def test_bad_path_is_400_and_nothing_changes(server, outside, name, function):
    plant_targets(server, outside)
    url = f"{server.api}?function={function}&path={BAD_PATHS[name]}"
    err = assert_error(server.call("GET", url), 400, "bad_request")
    assert "path" in err["message"]
    assert_nothing_cached(server)


@pytest.mark.parametrize("name", ["absolute_unencoded", "dotdot_middle", "empty_component",
                                  "trailing_slash", "reserved_meta", "too_long"])
def test_bad_path_in_a_post_body_is_400(server, outside, name):
    plant_targets(server, outside)
    r = server.post({"function": "read", "path": BAD_PATHS[name]})
    assert_error(r, 400, "bad_request")
    assert_nothing_cached(server)


@pytest.mark.parametrize("value", ["x\x00.json", "x\x1f.json", "x\x7f.json", "/x.json",
                                   "a/../x.json", ""])
def test_bad_path_given_as_key_or_in_a_json_string_is_400(server, outside, value):
    plant_targets(server, outside)
    assert_error(server.post({"key": value}), 400, "bad_request")
    assert_error(server.get(key=value), 400, "bad_request")
    assert_nothing_cached(server)


def test_bad_path_is_refused_before_a_good_key_is_affected(server):
    raw = put_sor(server, "x.json", "{}")
    assert server.get(path="x.json").status_code == 200
    assert_error(server.call("GET", server.api + "?function=delete&path=./x.json"), 400)
    assert_error(server.call("GET", server.api + "?function=update&path=a/../x.json"), 400)
    assert cached_keys(server) == ["x.json"]
    r = server.get(path="x.json", format="raw")
    assert r.content == raw and r.headers["X-Aside-Source"] == "memory"


def test_path_of_exactly_1024_bytes_is_accepted(server):
    key = "/".join(["d" * 200] * 5) + "/" + "f" * 14 + ".json"
    assert len(key.encode()) == 1024
    raw = put_sor(server, key, '{"long": true}')
    r = server.get(path=key, format="raw")
    assert r.status_code == 200 and r.content == raw
    assert cached_keys(server) == [key]


def test_symlink_to_a_file_outside_the_root_is_400(server, outside):
    plant_targets(server, outside)
    (server.sor / "escape.json").symlink_to(outside / "secret.json")
    err = assert_error(server.get(path="escape.json"), 400)
    assert "secret" not in json.dumps(err)
    assert_error(server.get(path="escape.json", format="raw"), 400)
    assert_error(server.get(function="update", path="escape.json"), 400)
    assert_nothing_cached(server)


def test_symlinked_folder_leading_outside_the_root_is_400(server, outside):
    plant_targets(server, outside)
    (server.sor / "shared").symlink_to(outside, target_is_directory=True)
    assert_error(server.get(path="shared/secret.json"), 400)
    assert_nothing_cached(server)


def test_symlink_to_the_sor_root_itself_is_refused(server):
    (server.sor / "self").symlink_to(server.sor, target_is_directory=True)
    r = server.get(path="self")
    assert r.status_code in (400, 404), r.text
    assert_nothing_cached(server)


@pytest.mark.parametrize("query", ["path=%zz", "path=x%2", "path=x%", "pa%zzth=x.json",
                                   "path=x.json&return=%g0", "path=%%41"])
def test_malformed_percent_encoding_is_400(server, query):
    put_sor(server, "x.json", "{}")
    status, headers, body = raw_request(server, "GET", f"{API}?{query}")
    assert status == 400, body
    assert headers["content-type"] == "application/json"
    err = json.loads(body)["error"]
    assert err["code"] == "bad_request" and "percent" in err["message"]
    assert_nothing_cached(server)


def test_percent_encoded_path_is_decoded(server):
    raw = put_sor(server, "a b/c+d.json", "[1]")
    r = server.call("GET", server.api + "?path=a+b%2Fc%2Bd.json&format=raw")
    assert r.status_code == 200 and r.content == raw


@pytest.mark.parametrize("body", [b"{", b"not json", b'{"data": {"path": "x.json"}', b"\xff\xfe",
                                  b'{"data": {"path": "x.json"}} extra'])
def test_malformed_json_body_is_400(server, body):
    put_sor(server, "x.json", "{}")
    r = server.call("POST", data=body, headers={"Content-Type": "application/json"})
    err = assert_error(r, 400, "bad_request")
    assert "JSON" in err["message"]
    assert_nothing_cached(server)


@pytest.mark.parametrize("body", [{}, {"path": "x.json"}, {"Data": {"path": "x.json"}},
                                  {"data": "x.json"}, {"data": ["x.json"]}, {"data": None},
                                  {"data": 1}, [{"data": {"path": "x.json"}}], "data", 7])
def test_json_body_without_a_data_object_is_400(server, body):
    put_sor(server, "x.json", "{}")
    r = server.call("POST", json=body)
    assert_error(r, 400, "bad_request")
    assert_nothing_cached(server)


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_malformed_body_is_400_for_every_verb_that_takes_one(server, method):
    put_sor(server, "x.json", "{}")
    assert server.get(path="x.json").status_code == 200
    r = server.call(method, params={"path": "x.json"}, data=b"{broken")
    assert_error(r, 400, "bad_request")
    assert cached_keys(server) == ["x.json"]


def test_body_larger_than_max_body_is_413(make_server):
    server = make_server(args=["--max-body", "1KiB"])
    put_sor(server, "x.json", "{}")
    big = {"data": {"path": "x.json", "padding": "p" * 4096}}
    r = server.call("POST", json=big)
    assert_error(r, 413)
    # the server is fine afterwards, and a body under the limit still works
    small = requests.post(server.api, json={"data": {"path": "x.json", "pad": "p" * 900}},
                          timeout=10)
    assert small.status_code == 200, small.text
    assert cached_keys(server) == ["x.json"]


def test_directory_read_as_a_key_is_404(server):
    put_sor(server, "folder/inside.json", "{}")
    assert_error(server.get(path="folder"), 404)
    assert_error(server.get(path="folder", format="raw"), 404)
    assert_nothing_cached(server)


def test_file_used_as_a_folder_is_404(server):
    put_sor(server, "plain.json", "{}")
    assert_error(server.get(path="plain.json/child.json"), 404)
    assert_nothing_cached(server)


@pytest.mark.parametrize("method, function", [("GET", None), ("GET", "read"), ("GET", "update"),
                                              ("GET", "delete"), ("PUT", None),
                                              ("DELETE", None), ("POST", None)])
def test_missing_path_is_400(server, method, function):
    params = {"function": function} if function else {}
    err = assert_error(server.call(method, params=params), 400, "bad_request")
    assert "path" in err["message"]
    assert_nothing_cached(server)


def test_missing_path_in_a_post_body_is_400(server):
    assert_error(server.post({"function": "read"}), 400, "bad_request")
    assert_error(server.post({"function": "read", "path": None}), 400, "bad_request")
    assert_nothing_cached(server)


def test_query_with_empty_pairs_and_valueless_names_is_tolerated(server):
    raw = put_sor(server, "x.json", "{}")
    r = server.call("GET", server.api + "?&&path=x.json&&format=raw&flag")
    assert r.status_code == 200 and r.content == raw


def test_errors_are_json_envelopes_with_code_and_message(server):
    r = server.get(path="../x")
    assert r.status_code == 400
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert r.headers["Content-Type"] == "application/json"
    r = server.call("GET", server.base + "/cache", params={"path": "../x"})
    assert r.status_code == 400 and set(r.json()["error"]) == {"code", "message"}
