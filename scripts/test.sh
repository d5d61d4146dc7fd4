#!/usr/bin/env bash
# test.sh -- every test suite, on the plain build and on the sanitized (ASan + UBSan) build,
# then each fuzzer (build-fuzz) for 20 s from its seed corpus (scripts/fuzz.sh). The tests that
# compare answers with what pandas computes (frames, the Python client) run a second time on
# the plain build under pandas 3 (.venv-pandas3), as the first run is under pandas 2 (.venv).
#
# The C unit tests run under ctest (a build with no tests is an error, a skipped test is shown as
# skipped); the integration tests in pytest start the real server binary named by ASIDE_SERVER,
# with the configuration of pytest.ini (strict markers, a time limit per test). Called by
# `make test` after the three builds.
set -euo pipefail
cd "$(dirname "$0")/.."

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:exitcode=86"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

for build in build build-asan; do
    echo "== C unit tests ($build)"
    ctest --test-dir "$build" --output-on-failure --timeout 300 --no-tests=error
done

echo "== integration tests (build-asan)"
ASIDE_SERVER=build-asan/aside-server .venv/bin/python -m pytest -q tests/integration
echo "== integration tests (build)"
ASIDE_SERVER=build/aside-server .venv/bin/python -m pytest -q tests/integration
echo "== frame and client tests under pandas 3 (build)"
PANDAS3_TESTS=(tests/integration/test_frames.py tests/integration/test_frames_pandas.py
               tests/integration/test_frame_formats.py tests/integration/test_frame_sql.py
               tests/integration/test_frame_memory.py tests/integration/test_frame_shm.py
               tests/integration/test_client.py tests/integration/test_client_collections.py
               tests/integration/test_client_fs.py tests/integration/test_function_client.py)
ASIDE_SERVER=build/aside-server .venv-pandas3/bin/python -m pytest -q "${PANDAS3_TESTS[@]}"
echo "== fuzzers (build-fuzz, 20 s each, two at a time)"
scripts/fuzz.sh 20
