"""Real S3-compatible peers for the S3 system-of-record tests.

- `moto`: one moto server (in process, ThreadedMotoServer) on 127.0.0.1 for the whole session,
  with authentication off; `s3` resets it before each test and creates a fresh bucket.
- `moto_auth`: a moto server in a subprocess with IAM authentication on (a real signature check),
  with an IAM user, its access key, a role and temporary credentials from STS.
- `fault_proxy`: a threaded HTTP proxy of our own in front of moto that forwards every request
  unchanged (Host header included, so SigV4 signatures stay valid), records what it saw and, when
  told, injects faults: S3 error statuses, delays, cut or corrupted bodies, connection resets.
- `ecs_endpoint`, `imds_endpoint`: loopback container-credentials and EC2 IMDSv2 servers.

Every server binds 127.0.0.1 only; every request has a timeout; every wait is bounded.
"""
from __future__ import annotations

import datetime as dt
import http.client
import json
import logging
import os
import pathlib
import re
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Iterator

import boto3
import pytest
import requests
from botocore.config import Config

logging.getLogger("werkzeug").setLevel(logging.ERROR)

REGION = "us-east-1"
ANY_KEY_ID = "AKIAASIDETESTKEY0001"
ANY_SECRET = "aside-test-secret"
PART = 64 * 1024
VENV_BIN = pathlib.Path(sys.executable).parent
REQUEST_TIMEOUT = 30


def utc_in(seconds: float) -> str:
    """An ISO-8601 UTC time `seconds` from now, as AWS credential endpoints write it."""
    t = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def boto_client(service: str, endpoint: str, key: str = ANY_KEY_ID, secret: str = ANY_SECRET,
                token: str | None = None):
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION,
                        aws_access_key_id=key, aws_secret_access_key=secret,
                        aws_session_token=token,
                        config=Config(connect_timeout=10, read_timeout=30,
                                      retries={"max_attempts": 1},
                                      s3={"addressing_style": "path"}))


# -- moto, authentication off ------------------------------------------------------------------

class MotoServer:
    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.port = port
        self.endpoint = f"http://127.0.0.1:{port}"

    def reset(self) -> None:
        r = requests.post(self.endpoint + "/moto-api/reset", timeout=REQUEST_TIMEOUT)
        assert r.status_code == 200, r.text

    def stop(self) -> None:
        self.server.stop()


_MOTO: MotoServer | None = None


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    global _MOTO
    if _MOTO is None:
        _MOTO = MotoServer()
    yield _MOTO
    _MOTO.stop()
    _MOTO = None


class S3:
    """A bucket in a moto server, and the aside environment that points at it."""

    def __init__(self, endpoint: str, bucket: str, prefix: str = "data/",
                 client=None) -> None:
        self.endpoint = endpoint
        self.bucket = bucket
        self.prefix = prefix
        self.client = client or boto_client("s3", endpoint)

    def full(self, key: str, prefix: str | None = None) -> str:
        p = self.prefix if prefix is None else prefix
        if p and not p.endswith("/"):
            p += "/"
        return p + key

    def put(self, key: str, data: bytes | str, prefix: str | None = None) -> bytes:
        raw = data.encode() if isinstance(data, str) else data
        self.client.put_object(Bucket=self.bucket, Key=self.full(key, prefix), Body=raw)
        return raw

    def get(self, key: str, prefix: str | None = None) -> bytes:
        return self.client.get_object(Bucket=self.bucket,
                                      Key=self.full(key, prefix))["Body"].read()

    def head(self, key: str, prefix: str | None = None) -> dict | None:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=self.full(key, prefix))
        except self.client.exceptions.ClientError as e:
            if e.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
                return None
            raise

    def etag(self, key: str) -> str:
        head = self.head(key)
        assert head is not None, key
        return head["ETag"]

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.full(key))

    def keys(self) -> list[str]:
        out = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            out += [o["Key"] for o in page.get("Contents", [])]
        return sorted(out)

    def env(self, endpoint: str | None = None, **extra: str) -> dict[str, str]:
        """Environment for aside-server: this bucket as the default SOR, fixed keys, no IMDS,
        no shared files, a small part size."""
        env = {
            "AWS_BUCKET_NAME": self.bucket,
            "AWS_DATA_DIR": self.prefix,
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL_S3": endpoint or self.endpoint,
            "AWS_ACCESS_KEY_ID": ANY_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": ANY_SECRET,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aside-test/credentials",
            "AWS_CONFIG_FILE": "/nonexistent/aside-test/config",
            "ASIDE_S3_PART_SIZE": "64KiB",
            "ASIDE_S3_TIMEOUT": "5",
        }
        env.update(extra)
        return {k: str(v) for k, v in env.items() if v is not None}


