"""Tokens with scopes (ASIDE_TOKENS_FILE): each scope opens its functions and no other (403
`forbidden`, not 401), a token limited to key prefixes names only keys under them, SIGHUP reloads
the file (a bad file keeps the tokens in force), a malformed file or two token settings stop the
start, and a server on an address other than loopback refuses to start without a token unless
told to (then it warns).

The scope each function needs is this file's own table, checked against the scope column that
`aside-server --list-functions` prints (README's tables); the server's answers are only what is
tested against it."""
from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from helpers import SERVER_BINARY, assert_error, install, put_sor

READ, WRITE, ADMIN = "read", "write", "admin"

# The scope each function of the API asks for. "every key": a token limited to key prefixes may
# not call it; sql needs admin too with into=.
SCOPES = {
    "read": READ, "create": READ, "update": WRITE, "write": WRITE, "list": READ,
    "delete": WRITE, "head": READ, "stats_cache": READ, "put": WRITE, "map": READ,
    "info": READ, "describe": READ, "tail": READ, "shape": READ, "columns": READ,
    "dtypes": READ, "select": READ, "sql": READ,
    "list_push": WRITE, "list_pop": WRITE, "list_range": READ, "list_length": READ,
    "list_index": READ, "list_trim": WRITE, "set_add": WRITE, "set_remove": WRITE,
    "set_members": READ, "set_contains": READ, "set_size": READ, "set_union": READ,
    "set_intersection": READ, "set_difference": READ, "map_set": WRITE, "map_get": READ,
    "map_delete": WRITE, "map_all": READ, "map_length": READ, "map_increment": WRITE,
    "counter_increment": WRITE, "counter_decrement": WRITE, "counter_get": READ,
    "json_get": READ, "json_set": WRITE, "json_delete": WRITE, "json_merge": WRITE,
    "expire": WRITE, "persist": WRITE, "ttl": READ, "pin": WRITE, "unpin": WRITE, "load": READ,
    "evict": ADMIN, "compact": ADMIN, "function_create": ADMIN, "function_register": ADMIN,
    "function_delete": ADMIN, "functions": READ, "function_stats": READ, "spec": READ,
    "reload_spec": ADMIN,
}
EVERY_KEY = {"stats_cache", "select", "sql", "set_union", "set_intersection", "set_difference"}

SECRETS = {name: f"secret-of-{name}-0123456789" for name in
           ("reader", "writer", "admin", "readadmin", "scoped", "all", "fresh")}
LINES = {
    "reader": "read", "writer": "write", "admin": "admin", "readadmin": "read,admin",
    "scoped": "read,write team/ shared/x.json", "all": "read,write,admin",
}
START_TIMEOUT_S = 20.0


def hashed(secret: str) -> str:
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()


def tokens_text(names) -> str:
    return "".join(f"{n} {hashed(SECRETS[n])} {LINES.get(n, 'read')}\n" for n in names)


def bearer(name: str) -> dict:
    return {"Authorization": f"Bearer {SECRETS[name]}"}


@pytest.fixture
def guarded(make_server, tmp_path):
    path = tmp_path / "tokens"
    path.write_text("# name hash scopes prefixes\n" + tokens_text(LINES))
    server = make_server(env={"ASIDE_TOKENS_FILE": str(path)})
    server.tokens_path = path
    return server


def call(server, token: str | None, **params):
    headers = bearer(token) if token else {}
    return server.call("GET", params=params, headers=headers)


# -- the table -------------------------------------------------------------------------------

def listed_scopes() -> dict[str, str]:
    """name -> scope column, from --list-functions."""
    out = subprocess.run([str(SERVER_BINARY), "--list-functions"], capture_output=True,
                         text=True, timeout=START_TIMEOUT_S, check=True).stdout
    got = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue
        names = re.findall(r"`([a-z_]+)`", cells[0].split(" (alias")[0])
        for name in names:
            got[name] = cells[1]
    return got


def test_this_files_table_is_the_scope_column_of_the_route_table():
    listed = listed_scopes()
    assert sorted(listed) == sorted(SCOPES)
    for name, column in listed.items():
        assert column.startswith(f"`{SCOPES[name]}`"), (name, column)
        assert ("every key" in column) == (name in EVERY_KEY), (name, column)
    assert "`admin` with `into=`" in listed["sql"]


# -- each scope ------------------------------------------------------------------------------

