"""Collections over HTTP: lists, sets, maps and counters kept by the server, in GET and POST
forms, with their errors (each of which changes nothing), their reads, their life across a
restart and exact sums under concurrent clients."""
from __future__ import annotations

import concurrent.futures
import json

import pytest
import requests

from helpers import assert_error, cached_keys, ok, op, op_value, put_sor, read_data, telemetry

ITEMS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]


def get_value(server, function: str, key: str, **params):
    """The GET form: every argument as query-string text."""
    return ok(server.get(function=function, key=key, **params))


def make_list(server, key: str, items) -> None:
    assert op_value(server, "list_push", key, values=list(items)) == len(items)


# -- lists ------------------------------------------------------------------------------------

def test_list_push_at_both_ends_answers_the_new_length(server):
    assert op_value(server, "list_push", "l", value="b") == 1
    assert op_value(server, "list_push", "l", value="c", end="back") == 2
    assert op_value(server, "list_push", "l", value="a", end="front") == 3
    assert op_value(server, "list_push", "l", values=["d", "e"]) == 5
    assert op_value(server, "list_range", "l") == ["a", "b", "c", "d", "e"]
    assert op_value(server, "list_length", "l") == 5


def test_list_elements_are_any_json_value_with_their_type_kept(server):
    items = ["5", 5, 5.5, None, True, [1, [2]], {"k": {"v": None}}, "", "é€😀"]
    make_list(server, "typed", items)
    assert op_value(server, "list_range", "typed") == items
    assert read_data(server, "typed") == items


def test_list_pop_takes_from_either_end(server):
    make_list(server, "l", ["a", "b", "c", "d"])
    assert op_value(server, "list_pop", "l") == "d"
    assert op_value(server, "list_pop", "l", end="back") == "c"
    assert op_value(server, "list_pop", "l", end="front") == "a"
    assert op_value(server, "list_range", "l") == ["b"]


def test_list_pop_with_count_answers_an_array_of_up_to_count(server):
    make_list(server, "l", ["a", "b", "c", "d", "e"])
    assert op_value(server, "list_pop", "l", count=2) == ["e", "d"]
    assert op_value(server, "list_pop", "l", count=2, end="front") == ["a", "b"]
    assert op_value(server, "list_pop", "l", count=10) == ["c"]
    assert op_value(server, "list_pop", "l", count=3) == []
    assert op_value(server, "list_pop", "never-made", count=3) == []


def test_pop_of_an_empty_or_missing_list_is_404_empty(server):
    make_list(server, "l", ["only"])
    assert op_value(server, "list_pop", "l") == "only"
    assert_error(op(server, "list_pop", "l"), 404, "empty")
    assert_error(op(server, "list_pop", "l", end="front"), 404, "empty")
    assert_error(op(server, "list_pop", "missing-list"), 404, "empty")
    assert "missing-list" not in cached_keys(server)


@pytest.mark.parametrize("start,stop", [
    (None, None), (0, 10), (2, 5), (-3, None), (None, -2), (-100, 100), (5, 2), (3, 3),
    (10, 20), (-1, -5), (0, -10), (7, None), (None, 0), (-10, -9)])
def test_list_range_has_python_slice_semantics(server, start, stop):
    make_list(server, "l", ITEMS)
    args = {k: v for k, v in (("start", start), ("stop", stop)) if v is not None}
    assert op_value(server, "list_range", "l", **args) == ITEMS[start:stop]


def test_list_index_counts_negatives_from_the_end(server):
    make_list(server, "l", ["a", "b", "c"])
    assert [op_value(server, "list_index", "l", index=i) for i in (0, 2, -1, -3)] == \
        ["a", "c", "c", "a"]


@pytest.mark.parametrize("index", [3, -4, 1000])
def test_list_index_out_of_range_is_404_out_of_range(server, index):
    make_list(server, "l", ["a", "b", "c"])
    assert_error(op(server, "list_index", "l", index=index), 404, "out_of_range")


@pytest.mark.parametrize("start,stop", [(1, 4), (-2, None), (None, 2), (4, 1), (0, 100),
                                         (-100, -5)])
