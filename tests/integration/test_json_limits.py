"""How deep JSON may nest (ASIDE_JSON_MAX_DEPTH, 1000 by default), text that is not UTF-8, and
arithmetic that overflows: each refused with 400 and its own code (too_deep, bad_utf8,
overflow), changing nothing, through every way JSON enters the server: put, write, a read of a
file of the system of record, json_set, json_merge, list_push, map_set, set_add, POST bodies,
query values, users' functions' results and the spec file. A document built deeper one edit
at a time used to overflow the server's stack (SIGSEGV at about 27,000 levels).

Deep values are built as text here and never parsed by Python's json module, whose own
recursion limit sits near 1000 levels."""
from __future__ import annotations

import json

import requests

from helpers import (assert_error, assert_nothing_cached, cached_keys, install, ok, put_sor,
                     telemetry)

LIMIT = 1000   # ASIDE_JSON_MAX_DEPTH's default
PARSER_LIMIT = 2048  # jansson's own parser stops here


def arrays(depth: int, inner: str = "") -> str:
    """depth arrays inside one another: arrays(2) is [[]]."""
    return "[" * depth + inner + "]" * depth


def objects(depth: int, leaf: str = "1") -> str:
    """depth objects inside one another, each {"a": ...}, with leaf innermost."""
    return '{"a":' * depth + leaf + "}" * depth


def depth_of(text: str) -> int:
    """The nesting depth of JSON text without strings holding brackets."""
    depth = deepest = 0
    for ch in text:
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def post_raw(server, data_members: str) -> requests.Response:
    """POST {"data": {<data_members>}} as text (deep values cannot go through json.dumps)."""
    return server.call("POST", data='{"data": {' + data_members + "}}",
                       headers={"Content-Type": "application/json"})


def post_op(server, function: str, key: str, **members: str) -> requests.Response:
    """An operation whose arguments are given as JSON text."""
    parts = [f'"function": "{function}"', f'"key": {json.dumps(key)}']
    parts += [f'"{name}": {text}' for name, text in members.items()]
    return post_raw(server, ", ".join(parts))


def value_text(r: requests.Response) -> str:
    """The envelope's value as text, without parsing it: the answer is 200."""
    assert r.status_code == 200, (r.status_code, r.text[:500])
    prefix = '"value": '
    start = r.text.index(prefix) + len(prefix)
    assert r.text.endswith("}}")
    return r.text[start:-2]


def assert_too_deep(r: requests.Response) -> None:
    err = assert_error(r, 400, "too_deep")
    assert f"more than {LIMIT} levels" in err["message"], err


def document_depth(server, key: str) -> int:
    return depth_of(value_text(post_op(server, "json_get", key, pointer='""')))


# ---- the crash ------------------------------------------------------------------------------

def test_a_document_built_deeper_edit_by_edit_stops_at_the_limit_and_the_server_lives(server):
    """The reported crash: each json_set one step deeper. Steps of 900 levels reach 27,000
    levels in 30 edits; every edit past the limit must be refused, none may crash."""
    step = 900
    assert ok(post_op(server, "json_set", "deep.json", pointer='""', value=arrays(step))) == \
        {"result": "success"}
    for k in range(1, 40):  # bounded: 36,000 levels if nothing stopped it
        pointer = json.dumps("/0" * (k * step - 1))
        r = post_op(server, "json_set", "deep.json", pointer=pointer, value=arrays(step))
        assert_too_deep(r)
    assert server.proc.poll() is None
    assert document_depth(server, "deep.json") == step
    server.restart()
    assert document_depth(server, "deep.json") == step


# ---- whole documents: put, write, a read from the system of record --------------------------

def put_raw(server, key: str, body: str, **params) -> requests.Response:
    return server.call("POST", params={"function": "put", "path": key, **params},
                       data=body.encode())


def test_put_takes_a_document_at_the_limit_and_refuses_one_past_it(server):
    assert_too_deep(put_raw(server, "past.json", arrays(LIMIT + 1)))
    assert_too_deep(put_raw(server, "past.json", objects(PARSER_LIMIT + 10)))
    assert_nothing_cached(server)
    ok(put_raw(server, "at.json", arrays(LIMIT)))
    r = server.get(path="at.json", **{"return": "data"})
    assert depth_of(value_text(r)) == LIMIT


