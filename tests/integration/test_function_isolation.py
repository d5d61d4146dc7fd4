"""Users' functions kept apart from the server and from each other: the protocol socket out of
their reach, every process of a worker killed with it, a scrubbed environment and resource
limits, their output captured per call, and a fresh interpreter per function. Each test is an
escape a function tried; the same function must now fail, or see nothing."""
from __future__ import annotations

import concurrent.futures
import os
import pathlib
import pwd
import re
import resource
import sys
import time

import pytest
import requests

from helpers import assert_error, install, ok, put_sor, unsandboxed

PROCESS_GONE_TIMEOUT_S = 20.0


def one_worker(make_server, **env):
    return make_server(env={"ASIDE_FUNCTION_WORKERS": "1", **env})


def alive(pid: int) -> bool:
    """pid runs (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def descendants(pid: int) -> list[int]:
    """Every process below pid, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def outer_pids(server, inner: list[int]) -> list[int]:
    """The pids seen here of the processes a function saw as inner (in the sandbox's own pid
    namespace, or the same numbers without one), among the server's descendants."""
    by_inner: dict[int, int] = {}
    for pid in descendants(server.proc.pid):
        try:
            with open(f"/proc/{pid}/status") as f:
                nspid = next(line for line in f if line.startswith("NSpid:")).split()[1:]
        except (OSError, StopIteration):
            continue
        if len(nspid) > 1 or int(nspid[-1]) not in by_inner:
            by_inner[int(nspid[-1])] = pid
    return [by_inner[p] for p in inner if p in by_inner]


def wait_gone(pids, timeout_s: float = PROCESS_GONE_TIMEOUT_S) -> list[int]:
    """The pids still running after timeout_s (bounded polling)."""
    deadline = time.monotonic() + timeout_s
    left = [p for p in pids if alive(p)]
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = [p for p in left if alive(p)]
    return left


# -- the protocol socket ------------------------------------------------------------------------

FORGE_ON_FD_3 = '''
    import json, os, struct
    def main(cache):
        forged = json.dumps({"id": 0, "ok": True, "kind": "json", "value": "forged"}).encode()
        try:
            os.write(3, struct.pack(">I", len(forged)) + forged)
        except OSError as exc:
            return "fd 3 refused: " + type(exc).__name__
        return "real"
'''


def test_a_forged_frame_on_fd_3_never_answers_another_caller(make_server):
    server = one_worker(make_server)
    install(server.functions, "forge", FORGE_ON_FD_3)
    install(server.functions, "victim", "def main(cache, secret: str):\n    return 'ok:' + secret\n")
    r = server.get(function="forge")
    assert r.status_code != 200 or r.json()["return"]["value"] != "forged", r.text
    for secret in ("alice", "bob", "carol"):
        assert ok(server.get(function="victim", secret=secret)) == "ok:" + secret


FORGE_ON_EVERY_SOCKET = '''
    import json, os, stat, struct
    def main(cache):
        forged = json.dumps({"id": 1, "ok": True, "kind": "json", "value": "forged"}).encode()
        for name in os.listdir("/proc/self/fd"):
            try:
                if stat.S_ISSOCK(os.fstat(int(name)).st_mode):
                    os.write(int(name), struct.pack(">I", len(forged)) + forged)
            except OSError:
                pass
        return "real"
'''


def test_a_forged_frame_on_the_functions_own_channel_is_500_worker_protocol(make_server):
    server = one_worker(make_server)
    install(server.functions, "forge", FORGE_ON_EVERY_SOCKET)
    install(server.functions, "victim", "def main(cache, secret: str):\n    return 'ok:' + secret\n")
    assert ok(server.get(function="victim", secret="first")) == "ok:first"
    assert_error(server.get(function="forge"), 500, "worker_protocol")
    for secret in ("alice", "bob"):
        assert ok(server.get(function="victim", secret=secret)) == "ok:" + secret
    assert ok(server.get(function="victim", secret="carol")) == "ok:carol"


