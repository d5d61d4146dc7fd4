"""The deployment recipes of deploy/: the systemd unit (systemd-analyze verify and its security
score, from a `cmake --install` prefix), the CloudFormation template of ECS (cfn-lint, the stack
created in moto, and aside working with exactly the S3 policy the stack gives its task role
against a moto that enforces IAM), and the Debian package (cpack, lintian).

docs/deploy.md records the figures asserted here (the unit's exposure score, lintian's
warnings)."""
from __future__ import annotations

import ast
import json
import os
import pathlib
import re
import shutil
import subprocess
import uuid

import pytest

pytest.register_assert_rewrite("s3_fixtures")

from helpers import REPO, SERVER_BINARY, assert_error  # noqa: E402
from s3_fixtures import VENV_BIN, boto_client, read_raw  # noqa: E402

pytest_plugins = ["s3_fixtures"]

UNIT = REPO / "deploy" / "systemd" / "aside.service"
TEMPLATE = REPO / "deploy" / "aws" / "aside-ecs.yaml"
BUILD = SERVER_BINARY.resolve().parent
TOOL_TIMEOUT = 120

# systemd-analyze security's overall exposure of aside.service (0 safest, 10 worst; "OK" is
# below 5): docs/deploy.md records it. Loosening the sandbox makes this test fail.
EXPOSURE_MAX = 1.2
# The defaults the unit's stop timeout must outlast (README: ASIDE_DRAIN_SECONDS,
# ASIDE_SHUTDOWN_TIMEOUT) and the default share of RAM held as values (ASIDE_MEMORY_LIMIT).
DRAIN_SECONDS, SHUTDOWN_TIMEOUT = 5, 30
MEMORY_LIMIT_SHARE = 25

MiB = 1024 * 1024


def run(*args: str | os.PathLike, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True,
                          timeout=TOOL_TIMEOUT, **kwargs)


def unit_settings(text: str) -> dict[str, list[str]]:
    """Every Key=value of a unit file: key -> its values in order."""
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            out.setdefault(key, []).append(value)
    return out


@pytest.fixture(scope="module")
def prefix(tmp_path_factory) -> pathlib.Path:
    """The build installed (`cmake --install`) into a temporary prefix."""
    root = tmp_path_factory.mktemp("prefix")
    r = run("cmake", "--install", BUILD, "--prefix", root)
    assert r.returncode == 0, r.stdout + r.stderr
    return root


# -- systemd ---------------------------------------------------------------------------------

def test_the_install_puts_the_unit_and_its_environment_example_in_the_prefix(prefix):
    unit = prefix / "lib" / "systemd" / "system" / "aside.service"
    assert (prefix / "share" / "aside" / "aside.env").read_text() == \
        (REPO / "deploy" / "systemd" / "aside.env").read_text()
    installed = unit_settings(unit.read_text())
    assert installed["ExecStart"] == [f"{prefix}/bin/aside-server"]
    assert os.access(installed["ExecStart"][0], os.X_OK)
    # the rest is the unit as written
    source = unit_settings(UNIT.read_text())
    assert source["ExecStart"] == ["/usr/bin/aside-server"]
    assert {k: v for k, v in installed.items() if k != "ExecStart"} == \
        {k: v for k, v in source.items() if k != "ExecStart"}


def test_systemd_analyze_verifies_the_installed_unit(prefix):
    unit = prefix / "lib" / "systemd" / "system" / "aside.service"
    r = run("systemd-analyze", "verify", unit)
    assert r.returncode == 0 and not r.stderr.strip(), r.stdout + r.stderr


def test_the_unit_is_hardened_to_its_recorded_exposure_score(prefix):
    unit = prefix / "lib" / "systemd" / "system" / "aside.service"
    r = run("systemd-analyze", "security", "--offline=true", "--no-pager", unit)
    assert r.returncode == 0, r.stdout + r.stderr
    m = re.search(r"Overall exposure level for aside\.service: (\d+\.\d+) (\w+)", r.stdout)
    assert m, r.stdout
    assert float(m.group(1)) <= EXPOSURE_MAX and m.group(2) in ("OK", "SAFE"), \
        "\n".join(line for line in r.stdout.splitlines() if "✗" in line)


