"""The Python client's collection objects against a real server: AsideList, AsideSet, AsideMap,
AsideCounter and AsideJson behave as the Python types they stand for (IndexError, KeyError,
slices, MutableMapping), keep their values' JSON types, and raise the typed errors; read()
returns collections as list, set, dict and int; the renamed objects() and mmap() still do
what list() and map() did."""
from __future__ import annotations

import collections.abc
import json

import pytest

import aside
from helpers import put_sor
from frame_data import parquet_bytes, sales_frame


@pytest.fixture
def client(server):
    with aside.connect(server.base) as c:
        yield c


# -- lists ------------------------------------------------------------------------------------

def test_a_list_grows_at_both_ends(client):
    lst = client.list("l")
    assert isinstance(lst, aside.AsideList) and lst.key == "l"
    assert len(lst) == 0
    assert lst.append("b") == 1
    assert lst.appendleft("a") == 2
    assert lst.extend(["c", "d"]) == 4
    assert lst.extendleft(["y", "x"]) == 6  # as deque.extendleft: one after the other
    assert lst.to_list() == ["x", "y", "a", "b", "c", "d"]
    assert list(lst) == ["x", "y", "a", "b", "c", "d"]
    assert len(lst) == 6
    assert "a" in lst and "z" not in lst


def test_a_list_keeps_the_json_types_of_its_elements(client):
    items = ["5", 5, 5.5, None, True, [1, "a"], {"k": None}, ""]
    lst = client.list("typed")
    lst.extend(items)
    lst.append((1, 2))  # a tuple is a JSON array
    assert lst.to_list() == items + [[1, 2]]
    assert lst[0] == "5" and lst[1] == 5 and lst[3] is None


def test_pop_and_popleft_with_and_without_count(client):
    lst = client.list("l")
    lst.extend(range(6))
    assert lst.pop() == 5
    assert lst.popleft() == 0
    assert lst.pop(2) == [4, 3]
    assert lst.popleft(count=5) == [1, 2]
    assert lst.pop(3) == []
    with pytest.raises(IndexError):
        lst.pop()
    with pytest.raises(IndexError):
        client.list("never-made").popleft()


def test_indexing_and_slicing_follow_python(client):
    items = list(range(10))
    lst = client.list("l")
    lst.extend(items)
    for i in (0, 3, 9, -1, -10):
        assert lst[i] == items[i]
    for i in (10, -11, 1000):
        with pytest.raises(IndexError):
            lst[i]
    for s in (slice(None), slice(2, 5), slice(-3, None), slice(None, -2), slice(5, 2),
              slice(-100, 100), slice(None, None, 2), slice(None, None, -1), slice(8, 1, -3)):
        assert lst[s] == items[s], s
    with pytest.raises(TypeError):
        lst["0"]


def test_trim_keeps_a_slice(client):
    lst = client.list("l")
    lst.extend(range(10))
    assert lst.trim(2, -2) == 6
    assert lst.to_list() == [2, 3, 4, 5, 6, 7]
    assert lst.trim(stop=3) == 3
    assert lst.to_list() == [2, 3, 4]


# -- sets -------------------------------------------------------------------------------------

def test_a_set_adds_removes_and_answers_membership(client):
    s = client.set("s")
    assert isinstance(s, aside.AsideSet)
    assert s.add("a") == 1
    assert s.add("a") == 0
    assert s.update(["b", "c"], ("c", "d")) == 3
    assert len(s) == 4
    assert "a" in s and "z" not in s
    assert s.discard("z") == 0
    assert s.discard("d") == 1
    s.remove("c")
    with pytest.raises(KeyError):
        s.remove("c")
    assert s.members() == {"a", "b"}
    assert list(s) == ["a", "b"]


def test_set_members_keep_json_types(client):
    s = client.set("s")
    s.update([1, "1", (1, 2), None])
    assert 1 in s and "1" in s and [1, 2] in s and (1, 2) in s and None in s
    assert "2" not in s
    assert s.members() == {1, "1", (1, 2), None}
    s.add({"k": "v"})
    assert {"k": "v"} in s
    assert {"k": "v"} in s.to_list()
    with pytest.raises(TypeError):
        s.members()  # a JSON object has no Python set equivalent


