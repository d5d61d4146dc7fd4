"""JSON documents edited over HTTP: json_get, json_set, json_delete at JSON Pointers (RFC 6901)
and json_merge (RFC 7386 merge patch), with the RFCs' own examples; bad pointers, missing
values and wrong types, each of which changes nothing; a document loaded from the system of
record, then edited."""
from __future__ import annotations

import json

import pytest

from helpers import assert_error, cached_keys, ok, op, op_value, put_sor, read_data, telemetry

RFC6901_DOC = {"foo": ["bar", "baz"], "": 0, "a/b": 1, "c%d": 2, "e^f": 3, "g|h": 4,
               "i\\j": 5, "k\"l": 6, " ": 7, "m~n": 8}

RFC6901_EXAMPLES = [("", RFC6901_DOC), ("/foo", ["bar", "baz"]), ("/foo/0", "bar"), ("/", 0),
                    ("/a~1b", 1), ("/c%d", 2), ("/e^f", 3), ("/g|h", 4), ("/i\\j", 5),
                    ("/k\"l", 6), ("/ ", 7), ("/m~0n", 8)]

RFC7386_CASES = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


def make_doc(server, key: str, doc) -> None:
    assert op_value(server, "json_set", key, pointer="", value=doc) == {"result": "success"}


# -- json_get ---------------------------------------------------------------------------------

def test_json_set_of_the_whole_document_creates_a_json_key(server):
    make_doc(server, "d", {"a": [1, 2]})
    assert ok(server.get(function="read", key="d"))["type"] == "json"
    assert read_data(server, "d") == {"a": [1, 2]}
    assert cached_keys(server) == ["d"]


@pytest.mark.parametrize("pointer,want", RFC6901_EXAMPLES)
def test_rfc6901_examples_resolve_over_post(server, pointer, want):
    make_doc(server, "rfc.json", RFC6901_DOC)
    assert op_value(server, "json_get", "rfc.json", pointer=pointer) == want


@pytest.mark.parametrize("pointer,want", RFC6901_EXAMPLES)
def test_rfc6901_examples_resolve_over_get(server, pointer, want):
    make_doc(server, "rfc.json", RFC6901_DOC)
    assert ok(server.get(function="json_get", key="rfc.json", pointer=pointer)) == want


def test_json_get_without_a_pointer_is_the_whole_document(server):
    make_doc(server, "d", [1, {"x": None}])
    assert op_value(server, "json_get", "d") == [1, {"x": None}]


@pytest.mark.parametrize("pointer", ["/nope", "/foo/2", "/foo/-", "/foo/0/x", "/a~1b/c",
                                     "/foo/99999999999999999999"])
def test_json_get_of_a_missing_value_is_404_no_such_pointer(server, pointer):
    make_doc(server, "rfc.json", RFC6901_DOC)
    assert_error(op(server, "json_get", "rfc.json", pointer=pointer), 404, "no_such_pointer")


def test_json_get_of_a_key_not_cached_is_404_and_creates_nothing(server):
    assert_error(op(server, "json_get", "nothing.json", pointer="/a"), 404)
    assert cached_keys(server) == []


# -- bad pointers -----------------------------------------------------------------------------

BAD_POINTERS = ["foo", "a/b", "/~", "/~2", "/a~x", "/foo/01", "/foo/x"]


@pytest.mark.parametrize("pointer", BAD_POINTERS)
def test_a_bad_pointer_is_400_bad_pointer_and_changes_nothing(server, pointer):
    make_doc(server, "rfc.json", RFC6901_DOC)
    assert_error(op(server, "json_get", "rfc.json", pointer=pointer), 400, "bad_pointer")
    assert_error(op(server, "json_set", "rfc.json", pointer=pointer, value=1), 400,
                 "bad_pointer")
    assert_error(op(server, "json_delete", "rfc.json", pointer=pointer), 400, "bad_pointer")
    assert read_data(server, "rfc.json") == RFC6901_DOC