def test_each_scope_opens_its_functions_and_no_other(guarded):
    put_sor(guarded, "doc.json", '{"a": 1}')
    wrong = []
    for function, scope in SCOPES.items():
        for token in ("reader", "writer", "admin"):
            r = call(guarded, token, function=function, path="doc.json")
            allowed = scope == LINES[token]
            if allowed and r.status_code in (401, 403):
                wrong.append((function, token, "refused", r.status_code, r.text))
            if not allowed and (r.status_code != 403 or r.json()["error"]["code"] != "forbidden"
                                or scope not in r.json()["error"]["message"]):
                wrong.append((function, token, "allowed", r.status_code, r.text))
    assert not wrong, "\n".join(map(str, wrong))


def test_the_verbs_default_functions_ask_their_scopes(guarded):
    put_sor(guarded, "doc.json", '{"a": 1}')
    assert guarded.call("GET", params={"path": "doc.json"}, headers=bearer("reader")).ok
    assert_error(guarded.call("GET", params={"path": "doc.json"}, headers=bearer("writer")),
                 403, "forbidden")
    assert guarded.call("HEAD", params={"path": "doc.json"}, headers=bearer("reader")).ok
    assert guarded.call("HEAD", params={"path": "doc.json"},
                        headers=bearer("writer")).status_code == 403
    r = guarded.call("DELETE", params={"path": "doc.json"}, headers=bearer("reader"))
    assert_error(r, 403, "forbidden")
    r = guarded.call("DELETE", params={"path": "doc.json"}, headers=bearer("writer"))
    assert r.status_code == 200, r.text


def test_a_refused_call_changes_nothing(guarded):
    r = guarded.call("PUT", params={"function": "put", "path": "new.json"}, data=b'{"x": 1}',
                     headers=bearer("reader"))
    assert_error(r, 403, "forbidden")
    r = call(guarded, "all", function="read", path="new.json")
    assert_error(r, 404)
    r = call(guarded, "reader", function="counter_increment", key="n")
    assert_error(r, 403, "forbidden")
    assert call(guarded, "reader", function="counter_get", key="n").json()["return"]["value"] == 0


def test_sql_with_into_needs_admin_as_well_as_read(guarded):
    query = "SELECT 1 AS one"
    assert call(guarded, "reader", function="sql", query=query).status_code == 200
    for token in ("reader", "admin"):
        r = call(guarded, token, function="sql", query=query, into="out.arrow")
        err = assert_error(r, 403, "forbidden")
        assert "sql" in err["message"]
    r = call(guarded, "readadmin", function="sql", query=query, into="out.arrow")
    assert r.status_code == 200, r.text


# -- 401 and 403 -----------------------------------------------------------------------------

def test_no_token_or_an_unknown_one_is_401_and_a_known_one_without_the_scope_403(guarded):
    r = call(guarded, None, function="read", path="doc.json")
    assert_error(r, 401, "unauthorized")
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    r = guarded.call("GET", params={"function": "compact"},
                     headers={"Authorization": f"Bearer {SECRETS['reader']}x"})
    assert_error(r, 401, "unauthorized")
    r = call(guarded, "reader", function="compact")
    err = assert_error(r, 403, "forbidden")
    assert "admin" in err["message"] and "reader" in err["message"]
    assert "WWW-Authenticate" not in r.headers
    log = guarded.log_text()
    assert not any(secret in log for secret in SECRETS.values())


# -- key prefixes ----------------------------------------------------------------------------

def test_a_token_limited_to_prefixes_names_only_keys_under_them(guarded):
    for key in ("team/a.json", "shared/x.json", "other.json", "teams.json"):
        put_sor(guarded, key, '{"a": 1}')
    assert call(guarded, "scoped", path="team/a.json").status_code == 200
    assert call(guarded, "scoped", path="shared/x.json").status_code == 200
    for key in ("other.json", "teams.json", "shared/y.json"):
        err = assert_error(call(guarded, "scoped", path=key), 403, "forbidden")
        assert "team/" in err["message"]
    r = guarded.call("PUT", params={"function": "put", "path": "team/b.json"}, data=b"{}",
                     headers=bearer("scoped"))
    assert r.status_code == 200, r.text
    r = guarded.call("PUT", params={"function": "put", "path": "b.json"}, data=b"{}",
                     headers=bearer("scoped"))
    assert_error(r, 403, "forbidden")
    # list: its prefix is the key it names
    assert call(guarded, "scoped", function="list", prefix="team/").status_code == 200
    assert_error(call(guarded, "scoped", function="list", prefix="te"), 403, "forbidden")
    assert_error(call(guarded, "scoped", function="list"), 403, "forbidden")
    # naming no key, or reaching every key, is refused
    assert_error(call(guarded, "scoped", function="head"), 403, "forbidden")
    assert call(guarded, "scoped", function="head", path="team/a.json").status_code == 200
    for function in EVERY_KEY:
        r = call(guarded, "scoped", function=function, path="team/a.json",
                 query='SELECT * FROM "other.json"', keys="other.json")
        err = assert_error(r, 403, "forbidden")
        assert "every key" in err["message"], function
    # the unlimited tokens still see everything
    assert call(guarded, "reader", path="other.json").status_code == 200


