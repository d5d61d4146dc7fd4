#!/bin/sh
# The in-process example: the first run fetches from the system of record and fills the disk
# tier, the second (a new process) finds the value on disk; both print the same bytes.
set -eu
read_key=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir "$dir/sor"
printf '{"in": "process"}' > "$dir/sor/doc.json"
"$read_key" --data-dir "$dir/cache" --sor-dir "$dir/sor" doc.json > "$dir/first" 2> "$dir/first.log"
"$read_key" --data-dir "$dir/cache" --sor-dir "$dir/sor" doc.json > "$dir/second" 2> "$dir/second.log"
cmp "$dir/sor/doc.json" "$dir/first"
cmp "$dir/sor/doc.json" "$dir/second"
grep -q "from sor" "$dir/first.log"
grep -q "from disk" "$dir/second.log"
if "$read_key" --data-dir "$dir/cache" --sor-dir "$dir/sor" missing.json > /dev/null 2>&1; then
    echo "a missing key must fail" >&2
    exit 1
fi
echo "example_read_key: ok"
