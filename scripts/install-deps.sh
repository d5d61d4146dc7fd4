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
nginx-light         1.22
wrk                 4.1.0
curl                7.88
python3-venv        3.11
"

PYTHON_REQUIREMENTS="scripts/requirements-test.txt"
PYTHON_CONSTRAINTS="scripts/constraints-test.txt"   # every transitive package, pinned

installed_version() {
    dpkg-query -W -f='${db:Status-Status} ${Version}' "$1" 2>/dev/null | awk '$1 == "installed" {print $2}'
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
fi

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