# -- users' functions ------------------------------------------------------------------------

def test_users_functions_need_read_and_call_back_with_their_own_token(make_server, tmp_path):
    path = tmp_path / "tokens"
    path.write_text(tokens_text(LINES))
    server = make_server(env={"ASIDE_TOKENS_FILE": str(path)})
    put_sor(server, "doc.json", '{"n": 5}')
    install(server.functions, "peek", '''
        import os
        def main(cache):
            return {"n": cache["doc.json"]["n"], "token": os.environ.get("ASIDE_TOKEN")}
    ''')
    r = call(server, "reader", function="peek")
    assert r.status_code == 200, r.text
    value = r.json()["return"]["value"]
    assert value["n"] == 5
    assert value["token"] not in SECRETS.values()
    assert_error(call(server, "writer", function="peek"), 403, "forbidden")
    assert_error(call(server, "scoped", function="peek", path="team/a.json"), 403, "forbidden")
    assert_error(call(server, None, function="peek"), 401, "unauthorized")


def test_with_aside_token_alone_workers_do_not_get_it(make_server):
    secret = SECRETS["all"]
    server = make_server(env={"ASIDE_TOKEN": secret})
    put_sor(server, "doc.json", '{"n": 7}')
    install(server.functions, "peek", '''
        import os
        def main(cache):
            return {"n": cache["doc.json"]["n"], "token": os.environ.get("ASIDE_TOKEN")}
    ''')
    r = server.call("GET", params={"function": "peek"}, headers={"Authorization":
                                                                 f"Bearer {secret}"})
    assert r.status_code == 200, r.text
    assert r.json()["return"]["value"]["n"] == 7
    assert r.json()["return"]["value"]["token"] != secret
    # the shorthand has every scope
    r = server.call("GET", params={"function": "compact"},
                    headers={"Authorization": f"Bearer {secret}"})
    assert r.status_code == 200, r.text


# -- reload ----------------------------------------------------------------------------------

def wait_for_log(server, needle: str, after: int) -> str:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        text = server.log_text()[after:]
        if needle in text:
            return text
        time.sleep(0.02)
    raise AssertionError(f"no {needle!r} in the log:\n{server.log_text()}")


def test_sighup_reloads_the_file_and_a_bad_file_keeps_the_tokens_in_force(guarded):
    assert call(guarded, "reader", function="stats_cache").status_code == 200
    assert_error(call(guarded, "fresh", function="stats_cache"), 401)
    guarded.tokens_path.write_text(tokens_text(["fresh", "writer"]))
    mark = len(guarded.log_text())
    guarded.proc.send_signal(signal.SIGHUP)
    text = wait_for_log(guarded, "tokens: reloaded", mark)
    assert "fresh (read)" in text and SECRETS["fresh"] not in text
    assert call(guarded, "fresh", function="stats_cache").status_code == 200
    assert_error(call(guarded, "reader", function="stats_cache"), 401, "unauthorized")
    assert_error(call(guarded, "writer", function="stats_cache"), 403, "forbidden")

    guarded.tokens_path.write_text(tokens_text(["reader"]) + "broken line\n")
    mark = len(guarded.log_text())
    guarded.proc.send_signal(signal.SIGHUP)
    text = wait_for_log(guarded, "the tokens in force are kept", mark)
    assert ":2:" in text
    assert call(guarded, "fresh", function="stats_cache").status_code == 200
    assert_error(call(guarded, "reader", function="stats_cache"), 401, "unauthorized")


# -- refused starts --------------------------------------------------------------------------

def start_output(tmp_path, env: dict, args: list[str] | None = None) -> tuple[int | None, str]:
    """Start the binary: (exit status, output), None as the status when it served (then it is
    stopped)."""
    for folder in ("cache", "sor", "functions"):
        (tmp_path / folder).mkdir(exist_ok=True)
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("ASIDE_", "LOCAL_", "REMOTE_", "AWS_"))}
    base.update({"LOCAL_DATA_DIR": str(tmp_path / "cache"), "REMOTE_STORAGE": str(tmp_path / "sor"),
                 "LOCAL_FUNCTION_DIR": str(tmp_path / "functions"), "ASIDE_PORT": "0",
                 "ASIDE_PYTHON": sys.executable, **env})
    log = tmp_path / "start.log"
    with open(log, "wb") as f:
        proc = subprocess.Popen([str(SERVER_BINARY), *(args or [])], env=base, stdout=f,
                                stderr=subprocess.STDOUT)
    deadline = time.monotonic() + START_TIMEOUT_S
    while proc.poll() is None and time.monotonic() < deadline:
        if "listening on" in log.read_text(errors="replace"):
            break
        time.sleep(0.02)
    if proc.poll() is None:
        proc.terminate()
        assert proc.wait(timeout=START_TIMEOUT_S) == 0
        return None, log.read_text(errors="replace")
    return proc.returncode, log.read_text(errors="replace")