def test_list_trim_keeps_the_slice_and_answers_the_new_length(server, start, stop):
    make_list(server, "l", ITEMS)
    args = {k: v for k, v in (("start", start), ("stop", stop)) if v is not None}
    want = ITEMS[start:stop]
    assert op_value(server, "list_trim", "l", **args) == len(want)
    assert op_value(server, "list_range", "l") == want


def test_reads_of_a_missing_list_see_an_empty_one_and_create_nothing(server):
    assert op_value(server, "list_length", "nothing") == 0
    assert op_value(server, "list_range", "nothing") == []
    assert_error(op(server, "list_index", "nothing", index=0), 404, "out_of_range")
    assert cached_keys(server) == []


# -- GET form: values are JSON when they parse, else text -------------------------------------

def test_get_values_are_parsed_as_json_or_kept_as_text(server):
    for text in ("5", "abc", '"5"', "2.5", "true", "null", "[1,2]", '{"a":1}', "not json["):
        get_value(server, "list_push", "g", value=text)
    assert op_value(server, "list_range", "g") == [5, "abc", "5", 2.5, True, None, [1, 2],
                                                 {"a": 1}, "not json["]


def test_get_forms_of_every_kind_of_function(server):
    assert get_value(server, "list_push", "gl", values='["x", 2]') == 2
    assert get_value(server, "list_push", "gl", value="w", end="front") == 3
    assert get_value(server, "list_range", "gl", start="0", stop="2") == ["w", "x"]
    assert get_value(server, "list_index", "gl", index="-1") == 2
    assert get_value(server, "list_trim", "gl", start="1") == 2
    assert get_value(server, "list_pop", "gl", count="5") == [2, "x"]
    assert get_value(server, "list_length", "gl") == 0
    assert get_value(server, "set_add", "gs", values="[1, 2, 3]") == 3
    assert get_value(server, "set_contains", "gs", value="2") is True
    assert get_value(server, "set_contains", "gs", value='"2"') is False
    assert get_value(server, "map_set", "gm", field="f", value="7") == 1
    assert get_value(server, "map_increment", "gm", field="f", by="3") == 10
    assert get_value(server, "map_get", "gm", field="f") == 10
    assert get_value(server, "counter_increment", "gc", by="4") == 4
    assert get_value(server, "counter_get", "gc") == 4


# -- sets -------------------------------------------------------------------------------------

def test_set_add_and_remove_count_what_changed(server):
    assert op_value(server, "set_add", "s", value="a") == 1
    assert op_value(server, "set_add", "s", value="a") == 0
    assert op_value(server, "set_add", "s", values=["a", "b", "c", "b"]) == 2
    assert op_value(server, "set_size", "s") == 3
    assert op_value(server, "set_remove", "s", value="zz") == 0
    assert op_value(server, "set_remove", "s", values=["a", "b", "nope"]) == 2
    assert op_value(server, "set_members", "s") == ["c"]


def test_set_members_are_json_values_sorted_by_their_json_text(server):
    members = [{"a": 1}, True, None, [1], 1, "1", "b", 2.5]
    assert op_value(server, "set_add", "s", values=members) == len(members)
    want = sorted(members, key=lambda m: json.dumps(m, separators=(",", ":")))
    assert op_value(server, "set_members", "s") == want
    assert read_data(server, "s") == want


def test_set_contains_tells_json_types_apart(server):
    op_value(server, "set_add", "s", values=[1, [1, 2], {"k": "v"}])
    assert op_value(server, "set_contains", "s", value=1) is True
    assert op_value(server, "set_contains", "s", value="1") is False
    assert op_value(server, "set_contains", "s", value=[1, 2]) is True
    assert op_value(server, "set_contains", "s", value=[2, 1]) is False
    assert op_value(server, "set_contains", "s", value={"k": "v"}) is True
    assert op_value(server, "set_contains", "missing-set", value=1) is False
    assert op_value(server, "set_size", "missing-set") == 0
    assert "missing-set" not in cached_keys(server)