FAKE_WORKER = r'''
import json, os, socket, struct, sys
sock = socket.socket(fileno=3)
LENGTH = struct.Struct(">I")
def recv_exact(n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            sys.exit(0)
        data += chunk
    return data
def send(header, extra=b""):
    raw = json.dumps(header).encode()
    sock.sendall(LENGTH.pack(len(raw)) + raw + extra)
while True:
    (n,) = LENGTH.unpack(recv_exact(4))
    request = json.loads(recv_exact(n))
    rid, function = request["id"], request.get("function")
    answer = {"id": rid, "ok": True, "kind": "json", "value": "fine"}
    if function == "wrong_id":
        send({**answer, "id": rid + 1})
    elif function == "extra":
        send(answer, b"\0\0\0\2{}")
    elif function == "garbage":
        sock.sendall(b"\xff\xff\xff\xffnot a frame")
    else:
        send(answer)
'''


def fake_worker_server(make_server, tmp_path: pathlib.Path):
    script = tmp_path / "fake_worker.py"
    script.write_text(FAKE_WORKER)
    python = tmp_path / "fake-python"
    python.write_text(f"#!/bin/sh\nexec {sys.executable} {script}\n")
    python.chmod(0o755)
    # the protocol, not the sandbox, is tried here: the fake runs as this user, in the open
    server = make_server(env=unsandboxed(ASIDE_FUNCTION_WORKERS="1",
                                         ASIDE_PYTHON=str(python)))
    for name in ("wrong_id", "extra", "garbage", "fine"):
        install(server.functions, name, "def main(cache):\n    return 1\n")
    return server


def test_a_reply_that_breaks_the_protocol_is_500_worker_protocol_and_the_worker_replaced(
        make_server, tmp_path):
    server = fake_worker_server(make_server, tmp_path)
    assert ok(server.get(function="fine")) == "fine"
    for bad in ("wrong_id", "extra", "garbage"):
        err = assert_error(server.get(function=bad), 500, "worker_protocol")
        assert "protocol" in err["message"]
        assert ok(server.get(function="fine")) == "fine"
    stats = ok(server.get(function="cache_head"))["functions"]
    assert stats["started"] == 4 and stats["crashes"] == 3


# -- every process of a worker dies with it -------------------------------------------------------

SPAWN = '''
    import os, signal, time
    def main(cache, n: int = 20, wait: int = 0):
        """n children that ignore SIGTERM and sleep (one of them in a session of its own, as a
        daemon would), their pids (and its own, its parent's) put in the cache as pids.json and
        answered; then sleep wait seconds."""
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        pids = []
        for i in range(n):
            pid = os.fork()
            if pid == 0:
                if i == 0:
                    os.setsid()
                time.sleep(600)
                os._exit(0)
            pids.append(pid)
        mine = pids + [os.getpid(), os.getppid()]
        cache["pids.json"] = mine
        time.sleep(wait)
        return mine
'''

SPAWN_WAIT_S = 30.0


def spawned_during(server, call: concurrent.futures.Future) -> list[int]:
    """The pids (seen here) of what spawn started, read from the cache while its call runs."""
    deadline = time.monotonic() + SPAWN_WAIT_S
    while time.monotonic() < deadline and not call.done():
        r = requests.get(server.api, params={"function": "read", "key": "pids.json",
                                             "return": "data"}, timeout=10)
        if r.status_code == 200:
            return outer_pids(server, ok(r))
        time.sleep(0.1)
    return []


def test_a_timeout_kills_every_child_the_function_forked(make_server):
    server = one_worker(make_server)
    install(server.functions, "spawn", SPAWN)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        call = pool.submit(server.get, function="spawn", wait="600", timeout="3")
        pids = spawned_during(server, call)
        assert_error(call.result(), 504, "timeout")
    assert len(pids) == 22
    assert wait_gone(pids) == []
    assert len(ok(server.get(function="spawn", n="1"))) == 3


def test_the_servers_sigterm_leaves_no_worker_nor_child(make_server):
    server = one_worker(make_server)
    install(server.functions, "spawn", SPAWN)
    pids = outer_pids(server, ok(server.get(function="spawn")))
    assert len(pids) == 22 and all(alive(p) for p in pids)
    everything = descendants(server.proc.pid)
    server.stop()
    assert wait_gone(pids + everything) == []


def test_a_killed_server_leaves_no_worker_nor_child(make_server):
    server = one_worker(make_server)
    install(server.functions, "spawn", SPAWN)
    pids = outer_pids(server, ok(server.get(function="spawn")))
    assert len(pids) == 22
    everything = descendants(server.proc.pid)
    server.kill()
    assert wait_gone(pids + everything) == []


# -- the environment and the limits --------------------------------------------------------------