def test_put_of_a_collection_is_held_to_the_limit_too(server):
    assert_too_deep(put_raw(server, "l", arrays(LIMIT + 1), type="list"))
    assert_too_deep(put_raw(server, "m", objects(LIMIT + 1), type="map"))
    assert cached_keys(server) == []
    ok(put_raw(server, "l", arrays(LIMIT), type="list"))
    assert ok(server.post({"function": "list_length", "key": "l"})) == 1


def test_write_refuses_a_document_past_the_limit_before_the_system_of_record(server):
    r = server.call("POST", params={"function": "write", "path": "w.json"},
                    data=arrays(LIMIT + 1).encode())
    assert_too_deep(r)
    assert not (server.sor / "w.json").exists()
    assert_nothing_cached(server)
    ok(server.call("POST", params={"function": "write", "path": "w.json"},
                   data=arrays(LIMIT).encode()))
    assert depth_of((server.sor / "w.json").read_text()) == LIMIT


def test_a_file_of_the_system_of_record_past_the_limit_is_refused_and_not_cached(server):
    put_sor(server, "sor-deep.json", arrays(LIMIT + 1))
    put_sor(server, "sor-deeper.json", arrays(PARSER_LIMIT + 1))
    put_sor(server, "sor-at.json", arrays(LIMIT))
    assert_too_deep(server.get(path="sor-deep.json"))
    assert_too_deep(server.get(path="sor-deeper.json"))
    assert_too_deep(post_op(server, "json_get", "sor-deep.json", pointer='"/0"'))
    assert_nothing_cached(server)
    assert depth_of(value_text(server.get(path="sor-at.json", **{"return": "data"}))) == LIMIT


# ---- operations ------------------------------------------------------------------------------

def test_json_set_counts_the_levels_above_the_pointer(server):
    ok(post_op(server, "json_set", "d.json", pointer='""', value='{"a": {"b": 1}}'))
    ok(post_op(server, "json_set", "d.json", pointer='"/a/b"', value=arrays(LIMIT - 2)))
    assert document_depth(server, "d.json") == LIMIT
    assert_too_deep(post_op(server, "json_set", "d.json", pointer='"/a/b"',
                            value=arrays(LIMIT - 1)))
    assert_too_deep(post_op(server, "json_set", "d.json", pointer='"/a/c"',
                            value=arrays(LIMIT - 1)))
    assert document_depth(server, "d.json") == LIMIT
    ok(post_op(server, "json_set", "e.json", pointer='""', value=arrays(LIMIT)))
    assert_too_deep(post_op(server, "json_set", "f.json", pointer='""', value=arrays(LIMIT + 1)))
    assert "f.json" not in cached_keys(server)


def test_a_stored_document_past_the_limit_is_not_made_deeper_by_json_set(server):
    """A document of the system of record at the limit, edited: its first edit makes it the
    cache's own; an edit that would pass the limit changes nothing."""
    put_sor(server, "s.json", objects(LIMIT - 1, leaf="{}"))
    assert_too_deep(post_op(server, "json_set", "s.json", pointer=json.dumps("/a" * (LIMIT - 1)
                                                                              + "/x"),
                            value="[]"))
    ok(post_op(server, "json_set", "s.json", pointer=json.dumps("/a" * (LIMIT - 1) + "/x"),
               value="1"))
    assert document_depth(server, "s.json") == LIMIT


def test_json_merge_refuses_a_patch_past_the_limit(server):
    ok(post_op(server, "json_set", "m.json", pointer='""', value='{"keep": 1}'))
    assert depth_of(value_text(post_op(server, "json_merge", "m.json", patch=objects(LIMIT)))) \
        == LIMIT
    assert document_depth(server, "m.json") == LIMIT
    assert_too_deep(post_op(server, "json_merge", "m.json", patch=objects(LIMIT + 1)))
    # through the query string, where the operation itself measures it
    assert_too_deep(server.get(function="json_merge", key="m.json", patch=objects(LIMIT + 1)))
    assert_too_deep(server.get(function="json_merge", key="m.json",
                               patch=objects(PARSER_LIMIT + 1)))
    assert document_depth(server, "m.json") == LIMIT
    assert ok(post_op(server, "json_get", "m.json", pointer='"/keep"')) == 1