def test_set_algebra_across_keys(server):
    op_value(server, "set_add", "a", values=[1, 2, 3, 4])
    op_value(server, "set_add", "b", values=[3, 4, 5])
    op_value(server, "set_add", "c", values=[4, 6])
    assert op_value(server, "set_union", "a", keys=["b", "c"]) == [1, 2, 3, 4, 5, 6]
    assert op_value(server, "set_intersection", "a", keys=["b", "c"]) == [4]
    assert op_value(server, "set_difference", "a", keys=["b"]) == [1, 2]
    assert op_value(server, "set_difference", "b", keys=["a"]) == [5]
    # without a key the first of keys is the first operand
    assert op_value(server, "set_difference", keys=["a", "c"]) == [1, 2, 3]
    assert op_value(server, "set_intersection", keys=["b", "c"]) == [4]
    # keys as comma-separated text (GET)
    assert get_value(server, "set_union", "b", keys="c") == [3, 4, 5, 6]
    assert get_value(server, "set_difference", "a", keys="b,c") == [1, 2]


def test_set_algebra_treats_missing_keys_as_empty_sets(server):
    op_value(server, "set_add", "a", values=["x", "y"])
    assert op_value(server, "set_union", "a", keys=["nope"]) == ["x", "y"]
    assert op_value(server, "set_intersection", "a", keys=["nope"]) == []
    assert op_value(server, "set_difference", "a", keys=["nope"]) == ["x", "y"]
    assert op_value(server, "set_union", "nope", keys=["nope2"]) == []
    assert sorted(cached_keys(server)) == ["a"]


def test_set_algebra_on_a_key_that_is_not_a_set_is_409(server):
    op_value(server, "set_add", "a", values=[1])
    make_list(server, "l", [1])
    assert_error(op(server, "set_union", "a", keys=["l"]), 409, "wrong_type")
    assert_error(op(server, "set_union", "l", keys=["a"]), 409, "wrong_type")


# -- maps -------------------------------------------------------------------------------------

def test_map_set_get_delete_and_all(server):
    assert op_value(server, "map_set", "m", field="a", value=1) == 1
    assert op_value(server, "map_set", "m", field="a", value="one") == 0
    assert op_value(server, "map_set", "m", fields={"b": [1, 2], "c": None, "a": {"x": 1}}) == 2
    assert op_value(server, "map_get", "m", field="a") == {"x": 1}
    assert op_value(server, "map_get", "m", field="c") is None
    assert op_value(server, "map_length", "m") == 3
    assert op_value(server, "map_all", "m") == {"a": {"x": 1}, "b": [1, 2], "c": None}
    assert op_value(server, "map_delete", "m", field="c") == 1
    assert op_value(server, "map_delete", "m", field="c") == 0
    assert op_value(server, "map_delete", "m", fields=["a", "b", "zz"]) == 2
    assert op_value(server, "map_all", "m") == {}
    assert op_value(server, "map_length", "m") == 0


def test_map_get_of_a_missing_field_is_404_no_field(server):
    op_value(server, "map_set", "m", field="a", value=1)
    assert_error(op(server, "map_get", "m", field="b"), 404, "no_field")
    assert_error(op(server, "map_get", "missing-map", field="b"), 404)
    assert op_value(server, "map_all", "missing-map") == {}
    assert op_value(server, "map_length", "missing-map") == 0
    assert "missing-map" not in cached_keys(server)


def test_map_increment_keeps_ints_int_and_adds_floats(server):
    assert op_value(server, "map_increment", "m", field="n") == 1
    assert op_value(server, "map_increment", "m", field="n", by=41) == 42
    assert isinstance(op_value(server, "map_get", "m", field="n"), int)
    assert op_value(server, "map_increment", "m", field="n", by=-50) == -8
    got = op_value(server, "map_increment", "m", field="n", by=0.5)
    assert got == -7.5 and isinstance(got, float)
    op_value(server, "map_set", "m", field="f", value=1.5)
    got = op_value(server, "map_increment", "m", field="f", by=2)
    assert got == 3.5 and isinstance(got, float)


@pytest.mark.parametrize("held", ["text", None, [1], {"a": 1}, True])
def test_map_increment_of_a_non_number_is_409_and_changes_nothing(server, held):
    op_value(server, "map_set", "m", fields={"f": held, "other": 1})
    assert_error(op(server, "map_increment", "m", field="f", by=1), 409, "wrong_type")
    assert op_value(server, "map_all", "m") == {"f": held, "other": 1}


