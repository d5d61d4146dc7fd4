"""The credentials chain, in SDK order: environment, shared files, container endpoint, EC2
IMDSv2. The proxy shows which key id (and session token) signed each S3 request."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.register_assert_rewrite("s3_fixtures")

from s3_fixtures import read_raw, wait_for  # noqa: E402

pytest_plugins = ["s3_fixtures"]


@pytest.fixture
def chain(make_server, s3, fault_proxy, tmp_path):
    """chain(files={...}, **env) starts aside behind the proxy with no credentials except the
    ones given; files maps 'credentials'/'config' to ini text (written to tmp_path)."""
    def start(files: dict[str, str] | None = None, **extra):
        env = s3.env(endpoint=fault_proxy.url, AWS_ACCESS_KEY_ID=None,
                     AWS_SECRET_ACCESS_KEY=None)
        for name, text in (files or {}).items():
            path = tmp_path / f"aws-{name}"
            path.write_text(text)
            env["AWS_SHARED_CREDENTIALS_FILE" if name == "credentials" else "AWS_CONFIG_FILE"] = \
                str(path)
        env.update(extra)
        return make_server(env={k: v for k, v in env.items() if v is not None})
    s3.put("c.json", '{"creds": true}')
    return start


def signer(fault_proxy, key="c.json"):
    """(key id, security token or None) of the S3 requests for key; all must agree."""
    seen = fault_proxy.requests(key=key)
    assert seen, "no S3 request reached the endpoint"
    used = {(s.credential, s.headers.get("x-amz-security-token")) for s in seen}
    assert len(used) == 1, used
    return used.pop()


def read_ok(server, key="c.json"):
    status, body, _ = read_raw(server, key)
    assert status == 200, (status, body[:300])
    return body


CREDENTIALS = """\
[default]
aws_access_key_id = AKIAFILEDEFAULT00001
aws_secret_access_key = file-default-secret

[other]
aws_access_key_id = AKIAFILEOTHER0000002
aws_secret_access_key = file-other-secret
aws_session_token = file-other-token
"""

CONFIG = """\
[default]
region = us-east-1
aws_access_key_id = AKIACONFIGDEFAULT003
aws_secret_access_key = config-default-secret