def test_the_unit_waits_for_the_drain_and_bounds_memory_above_the_cache():
    s = unit_settings(UNIT.read_text())
    assert s["Type"] == ["notify"] and s["NotifyAccess"] == ["main"]
    assert s["KillMode"] == ["mixed"]     # SIGTERM to the server; its workers answer meanwhile
    stop = re.fullmatch(r"(\d+)s", s["TimeoutStopSec"][0])
    assert stop and int(stop.group(1)) > DRAIN_SECONDS + SHUTDOWN_TIMEOUT
    memory = re.fullmatch(r"(\d+)%", s["MemoryMax"][0])
    assert memory and int(memory.group(1)) >= 2 * MEMORY_LIMIT_SHARE
    assert s["DynamicUser"] == ["yes"]
    state = "/var/lib/" + s["StateDirectory"][0].split()[0]
    dirs = ["/var/lib/" + d for d in s["StateDirectory"][0].split()]
    for name in ("LOCAL_DATA_DIR", "LOCAL_FUNCTION_DIR", "REMOTE_STORAGE"):
        value = next(e.split("=", 1)[1] for e in s["Environment"] if e.startswith(name + "="))
        assert value in dirs, (name, value, dirs)   # made by systemd, writable, the service's
    assert s["WorkingDirectory"] == [state]


def test_the_server_starts_with_the_units_environment(make_server, tmp_path):
    """The unit's settings, its folders under a temporary root, are a valid configuration."""
    s = unit_settings(UNIT.read_text())
    root = tmp_path / "var-lib"
    for d in s["StateDirectory"][0].split():
        (root / d).mkdir(parents=True, exist_ok=True)
    env = {e.split("=", 1)[0]: e.split("=", 1)[1].replace("/var/lib/", f"{root}/")
           for e in s["Environment"]}
    server = make_server(args=[f"--local-data-dir={env['LOCAL_DATA_DIR']}",
                               f"--local-function-dir={env['LOCAL_FUNCTION_DIR']}",
                               f"--remote-storage={env['REMOTE_STORAGE']}"])
    (pathlib.Path(env["REMOTE_STORAGE"]) / "unit.json").write_text('{"unit": true}')
    assert read_raw(server, "unit.json") == (200, b'{"unit": true}', "sor")


# -- AWS: the CloudFormation template ------------------------------------------------------------

def test_cfn_lint_passes_the_template():
    r = run(VENV_BIN / "cfn-lint", TEMPLATE)
    assert r.returncode == 0, r.stdout + r.stderr


def readme_policy(bucket: str, prefix: str) -> dict:
    """The least-privilege policy README's S3 section states, for this bucket and prefix."""
    text = (REPO / "README.md").read_text()
    block = text.split("The least the role needs:", 1)[1].split("\n\n")[1]
    block = block.replace("my-data", bucket).replace("cache-demo", prefix)
    return json.loads(block)


def policy_document(raw) -> dict:
    """An inline policy as moto answers it: a dict, JSON, or (created by CloudFormation) the
    text of a Python dict."""
    if isinstance(raw, dict):
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return ast.literal_eval(raw)