@pytest.mark.parametrize("pointer", [1, None, ["/a"], {"p": "/a"}])
def test_a_pointer_that_is_not_a_string_is_400(server, pointer):
    make_doc(server, "d", {"a": 1})
    assert_error(op(server, "json_get", "d", pointer=pointer), 400)
    assert read_data(server, "d") == {"a": 1}


# -- json_set ---------------------------------------------------------------------------------

def test_json_set_adds_and_replaces_members_and_elements(server):
    make_doc(server, "d", {"a": {"b": 1}, "list": [1, 2]})
    op_value(server, "json_set", "d", pointer="/a/b", value=[True])
    op_value(server, "json_set", "d", pointer="/a/c", value=None)
    op_value(server, "json_set", "d", pointer="/x~1y", value="slash")
    op_value(server, "json_set", "d", pointer="/list/0", value="one")
    op_value(server, "json_set", "d", pointer="/list/2", value=3)
    op_value(server, "json_set", "d", pointer="/list/-", value={"four": 4})
    assert read_data(server, "d") == {"a": {"b": [True], "c": None}, "x/y": "slash",
                                      "list": ["one", 2, 3, {"four": 4}]}


def test_json_set_over_get_types_values_as_json_or_text(server):
    make_doc(server, "d", {})
    for name, text in (("n", "5"), ("s", "abc"), ("q", '"5"'), ("o", '{"k":[1]}')):
        assert ok(server.get(function="json_set", key="d", pointer="/" + name, value=text)) \
            == {"result": "success"}
    assert read_data(server, "d") == {"n": 5, "s": "abc", "q": "5", "o": {"k": [1]}}


@pytest.mark.parametrize("pointer", ["/missing/x", "/list/5", "/scalar/x", "/list/0/x"])
def test_json_set_under_a_missing_parent_is_404_and_changes_nothing(server, pointer):
    doc = {"list": [1], "scalar": "text"}
    make_doc(server, "d", doc)
    assert_error(op(server, "json_set", "d", pointer=pointer, value=1), 404)
    assert read_data(server, "d") == doc


def test_json_set_without_a_value_is_400(server):
    make_doc(server, "d", {"a": 1})
    assert_error(op(server, "json_set", "d", pointer="/a"), 400, "bad_request")
    assert read_data(server, "d") == {"a": 1}


def test_json_set_below_the_root_of_a_missing_key_is_404_and_creates_nothing(server):
    assert_error(op(server, "json_set", "new.json", pointer="/a", value=1), 404)
    assert cached_keys(server) == []


# -- json_delete ------------------------------------------------------------------------------

def test_json_delete_removes_members_and_elements(server):
    make_doc(server, "d", {"a": [1, 2, 3], "b": {"c": 1, "d": 2}, "e~": 0})
    for pointer in ("/a/1", "/b/c", "/e~0"):
        assert op_value(server, "json_delete", "d", pointer=pointer) == {"result": "success"}
    assert read_data(server, "d") == {"a": [1, 3], "b": {"d": 2}}


@pytest.mark.parametrize("pointer", ["/x", "/a/3", "/a/-", "/b/x/y"])
def test_json_delete_of_a_missing_value_is_404_and_changes_nothing(server, pointer):
    doc = {"a": [1, 2, 3], "b": {}}
    make_doc(server, "d", doc)
    assert_error(op(server, "json_delete", "d", pointer=pointer), 404)
    assert read_data(server, "d") == doc


def test_json_delete_of_the_whole_document_is_refused(server):
    make_doc(server, "d", {"a": 1})
    assert_error(op(server, "json_delete", "d", pointer=""), 400)
    assert read_data(server, "d") == {"a": 1}


# -- json_merge -------------------------------------------------------------------------------

@pytest.mark.parametrize("original,patch,want", RFC7386_CASES)
def test_rfc7386_appendix_a_cases(server, original, patch, want):
    make_doc(server, "m.json", original)
    assert op_value(server, "json_merge", "m.json", patch=patch) == want
    assert read_data(server, "m.json") == want