@pytest.mark.parametrize("hash_text", [
    "my-secret-in-clear",
    "md5:" + hashlib.md5(b"x").hexdigest(),
    hashlib.sha256(b"x").hexdigest(),
    "sha256:" + hashlib.sha256(b"x").hexdigest()[:40],
    "$2b$12$abcdefghijklmnopqrstuu5ZTT8dUQ8cnHqoZb4kV1u9ZQ2qUKVyS",
    "sha512:" + hashlib.sha512(b"x").hexdigest(),
])
def test_a_hash_in_another_format_is_refused_at_start(tmp_path, hash_text):
    path = tmp_path / "tokens"
    path.write_text(tokens_text(["reader"]) + f"other {hash_text} read\n")
    code, out = start_output(tmp_path, {"ASIDE_TOKENS_FILE": str(path)})
    assert code == 2, out
    assert "ASIDE_TOKENS_FILE" in out and f"{path}:2:" in out and "sha256:" in out
    assert "--hash-token" in out and "listening" not in out


def test_aside_token_and_a_tokens_file_together_are_refused(tmp_path):
    path = tmp_path / "tokens"
    path.write_text(tokens_text(["reader"]))
    code, out = start_output(tmp_path, {"ASIDE_TOKENS_FILE": str(path),
                                        "ASIDE_TOKEN": SECRETS["all"]})
    assert code == 2, out
    assert "ASIDE_TOKEN " in out and "ASIDE_TOKENS_FILE" in out


def test_hash_token_prints_the_hash_a_line_needs(tmp_path):
    secret = SECRETS["fresh"]
    out = subprocess.run([str(SERVER_BINARY), "--hash-token"], input=secret + "\n",
                         capture_output=True, text=True, timeout=START_TIMEOUT_S)
    assert out.returncode == 0 and out.stdout == hashed(secret) + "\n"
    assert secret not in out.stdout + out.stderr
    out = subprocess.run([str(SERVER_BINARY), "--hash-token"], input="two words\n",
                         capture_output=True, text=True, timeout=START_TIMEOUT_S)
    assert out.returncode != 0 and "bearer token" in out.stderr


# -- no open door ----------------------------------------------------------------------------

def test_a_non_loopback_address_without_a_token_is_refused_naming_the_settings(tmp_path):
    for bind in ("0.0.0.0", "::"):
        code, out = start_output(tmp_path, {"ASIDE_BIND": bind})
        assert code == 2, out
        for name in ("ASIDE_BIND", "ASIDE_TOKEN", "ASIDE_TOKENS_FILE",
                     "ASIDE_ALLOW_UNAUTHENTICATED"):
            assert name in out, (name, out)
        assert "listening" not in out


def test_loopback_needs_no_token_and_gets_no_warning(tmp_path):
    for bind in ("127.0.0.1", "localhost", "::1"):
        code, out = start_output(tmp_path, {"ASIDE_BIND": bind})
        assert code is None, out
        assert "without any token" not in out


def test_the_override_starts_with_a_warning(make_server):
    for how in ({"env": {"ASIDE_BIND": "0.0.0.0", "ASIDE_ALLOW_UNAUTHENTICATED": "true"}},
                {"env": {"ASIDE_BIND": "0.0.0.0"}, "args": ["--allow-unauthenticated"]}):
        server = make_server(**how)
        assert server.get(function="stats_cache").status_code == 200
        log = server.log_text()
        assert re.search(r"warn.*0\.0\.0\.0 without any token", log), log
        server.stop()


def test_a_non_loopback_address_with_a_token_starts_without_warning(make_server, tmp_path):
    path = tmp_path / "tokens"
    path.write_text(tokens_text(["reader"]))
    server = make_server(env={"ASIDE_BIND": "0.0.0.0", "ASIDE_TOKENS_FILE": str(path)})
    assert call(server, "reader", function="stats_cache").status_code == 200
    assert_error(call(server, None, function="stats_cache"), 401)
    assert "without any token" not in server.log_text()
