"""Eight client processes, each with its own connection, read (shared memory and HTTP), write,
put, update and delete the same keys at once. Every value any of them reads is one whole
version; at the end every key reads back as one of the versions written, and the server shuts
down cleanly."""
from __future__ import annotations

import json
import multiprocessing

import pandas as pd

import aside
from client_data import (SHARED_DOC, SHARED_FRAMES, SHARED_KEYS, concurrent_worker, version_of,
                         version_value)
from frame_data import read_expected

PROCESSES = 8
ITERATIONS = 20
WAIT_S = 240


def test_eight_client_processes_share_keys_and_every_read_is_a_whole_version(server):
    with aside.connect(server.base) as client:
        for key in SHARED_KEYS:
            client.write(key, version_value(key, 0))
    jobs = [(server.base, worker, ITERATIONS, 7919 * (worker + 1)) for worker in
            range(1, PROCESSES + 1)]
    context = multiprocessing.get_context("spawn")
    with context.Pool(PROCESSES) as pool:
        results = pool.map_async(concurrent_worker, jobs).get(timeout=WAIT_S)

    written = {key: {0} for key in SHARED_KEYS}
    put = {key: set() for key in SHARED_KEYS}
    for done in results:
        for key, version in done["write"]:
            written[key].add(version)
        for key, version in done["put"]:
            put[key].add(version)
    assert sum(done["reads"] for done in results) > 0
    assert sum(len(done["write"]) + len(done["put"]) for done in results) > 0
    assert sum(done["transports"]["shm"] for done in results) > 0
    assert sum(done["transports"]["http"] for done in results) > 0

    with aside.connect(server.base) as client:
        for key in SHARED_KEYS:
            value = client.read(key)
            assert version_of(key, value) in written[key] | put[key], key
            if key in SHARED_FRAMES:
                assert client.last_transport == "shm"
                http = client.read(key, transport="http")
                pd.testing.assert_frame_equal(http, value, check_exact=True)
                # the system of record holds one whole version written through to it
                assert version_of(key, read_expected(server.sor / key)) in written[key]
            else:
                doc = (server.sor / SHARED_DOC).read_bytes()
                assert version_of(key, json.loads(doc)) in written[key]
        stats = client.stats()
        assert stats["shm"]["maps"] > 0
    server.stop()
    errors = [error for done in results for error in done["errors"]]
    assert errors == [], "client errors under concurrency:\n" + "\n".join(map(repr, errors))
