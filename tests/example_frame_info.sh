#!/bin/sh
# The in-process frame example: it prints pandas' df.info() of a CSV in the system of record,
# first loading it (from the SOR into the disk tier), then, in a new process, from the disk tier.
set -eu
frame_info=$1
python=$2   # with pandas: the expected text is what pandas prints for the same file
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir "$dir/sor"
printf 'city,people,area\nLyon,522250,47.87\nNantes,,65.19\nLille,236710,34.51\n' > "$dir/sor/cities.csv"
"$frame_info" --data-dir "$dir/cache" --sor-dir "$dir/sor" cities.csv > "$dir/first" 2> "$dir/first.log"
"$frame_info" --data-dir "$dir/cache" --sor-dir "$dir/sor" cities.csv > "$dir/second" 2> "$dir/second.log"
"$python" -c 'import io, sys, pandas
out = io.StringIO()
pandas.read_csv(sys.argv[1]).info(buf=out)
sys.stdout.write(out.getvalue())' "$dir/sor/cities.csv" > "$dir/expected"
cmp "$dir/expected" "$dir/first"
cmp "$dir/expected" "$dir/second"
grep -q "from sor" "$dir/first.log"
grep -q "from disk" "$dir/second.log"
if "$frame_info" --data-dir "$dir/cache" --sor-dir "$dir/sor" missing.csv > /dev/null 2>&1; then
    echo "a missing key must fail" >&2
    exit 1
fi
echo "example_frame_info: ok"