def test_rfc7386_section3_example(server):
    make_doc(server, "m.json", {"title": "Goodbye!",
                                "author": {"givenName": "John", "familyName": "Doe"},
                                "tags": ["example", "sample"],
                                "content": "This will be unchanged"})
    patch = {"title": "Hello!", "phoneNumber": "+01-123-456-7890",
             "author": {"familyName": None}, "tags": ["example"]}
    want = {"title": "Hello!", "author": {"givenName": "John"}, "tags": ["example"],
            "content": "This will be unchanged", "phoneNumber": "+01-123-456-7890"}
    assert op_value(server, "json_merge", "m.json", patch=patch) == want
    assert op_value(server, "json_get", "m.json", pointer="") == want


def test_json_merge_without_a_patch_is_400(server):
    make_doc(server, "m.json", {"a": 1})
    assert_error(op(server, "json_merge", "m.json"), 400, "bad_request")
    assert read_data(server, "m.json") == {"a": 1}


# -- types ------------------------------------------------------------------------------------

@pytest.mark.parametrize("function,args", [("json_get", {"pointer": ""}),
                                           ("json_set", {"pointer": "/0", "value": 1}),
                                           ("json_delete", {"pointer": "/0"}),
                                           ("json_merge", {"patch": {"a": 1}})])
def test_a_json_operation_on_a_list_is_409_wrong_type(server, function, args):
    assert ok(server.post({"function": "list_push", "key": "l", "values": [1, 2]})) == 2
    err = assert_error(op(server, function, "l", **args), 409, "wrong_type")
    assert "list" in err["message"] and "json" in err["message"], err
    assert read_data(server, "l") == [1, 2]


def test_a_json_operation_on_cached_bytes_is_409_wrong_type(server):
    put_sor(server, "blob.bin", b"\x00\x01\x02")
    assert ok(server.get(function="read", key="blob.bin"))["type"] == "bytes"
    assert_error(op(server, "json_get", "blob.bin", pointer=""), 409, "wrong_type")
    assert_error(op(server, "json_set", "blob.bin", pointer="", value=1), 409, "wrong_type")


def test_list_operations_on_a_json_document_are_409(server):
    make_doc(server, "d", [1, 2])
    assert_error(op(server, "list_push", "d", value=3), 409, "wrong_type")
    assert read_data(server, "d") == [1, 2]


# -- documents from the system of record ------------------------------------------------------

def test_a_json_key_from_the_sor_is_read_through_then_edited_in_the_cache_only(server):
    original = json.dumps(RFC6901_DOC).encode()
    put_sor(server, "rfc.json", original)
    assert op_value(server, "json_get", "rfc.json", pointer="/foo/1") == "baz"
    assert cached_keys(server) == ["rfc.json"]
    op_value(server, "json_set", "rfc.json", pointer="/foo/1", value="edited")
    op_value(server, "json_delete", "rfc.json", pointer="/m~0n")
    want = dict(RFC6901_DOC, foo=["bar", "edited"])
    del want["m~n"]
    assert read_data(server, "rfc.json") == want
    raw = server.get(function="read", key="rfc.json", format="raw")
    assert raw.status_code == 200
    assert raw.headers["X-Aside-Type"] == "json"
    assert json.loads(raw.content) == want
    assert (server.sor / "rfc.json").read_bytes() == original  # the SOR is untouched
    entry = telemetry(server, path="rfc.json")["entries"][0]
    assert entry["cache_only"] is True


def test_an_edited_document_survives_a_restart(server):
    put_sor(server, "doc.json", '{"v": 1}')
    op_value(server, "json_merge", "doc.json", patch={"v": 2, "w": [3]})
    server.restart()
    assert read_data(server, "doc.json") == {"v": 2, "w": [3]}
    assert (server.sor / "doc.json").read_bytes() == b'{"v": 1}'