# -- counters ---------------------------------------------------------------------------------

def test_counter_increments_and_decrements(server):
    assert op_value(server, "counter_get", "c") == 0
    assert "c" not in cached_keys(server)
    assert op_value(server, "counter_increment", "c") == 1
    assert op_value(server, "counter_increment", "c", by=10) == 11
    assert op_value(server, "counter_decrement", "c") == 10
    assert op_value(server, "counter_decrement", "c", by=25) == -15
    assert op_value(server, "counter_increment", "c", by=-5) == -20
    assert op_value(server, "counter_get", "c") == -20
    assert read_data(server, "c") == -20


@pytest.mark.parametrize("by", [1.5, "2", [1], {"n": 1}, True])
def test_counter_by_must_be_an_integer(server, by):
    op_value(server, "counter_increment", "c", by=3)
    assert_error(op(server, "counter_increment", "c", by=by), 400, "bad_request")
    assert op_value(server, "counter_get", "c") == 3


# -- errors change nothing --------------------------------------------------------------------

WRONG_TYPE_OPS = [
    ("list_push", {"value": 1}), ("list_pop", {}), ("list_range", {}), ("list_length", {}),
    ("set_add", {"value": 1}), ("set_members", {}), ("set_contains", {"value": 1}),
    ("map_set", {"field": "f", "value": 1}), ("map_get", {"field": "f"}), ("map_all", {}),
    ("map_increment", {"field": "f"}), ("counter_increment", {}), ("counter_get", {}),
]

COLLECTIONS = {"list": ("list_push", {"values": [1, 2]}),
               "set": ("set_add", {"values": [1, 2]}),
               "map": ("map_set", {"fields": {"a": 1}}),
               "counter": ("counter_increment", {"by": 7})}


@pytest.mark.parametrize("held", list(COLLECTIONS))
def test_an_operation_for_another_type_is_409_wrong_type_and_changes_nothing(server, held):
    function, args = COLLECTIONS[held]
    op_value(server, function, "k", **args)
    before = read_data(server, "k")
    for name, op_args in WRONG_TYPE_OPS:
        if name.split("_")[0] == held:
            continue
        err = assert_error(op(server, name, "k", **op_args), 409, "wrong_type")
        # the message names the key's type and the operation's
        assert held in err["message"], err
        assert name.split("_")[0] in err["message"], err
    assert read_data(server, "k") == before
    assert ok(server.get(function="read", key="k"))["type"] == held


def test_collection_operations_on_a_json_or_bytes_value_are_409(server):
    assert server.call("POST", params={"function": "put", "key": "doc.json"},
                       data=b'{"a": 1}').status_code == 200
    assert server.call("POST", params={"function": "put", "key": "blob.bin"},
                       data=b"\x00\x01").status_code == 200
    for key in ("doc.json", "blob.bin"):
        assert_error(op(server, "list_push", key, value=1), 409, "wrong_type")
        assert_error(op(server, "counter_increment", key), 409, "wrong_type")
    assert read_data(server, "doc.json") == {"a": 1}


MISSING_ARGS = [
    ("list_push", {}), ("list_push", {"values": "not-an-array"}),
    ("list_push", {"value": 1, "end": "middle"}), ("list_pop", {"count": 0}),
    ("list_pop", {"count": "two"}), ("list_index", {}), ("list_index", {"index": "x"}),
    ("list_range", {"start": "a"}), ("list_trim", {"stop": 1.5}),
    ("set_add", {}), ("set_remove", {}), ("set_contains", {}), ("set_add", {"values": 3}),
    ("map_set", {"field": "f"}), ("map_set", {"value": 1}), ("map_set", {"fields": [1]}),
    ("map_get", {}), ("map_delete", {}), ("map_increment", {}),
    ("map_increment", {"field": "f", "by": "x"}), ("counter_increment", {"by": "x"}),
]


