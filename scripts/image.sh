#!/usr/bin/env bash
# image.sh -- build aside's container image (deploy/container/Containerfile) with buildah, on
# Debian bases made here by mmdebstrap (no registry is needed).
#
#   scripts/image.sh [--target full|server] [--tag NAME]   build; print the image's size
#   scripts/image.sh --context-only DIR                     only assemble the build context in
#                                                           DIR (to build elsewhere with Docker)
#
# The build context is the tracked source, DuckDB (.deps/duckdb, as duckdb/) and the Python
# wheels pinned by scripts/constraints-test.txt (wheels/, downloaded once with pip). Each Debian
# base is a rootfs tarball made by mmdebstrap from the package list the Containerfile names
# (BUILD_PACKAGES, RUN_PACKAGES), imported as localhost/aside-base-{build,run}:HASH; the
# tarball, the base and the wheels are kept in build-image/ keyed by what makes them, so a
# second build downloads nothing. buildah keeps its storage in build-image/storage (vfs driver,
# chroot isolation: no daemon, no registry); the images a build replaced are removed by the next.
# Without --layers: with vfs each cached layer would be a full copy of the stage's tree.
set -euo pipefail
cd "$(dirname "$0")/.."

target=full
tag=""
context_only=""
while [ $# -gt 0 ]; do
    case "$1" in
        --target) target=$2; shift 2 ;;
        --tag) tag=$2; shift 2 ;;
        --context-only) context_only=$2; shift 2 ;;
        *) echo "image.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
case "$target" in
    full) tag=${tag:-localhost/aside:latest} ;;
    server) tag=${tag:-localhost/aside:server} ;;
    *) echo "image.sh: --target is full or server" >&2; exit 2 ;;
esac

work=build-image
containerfile=deploy/container/Containerfile
suite=bookworm
mkdir -p "$work"

# The pinned wheels of the functions' Python: the aside package's dependencies (and theirs),
# and setuptools, which builds the aside package's own wheel.
wheel_packages="pandas pyarrow numpy requests setuptools"
wheels_key=$( { cat scripts/constraints-test.txt; echo "$wheel_packages"; } |
    sha256sum | cut -c1-16)
wheels="$work/wheels-$wheels_key"
if [ ! -e "$wheels/.complete" ]; then
    rm -rf "$work"/wheels-*
    mkdir -p "$wheels"
    echo "image.sh: downloading the pinned wheels"
    .venv/bin/pip download --quiet --only-binary=:all: --dest "$wheels" \
        --constraint scripts/constraints-test.txt $wheel_packages
    touch "$wheels/.complete"
fi

# The context: the source as it is in the work tree (what git tracks or would track: nothing it
# ignores), DuckDB, the wheels.
assemble_context() {
    local dir=$1
    rm -rf "$dir"
    mkdir -p "$dir"
    git ls-files -z --cached --others --exclude-standard |
        tar --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -xf - -C "$dir"
    cp -rL .deps/duckdb "$dir/duckdb"
    cp -rl "$wheels" "$dir/wheels" 2>/dev/null || cp -r "$wheels" "$dir/wheels"
    rm -f "$dir/wheels/.complete"
}

if [ -n "$context_only" ]; then
    assemble_context "$context_only"
    echo "image.sh: build context in $context_only"
    exit 0
fi

buildah_() {
    buildah --storage-driver vfs --root "$PWD/$work/storage" --runroot "$PWD/$work/run" "$@"
}

# A Debian package list the Containerfile names in ARG NAME="..." (continued lines joined).
packages_of() {
    awk -v name="$1" '
        $0 ~ "^ARG " name "=" { on = 1; sub("^ARG " name "=\"", "") }
        on { line = $0; end = sub("\".*$", "", line); sub("\\\\$", "", line); out = out " " line
             if (end) { on = 0 } }
        END { print out }' "$containerfile" | xargs
}

# A base image made from Debian's packages: localhost/aside-base-KIND:HASH (echoed).
base_image() {
    local kind=$1 packages=$2 key name tarball
    key=$(echo "$suite $packages" | sha256sum | cut -c1-16)
    name="localhost/aside-base-$kind:$key"
    if ! buildah_ images --quiet "$name" >/dev/null 2>&1; then
        tarball="$work/rootfs-$kind-$key.tar"
        if [ ! -e "$tarball" ]; then
            rm -f "$work"/rootfs-"$kind"-*.tar
            echo "image.sh: making the $kind base with mmdebstrap ($packages)" >&2
            mmdebstrap --quiet --format=tar --variant=essential --aptopt='APT::Install-Recommends "false"' \
                --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
                --dpkgopt='path-exclude=/usr/share/doc/*' \
                --dpkgopt='path-include=/usr/share/doc/*/copyright' \
                --dpkgopt='path-exclude=/usr/share/man/*' \
                --dpkgopt='path-exclude=/usr/share/info/*' \
                --dpkgopt='path-exclude=/usr/share/locale/*' \
                --include="${packages// /,}" "$suite" "$tarball.part" >&2
            mv "$tarball.part" "$tarball"
        fi
        local old
        old=$(buildah_ images --format '{{.Name}}:{{.Tag}}' | grep "^localhost/aside-base-$kind:" || true)
        [ -z "$old" ] || buildah_ rmi $old >/dev/null
        local ctr
        ctr=$(buildah_ from scratch)
        buildah_ add "$ctr" "$tarball" / >/dev/null
        buildah_ commit --quiet --rm "$ctr" "$name" >/dev/null
        buildah_ tag "$name" "localhost/aside-base-$kind:latest"   # the Containerfile's default
    fi
    echo "$name"
}

build_base=$(base_image build "$(packages_of BUILD_PACKAGES)")
run_base=$(base_image run "$(packages_of RUN_PACKAGES)")

assemble_context "$work/context"
# what the previous build replaced: its working containers, its untagged images
buildah_ rm --all >/dev/null
buildah_ rmi --prune >/dev/null 2>&1 || true
echo "image.sh: building $tag (target $target)"
buildah_ bud --quiet --isolation chroot --format docker --target "$target" \
    --build-arg BUILD_BASE="$build_base" --build-arg RUN_BASE="$run_base" \
    --file "$PWD/$work/context/$containerfile" --tag "$tag" "$PWD/$work/context" >/dev/null
rm -rf "$work/context"
buildah_ images --format '{{.Name}}:{{.Tag}} {{.Size}}' "$tag"
