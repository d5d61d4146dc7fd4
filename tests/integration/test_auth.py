"""A server started with ASIDE_TOKEN answers only requests that bring it as a bearer token."""
from __future__ import annotations

import pytest

from helpers import API, assert_error, assert_nothing_cached, put_sor

TOKEN = "s3cr3t-token-for-tests"


@pytest.fixture
def guarded(make_server):
    return make_server(env={"ASIDE_TOKEN": TOKEN})


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_a_request_without_the_token_is_401_and_touches_nothing(guarded):
    put_sor(guarded, "doc.json", '{"a": 1}')
    r = guarded.call("GET", params={"function": "read", "path": "doc.json"})
    err = assert_error(r, 401, "unauthorized")
    assert "Bearer" in err["message"]
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    ok = guarded.call("GET", params={"function": "stats_cache"}, headers=bearer(TOKEN))
    assert ok.status_code == 200 and ok.json()["return"]["value"] == []


@pytest.mark.parametrize("header", [f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", "Bearer ",
                                    f"Basic {TOKEN}", TOKEN])
def test_a_wrong_token_is_401(guarded, header):
    r = guarded.call("GET", params={"function": "stats_cache"}, headers={"Authorization": header})
    assert_error(r, 401, "unauthorized")


def test_the_right_token_opens_every_verb(guarded):
    put_sor(guarded, "doc.json", '{"a": 1}')
    h = bearer(TOKEN)
    assert guarded.call("GET", params={"path": "doc.json"}, headers=h).status_code == 200
    assert guarded.call("HEAD", params={"path": "doc.json"}, headers=h).status_code == 200
    assert guarded.call("HEAD", params={"path": "doc.json"}).status_code == 401
    r = guarded.call("DELETE", params={"path": "doc.json"}, headers=h)
    assert r.status_code == 200
    r = guarded.call("GET", url=guarded.base + API, params={"function": "stats_cache"},
                     headers={"authorization": f"bearer {TOKEN}"})  # names are case-blind
    assert r.status_code == 200
    guarded.session.headers.update(h)
    assert_nothing_cached(guarded)
    assert TOKEN not in guarded.log_text()


def test_without_a_configured_token_no_header_is_needed(server):
    put_sor(server, "doc.json", '{"a": 1}')
    assert server.get(path="doc.json").status_code == 200