@pytest.mark.parametrize("function,args", MISSING_ARGS)
def test_missing_or_invalid_arguments_are_400_and_create_nothing(server, function, args):
    assert_error(op(server, function, "new-key", **args), 400, "bad_request")
    assert "new-key" not in cached_keys(server)


@pytest.mark.parametrize("function,args", [("list_push", {"value": "v"}),
                                           ("set_add", {"value": "v"}),
                                           ("map_set", {"field": "f", "value": "v"})])
def test_invalid_arguments_leave_an_existing_collection_unchanged(server, function, args):
    op_value(server, function, "k", **args)
    before = read_data(server, "k")
    assert_error(op(server, function, "k"), 400, "bad_request")
    assert read_data(server, "k") == before


def test_a_collection_operation_without_a_key_is_400(server):
    assert_error(op(server, "list_push", value=1), 400)


# -- reading, deleting, replacing -------------------------------------------------------------

def make_each_collection(server) -> dict:
    make_list(server, "the-list", [1, "two", None])
    op_value(server, "set_add", "the-set", values=["b", "a"])
    op_value(server, "map_set", "the-map", fields={"x": 1, "y": [2]})
    op_value(server, "counter_increment", "the-counter", by=12)
    return {"the-list": ("list", [1, "two", None]), "the-set": ("set", ["a", "b"]),
            "the-map": ("map", {"x": 1, "y": [2]}), "the-counter": ("counter", 12)}


def test_read_of_a_collection_names_its_type_and_answers_its_json(server):
    for key, (kind, want) in make_each_collection(server).items():
        meta = ok(server.get(function="read", key=key))
        assert meta["type"] == kind, meta
        assert read_data(server, key) == want
        raw = server.get(function="read", key=key, format="raw")
        assert raw.status_code == 200, raw.text
        assert raw.headers["Content-Type"].startswith("application/json")
        assert raw.headers["X-Aside-Type"] == kind
        assert json.loads(raw.content) == want


def test_raw_reads_of_other_values_carry_their_type_too(server):
    put_sor(server, "doc.json", '{"a": 1}')
    put_sor(server, "blob.bin", b"\x00\x01")
    put_sor(server, "t.csv", "a,b\n1,2\n")
    for key, kind in (("doc.json", "json"), ("blob.bin", "bytes"), ("t.csv", "frame")):
        raw = server.get(function="read", key=key, format="raw")
        assert raw.status_code == 200, raw.text
        assert raw.headers["X-Aside-Type"] == kind


def test_collections_appear_in_telemetry_and_the_key_list(server):
    kinds = make_each_collection(server)
    assert sorted(cached_keys(server)) == sorted(kinds)
    entries = {e["path"]: e for e in telemetry(server)["entries"]}
    for key, (kind, _) in kinds.items():
        assert entries[key]["type"] == kind


def test_delete_removes_a_collection(server):
    for key, (kind, _) in make_each_collection(server).items():
        assert ok(server.get(function="delete", key=key)) == {"result": "success"}
        assert_error(server.get(function="read", key=key), 404)
        assert_error(server.get(function="delete", key=key), 404)
    assert cached_keys(server) == []
    assert op_value(server, "list_length", "the-list") == 0
    assert op_value(server, "counter_get", "the-counter") == 0
    assert op_value(server, "map_all", "the-map") == {}


def test_put_replaces_a_collection(server):
    make_list(server, "k", [1, 2])
    r = server.call("POST", params={"function": "put", "key": "k", "type": "json"},
                    data=b'{"now": "json"}')
    assert r.status_code == 200, r.text
    assert ok(server.get(function="read", key="k"))["type"] == "json"
    assert read_data(server, "k") == {"now": "json"}
    assert_error(op(server, "list_length", "k"), 409, "wrong_type")


def test_a_new_collection_after_delete_may_be_another_type(server):
    make_list(server, "k", [1])
    ok(server.get(function="delete", key="k"))
    assert op_value(server, "map_set", "k", field="f", value=1) == 1
    assert ok(server.get(function="read", key="k"))["type"] == "map"


# -- durability -------------------------------------------------------------------------------