def test_set_algebra_with_keys_and_objects(client):
    a, b, c = client.set("a"), client.set("b"), client.set("c")
    a.update([1, 2, 3, 4])
    b.update([3, 4, 5])
    c.update([4, 6])
    assert a.union(b, "c") == {1, 2, 3, 4, 5, 6}
    assert a.intersection("b", c) == {4}
    assert a.difference(b) == {1, 2}
    assert b.difference(a) == {5}
    assert a.union("no-such-set") == {1, 2, 3, 4}
    assert a.intersection("no-such-set") == set()
    with pytest.raises(TypeError):
        a.union(42)


# -- maps -------------------------------------------------------------------------------------

def test_a_map_is_a_mutable_mapping(client):
    m = client.map("m")
    assert isinstance(m, collections.abc.MutableMapping)
    assert len(m) == 0 and dict(m) == {}
    m["a"] = 1
    m["b"] = [1, "two"]
    m["c"] = None
    assert m["a"] == 1 and m["b"] == [1, "two"] and m["c"] is None
    with pytest.raises(KeyError):
        m["zz"]
    assert m.get("zz") is None and m.get("zz", 7) == 7 and m.get("c", 7) is None
    assert "a" in m and "zz" not in m
    assert len(m) == 3 and sorted(m) == ["a", "b", "c"]
    assert m.to_dict() == {"a": 1, "b": [1, "two"], "c": None}
    assert dict(m.items()) == m.to_dict() and sorted(m.keys()) == ["a", "b", "c"]
    del m["c"]
    with pytest.raises(KeyError):
        del m["c"]
    assert m.pop("a") == 1
    assert m.setdefault("d", "dflt") == "dflt" and m["d"] == "dflt"
    assert m == {"b": [1, "two"], "d": "dflt"}


def test_map_update_sets_many_fields_in_one_request(client):
    m = client.map("m")
    assert m.update({"a": 1, "b": 2}) == 2
    assert m.update([("b", 3)], c=4) == 1
    assert m.update() == 0
    assert m.to_dict() == {"a": 1, "b": 3, "c": 4}
    m.clear()
    assert len(m) == 0


def test_map_increment_keeps_ints_and_adds_floats(client):
    m = client.map("m")
    assert m.increment("n") == 1
    assert m.increment("n", 9) == 10
    assert isinstance(m["n"], int)
    assert m.increment("n", by=0.25) == 10.25
    m["s"] = "text"
    with pytest.raises(aside.WrongType) as caught:
        m.increment("s")
    assert caught.value.status == 409 and caught.value.code == "wrong_type"
    assert isinstance(caught.value, aside.Conflict)
    assert m["s"] == "text"


# -- counters ---------------------------------------------------------------------------------

def test_a_counter_counts(client):
    c = client.counter("c")
    assert isinstance(c, aside.AsideCounter)
    assert c.value == 0 and int(c) == 0
    assert c.increment() == 1
    assert c.increment(41) == 42
    assert c.decrement() == 41
    assert c.decrement(by=50) == -9
    assert c.value == -9


# -- JSON documents ---------------------------------------------------------------------------

def test_a_json_document_is_read_and_edited_at_pointers(client):
    doc = client.json("d.json")
    assert isinstance(doc, aside.AsideJson)
    doc.set("", {"a": {"b": [1, 2]}, "m~n": "tilde"})
    assert doc.get() == {"a": {"b": [1, 2]}, "m~n": "tilde"}
    assert doc.get("/a/b/1") == 2
    assert doc.get("/m~0n") == "tilde"
    doc.set("/a/b/-", 3)
    doc.set("/a/c", None)
    doc.delete("/m~0n")
    assert doc.get("") == {"a": {"b": [1, 2, 3], "c": None}}
    assert doc.merge({"a": {"c": 5, "b": None}, "new": True}) == {"a": {"c": 5}, "new": True}
    assert client.read("d.json") == {"a": {"c": 5}, "new": True}
    assert doc.merge(None) is None
    assert doc.get() is None