[profile x]
aws_access_key_id = AKIACONFIGPROFILEX04
aws_secret_access_key = config-x-secret
aws_session_token = config-x-token
"""


def test_environment_keys_sign_requests_without_a_token(chain, fault_proxy):
    server = chain(AWS_ACCESS_KEY_ID="AKIAENVIRONMENT00005", AWS_SECRET_ACCESS_KEY="env-secret")
    read_ok(server)
    assert signer(fault_proxy) == ("AKIAENVIRONMENT00005", None)


def test_environment_session_token_is_sent_as_x_amz_security_token(chain, fault_proxy):
    server = chain(AWS_ACCESS_KEY_ID="ASIAENVIRONMENT00006", AWS_SECRET_ACCESS_KEY="env-secret",
                   AWS_SESSION_TOKEN="env-session-token/with+chars=")
    read_ok(server)
    assert signer(fault_proxy) == ("ASIAENVIRONMENT00006", "env-session-token/with+chars=")
    for s in fault_proxy.requests(key="c.json"):
        signed = s.headers["authorization"].split("SignedHeaders=")[1].split(",")[0]
        assert "x-amz-security-token" in signed.split(";")


def test_shared_credentials_file_default_profile(chain, fault_proxy):
    server = chain(files={"credentials": CREDENTIALS})
    read_ok(server)
    assert signer(fault_proxy) == ("AKIAFILEDEFAULT00001", None)


def test_aws_profile_picks_the_profile_in_the_credentials_file(chain, fault_proxy):
    server = chain(files={"credentials": CREDENTIALS, "config": CONFIG}, AWS_PROFILE="other")
    read_ok(server)
    assert signer(fault_proxy) == ("AKIAFILEOTHER0000002", "file-other-token")


def test_config_file_profile_section_is_used_for_aws_profile(chain, fault_proxy):
    server = chain(files={"credentials": CREDENTIALS, "config": CONFIG}, AWS_PROFILE="x")
    read_ok(server)
    assert signer(fault_proxy) == ("AKIACONFIGPROFILEX04", "config-x-token")


def test_config_file_default_is_used_without_a_credentials_file(chain, fault_proxy):
    server = chain(files={"config": CONFIG})
    read_ok(server)
    assert signer(fault_proxy) == ("AKIACONFIGDEFAULT003", None)


def test_credentials_file_beats_config_file_for_the_same_profile(chain, fault_proxy):
    server = chain(files={"credentials": CREDENTIALS, "config": CONFIG})
    read_ok(server)
    assert signer(fault_proxy) == ("AKIAFILEDEFAULT00001", None)


def test_environment_beats_the_files(chain, fault_proxy, ecs_endpoint):
    server = chain(files={"credentials": CREDENTIALS, "config": CONFIG}, AWS_PROFILE="other",
                   AWS_ACCESS_KEY_ID="AKIAENVIRONMENT00007", AWS_SECRET_ACCESS_KEY="e",
                   AWS_CONTAINER_CREDENTIALS_FULL_URI=ecs_endpoint.url + "/creds",
                   AWS_CONTAINER_AUTHORIZATION_TOKEN=ecs_endpoint.auth_token)
    read_ok(server)
    assert signer(fault_proxy) == ("AKIAENVIRONMENT00007", None)
    assert ecs_endpoint.seen == []


def test_files_beat_the_container_endpoint(chain, fault_proxy, ecs_endpoint):
    server = chain(files={"credentials": CREDENTIALS},
                   AWS_CONTAINER_CREDENTIALS_FULL_URI=ecs_endpoint.url + "/creds",
                   AWS_CONTAINER_AUTHORIZATION_TOKEN=ecs_endpoint.auth_token)
    read_ok(server)
    assert signer(fault_proxy) == ("AKIAFILEDEFAULT00001", None)
    assert ecs_endpoint.seen == []


def test_container_endpoint_credentials_are_fetched_with_the_authorization_token(
        chain, fault_proxy, ecs_endpoint, imds_endpoint):
    server = chain(AWS_CONTAINER_CREDENTIALS_FULL_URI=ecs_endpoint.url + "/creds",
                   AWS_CONTAINER_AUTHORIZATION_TOKEN=ecs_endpoint.auth_token,
                   AWS_EC2_METADATA_DISABLED=None,
                   AWS_EC2_METADATA_SERVICE_ENDPOINT=imds_endpoint.url)
    read_ok(server)
    issued = ecs_endpoint.issued[0]
    assert signer(fault_proxy) == (issued.key_id, issued.token)
    method, path, headers = ecs_endpoint.seen[0]
    assert (method, path, headers["authorization"]) == ("GET", "/creds", ecs_endpoint.auth_token)
    assert imds_endpoint.seen == [], "the container endpoint comes before IMDS"
    read_ok(server, "c.json")
    assert ecs_endpoint.fetches() == 1, "credentials valid for an hour are fetched once"


def test_imdsv2_gets_a_token_first_then_the_role_then_its_credentials(chain, fault_proxy,
                                                                    imds_endpoint):
    server = chain(AWS_EC2_METADATA_DISABLED=None,
                   AWS_EC2_METADATA_SERVICE_ENDPOINT=imds_endpoint.url)
    read_ok(server)
    issued = imds_endpoint.issued[0]
    assert signer(fault_proxy) == (issued.key_id, issued.token)
    calls = imds_endpoint.seen
    assert calls[0][:2] == ("PUT", "/latest/api/token")
    assert int(calls[0][2]["x-aws-ec2-metadata-token-ttl-seconds"]) > 0
    base = "/latest/meta-data/iam/security-credentials/"
    gets = [(m, p) for m, p, _ in calls[1:]]
    assert gets == [("GET", base), ("GET", base + imds_endpoint.role)], calls
    for _, _, headers in calls[1:]:
        assert headers["x-aws-ec2-metadata-token"] == imds_endpoint.imds_token


def test_imds_disabled_means_the_metadata_service_is_never_asked(chain, imds_endpoint):
    server = chain(AWS_EC2_METADATA_DISABLED="true",
                   AWS_EC2_METADATA_SERVICE_ENDPOINT=imds_endpoint.url)
    server.get(path="c.json")     # without credentials the outcome is not specified here
    assert imds_endpoint.seen == []


@pytest.mark.parametrize("source", ["ecs", "imds"])
def test_temporary_credentials_are_refreshed_before_expiry_without_failing_requests(
        chain, fault_proxy, s3, ecs_endpoint, imds_endpoint, source):
    endpoint = ecs_endpoint if source == "ecs" else imds_endpoint
    env = ({"AWS_CONTAINER_CREDENTIALS_FULL_URI": ecs_endpoint.url + "/creds",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN": ecs_endpoint.auth_token} if source == "ecs"
           else {"AWS_EC2_METADATA_DISABLED": None,
                 "AWS_EC2_METADATA_SERVICE_ENDPOINT": imds_endpoint.url})
    for i in range(10):
        s3.put(f"r{i}.json", f'{{"i": {i}}}')
    endpoint.lifetime = 5 * 60 + 2       # inside the 5-minute refresh window 2 s from now
    server = chain(**env)
    read_ok(server, "r0.json")
    assert endpoint.fetches() == 1
    first = endpoint.issued[0]
    assert signer(fault_proxy, "r0.json") == (first.key_id, first.token)
    endpoint.lifetime = 3600
    time.sleep(2.5)
    # reads racing the refresh: every one succeeds
    barrier = threading.Barrier(8, timeout=30)

    def read(i):
        barrier.wait()
        return read_raw(server, f"r{i}.json")[0]
    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(read, range(1, 9), timeout=60)) == [200] * 8
    assert wait_for(lambda: endpoint.fetches() >= 2, timeout=5), "no refresh before expiry"
    read_ok(server, "r9.json")
    second = endpoint.issued[1]
    assert signer(fault_proxy, "r9.json") == (second.key_id, second.token)
    assert endpoint.fetches() == 2