def create_stack(endpoint: str, key: str, secret: str, bucket: str, prefix: str,
                 **params: str) -> dict:
    """The template as a stack in moto, in a VPC of two subnets; returns the stack's resources
    (logical id -> physical id) and outputs."""
    ec2 = boto_client("ec2", endpoint, key, secret)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24",
                                 AvailabilityZone=f"us-east-1{zone}")["Subnet"]["SubnetId"]
               for i, zone in ((1, "a"), (2, "b"))]
    values = dict(ImageUri="123456789012.dkr.ecr.us-east-1.amazonaws.com/aside:1",
                  VpcId=vpc, Subnets=",".join(subnets), BucketName=bucket, DataPrefix=prefix,
                  TokenSecretArn="arn:aws:secretsmanager:us-east-1:123456789012:secret:tok-Ab1",
                  MemoryLimit="3GiB")
    values.update(params)
    cfn = boto_client("cloudformation", endpoint, key, secret)
    name = "aside-" + uuid.uuid4().hex[:8]
    cfn.create_stack(StackName=name, TemplateBody=TEMPLATE.read_text(),
                     Capabilities=["CAPABILITY_IAM"],
                     Parameters=[{"ParameterKey": k, "ParameterValue": v}
                                 for k, v in values.items()])
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack
    resources = {r["LogicalResourceId"]: r["PhysicalResourceId"]
                 for r in cfn.list_stack_resources(StackName=name)["StackResourceSummaries"]}
    iam = boto_client("iam", endpoint, key, secret)
    role = resources["TaskRole"]
    policies = {n: policy_document(iam.get_role_policy(RoleName=role, PolicyName=n)
                                   ["PolicyDocument"])
                for n in iam.list_role_policies(RoleName=role)["PolicyNames"]}
    ecs = boto_client("ecs", endpoint, key, secret)
    task = ecs.describe_task_definition(taskDefinition=resources["TaskDefinition"])
    return {"resources": resources, "policies": policies, "task": task["taskDefinition"],
            "outputs": {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}}


@pytest.fixture(scope="module")
def stack(moto_auth) -> dict:
    """The stack, created in the moto that enforces IAM (by its administrator), for the
    prefix tenant-a of moto_auth's bucket."""
    return create_stack(moto_auth.endpoint, moto_auth.key_id, moto_auth.secret,
                        moto_auth.bucket, "tenant-a")


def test_the_stack_gives_its_task_role_readmes_least_privilege_s3_policy(stack, moto_auth):
    assert stack["policies"] == {"aside-s3": readme_policy(moto_auth.bucket, "tenant-a")}
    container = stack["task"]["containerDefinitions"][0]
    env = {e["name"]: e["value"] for e in container["environment"]}
    assert env["AWS_BUCKET_NAME"] == moto_auth.bucket and env["AWS_DATA_DIR"] == "tenant-a"
    assert env["ASIDE_MEMORY_LIMIT"] == "3GiB" and env["ASIDE_BIND"] == "0.0.0.0"
    assert env["LOCAL_DATA_DIR"].startswith(container["mountPoints"][0]["containerPath"] + "/")
    assert container["secrets"] == [{"name": "ASIDE_TOKEN", "valueFrom":
                                     "arn:aws:secretsmanager:us-east-1:123456789012:secret:tok-Ab1"}]
    assert container["portMappings"][0]["containerPort"] == 5000
    assert "/ready" in " ".join(container["healthCheck"]["command"])
    assert container["logConfiguration"]["logDriver"] == "awslogs"
    assert container["stopTimeout"] > DRAIN_SECONDS + SHUTDOWN_TIMEOUT


def test_a_read_only_stack_grants_reads_and_lists_only(moto_auth):
    s = create_stack(moto_auth.endpoint, moto_auth.key_id, moto_auth.secret, moto_auth.bucket,
                     "ro", AllowWrite="false")
    statements = s["policies"]["aside-s3"]["Statement"]
    assert [st["Action"] for st in statements] == [["s3:GetObject"], "s3:ListBucket"]