def test_collections_survive_a_restart(server):
    kinds = make_each_collection(server)
    op_value(server, "list_pop", "the-list", end="front")
    op_value(server, "set_remove", "the-set", value="a")
    op_value(server, "map_delete", "the-map", field="x")
    op_value(server, "map_increment", "the-map", field="n", by=2.5)
    op_value(server, "counter_decrement", "the-counter", by=2)
    server.restart()
    assert read_data(server, "the-list") == ["two", None]
    assert read_data(server, "the-set") == ["b"]
    assert read_data(server, "the-map") == {"y": [2], "n": 2.5}
    assert read_data(server, "the-counter") == 10
    assert sorted(cached_keys(server)) == sorted(kinds)
    # and they keep working
    assert op_value(server, "list_push", "the-list", value="three") == 3
    assert op_value(server, "counter_increment", "the-counter") == 11


def test_a_deleted_collection_stays_deleted_after_a_restart(server):
    make_list(server, "gone", [1])
    make_list(server, "kept", [2])
    ok(server.get(function="delete", key="gone"))
    server.restart()
    assert cached_keys(server) == ["kept"]
    assert op_value(server, "list_length", "gone") == 0


def test_acknowledged_changes_survive_a_crash_with_fsync_always(make_server):
    server = make_server(env={"ASIDE_FSYNC": "always"})
    for i in range(50):
        op_value(server, "counter_increment", "c")
        op_value(server, "list_push", "l", value=i)
    server.kill()
    server.start()
    assert op_value(server, "counter_get", "c") == 50
    assert op_value(server, "list_range", "l") == list(range(50))


# -- the memory budget ------------------------------------------------------------------------

def test_a_collection_that_would_pass_the_memory_budget_is_507_full(make_server):
    server = make_server(env={"ASIDE_MEMORY_LIMIT": "1MiB"})
    chunk = "x" * 100_000
    length = 0
    for _ in range(40):  # 4 MB in all: far past the budget
        r = op(server, "list_push", "big", value=chunk)
        if r.status_code != 200:
            assert_error(r, 507, "full")
            break
        length = ok(r)
    else:
        pytest.fail("pushing 4 MB into a 1 MiB budget never answered 507")
    assert length > 0
    assert op_value(server, "list_length", "big") == length  # the refused push changed nothing
    assert telemetry(server)["memory"]["used_bytes"] <= telemetry(server)["memory"]["limit_bytes"]


# -- concurrency ------------------------------------------------------------------------------

CLIENTS = 16
INCREMENTS = 200


def test_concurrent_increments_from_16_clients_are_exact(server):
    def work(worker: int) -> None:
        with requests.Session() as session:
            for i in range(INCREMENTS):
                for data in ({"function": "counter_increment", "key": "hits"},
                             {"function": "map_increment", "key": "totals", "field": "n"},
                             {"function": "map_increment", "key": "totals",
                              "field": f"w{worker}", "by": 2}):
                    r = session.post(server.api, json={"data": data}, timeout=60)
                    assert r.status_code == 200, r.text

    with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
        for future in [pool.submit(work, w) for w in range(CLIENTS)]:
            future.result(timeout=300)
    assert op_value(server, "counter_get", "hits") == CLIENTS * INCREMENTS
    totals = op_value(server, "map_all", "totals")
    assert totals.pop("n") == CLIENTS * INCREMENTS
    assert totals == {f"w{w}": 2 * INCREMENTS for w in range(CLIENTS)}


def test_a_file_is_never_read_or_written_as_a_collection(server):
    put_sor(server, "items.json", "[1, 2, 3]")
    assert_error(server.get(function="read", key="items.json", type="list"), 400, "bad_request")
    r = server.call("POST", params={"function": "write", "key": "new.json", "type": "set"},
                    data=b"[1, 2]")
    assert_error(r, 400, "bad_request")
    assert not (server.sor / "new.json").exists()
    assert "items.json" not in cached_keys(server) and "new.json" not in cached_keys(server)
    # read as it is, it stays a JSON document; a collection is made with put
    assert read_data(server, "items.json") == [1, 2, 3]
    ok(server.call("POST", params={"function": "put", "key": "made", "type": "list"},
                   data=b"[1, 2]"))
    assert op_value(server, "list_length", "made") == 2
