#!/bin/sh
# test_install.sh -- libaside and aside-server installed into a temporary prefix, used from there
# as a program outside the project would.
#
#   test_install.sh BUILD_DIR SOURCE_DIR CC CMAKE [CFLAGS]
#
# Installs BUILD_DIR into a temporary prefix, then checks that
#   - the installed libaside.so exports aside_* only, and libaside.a's global symbols are aside_*
#     only (embed.c defines internal names of the library itself: a leak would collide);
#   - embed.c builds with pkg-config against the shared library and, statically, against the
#     archive, and builds with CMake's find_package(aside); each opens a cache and reads a key;
#   - the installed aside-server starts from the prefix (it finds libduckdb by itself) and
#     answers a read with 200;
#   - the prefix holds the Python package function workers run (lib/aside/python/aside), and
#     the installed server runs a user's function with a Python that has pandas, pyarrow and
#     requests but not the aside package (the project's .venv's modules, aside left out, on
#     the PYTHONPATH of the Python that venv was made from); skipped without a .venv.
# CFLAGS are the flags the build compiled with that a program must share (the sanitizers).
# Every wait is bounded; the temporary folder is removed and the server killed on any exit.
set -eu
build=$1
source=$(cd "$2" && pwd)
cc=$3
cmake=$4
cflags=${5:-}

work=$(mktemp -d)
server_pid=
cleanup() {
    if [ -n "$server_pid" ]; then
        kill -KILL "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
    echo "test_install: $*" >&2
    exit 1
}

# A system of record holding doc.json and an empty disk tier, in a folder of its own.
fixture() {
    mkdir -p "$work/$1/sor"
    printf '{"embedded": true}' > "$work/$1/sor/doc.json"
    echo "$work/$1"
}

prefix=$work/prefix
"$cmake" --install "$build" --prefix "$prefix" > "$work/install.log" ||
    fail "cmake --install failed: $(cat "$work/install.log")"
pc=$(find "$prefix" -name aside.pc)
[ -n "$pc" ] || fail "no aside.pc installed"
PKG_CONFIG_PATH=$(dirname "$pc")
export PKG_CONFIG_PATH
libdir=$(pkg-config --variable=libdir aside)

# ---- what the libraries export ------------------------------------------------------------
nm -D --defined-only "$libdir/libaside.so" | awk '{print $3}' | sort > "$work/exported"
others=$(grep -v '^aside_' "$work/exported" || true)
[ -z "$others" ] || fail "libaside.so exports more than aside_*:" $others
# ... and exactly the functions aside.h declares (ASIDE_API)
sed -n 's/^ASIDE_API .*[ *]\(aside_[a-z_]*\)(.*/\1/p' \
    "$(pkg-config --variable=includedir aside)/aside.h" | sort > "$work/declared"
[ -s "$work/declared" ] || fail "no ASIDE_API function found in the installed aside.h"
cmp -s "$work/exported" "$work/declared" ||
    fail "libaside.so's exports (<) differ from aside.h's functions (>):" \
        "$(diff "$work/exported" "$work/declared" | grep '^[<>]')"
others=$(nm --defined-only -g "$libdir/libaside.a" | awk 'NF == 3 && $3 !~ /^aside_/ {print $3}')
[ -z "$others" ] || fail "libaside.a has global symbols besides aside_*:" $others

# ---- a program built with pkg-config: shared, then static -----------------------------------
"$cc" $cflags -o "$work/embed_shared" "$source/tests/install/embed.c" \
    $(pkg-config --cflags --libs aside) || fail "cannot build against libaside.so"
readelf -d "$work/embed_shared" | grep -q 'NEEDED.*libaside\.so' ||
    fail "embed_shared does not use libaside.so"
LD_LIBRARY_PATH=$libdir "$work/embed_shared" "$(fixture shared)" ||
    fail "embed_shared failed"

# The archive by name in place of -laside, which would take libaside.so beside it.
static_libs=$(pkg-config --static --libs aside | sed 's/\(^\| \)-laside\( \|$\)/\1-l:libaside.a\2/')
"$cc" $cflags -o "$work/embed_static" "$source/tests/install/embed.c" \
    $(pkg-config --cflags aside) $static_libs || fail "cannot build against libaside.a"
if readelf -d "$work/embed_static" | grep -q 'NEEDED.*libaside'; then
    fail "embed_static still needs libaside.so"
fi
"$work/embed_static" "$(fixture static)" || fail "embed_static failed"

# ---- a program built with CMake's find_package ---------------------------------------------
"$cmake" -S "$source/tests/install/consumer" -B "$work/consumer" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_C_FLAGS="$cflags" -DCMAKE_BUILD_TYPE=Release > "$work/consumer.log" 2>&1 &&
    "$cmake" --build "$work/consumer" >> "$work/consumer.log" 2>&1 ||
    fail "find_package(aside) build failed: $(cat "$work/consumer.log")"
