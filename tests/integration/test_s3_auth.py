"""Against moto with IAM authentication on: signatures are really checked, so these prove that
aside signs every kind of request correctly and reports S3's refusals."""
from __future__ import annotations

import os

import pytest

pytest.register_assert_rewrite("s3_fixtures")

from helpers import assert_error, assert_nothing_cached, cached_keys  # noqa: E402
from s3_fixtures import PART, read_raw  # noqa: E402

pytest_plugins = ["s3_fixtures"]

MiB = 1024 * 1024


def auth_env(moto_auth, **extra):
    env = moto_auth.s3.env(AWS_ACCESS_KEY_ID=moto_auth.key_id,
                           AWS_SECRET_ACCESS_KEY=moto_auth.secret)
    env.update(extra)
    return {k: v for k, v in env.items() if v is not None}


def test_the_right_key_reads_small_and_ranged_objects(make_server, moto_auth):
    small = moto_auth.s3.put("auth/ok.json", '{"auth": "ok"}')
    big = moto_auth.s3.put("auth/big.bin", os.urandom(8 * PART + 7))
    server = make_server(env=auth_env(moto_auth))
    assert read_raw(server, "auth/ok.json") == (200, small, "sor")
    assert read_raw(server, "auth/big.bin") == (200, big, "sor")


def test_keys_that_need_uri_encoding_are_signed_correctly(make_server, moto_auth):
    key = "enc dir/ü+x=1&y (2)~'!.json"
    raw = moto_auth.s3.put(key, '{"encoded": true}')
    server = make_server(env=auth_env(moto_auth))
    assert read_raw(server, key) == (200, raw, "sor")
    r = server.get(function="list", prefix="enc dir/")
    assert r.status_code == 200, r.text
    assert [e["path"] for e in r.json()["return"]["value"]] == [key]


def test_the_right_key_writes_single_and_multipart_and_lists(make_server, moto_auth):
    server = make_server(env=auth_env(moto_auth, ASIDE_S3_MULTIPART_THRESHOLD="5MiB",
                                      ASIDE_S3_PART_SIZE="5MiB"))
    small = b'{"written": "with auth"}'
    r = server.call("PUT", params={"function": "write", "path": "w/small.json"}, data=small)
    assert r.status_code == 200, r.text
    big = os.urandom(6 * MiB)
    r = server.call("POST", params={"function": "write", "path": "w/big.bin"}, data=big,
                    timeout=60)
    assert r.status_code == 200, r.text
    assert moto_auth.s3.get("w/small.json") == small
    assert moto_auth.s3.get("w/big.bin") == big
    r = server.get(function="list", prefix="w/")
    assert r.status_code == 200, r.text
    assert [(e["path"], e["bytes"]) for e in r.json()["return"]["value"]] == [
        ("w/big.bin", len(big)), ("w/small.json", len(small))]


def test_update_revalidation_is_signed_correctly(make_server, moto_auth):
    moto_auth.s3.put("auth/rev.json", '{"rev": 1}')
    server = make_server(env=auth_env(moto_auth))
    assert read_raw(server, "auth/rev.json")[0] == 200
    r = server.get(function="update", path="auth/rev.json")
    assert r.status_code == 200, r.text
    assert r.json()["return"]["value"]["revalidated"] is True


def test_session_credentials_from_sts_sign_with_the_security_token(make_server, moto_auth):
    raw = moto_auth.s3.put("auth/session.bin", os.urandom(3 * PART))
    s = moto_auth.session
    server = make_server(env=auth_env(moto_auth, AWS_ACCESS_KEY_ID=s["AccessKeyId"],
                                      AWS_SECRET_ACCESS_KEY=s["SecretAccessKey"],
                                      AWS_SESSION_TOKEN=s["SessionToken"]))
    assert read_raw(server, "auth/session.bin") == (200, raw, "sor")


def test_a_wrong_secret_is_403_signature_does_not_match_and_nothing_is_cached(make_server,
                                                                             moto_auth):
    moto_auth.s3.put("auth/secret.json", "{}")
    server = make_server(env=auth_env(moto_auth, AWS_SECRET_ACCESS_KEY="not-the-secret",
                                      ASIDE_S3_MAX_ATTEMPTS="3"))
    err = assert_error(server.get(path="auth/secret.json"), 403, "SignatureDoesNotMatch")
    assert "signature" in err["message"].lower()
    assert_nothing_cached(server)


def test_an_unknown_access_key_is_403_invalid_access_key_id(make_server, moto_auth):
    moto_auth.s3.put("auth/key.json", "{}")
    server = make_server(env=auth_env(moto_auth, AWS_ACCESS_KEY_ID="AKIAUNKNOWNKEY000000"))
    assert_error(server.get(path="auth/key.json"), 403, "InvalidAccessKeyId")
    assert_nothing_cached(server)


def test_a_refused_write_changes_nothing(make_server, moto_auth):
    moto_auth.s3.put("auth/keep.json", '{"keep": 1}')
    server = make_server(env=auth_env(moto_auth, AWS_SECRET_ACCESS_KEY="not-the-secret"))
    r = server.call("POST", params={"function": "write", "path": "auth/keep.json"},
                    data=b'{"keep": 2}')
    assert_error(r, 403, "SignatureDoesNotMatch")
    assert moto_auth.s3.get("auth/keep.json") == b'{"keep": 1}'
    assert cached_keys(server) == []


def test_container_credentials_are_accepted_by_a_verifying_s3(make_server, moto_auth,
                                                             ecs_endpoint):
    s = moto_auth.session
    ecs_endpoint.source = lambda: (s["AccessKeyId"], s["SecretAccessKey"], s["SessionToken"])
    raw = moto_auth.s3.put("auth/ecs.bin", os.urandom(2 * PART + 1))
    server = make_server(env=auth_env(
        moto_auth, AWS_ACCESS_KEY_ID=None, AWS_SECRET_ACCESS_KEY=None,
        AWS_CONTAINER_CREDENTIALS_FULL_URI=ecs_endpoint.url + "/creds",
        AWS_CONTAINER_AUTHORIZATION_TOKEN=ecs_endpoint.auth_token))
    assert read_raw(server, "auth/ecs.bin") == (200, raw, "sor")
    assert ecs_endpoint.fetches() >= 1