@pytest.fixture
def s3(moto) -> S3:
    """moto reset, with a fresh bucket; objects go under the prefix `data/`."""
    moto.reset()
    bucket = "aside-" + uuid.uuid4().hex[:12]
    store = S3(moto.endpoint, bucket)
    store.client.create_bucket(Bucket=bucket)
    return store


# -- moto, authentication on (subprocess: moto's auth switch is process-global) ----------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class MotoAuth:
    endpoint: str
    bucket: str
    key_id: str
    secret: str
    session: dict          # temporary credentials from STS: AccessKeyId, SecretAccessKey, SessionToken
    s3: S3


ALLOW_ALL = json.dumps({"Version": "2012-10-17",
                        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})


@pytest.fixture(scope="module")
def moto_auth() -> Iterator[MotoAuth]:
    port = free_port()
    # the setup calls below that run before authentication is enforced: create_user,
    # put_user_policy, create_access_key (then every call is signed with the user's key)
    env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="3")
    proc = subprocess.Popen([str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        endpoint = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("moto_server (auth) did not start")
                time.sleep(0.05)
        iam = boto_client("iam", endpoint)
        user = iam.create_user(UserName="aside")["User"]
        iam.put_user_policy(UserName="aside", PolicyName="all", PolicyDocument=ALLOW_ALL)
        key = iam.create_access_key(UserName="aside")["AccessKey"]
        iam = boto_client("iam", endpoint, key["AccessKeyId"], key["SecretAccessKey"])
        trust = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"AWS": user["Arn"]}, "Action": "sts:AssumeRole"}]}
        role = iam.create_role(RoleName="aside-role",
                               AssumeRolePolicyDocument=json.dumps(trust))["Role"]
        iam.put_role_policy(RoleName="aside-role", PolicyName="s3", PolicyDocument=json.dumps(
            {"Version": "2012-10-17",
             "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
        sts = boto_client("sts", endpoint, key["AccessKeyId"], key["SecretAccessKey"])
        session = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="aside-test",
                                  DurationSeconds=3600)["Credentials"]
        client = boto_client("s3", endpoint, key["AccessKeyId"], key["SecretAccessKey"])
        store = S3(endpoint, "aside-auth", client=client)
        client.create_bucket(Bucket=store.bucket)
        # auth is on: an unsigned-by-a-known-key call is refused
        try:
            boto_client("s3", endpoint).list_objects_v2(Bucket=store.bucket)
            raise AssertionError("moto accepted an unknown access key: auth is not on")
        except client.exceptions.ClientError as e:
            assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        yield MotoAuth(endpoint, store.bucket, key["AccessKeyId"], key["SecretAccessKey"],
                       session, store)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


# -- a small threaded HTTP server base ---------------------------------------------------------

class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address) -> None:  # peers that go away are normal
        pass


class LoopbackServer:
    """A ThreadingHTTPServer on 127.0.0.1:0 running in a daemon thread."""

    def __init__(self, handler_cls) -> None:
        self.httpd = _QuietServer(("127.0.0.1", 0), handler_cls)
        self.httpd.owner = self  # type: ignore[attr-defined]
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    @property
    def owner(self):
        return self.server.owner  # type: ignore[attr-defined]

    def read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def reply(self, status: int, body: bytes, ctype: str = "application/json",
              headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass


# -- the fault-injecting proxy -----------------------------------------------------------------

S3_ERRORS = {
    500: ("InternalError", "We encountered an internal error. Please try again."),
    503: ("SlowDown", "Please reduce your request rate."),
    403: ("AccessDenied", "Access Denied by the aside test proxy"),
    404: ("NoSuchKey", "The specified key does not exist."),
}

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
              "proxy-connection", "expect"}


def s3_error_xml(code: str, message: str) -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f"<Message>{message}</Message><RequestId>ASIDEPROXY0001</RequestId>"
            f"<HostId>aside-test-proxy</HostId></Error>").encode()