def test_aside_works_within_the_stacks_policy_and_is_refused_outside_it(stack, moto_auth,
                                                                        make_server):
    """An IAM user holding exactly the task role's policy: aside reads, lists and writes
    (single and multipart) under the prefix; a key outside it is 403."""
    iam = boto_client("iam", moto_auth.endpoint, moto_auth.key_id, moto_auth.secret)
    user = "aside-task-" + uuid.uuid4().hex[:6]
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="aside-s3",
                        PolicyDocument=json.dumps(stack["policies"]["aside-s3"]))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    admin = moto_auth.s3.client
    bucket = moto_auth.bucket
    admin.put_object(Bucket=bucket, Key="tenant-a/inside.json", Body=b'{"inside": 1}')
    admin.put_object(Bucket=bucket, Key="elsewhere/outside.json", Body=b'{"outside": 1}')

    def env(prefix: str) -> dict:
        return moto_auth.s3.env(AWS_ACCESS_KEY_ID=key["AccessKeyId"],
                                AWS_SECRET_ACCESS_KEY=key["SecretAccessKey"],
                                AWS_DATA_DIR=prefix, ASIDE_S3_MULTIPART_THRESHOLD="5MiB",
                                ASIDE_S3_PART_SIZE="5MiB")

    inside = make_server(env=env("tenant-a"))
    assert read_raw(inside, "inside.json") == (200, b'{"inside": 1}', "sor")
    r = inside.call("POST", params={"function": "write", "path": "w/small.json"},
                    data=b'{"written": true}')
    assert r.status_code == 200, r.text
    big = os.urandom(6 * MiB)
    r = inside.call("POST", params={"function": "write", "path": "w/big.bin"}, data=big,
                    timeout=60)
    assert r.status_code == 200, r.text
    got = admin.get_object(Bucket=bucket, Key="tenant-a/w/big.bin")["Body"].read()
    assert got == big
    r = inside.get(function="list", prefix="")
    assert r.status_code == 200, r.text
    assert sorted(e["path"] for e in r.json()["return"]["value"]) == \
        ["inside.json", "w/big.bin", "w/small.json"]

    outside = make_server(env=env("elsewhere"))
    assert_error(outside.get(path="outside.json"), 403)
    r = outside.call("POST", params={"function": "write", "path": "new.json"}, data=b"{}")
    assert_error(r, 403)
    assert "Contents" not in admin.list_objects_v2(Bucket=bucket, Prefix="elsewhere/new")


# -- the Debian package ----------------------------------------------------------------------

# What lintian still says of the package, all warnings (docs/deploy.md says why each stays).
LINTIAN_WARNINGS_KNOWN = {
    "copyright-without-copyright-notice",          # the project states no license yet
    "link-to-shared-library-in-wrong-package",     # one package, not libaside0 + libaside-dev
    "package-name-doesnt-match-sonames",
    "maintscript-calls-ldconfig",                  # CPack's postinst/postrm
    "no-manual-page",
    "pkg-config-unavailable-for-cross-compilation",
}


def test_the_debian_package_passes_lintian_and_its_server_runs(tmp_path):
    r = run("cpack", "-G", "DEB", "-B", tmp_path / "out",
            "--config", BUILD / "CPackConfig.cmake")
    assert r.returncode == 0, r.stdout + r.stderr
    deb, = (tmp_path / "out").glob("aside_*.deb")
    r = run("lintian", "--tag-display-limit", "0", deb)
    lines = [line for line in r.stdout.splitlines() if re.match(r"[EWIXP]: ", line)]
    errors = [line for line in lines if line.startswith("E: ")]
    assert not errors and r.returncode == 0, r.stdout + r.stderr
    warnings = {line.split()[2] for line in lines if line.startswith("W: ")}
    assert warnings <= LINTIAN_WARNINGS_KNOWN, warnings - LINTIAN_WARNINGS_KNOWN

    root = tmp_path / "root"
    r = run("dpkg-deb", "-x", deb, root)
    assert r.returncode == 0, r.stderr
    unit = unit_settings((root / "usr/lib/systemd/system/aside.service").read_text())
    assert unit["ExecStart"] == ["/usr/bin/aside-server"]
    # the packaged server finds the packaged libduckdb, and nothing from the build
    r = run("readelf", "-d", root / "usr/bin/aside-server")
    assert re.search(r"RUNPATH.*\[\$ORIGIN/\.\./lib/aside\]", r.stdout), r.stdout
    assert (root / "usr/lib/aside/libduckdb.so").is_file()
    pc = (root / "usr/lib/pkgconfig/aside.pc").read_text()
    assert "-L${libdir}/aside -Wl,-rpath,${libdir}/aside -lduckdb" in pc, pc
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    r = run(root / "usr/bin/aside-server", "--help", env=env)
    assert r.returncode == 0 and "usage:" in r.stdout, r.stdout + r.stderr
