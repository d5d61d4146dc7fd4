"""Users' functions as the Python client sees them: call() with GET values and POST bodies of
JSON values, frame results as Arrow or records, and typed errors carrying the function's
exception type."""
from __future__ import annotations

import json

import pandas as pd
import pytest

import aside
from frame_data import arrow_frame
from helpers import assert_error, install


# -- 2. through the Python client ----------------------------------------------------------------

@pytest.fixture
def client(server):
    with aside.connect(server.base) as c:
        yield c


def test_client_call_passes_get_values_and_a_post_body_of_json_values(server, client):
    install(server.functions, "echo", '''
        def main(cache, message):
            return message
    ''')
    install(server.functions, "kinds", '''
        def main(cache, **kwargs):
            return {k: [type(v).__name__, v] for k, v in sorted(kwargs.items())}
    ''')
    assert client.call("echo", message="hi") == "hi"
    assert client.call("echo", message="0042") == 42          # a GET value that looks numeric
    body = {"data": {"function": "kinds", "a": [1, 2.5, None], "b": {"k": True}, "c": "7"}}
    got = client.call("kinds", body=json.dumps(body).encode())
    assert got == {"a": ["list", [1, 2.5, None]], "b": ["dict", {"k": True}], "c": ["str", "7"]}


def test_client_call_reads_a_frame_result_as_arrow_or_records(server, client):
    install(server.functions, "frame", '''
        import pandas as pd
        def main(cache, n):
            return pd.DataFrame({
                "i": list(range(n)),
                "f": [i / 4 if i % 3 else None for i in range(n)],
                "s": ["v%d" % i if i % 2 else None for i in range(n)],
                "b": [i % 2 == 0 for i in range(n)],
            })
    ''')
    n = 7
    expected = pd.DataFrame({"i": range(n),
                             "f": [i / 4 if i % 3 else None for i in range(n)],
                             "s": ["v%d" % i if i % 2 else None for i in range(n)],
                             "b": [i % 2 == 0 for i in range(n)]})
    body = client.call("frame", n=n, format="arrow")
    assert isinstance(body, bytes)
    pd.testing.assert_frame_equal(arrow_frame(body), expected)
    records = client.call("frame", n=n)
    assert records == json.loads(expected.to_json(orient="records"))


def test_client_raises_typed_errors_for_a_functions_failures(make_server):
    server = make_server(env={"ASIDE_FUNCTION_WORKERS": "2"})
    install(server.functions, "one", "def main(cache, a):\n    return a\n")
    install(server.functions, "fails", "def main(cache, d):\n    return 1 / d\n")
    install(server.functions, "spin", "def main(cache):\n    while True:\n        pass\n")
    with aside.connect(server.base) as client:
        with pytest.raises(aside.NotFound) as e:
            client.call("no_such_function")
        assert (e.value.status, e.value.code) == (404, "unknown_function")

        with pytest.raises(aside.BadRequest) as e:
            client.call("one", a=1, b=2)
        assert e.value.status == 400 and "b" in e.value.message
        with pytest.raises(aside.BadRequest):
            client.call("one")

        with pytest.raises(aside.ServerError) as e:
            client.call("fails", d=0)
        assert type(e.value) is aside.ServerError
        assert (e.value.status, e.value.code) == (500, "function_error")
        assert "division by zero" in e.value.message

        with pytest.raises(aside.Timeout) as e:
            client.call("spin", timeout=1)
        assert (e.value.status, e.value.code) == (504, "timeout")

        assert client.call("fails", d=4) == 0.25          # the pool still answers


def test_client_error_of_a_raising_function_carries_the_exception_type(server, client):
    # the server's answer has the exception's type (error.type); a client user catching
    # ServerError should be able to tell a ValueError from a KeyError
    install(server.functions, "raises", '''
        def main(cache):
            raise LookupError("no row for that id")
    ''')
    r = server.get(function="raises")
    assert assert_error(r, 500)["type"] == "LookupError"
    with pytest.raises(aside.ServerError) as e:
        client.call("raises")
    carried = getattr(e.value, "type", None) == "LookupError" or "LookupError" in str(e.value)
    assert carried, f"the exception type is lost in the client's exception: {e.value!r}"