@dataclass
class Rule:
    kind: str                       # status | reset | delay | cut | stall | corrupt
    method: str | None = "GET"
    times: int = 1                  # how many matching requests get the fault
    ranged: bool | None = None      # True: only requests with Range; False: only without
    range_value: str | None = None  # exactly this Range header
    path_contains: str | None = None
    status: int = 500
    code: str | None = None
    message: str | None = None
    delay: float = 3.0              # delay, stall: how long, at most (see release)
    # delay, stall: set it to end the wait at once (a test that holds a request in flight)
    release: threading.Event = field(default_factory=threading.Event)
    skip: int = 0                   # let this many matching requests pass first
    applied: int = 0

    def matches(self, method: str, path: str, headers: dict) -> bool:
        if self.method and method != self.method:
            return False
        rng = headers.get("range")
        if self.ranged is True and not rng:
            return False
        if self.ranged is False and rng:
            return False
        if self.range_value is not None and rng != self.range_value:
            return False
        if self.path_contains and self.path_contains not in path:
            return False
        return True


@dataclass
class Seen:
    method: str
    path: str                        # path with query, as sent
    headers: dict                    # lower-case names
    body_len: int
    start: float
    fault: str | None = None
    status: int | None = None
    end: float | None = None

    @property
    def range(self) -> str | None:
        return self.headers.get("range")

    @property
    def bare_path(self) -> str:
        return self.path.split("?", 1)[0]

    @property
    def query(self) -> str:
        return self.path.split("?", 1)[1] if "?" in self.path else ""

    @property
    def credential(self) -> str:
        """The access key id of the SigV4 Authorization header ('' if unsigned)."""
        m = re.search(r"Credential=([^/,\s]+)/", self.headers.get("authorization", ""))
        return m.group(1) if m else ""

    @property
    def scope(self) -> list[str]:
        m = re.search(r"Credential=([^,\s]+)", self.headers.get("authorization", ""))
        return m.group(1).split("/") if m else []


class FaultProxy(LoopbackServer):
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.lock = threading.Lock()
        self.rules: list[Rule] = []
        self.seen: list[Seen] = []
        self.inflight = 0
        self.max_inflight = 0
        self.latency = 0.0          # added to every forwarded ranged GET (to observe concurrency)
        super().__init__(_ProxyHandler)

    # -- control --------------------------------------------------------------------------------
    def fail(self, kind: str = "status", **kw) -> Rule:
        rule = Rule(kind=kind, **kw)
        with self.lock:
            self.rules.append(rule)
        return rule

    def hold(self, rule: Rule) -> None:
        """Wait rule.delay seconds, or until the rule is released or the proxy stops."""
        deadline = time.monotonic() + rule.delay
        while not (rule.release.is_set() or self.stopping.is_set()):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            rule.release.wait(min(left, 0.05))

    def clear(self) -> None:
        with self.lock:
            self.rules.clear()

    def reset_log(self) -> None:
        with self.lock:
            self.seen.clear()
            self.max_inflight = 0

    def requests(self, method: str | None = None, key: str | None = None) -> list[Seen]:
        with self.lock:
            out = list(self.seen)
        if method:
            out = [s for s in out if s.method == method]
        if key:
            out = [s for s in out if s.bare_path.endswith("/" + key)]
        return out

    def _take(self, method: str, path: str, headers: dict) -> Rule | None:
        with self.lock:
            for rule in self.rules:
                if rule.applied < rule.skip + rule.times and rule.matches(method, path, headers):
                    rule.applied += 1
                    if rule.applied > rule.skip:
                        return rule
                    return None
        return None