def test_a_member_of_a_list_set_or_map_sits_one_level_down(server):
    cases = [("list_push", "l", "value"), ("set_add", "s", "value"), ("map_set", "m", "value")]
    for function, key, name in cases:
        extra = {"field": '"f"'} if function == "map_set" else {}
        ok(post_op(server, function, key, **{name: arrays(LIMIT - 1)}, **extra))
        assert_too_deep(post_op(server, function, key, **{name: arrays(LIMIT)}, **extra))
        assert_too_deep(server.get(function=function, key=key, value=arrays(LIMIT),
                                   **({"field": "g"} if extra else {})))
    assert_too_deep(post_op(server, "list_push", "l", values="[1, " + arrays(LIMIT) + "]"))
    assert_too_deep(post_op(server, "map_set", "m", fields='{"g": ' + arrays(LIMIT) + "}"))
    assert ok(server.post({"function": "list_length", "key": "l"})) == 1
    assert ok(server.post({"function": "set_size", "key": "s"})) == 1
    assert ok(server.post({"function": "map_length", "key": "m"})) == 1
    for function, key in (("list_range", "l"), ("set_members", "s"), ("map_all", "m")):
        assert depth_of(value_text(server.post({"function": function, "key": key}))) == LIMIT


def test_collections_at_the_limit_come_back_after_a_restart_and_a_compaction(server):
    ok(post_op(server, "list_push", "l", value=arrays(LIMIT - 1)))
    ok(post_op(server, "json_set", "d.json", pointer='""', value=arrays(LIMIT)))
    server.restart()
    assert depth_of(value_text(server.post({"function": "list_range", "key": "l"}))) == LIMIT
    ok(server.get(function="compact"))
    server.restart()
    assert depth_of(value_text(server.post({"function": "list_range", "key": "l"}))) == LIMIT
    assert document_depth(server, "d.json") == LIMIT


# ---- request bodies ----------------------------------------------------------------------------

def test_a_post_body_with_an_argument_past_the_limit_is_refused_before_anything_runs(server):
    assert_too_deep(post_raw(server, '"function": "list_push", "key": "l", "value": '
                             + arrays(LIMIT + 1)))
    assert_too_deep(post_raw(server, '"function": "list_push", "key": "l", "value": '
                             + arrays(PARSER_LIMIT + 100)))
    assert_too_deep(server.call("POST", data=arrays(100_000),
                                headers={"Content-Type": "application/json"}))
    assert cached_keys(server) == []


def test_a_configured_limit_holds_every_entry_point(make_server):
    server = make_server(env={"ASIDE_JSON_MAX_DEPTH": "10"})
    assert_error(put_raw(server, "p.json", arrays(11)), 400, "too_deep")
    ok(put_raw(server, "p.json", arrays(10)))
    assert_error(post_op(server, "list_push", "l", value=arrays(10)), 400, "too_deep")
    ok(post_op(server, "list_push", "l", value=arrays(9)))
    err = assert_error(post_raw(server, '"function": "head", "x": ' + arrays(11)), 400,
                       "too_deep")
    assert "10" in err["message"]


# ---- users' functions --------------------------------------------------------------------------

DEEP_RESULT = '''
import sys

def main(cache, depth):
    sys.setrecursionlimit(20000)  # Python's own limit is about 1000 levels
    out = []
    for _ in range(int(depth) - 1):
        out = [out]
    return out
'''


def test_a_function_result_past_the_limit_is_refused(server):
    install(server.functions, "deep", DEEP_RESULT)
    assert_too_deep(server.get(function="deep", depth=str(LIMIT + 500)))
    r = server.get(function="deep", depth=str(LIMIT))
    assert depth_of(value_text(r)) == LIMIT
    assert ok(server.get(function="deep", depth="3")) == [[[]]]


