#!/bin/sh
# check-cycles.sh -- fail if the files of one source folder call each other in a circle.
#
# usage: scripts/check-cycles.sh BUILD_DIR SOURCE_DIR [-v]   (SOURCE_DIR from the project's root)
#   e.g. scripts/check-cycles.sh build src/lib
#        scripts/check-cycles.sh build src/server -v
#
# It reads the object files the build made of SOURCE_DIR's .c files (nm): a file that uses a
# symbol another one defines calls it. The calls between files must form no circle (A calls B
# calls ... calls A), so the files can be read as layers, each calling only those below. The
# circles are checked with tsort, which names the files of one when it finds it. With -v the
# calls between files are printed, one "caller callee" pair a line.
set -eu
[ $# -ge 2 ] || { echo "usage: $0 BUILD_DIR SOURCE_DIR [-v]" >&2; exit 2; }
build=$1
dir=${2%/}
verbose=${3:-}
export LC_ALL=C

root=$(cd "$(dirname "$0")/.." && pwd)
# the objects the build makes now of the folder's files, as its compile database lists them (a
# build folder may keep objects of removed files, or of targets that no longer exist)
[ -f "$build/compile_commands.json" ] ||
    { echo "check-cycles: no $build/compile_commands.json" >&2; exit 2; }
objects=$(awk -v dir="/$dir/" '
    /"directory":/ { d = $0; sub(/^[^:]*: *"/, "", d); sub(/",? *$/, "", d) }
    /"command":/ && index($0, dir) {
        n = split($0, w, " ")
        for (i = 1; i < n; i++)
            if (w[i] == "-o" && index(w[i + 1], dir) && w[i + 1] ~ /\.c\.o$/)
                print (w[i + 1] ~ /^\// ? "" : d "/") w[i + 1]
    }' "$build/compile_commands.json" | sort -u | while read -r o; do
    [ -f "$o" ] && [ -f "$root/$dir/$(basename "$o" .o)" ] && echo "$o"
done)
[ -n "$objects" ] || { echo "check-cycles: no object files of $dir under $build" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
: >"$tmp/defined"
: >"$tmp/used"
for o in $objects; do
    f=$(basename "$o" .o)
    nm -g --defined-only "$o" | awk -v f="$f" 'NF >= 3 {print $3, f}' >>"$tmp/defined"
    nm -u "$o" | awk -v f="$f" '{print $NF, f}' >>"$tmp/used"
done
sort -u "$tmp/defined" >"$tmp/d"
sort -u "$tmp/used" >"$tmp/u"
# symbol user definer -> "user definer" for calls between two files
join "$tmp/u" "$tmp/d" | awk '$2 != $3 {print $2, $3}' | sort -u >"$tmp/calls"
[ "$verbose" = "-v" ] && cat "$tmp/calls"
if ! tsort "$tmp/calls" >/dev/null 2>"$tmp/loop"; then
    echo "check-cycles: files of $dir call each other in a circle:" >&2
    grep -v 'input contains a loop' "$tmp/loop" | sed 's/^tsort: /  /' >&2
    exit 1
fi
calls=$(wc -l <"$tmp/calls")
files=$(echo "$objects" | wc -l)
echo "check-cycles: $calls calls between $files files of $dir, no circle"
