"""The function workers' pool as load arrives: every worker starts on the first call, not one
by one as calls pile up (a start then competes with the calls running and its caller waits on
an interpreter's start), and concurrent first calls, each reading the cache through the API
(the sandbox's Unix socket), all answer."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from helpers import install, ok, put_sor

WORKERS = 3
CALLS = 2 * WORKERS


def functions_stats(server) -> dict:
    return ok(server.get(function="cache_head"))["functions"]


def test_every_worker_starts_on_the_first_call(make_server):
    server = make_server(env={"ASIDE_FUNCTION_WORKERS": str(WORKERS)})
    install(server.functions, "echo", "def main(cache, message):\n    return message\n")
    assert ok(server.get(function="echo", message="hi")) == "hi"
    stats = functions_stats(server)
    assert stats["started"] == WORKERS and stats["workers"] == WORKERS
    assert ok(server.get(function="echo", message="again")) == "again"
    assert functions_stats(server)["started"] == WORKERS  # no start on a later call


def test_concurrent_first_calls_through_the_api_all_answer(make_server):
    server = make_server(env={"ASIDE_FUNCTION_WORKERS": str(WORKERS),
                              "ASIDE_LOAD_THREADS": str(2 * CALLS)})
    put_sor(server, "doc.json", '{"n": 7}')
    install(server.functions, "reads", "def main(cache, i):\n    return cache['doc.json']['n'] + i\n")
    with ThreadPoolExecutor(max_workers=CALLS) as pool:
        got = list(pool.map(lambda i: ok(server.get(function="reads", i=str(i))), range(CALLS)))
    assert got == [7 + i for i in range(CALLS)]
    assert functions_stats(server)["started"] == WORKERS