def test_a_function_argument_past_the_limit_is_refused(server):
    install(server.functions, "echo", "def main(cache, x):\n    return 1\n")
    assert_too_deep(post_raw(server, '"function": "echo", "x": ' + arrays(LIMIT + 1)))
    assert ok(server.post({"function": "echo", "x": [[1]]})) == 1


# ---- the spec file -------------------------------------------------------------------------------

def test_a_spec_nested_past_its_limit_is_refused_quickly(make_server):
    server = make_server(start=False)
    path = server.root / "spec.yaml"
    path.write_text("version: 1\ndatasets: []\n")
    server.env["ASIDE_SPEC"] = str(path)
    server.start()
    path.write_text("version: 1\ndatasets: " + arrays(100_000) + "\n")
    err = assert_error(server.get(function="reload_spec"), 400, "bad_spec")
    assert "nested more than 64 levels deep" in err["message"]
    assert ok(server.get(function="spec"))["reloads"] == 0


# ---- text that is not UTF-8 ----------------------------------------------------------------------

def test_a_value_that_is_not_utf8_is_refused_not_stored_as_null(server):
    assert_error(server.get(function="list_push", key="l", value=b"\xff\xfe"), 400, "bad_utf8")
    assert_error(server.get(function="list_push", key=b"\xff\xfe", value="1"), 400, "bad_utf8")
    assert_error(server.get(function="map_set", key="m", field=b"\xff", value="1"), 400,
                 "bad_utf8")
    assert_error(server.get(function="json_set", key="d.json", pointer="",
                            value=b'"\xff"'), 400, "bad_utf8")
    r = server.call("POST", data=b'{"data": {"function": "list_push", "key": "l", '
                                 b'"value": "\xff\xfe"}}',
                    headers={"Content-Type": "application/json"})
    assert "decode byte 0xff" in assert_error(r, 400, "bad_request")["message"]  # not JSON
    assert cached_keys(server) == []
    assert telemetry(server)["keys"] == 0


def test_a_function_argument_that_is_not_utf8_is_refused(server):
    install(server.functions, "echo", "def main(cache, x):\n    return x\n")
    assert_error(server.get(function="echo", x=b"\xff"), 400, "bad_utf8")
    assert ok(server.get(function="echo", x="\u00e9")) == "\u00e9"


# ---- arithmetic ----------------------------------------------------------------------------------

def test_an_increment_to_infinity_is_refused_and_changes_nothing(server):
    assert ok(server.get(function="map_increment", key="m", field="x", by="1.7e308")) == 1.7e308
    assert_error(server.get(function="map_increment", key="m", field="x", by="1.7e308"), 400,
                 "overflow")
    assert ok(server.get(function="map_increment", key="m", field="y", by="-1.7e308")) == \
        -1.7e308
    assert_error(server.get(function="map_increment", key="m", field="y", by="-1.7e308"), 400,
                 "overflow")
    assert ok(server.get(function="map_get", key="m", field="x")) == 1.7e308
    big = str(2**63 - 1)
    assert ok(server.get(function="map_increment", key="m", field="i", by=big)) == 2**63 - 1
    assert_error(server.get(function="map_increment", key="m", field="i", by="1"), 400,
                 "overflow")
    assert ok(server.get(function="map_get", key="m", field="i")) == 2**63 - 1


def test_a_counter_past_64_bits_is_refused_and_changes_nothing(server):
    big = str(2**63 - 1)
    assert ok(server.get(function="counter_increment", key="c", by=big)) == 2**63 - 1
    assert_error(server.get(function="counter_increment", key="c", by="1"), 400, "overflow")
    assert ok(server.get(function="counter_decrement", key="d", by=big)) == -(2**63 - 1)
    assert ok(server.get(function="counter_decrement", key="d", by="1")) == -(2**63)
    assert_error(server.get(function="counter_decrement", key="d", by="1"), 400, "overflow")
    assert ok(server.get(function="counter_get", key="c")) == 2**63 - 1
    assert ok(server.get(function="counter_get", key="d")) == -(2**63)
