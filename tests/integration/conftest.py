"""Fixtures that run the real aside-server binary (helpers.Server) on a free port with temporary
directories, and a time limit for every test.

Every server a test started and left running is stopped at the end of the test and checked: a
clean shutdown (exit status 0) and no sanitizer report in its log.

The time limit: each phase of a test (setup, call, teardown) may take DEFAULT_TIMEOUT_S, or the
seconds of its `@pytest.mark.timeout(s)` marker (pytest.ini's `timeout` sets the default). When
it runs out, SIGALRM makes the test fail with every thread's stack on stderr; should the test be
stuck where no Python code runs, faulthandler ends the whole run GRACE_S later, with the stacks.
A hung test fails; it never hangs the suite.
"""
from __future__ import annotations

import contextlib
import faulthandler
import pathlib
import signal
import sys
from typing import Iterator

import pytest

from helpers import Server

DEFAULT_TIMEOUT_S = 300.0
# After the alarm, how long the test may take to unwind before the process is ended.
GRACE_S = 60.0


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("timeout", "seconds each phase of a test may take (0: no limit)",
                  default=str(DEFAULT_TIMEOUT_S))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "timeout(seconds): this test's time limit per phase")


class TimeLimitExceeded(Exception):
    """A test phase ran past its time limit."""


def _limit_s(item: pytest.Item) -> float:
    marker = item.get_closest_marker("timeout")
    if marker is not None:
        return float(marker.args[0])
    return float(item.config.getini("timeout"))


def _on_alarm(signum, frame) -> None:
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    raise TimeLimitExceeded("the test ran past its time limit (pytest.ini timeout, or "
                      "@pytest.mark.timeout)")


@contextlib.contextmanager
def _time_limit(item: pytest.Item):
    limit = _limit_s(item)
    if limit <= 0:
        yield
        return
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, limit)
    faulthandler.dump_traceback_later(limit + GRACE_S, exit=True)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        faulthandler.cancel_dump_traceback_later()
        signal.signal(signal.SIGALRM, previous)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item):
    with _time_limit(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    with _time_limit(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem):
    with _time_limit(item):
        return (yield)


@pytest.fixture
def make_server(tmp_path: pathlib.Path) -> Iterator:
    """A factory: make_server(args=[...], env={...}) returns a started Server.
    Every server still running at the end of the test is stopped and checked."""
    servers: list[Server] = []

    def make(args: list[str] | None = None, env: dict[str, str] | None = None,
             root: pathlib.Path | None = None, start: bool = True) -> Server:
        server = Server(root or tmp_path / f"server{len(servers)}", args, env)
        servers.append(server)
        return server.start() if start else server

    yield make
    for server in servers:
        if server.proc is not None:
            server.stop()


@pytest.fixture
def server(make_server) -> Server:
    """A started server with an empty system of record and disk tier."""
    return make_server()
