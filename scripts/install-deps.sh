#!/usr/bin/env bash
# install-deps.sh -- install everything aside needs to build, test and benchmark.
#
# Idempotent: a second run checks and changes nothing. Versions are pinned: Debian packages to
# the upstream version they must have (Debian's own revision may move with security updates),
# Python packages exactly, into the project-local virtual environment .venv.
set -euo pipefail
cd "$(dirname "$0")/.."

# package  upstream-version-prefix
DEBIAN_PACKAGES="
gcc                 4:12
cmake               3.25
ninja-build         1.11
pkg-config          1.8
libhttp-parser-dev  2.9.4
libjansson-dev      2.14
libxxhash-dev       0.8.1
libcurl4-openssl-dev 7.88
libssl-dev          3.0
liblz4-dev          1.9.4
libzstd-dev         1.5.4
libyaml-dev         0.2.5
nginx-light         1.22
wrk                 4.1.0
redis-server        5:7.0.15
curl                7.88
python3-venv        3.11
clang               14.0
libclang-rt-14-dev  14.0.6
systemd             252
lintian             2.116
bubblewrap          0.8
buildah             1.28
mmdebstrap          1.3
"

PYTHON_REQUIREMENTS="scripts/requirements-test.txt"
PYTHON_CONSTRAINTS="scripts/constraints-test.txt"   # every transitive package, pinned

installed_version() {
    { dpkg-query -W -f='${db:Status-Status} ${Version}' "$1" 2>/dev/null || true; } |
        awk '$1 == "installed" {print $2}'
}

