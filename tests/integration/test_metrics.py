"""GET /metrics: Prometheus' text exposition format 0.0.4, parsed with prometheus_client's own
parser. Each figure moves when it should (a memory hit by exactly one, a miss moves misses and
the SOR's fetches and bytes, an eviction, a journal append, a function's call and timeout, a 404
moves requests{status="404"}, histogram counts, a named dataset's counters), no key ever appears
in the page, the token is asked for like the API's read scope unless ASIDE_METRICS_PUBLIC says
otherwise, and the page is valid: the parser takes it, every family's TYPE comes before its
samples, and no series repeats.
"""
from __future__ import annotations

import hashlib
import textwrap

import pytest
from prometheus_client.parser import text_string_to_metric_families

import time
from concurrent.futures import ThreadPoolExecutor

from helpers import assert_error, install, ok, put_sor

pytest.register_assert_rewrite("s3_fixtures")
pytest_plugins = ["s3_fixtures"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
KIB = 1024


def page(server, headers: dict | None = None) -> str:
    r = server.call("GET", server.base + "/metrics", headers=headers or {})
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == CONTENT_TYPE
    return r.text


def samples(text: str) -> dict:
    """{(name, frozenset(labels)): value} of every sample, checking the page's shape first."""
    typed, seen = set(), set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            name = line.split()[2]
            assert name not in typed, f"two TYPE lines for {name}"
            typed.add(name)
        elif line and not line.startswith("#"):
            series = line.rsplit(" ", 1)[0]
            assert series not in seen, f"the series {series} repeats"
            seen.add(series)
            name = series.split("{", 1)[0]
            family = next((t for t in typed if name == t or
                           (name.startswith(t) and name[len(t):] in ("_bucket", "_sum", "_count"))),
                          None)
            assert family, f"{name} comes before its TYPE line"
    out = {}
    for family in text_string_to_metric_families(text):
        assert family.documentation, f"{family.name} has no HELP"
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(figures: dict, name: str, **labels) -> float:
    return figures.get((name, frozenset(labels.items())), 0.0)


def figures(server) -> dict:
    return samples(page(server))


def read(server, key: str, **params) -> dict:
    return ok(server.get(path=key, **params))


def test_the_page_is_valid_and_names_every_family(server):
    put_sor(server, "a.json", '{"a": 1}')
    read(server, "a.json")
    text = page(server)
    got = samples(text)
    names = {name for name, _ in got}
    for expected in ("aside_requests_total", "aside_request_duration_seconds_bucket",
                     "aside_cache_hits_total", "aside_cache_misses_total",
                     "aside_sor_fetches_total", "aside_sor_fetched_bytes_total",
                     "aside_sor_errors_total", "aside_sor_retries_total",
                     "aside_evictions_total", "aside_memory_used_bytes",
                     "aside_memory_limit_bytes", "aside_disk_used_bytes",
                     "aside_disk_limit_bytes", "aside_keys", "aside_journal_bytes",
                     "aside_journal_appends_total", "aside_journal_syncs_total",
                     "aside_journal_compactions_total", "aside_journal_compaction_seconds_total",
                     "aside_single_flight_waiting", "aside_function_workers_busy",
                     "aside_function_calls_total", "aside_function_timeouts_total",
                     "aside_function_crashes_total", "aside_preload_items",
                     "aside_shm_publications_total", "aside_uptime_seconds", "aside_build_info"):
        assert expected in names, expected
    assert value(got, "aside_build_info", version=server_version(server)) == 1
    assert value(got, "aside_keys", type="json") == 1
    assert value(got, "aside_memory_limit_bytes") > 0
    # HEAD answers the headers alone
    head = server.call("HEAD", server.base + "/metrics")
    assert head.status_code == 200 and head.content == b""


def server_version(server) -> str:
    import subprocess
    from helpers import SERVER_BINARY
    out = subprocess.run([str(SERVER_BINARY), "--version"], capture_output=True, text=True,
                         check=True).stdout
    return out.split()[-1]


def test_a_memory_hit_moves_memory_hits_by_exactly_one(server):
    put_sor(server, "h.json", '{"h": 1}')
    read(server, "h.json")
    before = figures(server)
    assert read(server, "h.json")["source"] == "memory"
    after = figures(server)
    assert value(after, "aside_cache_hits_total", tier="memory") == \
        value(before, "aside_cache_hits_total", tier="memory") + 1
    assert value(after, "aside_cache_misses_total") == value(before, "aside_cache_misses_total")
    assert value(after, "aside_requests_total", function="read", status="200") == \
        value(before, "aside_requests_total", function="read", status="200") + 1
    assert value(after, "aside_request_duration_seconds_count", function="read") == \
        value(before, "aside_request_duration_seconds_count", function="read") + 1
    assert value(after, "aside_request_duration_seconds_bucket", function="read", le="+Inf") == \
        value(after, "aside_request_duration_seconds_count", function="read")


def test_a_miss_moves_misses_and_the_sors_fetches_and_bytes(server):
    data = put_sor(server, "m.json", '{"m": "' + "x" * 100 + '"}')
    before = figures(server)
    assert read(server, "m.json")["source"] == "sor"
    after = figures(server)
    assert value(after, "aside_cache_misses_total") == value(before, "aside_cache_misses_total") + 1
    assert value(after, "aside_sor_fetches_total", storage="dir") == \
        value(before, "aside_sor_fetches_total", storage="dir") + 1
    assert value(after, "aside_sor_fetched_bytes_total", storage="dir") == \
        value(before, "aside_sor_fetched_bytes_total", storage="dir") + len(data)
    # a key the SOR lacks: a not_found error of the SOR, and a 404 request
    assert_error(server.get(path="absent.json"), 404)
    last = figures(server)
    assert value(last, "aside_sor_errors_total", kind="not_found") == \
        value(after, "aside_sor_errors_total", kind="not_found") + 1
    assert value(last, "aside_requests_total", function="read", status="404") == \
        value(after, "aside_requests_total", function="read", status="404") + 1


def test_evictions_by_tier_and_reason(make_server):
    server = make_server(env={"ASIDE_MEMORY_LIMIT": "1MiB"})
    for i in range(4):
        put_sor(server, f"big{i}.bin", bytes([i]) * (400 * KIB))
    read(server, "big0.bin")
    before = figures(server)
    ok(server.get(function="evict", path="big0.bin"))
    after = figures(server)
    assert value(after, "aside_evictions_total", tier="memory", reason="explicit") == \
        value(before, "aside_evictions_total", tier="memory", reason="explicit") + 1
    for i in range(1, 4):
        read(server, f"big{i}.bin")
    last = figures(server)
    assert value(last, "aside_evictions_total", tier="memory", reason="budget") > \
        value(after, "aside_evictions_total", tier="memory", reason="budget")
    assert value(last, "aside_memory_used_bytes") <= value(last, "aside_memory_limit_bytes")


def test_a_journal_append_and_its_sync(make_server):
    server = make_server(env={"ASIDE_FSYNC": "always"})
    before = figures(server)
    ok(server.get(function="counter_increment", key="visits"))
    after = figures(server)
    assert value(after, "aside_journal_appends_total") == \
        value(before, "aside_journal_appends_total") + 1
    assert value(after, "aside_journal_syncs_total") >= value(before, "aside_journal_syncs_total") + 1
    assert value(after, "aside_journal_bytes") > value(before, "aside_journal_bytes")
    assert value(after, "aside_keys", type="counter") == 1
    ok(server.get(function="compact"))
    assert value(figures(server), "aside_journal_compactions_total") == \
        value(after, "aside_journal_compactions_total") + 1


@pytest.mark.timeout(120)
def test_a_users_function_call_and_timeout_under_one_label(make_server):
    server = make_server(env={"ASIDE_FUNCTION_WORKERS": "1"})
    install(server.functions, "secret_name_7", "def main(cache):\n    return 1\n")
    install(server.functions, "slow", "import time\ndef main(cache):\n    time.sleep(30)\n")
    before = figures(server)
    assert ok(server.get(function="secret_name_7")) == 1
    assert_error(server.get(function="slow", timeout="1"), 504)
    text = page(server)
    after = samples(text)
    assert "secret_name_7" not in text and "slow" not in text
    assert value(after, "aside_function_calls_total") == \
        value(before, "aside_function_calls_total") + 2
    assert value(after, "aside_function_timeouts_total") == \
        value(before, "aside_function_timeouts_total") + 1
    assert value(after, "aside_requests_total", function="function_call", status="200") == 1
    assert value(after, "aside_requests_total", function="function_call", status="504") == 1


def test_an_unknown_function_or_route_is_counted_without_its_name(server):
    assert_error(server.get(function="no_such_thing_42"), 404)
    assert server.call("GET", server.base + "/nowhere/key-secret-9").status_code == 404
    text = page(server)
    got = samples(text)
    assert value(got, "aside_requests_total", function="unknown", status="404") == 1
    assert value(got, "aside_requests_total", function="none", status="404") == 1
    assert "no_such_thing_42" not in text and "key-secret-9" not in text


def test_no_key_ever_appears(server):
    keys = ["private/customer-4711.json", "deep/folder/secret-report.bin"]
    put_sor(server, keys[0], '{"x": 1}')
    put_sor(server, keys[1], b"abc")
    for k in keys:
        read(server, k)
        read(server, k)
    ok(server.get(function="list_push", key="queue-of-secrets", value="1"))
    text = page(server)
    for word in ("customer-4711", "secret-report", "queue-of-secrets", "private/", "deep/"):
        assert word not in text


SPEC = """\
    version: 1
    datasets:
      - prefix: sales/
        name: sales
        preload: false
      - key: ref.json
        name: reference
        preload: false
      - prefix: other/
        preload: false
"""


def test_named_datasets_count_their_hits_misses_and_bytes(make_server):
    server = make_server(start=False)
    sale = put_sor(server, "sales/2026.json", '{"total": 12}')
    put_sor(server, "ref.json", '{"r": 1}')
    put_sor(server, "other/x.json", '{"o": 1}')
    path = server.root / "spec.yaml"
    path.write_text(textwrap.dedent(SPEC))
    server.env["ASIDE_SPEC"] = str(path)
    server.start()
    read(server, "sales/2026.json")                       # a miss
    read(server, "sales/2026.json")                       # a memory hit
    read(server, "other/x.json")                          # no name: not counted
    text = page(server)
    got = samples(text)
    assert value(got, "aside_dataset_misses_total", dataset="sales") == 1
    assert value(got, "aside_dataset_hits_total", dataset="sales", tier="memory") == 1
    assert value(got, "aside_dataset_read_bytes_total", dataset="sales") == 2 * len(sale)
    assert value(got, "aside_dataset_misses_total", dataset="reference") == 0
    datasets = {dict(labels).get("dataset") for name, labels in got if "dataset" in dict(labels)}
    assert datasets == {"sales", "reference"}
    assert "sales/" not in text and "other/" not in text


@pytest.mark.parametrize("text, message", [
    ("version: 1\ndatasets:\n  - key: a.json\n    name: 9lives\n", "must be an identifier"),
    ("version: 1\ndatasets:\n  - key: a.json\n    name: twice\n  - key: b.json\n    name: twice\n",
     "given twice"),
])
def test_a_bad_dataset_name_is_refused_at_start(make_server, text, message):
    server = make_server(start=False)
    path = server.root / "spec.yaml"
    path.write_text(text)
    server.env["ASIDE_SPEC"] = str(path)
    with pytest.raises(RuntimeError):
        server.start()
    assert server.proc.wait(timeout=30) == 2
    server.log.close()
    server.proc = None
    assert message in server.log_text()


def hashed(secret: str) -> str:
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()


@pytest.fixture
def guarded(make_server, tmp_path):
    path = tmp_path / "tokens"
    path.write_text(f"reader {hashed('reader-secret-0123456789')} read\n"
                    f"writer {hashed('writer-secret-0123456789')} write\n"
                    f"scoped {hashed('scoped-secret-0123456789')} read team/\n")
    return make_server(env={"ASIDE_TOKENS_FILE": str(path)})


def bearer(name: str) -> dict:
    return {"Authorization": f"Bearer {name}-secret-0123456789"}


def test_the_token_is_asked_with_the_read_scope(guarded):
    r = guarded.call("GET", guarded.base + "/metrics")
    assert_error(r, 401, "unauthorized")
    assert "Bearer" in r.headers["WWW-Authenticate"]
    assert_error(guarded.call("GET", guarded.base + "/metrics",
                              headers={"Authorization": "Bearer wrong"}), 401)
    assert_error(guarded.call("GET", guarded.base + "/metrics", headers=bearer("writer")), 403,
                 "forbidden")
    samples(page(guarded, bearer("reader")))
    samples(page(guarded, bearer("scoped")))  # no key appears: a token limited to prefixes too
    # refused scrapes are counted too, under the page's own label
    got = samples(page(guarded, bearer("reader")))
    assert value(got, "aside_requests_total", function="metrics", status="401") == 2
    assert value(got, "aside_requests_total", function="metrics", status="403") == 1


def test_public_metrics_need_no_token_and_the_api_still_does(make_server):
    server = make_server(env={"ASIDE_TOKEN": "the-only-secret-0123", "ASIDE_METRICS_PUBLIC": "true"})
    samples(page(server))
    assert_error(server.get(function="head"), 401)


def test_other_verbs_are_405(server):
    r = server.call("POST", server.base + "/metrics", data=b"x")
    assert r.status_code == 405 and r.headers["Allow"] == "GET, HEAD"


SMALL = b'{"small": "object", "n": [1, 2, 3]}'
POLL_S = 0.05
WAIT_S = 20.0


def until(check, what: str):
    """Poll check() (bounded) until it returns something truthy; returns it."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(POLL_S)
    raise AssertionError(f"gave up waiting for {what}")


def test_s3_fetches_retries_and_errors_by_storage_and_kind(s3, proxied, fault_proxy):
    s3.put("s.json", SMALL)
    s3.put("down.json", SMALL)
    server = proxied()
    fault_proxy.fail("status", method="GET", status=500, times=1, path_contains="s.json")
    before = figures(server)
    assert read(server, "s.json")["source"] == "sor"
    after = figures(server)
    assert value(after, "aside_sor_fetches_total", storage="s3") == \
        value(before, "aside_sor_fetches_total", storage="s3") + 1
    assert value(after, "aside_sor_fetched_bytes_total", storage="s3") == \
        value(before, "aside_sor_fetched_bytes_total", storage="s3") + len(SMALL)
    assert value(after, "aside_sor_fetches_total", storage="dir") == 0
    assert value(after, "aside_sor_retries_total") == value(before, "aside_sor_retries_total") + 1
    fault_proxy.fail("status", method=None, status=500, times=1000, path_contains="down.json")
    assert_error(server.get(path="down.json"), 502)
    last = figures(server)
    assert value(last, "aside_sor_errors_total", kind="other") == \
        value(after, "aside_sor_errors_total", kind="other") + 1


def test_a_read_waiting_for_anothers_load_is_a_single_flight_waiter(s3, proxied, fault_proxy):
    s3.put("slow.json", SMALL)
    server = proxied(ASIDE_LOAD_THREADS="4")
    held = fault_proxy.fail("delay", method="GET", times=1, path_contains="slow.json", delay=30)
    with ThreadPoolExecutor(max_workers=2) as pool:
        leader = pool.submit(server.get, path="slow.json")
        until(lambda: fault_proxy.requests("GET", "slow.json"), "the leader's GET")
        follower = pool.submit(server.get, path="slow.json")
        waiting = until(lambda: value(figures(server), "aside_single_flight_waiting") == 1,
                        "the second read to wait for the first")
        held.release.set()
        assert waiting and leader.result().status_code == 200
        assert follower.result().status_code == 200
    got = figures(server)
    assert value(got, "aside_single_flight_waiting") == 0
    assert value(got, "aside_single_flight_waits_total") == 1
    assert value(got, "aside_sor_fetches_total", storage="s3") == 1


def test_a_frame_published_in_shared_memory(server):
    import pandas as pd
    from helpers import parquet_bytes
    put_sor(server, "f.parquet", parquet_bytes(pd.DataFrame({"x": [1, 2, 3]})))
    before = figures(server)
    ok(server.get(function="map", path="f.parquet"))
    after = figures(server)
    assert value(after, "aside_shm_publications_total") == \
        value(before, "aside_shm_publications_total") + 1
    assert value(after, "aside_shm_bytes") > 0
    assert value(after, "aside_keys", type="frame") == 1


PRELOADED = """\
    version: 1
    datasets:
      - prefix: pre/
"""


def test_the_preloads_progress(make_server):
    server = make_server(start=False)
    for i in range(3):
        put_sor(server, f"pre/{i}.json", '{"i": %d}' % i)
    path = server.root / "spec.yaml"
    path.write_text(textwrap.dedent(PRELOADED))
    server.env["ASIDE_SPEC"] = str(path)
    server.start()
    got = until(lambda: (lambda f: f if value(f, "aside_preload_items", state="done") == 3 and
                         value(f, "aside_preload_running") == 0 else None)(figures(server)),
                "the preload to finish")
    assert value(got, "aside_preload_items", state="total") == 3
    assert value(got, "aside_preload_items", state="failed") == 0
    assert value(got, "aside_preload_bytes", state="done") > 0