class _ProxyHandler(_Handler):
    def do_ANY(self) -> None:
        proxy: FaultProxy = self.owner
        body = self.read_body()
        headers = {k.lower(): v for k, v in self.headers.items()}
        seen = Seen(self.command, self.path, headers, len(body), time.monotonic())
        ranged_get = self.command == "GET" and "range" in headers
        with proxy.lock:
            proxy.seen.append(seen)
            proxy.inflight += 1
            proxy.max_inflight = max(proxy.max_inflight, proxy.inflight)
        try:
            rule = proxy._take(self.command, self.path, headers)
            seen.fault = rule.kind if rule else None
            if rule is None or rule.kind in ("cut", "corrupt", "stall"):
                if ranged_get and proxy.latency:
                    proxy.stopping.wait(proxy.latency)
                self.forward(body, rule, seen)
            elif rule.kind == "status":
                code, message = S3_ERRORS.get(rule.status, ("InternalError", "error"))
                seen.status = rule.status
                self.reply(rule.status, s3_error_xml(rule.code or code, rule.message or message),
                           "application/xml")
            elif rule.kind == "reset":
                self.reset()
            elif rule.kind == "delay":
                proxy.hold(rule)
                self.close_connection = True
            else:
                raise AssertionError(rule.kind)
        finally:
            seen.end = time.monotonic()
            with proxy.lock:
                proxy.inflight -= 1

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_ANY

    def reset(self) -> None:
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def forward(self, body: bytes, rule: Rule | None, seen: Seen) -> None:
        proxy: FaultProxy = self.owner
        conn = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=30)
        try:
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for k, v in self.headers.items():
                if k.lower() not in HOP_BY_HOP and k.lower() != "content-length":
                    conn.putheader(k, v)
            if body or self.command in ("PUT", "POST"):
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body or None)
            resp = conn.getresponse()
            data = resp.read()
            resp_headers = resp.getheaders()
            status = resp.status
        finally:
            conn.close()
        seen.status = status
        if rule is not None and rule.kind == "corrupt" and data:
            i = len(data) // 2
            data = data[:i] + bytes([data[i] ^ 0x5A]) + data[i + 1:]
        self.send_response_only(status, resp.reason)
        length = None
        for k, v in resp_headers:
            lk = k.lower()
            if lk in HOP_BY_HOP or lk in ("server", "date"):
                continue
            if lk == "content-length":
                length = v
                continue
            self.send_header(k, v)
        if self.command == "HEAD":
            self.send_header("Content-Length", length or "0")
        else:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command == "HEAD":
            return
        if rule is not None and rule.kind in ("cut", "stall") and len(data) > 1:
            self.wfile.write(data[:len(data) // 2])
            self.wfile.flush()
            if rule.kind == "stall":
                proxy.hold(rule)
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self.wfile.write(data)


@pytest.fixture
def fault_proxy(moto) -> Iterator[FaultProxy]:
    proxy = FaultProxy(moto.port)
    yield proxy
    proxy.stop()


# -- credential endpoints ------------------------------------------------------------------------

@dataclass
class Issued:
    key_id: str
    secret: str
    token: str


class CredentialServer(LoopbackServer):
    """Hands out temporary credentials; each fetch gets a fresh key id (numbered), so tests can
    tell which fetch a signature used. `lifetime` sets Expiration (seconds from now)."""

    def __init__(self, handler_cls, prefix: str) -> None:
        self.lock = threading.Lock()
        self.seen: list[tuple[str, str, dict]] = []   # (method, path, lower-case headers)
        self.issued: list[Issued] = []
        self.lifetime = 3600.0
        self.prefix = prefix
        self.auth_token = "ecs-token-" + uuid.uuid4().hex[:8]
        self.imds_token = "imds-token-" + uuid.uuid4().hex[:8]
        self.role = "aside-role"
        self.source: Callable[[], tuple[str, str, str]] | None = None
        super().__init__(handler_cls)

    def issue(self) -> dict:
        with self.lock:
            n = len(self.issued) + 1
            if self.source is not None:     # fixed credentials, e.g. from moto's STS
                creds = Issued(*self.source())
            else:
                creds = Issued(f"{self.prefix}{n:04d}", f"secret-{self.prefix}-{n}",
                               f"token-{self.prefix}-{n}-" + uuid.uuid4().hex)
            self.issued.append(creds)
        return {"AccessKeyId": creds.key_id, "SecretAccessKey": creds.secret,
                "Token": creds.token, "Expiration": utc_in(self.lifetime)}

    def record(self, handler) -> dict:
        headers = {k.lower(): v for k, v in handler.headers.items()}
        with self.lock:
            self.seen.append((handler.command, handler.path, headers))
        return headers

    def fetches(self) -> int:
        with self.lock:
            return len(self.issued)


class _EcsHandler(_Handler):
    def do_GET(self) -> None:
        srv: CredentialServer = self.owner
        headers = srv.record(self)
        if self.path != "/creds":
            return self.reply(404, b'{"message": "not found"}')
        if headers.get("authorization") != srv.auth_token:
            return self.reply(401, b'{"message": "bad authorization token"}')
        self.reply(200, json.dumps(srv.issue()).encode())


class _ImdsHandler(_Handler):
    BASE = "/latest/meta-data/iam/security-credentials/"

    def do_PUT(self) -> None:
        srv: CredentialServer = self.owner
        headers = srv.record(self)
        self.read_body()
        if self.path != "/latest/api/token":
            return self.reply(404, b"not found", "text/plain")
        if not headers.get("x-aws-ec2-metadata-token-ttl-seconds"):
            return self.reply(400, b"missing ttl", "text/plain")
        self.reply(200, srv.imds_token.encode(), "text/plain")

    def do_GET(self) -> None:
        srv: CredentialServer = self.owner
        headers = srv.record(self)
        if headers.get("x-aws-ec2-metadata-token") != srv.imds_token:
            return self.reply(401, b"", "text/plain")
        if self.path == self.BASE:
            return self.reply(200, srv.role.encode(), "text/plain")
        if self.path == self.BASE + srv.role:
            doc = dict(srv.issue(), Code="Success", Type="AWS-HMAC",
                       LastUpdated=utc_in(0))
            return self.reply(200, json.dumps(doc).encode())
        self.reply(404, b"not found", "text/plain")


@pytest.fixture
def ecs_endpoint() -> Iterator[CredentialServer]:
    srv = CredentialServer(_EcsHandler, "ASIAECSTEST")
    yield srv
    srv.stop()


@pytest.fixture
def imds_endpoint() -> Iterator[CredentialServer]:
    srv = CredentialServer(_ImdsHandler, "ASIAIMDSTEST")
    yield srv
    srv.stop()


# -- aside over S3 -------------------------------------------------------------------------------

@pytest.fixture
def s3_server(make_server, s3):
    """aside-server with the moto bucket as its default SOR (directly, no proxy)."""
    return make_server(env=s3.env())


@pytest.fixture
def proxied(make_server, s3, fault_proxy):
    """A factory: proxied(**env) starts aside-server with the bucket behind the fault proxy."""
    def make(**extra):
        return make_server(env=s3.env(endpoint=fault_proxy.url, **extra))
    return make


# -- assertions shared by the S3 test modules -----------------------------------------------------

def read_raw(server, key: str, **params) -> tuple[int, bytes, str]:
    """(status, bytes, X-Aside-Source) of format=raw."""
    r = server.get(path=key, format="raw", **params)
    return r.status_code, r.content, r.headers.get("X-Aside-Source", "")


def read_meta(server, key: str, **params) -> dict:
    r = server.get(function="read", path=key, **params)
    assert r.status_code == 200, (r.status_code, r.text)
    return r.json()["return"]["value"]


def ranges_of(seen: list[Seen]) -> list[tuple[int, int]]:
    out = []
    for s in seen:
        m = re.fullmatch(r"bytes=(\d+)-(\d+)", s.range or "")
        assert m, f"not a closed byte range: {s.range!r}"
        out.append((int(m.group(1)), int(m.group(2))))
    return sorted(out)


def assert_ranges_tile(ranges: list[tuple[int, int]], size: int) -> None:
    """The ranges cover 0..size-1 exactly once."""
    assert ranges, "no ranged GET"
    pos = 0
    for start, end in sorted(ranges):
        assert start == pos, f"gap or overlap at {pos}: {sorted(ranges)}"
        assert end >= start
        pos = end + 1
    assert pos == size, f"ranges end at {pos}, object has {size} bytes"


def wait_for(pred: Callable[[], bool], timeout: float = 10.0, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()
