#!/usr/bin/env bash
# test.sh -- every test suite, on the plain build and on the sanitized (ASan + UBSan) build,
# then each fuzzer (build-fuzz) for 20 s from its seed corpus (scripts/fuzz.sh). The tests that
# compare answers with what pandas computes (frames, the Python client) run a second time on
# the plain build under pandas 3 (.venv-pandas3), as the first run is under pandas 2 (.venv).
#
# The C unit tests run under ctest (a build with no tests is an error, a skipped test is shown as
# skipped); the integration tests in pytest start the real server binary named by ASIDE_SERVER,
# with the configuration of pytest.ini (strict markers, a time limit per test). Called by
# `make test` after the three builds. The container image (scripts/image.sh) builds in the
# background meanwhile (mostly waiting on the disk), and its tests run last.
set -euo pipefail
cd "$(dirname "$0")/.."

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:exitcode=86"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

echo "== container image: building in the background (log in build-image/test-image.log)"
mkdir -p build-image
scripts/image.sh --target full --tag localhost/aside:test >build-image/test-image.log 2>&1 &
image_pid=$!
trap 'wait "$image_pid" 2>/dev/null || true' EXIT   # never leave the build running

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
echo "== container image (built in the background, then run)"
if ! wait "$image_pid"; then
    cat build-image/test-image.log
    exit 1
fi
tail -1 build-image/test-image.log
ASIDE_IMAGE=localhost/aside:test .venv/bin/python -m pytest -q tests/integration/test_image.py
echo "== fuzzers (build-fuzz, 20 s each, two at a time)"
scripts/fuzz.sh 20