def test_json_pointer_errors_are_typed(client):
    doc = client.json("d.json")
    doc.set("", {"a": [1]})
    with pytest.raises(aside.BadRequest) as caught:
        doc.get("no-slash")
    assert caught.value.code == "bad_pointer"
    with pytest.raises(aside.NotFound) as caught:
        doc.get("/a/5")
    assert caught.value.code == "no_such_pointer"
    with pytest.raises(aside.NotFound):
        doc.delete("/b")
    assert doc.get() == {"a": [1]}


def test_a_json_document_from_the_sor_is_edited_in_the_cache(server, client):
    put_sor(server, "conf.json", '{"retries": 3, "hosts": ["a"]}')
    conf = client.json("conf.json")
    assert conf.get("/retries") == 3
    conf.set("/hosts/-", "b")
    assert client.read("conf.json") == {"retries": 3, "hosts": ["a", "b"]}
    assert json.loads((server.sor / "conf.json").read_text()) == {"retries": 3, "hosts": ["a"]}


# -- types and errors -------------------------------------------------------------------------

def test_an_operation_for_another_type_raises_wrong_type_and_changes_nothing(client):
    client.map("m")["f"] = 1
    for attempt in (lambda: client.list("m").append(1), lambda: len(client.set("m")),
                    lambda: client.counter("m").increment(), lambda: client.json("m").get()):
        with pytest.raises(aside.WrongType) as caught:
            attempt()
        assert "map" in caught.value.message
    assert client.map("m").to_dict() == {"f": 1}


def test_arguments_that_are_not_json_are_refused_before_any_request(client):
    with pytest.raises(ValueError):
        client.list("l").append(float("nan"))
    with pytest.raises(TypeError):
        client.list("l").append(object())
    assert client.keys() == []


def test_full_is_raised_when_a_collection_would_pass_the_budget(make_server):
    server = make_server(env={"ASIDE_MEMORY_LIMIT": "1MiB"})
    with aside.connect(server.base) as client:
        lst = client.list("big")
        with pytest.raises(aside.Full) as caught:
            for _ in range(40):  # 4 MB into 1 MiB
                lst.append("x" * 100_000)
        assert caught.value.status == 507 and caught.value.code == "full"
        assert isinstance(caught.value, aside.ServerError)


# -- reading collections with read() ----------------------------------------------------------

def test_read_returns_collections_as_python_values(client):
    client.list("l").extend([1, "two", None])
    client.set("s").update(["b", "a", (1, 2)])
    client.map("m").update({"x": 1, "y": [2]})
    client.counter("c").increment(7)
    assert client.read("l") == [1, "two", None]
    got = client.read("s")
    assert isinstance(got, set) and got == {"a", "b", (1, 2)}
    assert client.read("m") == {"x": 1, "y": [2]}
    got = client.read("c")
    assert isinstance(got, int) and got == 7


def test_delete_removes_a_collection(client):
    lst = client.list("l")
    lst.append(1)
    assert client.delete("l") == {"result": "success"}
    assert len(lst) == 0
    with pytest.raises(aside.NotFound):
        client.read("l")


def test_cache_map_reads_collections_too(client):
    client.counter("c").increment(3)
    assert aside.CacheMap(client)["c"] == 3


# -- the renamed methods ----------------------------------------------------------------------

def test_objects_lists_the_system_of_record(server, client):
    put_sor(server, "data/a.json", "[]")
    put_sor(server, "b.bin", b"b")
    assert [o["path"] for o in client.objects()] == ["b.bin", "data/a.json"]
    assert [o["path"] for o in client.objects("data/")] == ["data/a.json"]


def test_mmap_publishes_a_frame_in_shared_memory(server, client):
    put_sor(server, "sales.parquet", parquet_bytes(sales_frame()))
    answer = client.mmap("sales.parquet")
    assert answer["result"] == "success" and answer["rows"] == len(sales_frame())