TOKEN = "a-token-no-function-may-see"
SECRET_KEY = "AWS-SECRET-NO-FUNCTION-MAY-SEE"


def test_a_function_sees_neither_the_token_nor_the_aws_keys_yet_reads_the_cache(make_server):
    server = make_server(env={"ASIDE_TOKEN": TOKEN, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
                              "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "ASIDE_FUNCTION_WORKERS": "1"})
    server.session.headers["Authorization"] = f"Bearer {TOKEN}"
    install(server.functions, "env", '''
        import os
        def main(cache):
            with open("/proc/self/environ", "rb") as f:
                raw = f.read().decode(errors="replace")
            return {"environ": dict(os.environ), "raw": raw, "doc": cache.get("doc.json")}
    ''')
    put_sor(server, "doc.json", '{"n": 1}')
    got = ok(server.get(function="env"))
    assert got["doc"] == {"n": 1}                              # the cache, through the token
    assert not [k for k in got["environ"] if k.startswith("AWS_")], got["environ"]
    assert "ASIDE_TOKEN" not in got["environ"]
    for secret in (TOKEN, SECRET_KEY):
        assert secret not in repr(got["environ"]) and secret not in got["raw"]
    assert set(got["environ"]) <= {"PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "PYTHONPATH",
                                   "ASIDE_URL", "ASIDE_FUNCTION_DIR",
                                   "PWD"}, got["environ"]  # "/", set by the sandbox


def test_a_function_runs_with_no_new_privileges_and_no_core_files(server):
    install(server.functions, "limits", '''
        import resource
        def main(cache):
            with open("/proc/self/status") as f:
                status = dict(line.split(":", 1) for line in f if ":" in line)
            return {"no_new_privs": status["NoNewPrivs"].strip(),
                    "core": list(resource.getrlimit(resource.RLIMIT_CORE))}
    ''')
    assert ok(server.get(function="limits")) == {"no_new_privs": "1", "core": [0, 0]}


def test_a_file_past_the_size_limit_fails_to_write(make_server):
    server = one_worker(make_server, ASIDE_FUNCTION_FILE_SIZE="1MiB")
    install(server.functions, "big", '''
        import os
        def main(cache, target: str, mib: int = 0, measure: bool = False):
            if measure:
                size = os.path.getsize(target)
                os.remove(target)
                return size
            with open(target, "wb") as f:
                for _ in range(mib):
                    f.write(b"x" * (1 << 20))
            return "written"
    ''')
    target = f"/tmp/aside-test-big-{os.getpid()}-{time.monotonic_ns()}"  # the worker's /tmp
    err = assert_error(server.get(function="big", target=target, mib="4"), 500,
                       "function_error")
    assert err["type"] == "OSError" and "File too large" in err["message"], err
    assert ok(server.get(function="big", target=target, measure="true")) <= 1 << 20
    assert ok(server.get(function="big", target=target + "-small", mib="0")) == "written"
    assert ok(server.get(function="big", target=target + "-small", measure="true")) == 0


def test_a_cpu_loop_left_running_after_its_call_dies_of_the_cpu_limit(make_server):
    server = one_worker(make_server)
    install(server.functions, "spin_child", '''
        import os
        def main(cache):
            pid = os.fork()
            if pid == 0:
                while True:
                    pass
            return pid
    ''')
    install(server.functions, "warm", "def main(cache):\n    return 1\n")
    assert ok(server.get(function="warm")) == 1                 # the worker has started
    pids = outer_pids(server, [ok(server.get(function="spin_child", timeout="3"))])
    assert len(pids) == 1 and alive(pids[0])
    assert wait_gone(pids, timeout_s=60.0) == []                 # a few CPU seconds, then SIGXCPU


# -- what functions print ------------------------------------------------------------------------

def test_ten_megabytes_printed_do_not_reach_the_servers_log(make_server):
    server = one_worker(make_server)
    install(server.functions, "chatty", '''
        import sys
        def main(cache):
            line = "x" * 99
            for _ in range(100_000):
                print(line)
            sys.stderr.write("the end\\n")
            return "done"
    ''')
    before = server.log_path.stat().st_size
    assert ok(server.get(function="chatty")) == "done"
    assert ok(server.get(function="chatty")) == "done"
    grown = server.log_path.stat().st_size - before
    assert grown < 256 << 10, grown
    assert len(re.findall(r"chatty: \d+ bytes of output \(of 10000008\) not logged",
                          server.log_text())) == 2


def test_a_failing_functions_error_carries_its_last_printed_lines(server):
    install(server.functions, "noisy_failure", '''
        import os, sys
        def main(cache):
            for i in range(5000):
                print("line", i)
            print("loading the model")
            sys.stderr.write("warning: the model is old\\n")
            os.write(1, b"written on fd 1\\n")
            raise RuntimeError("no model")
    ''')
    err = assert_error(server.get(function="noisy_failure"), 500, "function_error")
    assert err["type"] == "RuntimeError"
    assert err["output"][-3:] == ["loading the model", "warning: the model is old",
                                  "written on fd 1"]
    assert 0 < len(err["output"]) <= 50
    install(server.functions, "quiet_failure", "def main(cache):\n    raise ValueError('x')\n")
    assert assert_error(server.get(function="quiet_failure"), 500)["output"] == []


# -- one interpreter per function ----------------------------------------------------------------

SPY = '''
    import builtins, sys
    def spy(original):
        def call(self, header):
            builtins.seen.append(header.get("args"))
            return original(self, header)
        return call

    def main(cache, action: str = "install"):
        """Patch the worker's call, and the builtins every function shares, to record the
        arguments of every call that passes; then tell what was seen."""
        if action == "install":
            builtins.seen = []
            for name in ("__main__", "aside.worker"):
                worker = getattr(sys.modules.get(name), "Worker", None)
                if worker is not None:
                    worker.call = spy(worker.call)
            return "installed"
        return getattr(builtins, "seen", None)
'''


def test_a_hook_one_function_installs_never_sees_another_functions_arguments(make_server):
    server = one_worker(make_server)
    install(server.functions, "spy", SPY)
    install(server.functions, "victim", "def main(cache, secret: str):\n    return 'ok:' + secret\n")
    assert ok(server.get(function="spy")) == "installed"
    assert ok(server.get(function="victim", secret="alice")) == "ok:alice"
    seen = ok(server.get(function="spy", action="read"))
    assert "alice" not in repr(seen), seen
    assert seen == [{"action": "read"}]                   # its own calls only


def test_a_fork_bomb_stops_at_the_workers_process_bound(make_server):
    server = one_worker(make_server, ASIDE_FUNCTION_PROCESSES="40")
    if "no pids cgroup can be made" in server.log_text():
        pytest.skip("this server can neither make a pids cgroup nor bind root by RLIMIT_NPROC")
    install(server.functions, "bomb", '''
        import os, time
        def main(cache):
            pids, error = [], None
            for _ in range(500):
                try:
                    pid = os.fork()
                except OSError as exc:
                    error = exc.strerror
                    break
                if pid == 0:
                    time.sleep(120)
                    os._exit(0)
                pids.append(pid)
            return {"forked": len(pids), "error": error, "pids": pids}
    ''')
    got = ok(server.get(function="bomb"))
    assert got["forked"] < 40 and got["error"] == "Resource temporarily unavailable", got
    pids = outer_pids(server, got["pids"])
    assert len(pids) == got["forked"]
    server.stop()
    assert wait_gone(pids) == []


def test_orphans_that_ended_do_not_count_against_the_bound(make_server):
    server = one_worker(make_server, ASIDE_FUNCTION_PROCESSES="40")
    if "no pids cgroup can be made" in server.log_text():
        pytest.skip("this server can neither make a pids cgroup nor bind root by RLIMIT_NPROC")
    install(server.functions, "daemons", '''
        import os
        def main(cache):
            for _ in range(10):
                pid = os.fork()
                if pid == 0:                 # the child starts a daemon and leaves at once
                    if os.fork() == 0:
                        os._exit(0)          # the daemon ends: an orphan for its worker
                    os._exit(0)
                os.waitpid(pid, 0)
            return "started"
    ''')
    for _ in range(8):                       # 80 orphans over the calls, 40 processes at most
        assert ok(server.get(function="daemons")) == "started"


def test_a_result_nested_past_any_depth_limit_is_400_and_the_worker_goes_on(make_server):
    server = one_worker(make_server)
    install(server.functions, "very_deep", '''
        import sys
        def main(cache, depth: int):
            sys.setrecursionlimit(4 * depth + 1000)
            out = []
            for _ in range(depth - 1):
                out = [out]
            return out
    ''')
    err = assert_error(server.get(function="very_deep", depth="5000"), 400)
    assert "nested deeper" in err["message"], err
    assert ok(server.get(function="very_deep", depth="3")) == [[[]]]
    assert ok(server.get(function="cache_head"))["functions"]["workers"] == 1


# -- the sandbox: what is not a function's ----------------------------------------------------------
# Each escape below worked while functions ran as the server's user with its view of the host;
# in the sandbox the same function fails, with the error the operating system gives.

PEEK = '''
    def main(cache, target: str):
        with open(target, "rb") as f:
            return len(f.read())
'''

PLANT = '''
    def main(cache, target: str):
        with open(target, "ab") as f:
            f.write(b"planted by a function\\n")
        return "planted"
'''

REFUSED = ("FileNotFoundError", "PermissionError", "OSError")


def refused(r, path) -> dict:
    err = assert_error(r, 500, "function_error")
    assert err["type"] in REFUSED and path in err["message"], err
    return err


def test_a_function_cannot_read_the_hosts_secrets_the_disk_tier_the_sor_or_the_tokens(
        make_server):
    server = one_worker(make_server)
    token_file = server.root / "token"
    token_file.write_text(TOKEN + "\n")
    server.stop()
    server.env["ASIDE_TOKEN_FILE"] = str(token_file)
    server.start()
    server.session.headers["Authorization"] = f"Bearer {TOKEN}"
    install(server.functions, "peek", PEEK)
    put_sor(server, "doc.json", '{"secret": "in the disk tier"}')
    assert ok(server.get(function="read", key="doc.json", **{"return": "data"})) == {
        "secret": "in the disk tier"}
    kept = [p for p in server.cache.rglob("doc.json*") if p.is_file()]
    assert kept, "the value is in the disk tier"
    for path in ["/etc/shadow", str(token_file), str(server.sor / "doc.json"), str(kept[0]),
                 str(server.cache / ".aside" / "journal"), f"/proc/{server.proc.pid}/environ"]:
        refused(server.get(function="peek", target=path), path)
    assert ok(server.get(function="peek", target=str(server.functions / "peek.py"))) > 0


def test_a_function_cannot_write_to_the_disk_tier_the_journal_or_the_function_folder(
        make_server):
    server = one_worker(make_server)
    install(server.functions, "plant", PLANT)
    put_sor(server, "doc.json", '{"n": 1}')
    ok(server.get(function="read", key="doc.json"))
    journal = server.cache / ".aside" / "journal"
    before = journal.read_bytes() if journal.exists() else None
    targets = [server.cache / "planted.json", journal, server.functions / "planted.py",
               server.functions / "plant.py", server.sor / "planted.json"]
    for path in targets:
        refused(server.get(function="plant", target=str(path)), str(path))
    assert not (server.cache / "planted.json").exists()
    assert not (server.functions / "planted.py").exists()
    assert not (server.sor / "planted.json").exists()
    assert (journal.read_bytes() if journal.exists() else None) == before
    assert b"planted by a function\n" not in (server.functions / "plant.py").read_bytes()
    # its own private /tmp is writable
    assert ok(server.get(function="plant", target="/tmp/mine")) == "planted"


def test_a_function_cannot_open_a_socket_to_the_server_nor_to_another_loopback_port(
        make_server):
    import socket
    server = one_worker(make_server)
    install(server.functions, "dial", '''
        import socket
        def main(cache, port: int):
            with socket.create_connection(("127.0.0.1", port), timeout=5):
                return "connected"
    ''')
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(0.5)
        for port in (server.port, listener.getsockname()[1]):
            err = assert_error(server.get(function="dial", port=str(port)), 500,
                               "function_error")
            assert err["type"] in ("ConnectionRefusedError", "OSError", "TimeoutError"), err
        with pytest.raises(socket.timeout):
            listener.accept()                                    # nothing reached it


def test_a_function_sees_only_its_own_processes(make_server):
    server = one_worker(make_server)
    install(server.functions, "ps", '''
        import os
        def main(cache):
            seen = {}
            for entry in os.listdir("/proc"):
                if entry.isdigit():
                    try:
                        with open(f"/proc/{entry}/cmdline", "rb") as f:
                            seen[entry] = f.read().replace(b"\\0", b" ").decode()
                    except OSError:
                        pass
            return seen
    ''')
    seen = ok(server.get(function="ps"))
    assert not [c for c in seen.values() if "aside-server" in c], seen
    assert str(server.proc.pid) not in seen
    assert len(seen) < 10, seen                  # the worker's own, not the host's


def test_functions_run_as_an_unprivileged_user_with_no_capabilities(make_server):
    server = one_worker(make_server)
    install(server.functions, "whoami", '''
        import os, resource
        def main(cache):
            with open("/proc/self/status") as f:
                status = dict(line.split(":", 1) for line in f if ":" in line)
            return {"nproc": resource.getrlimit(resource.RLIMIT_NPROC)[0],
                    "ids": [os.getuid(), os.geteuid(), os.getgid(), os.getegid()],
                    "groups": os.getgroups(), "caps": status["CapEff"].strip(),
                    "bounding": status["CapBnd"].strip()}
    ''')
    got = ok(server.get(function="whoami"))
    if os.geteuid() == 0:                         # the server is root: functions are nobody
        nobody = pwd.getpwnam("nobody")
        assert got["ids"] == [nobody.pw_uid] * 2 + [nobody.pw_gid] * 2, got
        assert got["groups"] in ([], [nobody.pw_gid]), got
        assert int(got["bounding"], 16) == 0, got
        assert 0 < got["nproc"] != resource.RLIM_INFINITY, got   # the user's, bounded
    else:
        assert got["ids"][:2] == [os.getuid()] * 2, got
    assert int(got["caps"], 16) == 0, got


def test_sandboxed_functions_still_read_json_and_frames_by_shared_memory_run_sql_and_return_frames(
        make_server):
    import pandas as pd
    from helpers import parquet_bytes
    server = one_worker(make_server)
    put_sor(server, "doc.json", '{"n": 3}')
    frame = pd.DataFrame({"g": [i % 3 for i in range(300)], "x": range(300)})
    put_sor(server, "f.parquet", parquet_bytes(frame))
    install(server.functions, "legit", '''
        def main(cache):
            df = cache["f.parquet"]
            n = cache.sql("select count(*) as n from 'f.parquet'").to_dict("records")
            return {"doc": cache["doc.json"], "rows": len(df), "sql": n,
                    "transport": cache.client.last_transport}
    ''')
    install(server.functions, "grouped", '''
        def main(cache):
            return cache["f.parquet"].groupby("g")["x"].sum().reset_index()
    ''')
    assert ok(server.get(function="legit")) == {"doc": {"n": 3}, "rows": 300,
                                               "sql": [{"n": 300}], "transport": "shm"}
    assert ok(server.get(function="grouped")) == [
        {"g": g, "x": int(frame[frame.g == g].x.sum())} for g in range(3)]


def fake_python(tmp_path: pathlib.Path) -> str:
    python = tmp_path / "broken-python"
    python.write_text("#!/bin/sh\necho 'this interpreter cannot start' >&2\nexit 3\n")
    python.chmod(0o755)
    return str(python)


def test_sandbox_on_refuses_to_start_when_the_sandbox_cannot_run_and_auto_warns(
        make_server, tmp_path):
    strict = make_server(env={"ASIDE_FUNCTION_SANDBOX": "on",
                              "ASIDE_PYTHON": fake_python(tmp_path)}, start=False)
    with pytest.raises(RuntimeError, match="ASIDE_FUNCTION_SANDBOX=on") as refused_start:
        strict.start()
    assert "this interpreter cannot start" in str(refused_start.value)
    assert strict.proc.wait(timeout=30) == 1
    strict.log.close()
    strict.proc = None
    server = make_server(env={"ASIDE_FUNCTION_SANDBOX": "auto",
                              "ASIDE_PYTHON": fake_python(tmp_path)})
    assert len(re.findall(r"warn: functions: NO SANDBOX", server.log_text())) == 1


def test_a_worker_whose_sandbox_cannot_start_is_a_clear_500(make_server):
    server = one_worker(make_server)
    install(server.functions, "fine", "def main(cache):\n    return 1\n")
    match = re.search(r"sandboxed \(bwrap: no network but the API at (\S+),", server.log_text())
    if not match:
        pytest.skip("no sandbox on this host")
    os.unlink(match.group(1))                     # bwrap cannot bind the API's socket any more
    err = assert_error(server.get(function="fine"), 500, "worker_died")
    assert "sandbox (bwrap)" in err["message"] and "could not start" in err["message"], err