LD_LIBRARY_PATH=$libdir "$work/consumer/embed" "$(fixture cmake)" || fail "the CMake build failed"

# ---- the Python package the installed server's workers run ----------------------------------
package=$(find "$prefix" -path '*/aside/python/aside/worker.py')
[ -n "$package" ] || fail "no aside/python/aside/worker.py installed"
[ -z "$(find "$prefix" -name '__pycache__')" ] || fail "bytecode installed"
# A Python without the aside package: the one .venv was made from, with .venv's modules but
# aside's on its PYTHONPATH.
python=
venv_site=$(ls -d "$source"/.venv/lib/python3*/site-packages 2>/dev/null | head -n 1)
if [ -n "$venv_site" ]; then
    python=$(readlink -f "$source/.venv/bin/python")
    mkdir "$work/deps"
    for entry in "$venv_site"/*; do
        case $(basename "$entry") in
            aside|aside-*|aside_*|*.pth) ;;
            *) ln -s "$entry" "$work/deps/" ;;
        esac
    done
    PYTHONPATH=$work/deps "$python" -c 'import aside' 2>/dev/null &&
        fail "$python finds an aside package without the installed one"
fi

# ---- the installed server ------------------------------------------------------------------
# A clean environment: no library path, nothing of the caller's configuration. The workers run
# outside the sandbox and as this user: their Python may sit in a folder only this user enters,
# and their modules are links into a venv the sandbox does not show (the sandbox is tested in
# tests/integration/test_function_isolation.py).
root=$(fixture server)
mkdir "$root/functions"
printf 'def main(cache, message):\n    return message\n' > "$root/functions/echo.py"
log=$work/server.log
env -i PATH=/usr/bin:/bin HOME="$work" ${ASAN_OPTIONS:+ASAN_OPTIONS=$ASAN_OPTIONS} \
    ${UBSAN_OPTIONS:+UBSAN_OPTIONS=$UBSAN_OPTIONS} \
    LOCAL_DATA_DIR="$root/cache" REMOTE_STORAGE="$root/sor" ASIDE_PORT=0 ASIDE_THREADS=2 \
    ASIDE_DRAIN_SECONDS=0 LOCAL_FUNCTION_DIR="$root/functions" \
    ${python:+ASIDE_PYTHON=$python} ${python:+PYTHONPATH=$work/deps} \
    ${python:+ASIDE_FUNCTION_SANDBOX=off} ${python:+ASIDE_FUNCTION_USER=$(id -un)} \
    "$prefix/bin/aside-server" > "$log" 2>&1 &
server_pid=$!
port=
for _ in $(seq 200); do # 20 s
    port=$(sed -n 's|.*listening on http://[^:]*:\([0-9]*\)/.*|\1|p' "$log" | head -n 1)
    [ -n "$port" ] && break
    kill -0 "$server_pid" 2>/dev/null || fail "aside-server exited: $(cat "$log")"
    sleep 0.1
done
[ -n "$port" ] || fail "aside-server did not start in 20 s: $(cat "$log")"
status=$(curl -s -o "$work/answer" -w '%{http_code}' --max-time 30 \
    "http://127.0.0.1:$port/cache/api/v1.0/?function=read&path=doc.json&format=raw") ||
    fail "no answer from aside-server"
[ "$status" = 200 ] || fail "aside-server answered $status: $(cat "$work/answer")"
cmp -s "$work/answer" "$root/sor/doc.json" || fail "aside-server answered other bytes"
grep -q "workers import the aside package installed in $prefix/bin/../" "$log" ||
    fail "the installed server does not use the installed package: $(cat "$log")"
if [ -n "$python" ]; then
    status=$(curl -s -o "$work/answer" -w '%{http_code}' --max-time 120 \
        "http://127.0.0.1:$port/cache/api/v1.0/?function=echo&message=installed") ||
        fail "no answer from aside-server's function"
    [ "$status" = 200 ] || fail "the function answered $status: $(cat "$work/answer")"
    grep -q '"value": "installed"' "$work/answer" || fail "the function answered $(cat "$work/answer")"
    if grep -q 'cannot import the aside package' "$log"; then
        fail "the probe did not find the installed package: $(cat "$log")"
    fi
fi

kill -TERM "$server_pid"
for _ in $(seq 200); do # 20 s
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
done
kill -0 "$server_pid" 2>/dev/null && fail "aside-server did not stop in 20 s"
code=0
wait "$server_pid" || code=$?
server_pid=
[ "$code" = 0 ] || fail "aside-server exited with $code: $(cat "$log")"
if grep -q 'ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:' "$log"; then
    fail "sanitizer report in the server log: $(cat "$log")"
fi
echo "test_install: ok"