missing=()
while read -r name version; do
    [ -n "$name" ] || continue
    have=$(installed_version "$name")
    have=${have#*:}             # drop an epoch
    want=${version#*:}
    if [ -z "$have" ]; then
        missing+=("$name")
    elif [[ "$have" != "$want"* ]]; then
        echo "install-deps: $name is $have, but aside is pinned to $want" >&2
        exit 1
    fi
done <<< "$DEBIAN_PACKAGES"

if [ ${#missing[@]} -gt 0 ]; then
    echo "install-deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # nginx is only a benchmark peer: it must not keep running as a system service
    if [[ " ${missing[*]} " == *" nginx-light "* ]] && command -v nginx >/dev/null; then
        nginx -s stop 2>/dev/null || true
    fi
    # Redis likewise: the collections benchmark starts its own on loopback
    if [[ " ${missing[*]} " == *" redis-server "* ]]; then
        service redis-server stop >/dev/null 2>&1 || true
    fi
fi

# DuckDB, the frame engine. Debian does not package it; its releases are published inside npm
# packages, fetched with `npm pack` (a plain download: no install scripts run) and checked
# against pinned digests. The library comes from the Node bindings package, the header from the
# duckdb package of the same release. DUCKDB_PREFIX (a folder with include/duckdb.h and
# lib/libduckdb.so, such as an official libduckdb release) replaces both.
DUCKDB_VERSION="1.4.4"
DUCKDB_LIB_PACKAGE="@duckdb/node-bindings-linux-x64@1.4.4-r.4"
DUCKDB_LIB_SHA256="732fac4dc6b8f198870b9c4bb6ddf13544466daca00ad28ba2f1d80de5d7aa4b"
DUCKDB_HEADER_PACKAGE="duckdb@1.4.4"
DUCKDB_HEADER_SHA256="5bb967dcbcd517670ba5f169f238fb9d6787e53752c60ebe24386169d76941ed"
duckdb_dir=".deps/duckdb-$DUCKDB_VERSION"

fetch_npm() {   # package sha256 folder: the package's tarball, verified, in folder
    local tarball
    tarball=$(cd "$3" && npm pack --silent "$1" 2>/dev/null | tail -1)
    if [ -z "$tarball" ] || ! echo "$2  $3/$tarball" | sha256sum -c --quiet -; then
        echo "install-deps: $1 could not be fetched or does not match its pinned digest" >&2
        exit 1
    fi
    echo "$3/$tarball"
}

if [ -z "${DUCKDB_PREFIX:-}" ] && [ ! -f "$duckdb_dir/lib/libduckdb.so" ]; then
    command -v npm >/dev/null || { echo "install-deps: npm is needed to fetch DuckDB" >&2; exit 1; }
    echo "install-deps: fetching DuckDB $DUCKDB_VERSION"
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    lib_tgz=$(fetch_npm "$DUCKDB_LIB_PACKAGE" "$DUCKDB_LIB_SHA256" "$work")
    header_tgz=$(fetch_npm "$DUCKDB_HEADER_PACKAGE" "$DUCKDB_HEADER_SHA256" "$work")
    tar -xzf "$lib_tgz" -C "$work" package/libduckdb.so
    tar -xzf "$header_tgz" -C "$work" package/src/duckdb/src/include/duckdb.h
    mkdir -p "$duckdb_dir.tmp/lib" "$duckdb_dir.tmp/include"
    mv "$work/package/libduckdb.so" "$duckdb_dir.tmp/lib/"
    mv "$work/package/src/duckdb/src/include/duckdb.h" "$duckdb_dir.tmp/include/"
    rm -rf "$duckdb_dir"
    mv "$duckdb_dir.tmp" "$duckdb_dir"
fi
[ -n "${DUCKDB_PREFIX:-}" ] || ln -sfn "duckdb-$DUCKDB_VERSION" .deps/duckdb   # what CMake finds

# Python test tools, in .venv
stamp=".venv/.requirements.sha256"
want_sum=$(cat "$PYTHON_REQUIREMENTS" "$PYTHON_CONSTRAINTS" | sha256sum | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want_sum" ]; then
    echo "install-deps: setting up .venv"
    python3 -m venv .venv
    .venv/bin/python -m pip install -q --disable-pip-version-check -r "$PYTHON_REQUIREMENTS" \
        -c "$PYTHON_CONSTRAINTS"
    echo "$want_sum" > "$stamp"
fi

# The same tools with pandas 3 in .venv-pandas3: the frame and client tests run under both
# pandas majors (only pandas and pyarrow differ between the two pin files)
stamp3=".venv-pandas3/.requirements.sha256"
want_sum3=$(cat scripts/requirements-pandas3.txt scripts/constraints-pandas3.txt | sha256sum | cut -d' ' -f1)
if [ ! -x .venv-pandas3/bin/python ] || [ "$(cat "$stamp3" 2>/dev/null)" != "$want_sum3" ]; then
    echo "install-deps: setting up .venv-pandas3"
    python3 -m venv .venv-pandas3
    .venv-pandas3/bin/python -m pip install -q --disable-pip-version-check \
        -r scripts/requirements-pandas3.txt -c scripts/constraints-pandas3.txt
    echo "$want_sum3" > "$stamp3"
fi

# The Python client (clients/python, the distribution aside-cache), into each venv without its
# dependencies (the pins above hold them) and without build isolation, so that it builds with
# the pinned setuptools and needs no download. Reinstalled when one of its files changes; the
# build leaves nothing in the tree. The distribution was once named aside: that one goes first,
# so that no two distributions claim the package's files.
client_files=(clients/python/pyproject.toml clients/python/README.md clients/python/LICENSE
              clients/python/aside/*.py clients/python/aside/py.typed)
client_sum=$(sha256sum "${client_files[@]}" | sha256sum | cut -d' ' -f1)
for venv in .venv .venv-pandas3; do
    client_stamp="$venv/.client.sha256"
    if [ "$(cat "$client_stamp" 2>/dev/null)" != "$client_sum" ]; then
        echo "install-deps: installing the Python client into $venv"
        "$venv/bin/python" -m pip uninstall -q -y --disable-pip-version-check aside \
            2>/dev/null || true
        "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps \
            --no-build-isolation ./clients/python
        rm -rf clients/python/build clients/python/*.egg-info
        echo "$client_sum" > "$client_stamp"
    fi
done
