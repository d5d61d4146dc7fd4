#!/usr/bin/env bash
# s3_cold_load.sh -- runs bench/s3_cold_load.py with the project's Python (.venv).
#
#   bench/s3_cold_load.sh [--size 1GiB] [--runs 1]
#
# aside's cold load of one S3 object (moto on 127.0.0.1) as a ratio of boto3's download_file;
# see bench/s3_cold_load.py for what is measured and how.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=.venv/bin/python
if [ ! -x "$PYTHON" ]; then
    echo "s3_cold_load: error: $PYTHON not found (make test, or scripts/install-deps.sh, sets it up)" >&2
    exit 1
fi
exec "$PYTHON" bench/s3_cold_load.py "$@"
