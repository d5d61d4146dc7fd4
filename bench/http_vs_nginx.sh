#!/usr/bin/env bash
# http_vs_nginx.sh -- aside's HTTP throughput as a ratio of nginx serving the same files.
#
#   bench/http_vs_nginx.sh [seconds]        (default: 10 seconds per measurement)
#
# Serves a 100-byte JSON file and a 1 MiB binary file from aside (warm: both keys in the cache)
# and from nginx (static files, sendfile, open_file_cache), on 127.0.0.1 only, and measures
# each with wrk (keep-alive, 2 client threads, 32 connections). Each (server, file) pair is
# measured twice, the second round in reverse order, and the table shows the ratio
# aside/nginx of the median requests per second against the targets.
#
# Environment:
#   ASIDE_SERVER   the server binary, relative to the repository root [build/aside-server]
#   ASIDE_THREADS  worker threads of aside, and worker processes of nginx [number of cores]
#
# Needs nginx, wrk, curl and python3. Exits 0 when every measurement ran cleanly, whether or
# not the targets are met (a benchmark reports, it does not assert); non-zero if something
# failed to start or wrk saw errors. Everything it starts is stopped on exit, including on
# failure or Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_RUN=${1:-10}
ASIDE_SERVER=${ASIDE_SERVER:-build/aside-server}
THREADS=${ASIDE_THREADS:-$(nproc)}
WRK_THREADS=2
WRK_CONNECTIONS=32
SMALL_BYTES=100
BIG_BYTES=1048576
SMALL_TARGET=1.20
BIG_TARGET=1.00

die() {
    echo "http_vs_nginx: error: $*" >&2
    exit 1
}

case $SECONDS_PER_RUN in
    '' | *[!0-9]* | 0) die "usage: $0 [seconds] (seconds: a positive integer, got '$SECONDS_PER_RUN')" ;;
esac
case $THREADS in
    '' | *[!0-9]* | 0) die "ASIDE_THREADS must be a positive integer, got '$THREADS'" ;;
esac

# --- the tools -------------------------------------------------------------------------------

[ -x "$ASIDE_SERVER" ] || die "server binary '$ASIDE_SERVER' not found or not executable (build it first, or set ASIDE_SERVER)"
NGINX=$(command -v nginx || true)
if [ -z "$NGINX" ] && [ -x /usr/sbin/nginx ]; then NGINX=/usr/sbin/nginx; fi
[ -n "$NGINX" ] || die "nginx not found in PATH or /usr/sbin (Debian: apt-get install nginx-light)"
for tool in wrk curl python3 cmp; do
    command -v "$tool" >/dev/null || die "$tool not found in PATH"
done

# --- stopping everything we start ------------------------------------------------------------

tmp=""
aside_pid=""
nginx_pid=""
wrk_pid=""

# stop PID: SIGTERM, up to 5 s to exit, then SIGKILL. Only ever called on our own children.
stop() {
    local pid=$1 i
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "http_vs_nginx: process $pid did not stop on SIGTERM; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

stop_nginx() {
    local pid=$1 workers w
    [ -n "$pid" ] || return 0
    # The master stops its workers on SIGTERM; if it had to be killed, its workers outlive it.
    workers=$(pgrep -P "$pid" 2>/dev/null || true)
    stop "$pid"
    for w in $workers; do kill -KILL "$w" 2>/dev/null || true; done
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    stop "$wrk_pid"
    stop "$aside_pid"
    stop_nginx "$nginx_pid"
    if [ -n "$tmp" ] && [ -d "$tmp" ]; then
        if [ "$rc" -ne 0 ]; then
            if [ -s "$tmp/aside.log" ]; then
                echo "--- aside log (last lines)" >&2
                tail -n 20 "$tmp/aside.log" >&2
            fi
            if [ -s "$tmp/nginx/error.log" ]; then
                echo "--- nginx error log (last lines)" >&2
                tail -n 20 "$tmp/nginx/error.log" >&2
            fi
        fi
        rm -rf "$tmp"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'echo; echo "http_vs_nginx: interrupted" >&2; exit 130' INT
trap 'echo; echo "http_vs_nginx: terminated" >&2; exit 143' TERM
trap 'echo; echo "http_vs_nginx: hung up" >&2; exit 129' HUP

tmp=$(mktemp -d)

# --- the files -------------------------------------------------------------------------------

mkdir -p "$tmp/sor" "$tmp/www" "$tmp/cache" "$tmp/wrk"
prefix='{"name":"small","pad":"'
suffix='"}'
pad=$((SMALL_BYTES - ${#prefix} - ${#suffix}))
printf '%s%s%s' "$prefix" "$(head -c "$pad" /dev/zero | tr '\0' x)" "$suffix" >"$tmp/sor/small.json"
head -c "$BIG_BYTES" /dev/urandom >"$tmp/sor/big.bin"
[ "$(wc -c <"$tmp/sor/small.json")" -eq "$SMALL_BYTES" ] || die "small.json is not $SMALL_BYTES bytes"
[ "$(wc -c <"$tmp/sor/big.bin")" -eq "$BIG_BYTES" ] || die "big.bin is not $BIG_BYTES bytes"
python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$tmp/sor/small.json" ||
    die "small.json is not valid JSON"
cp "$tmp/sor/small.json" "$tmp/sor/big.bin" "$tmp/www/"

# fetch URL OUT: one GET on loopback, bounded in time; fails on an HTTP error.
fetch() {
    curl --noproxy '*' -sS --fail --max-time 30 -o "$2" "$1"
}

# --- aside -----------------------------------------------------------------------------------

"$ASIDE_SERVER" --port 0 --threads "$THREADS" \
    --local-data-dir "$tmp/cache" --remote-storage "$tmp/sor" \
    >"$tmp/aside.out" 2>"$tmp/aside.log" </dev/null &
aside_pid=$!
aside_port=""
for ((i = 0; i < 100; i++)); do
    aside_port=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9][0-9]*\)/.*|\1|p' "$tmp/aside.log" | head -n 1)
    [ -n "$aside_port" ] && break
    kill -0 "$aside_pid" 2>/dev/null || die "aside exited during start-up"
    sleep 0.1
done
[ -n "$aside_port" ] || die "aside did not print 'listening on http://127.0.0.1:PORT/' within 10 s"
aside_url="http://127.0.0.1:$aside_port/cache/api/v1.0/?format=raw&path="
for f in small.json big.bin; do
    fetch "${aside_url}$f" "$tmp/check" || die "aside: GET $f failed"
    cmp -s "$tmp/check" "$tmp/sor/$f" || die "aside: $f served different bytes"
done
# Second read: the key is now warm (served from memory, not the system of record).
for f in small.json big.bin; do
    fetch "${aside_url}$f" "$tmp/check" || die "aside: GET $f (warm) failed"
    cmp -s "$tmp/check" "$tmp/sor/$f" || die "aside: $f (warm) served different bytes"
done

# --- nginx -----------------------------------------------------------------------------------

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

write_nginx_conf() {
    local port=$1 user_line=""
    if [ "$(id -u)" -eq 0 ]; then user_line="user root;"; fi
    mkdir -p "$tmp/nginx/tmp"
    cat >"$tmp/nginx/nginx.conf" <<EOF
$user_line
master_process on;
worker_processes $THREADS;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;

events {
    worker_connections 4096;
}

http {
    types { application/json json; }
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    open_file_cache max=1000 inactive=60s;
    open_file_cache_valid 60s;
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 65;
    client_body_temp_path $tmp/nginx/tmp/client_body;
    proxy_temp_path $tmp/nginx/tmp/proxy;
    fastcgi_temp_path $tmp/nginx/tmp/fastcgi;
    uwsgi_temp_path $tmp/nginx/tmp/uwsgi;
    scgi_temp_path $tmp/nginx/tmp/scgi;

    server {
        listen 127.0.0.1:$port;
        root $tmp/www;
    }
}
EOF
}

# A port found free may be taken before nginx binds it: try a few times.
nginx_port=""
for ((attempt = 0; attempt < 5; attempt++)); do
    port=$(free_port) || die "cannot find a free port on 127.0.0.1"
    write_nginx_conf "$port"
    "$NGINX" -p "$tmp/nginx" -e "$tmp/nginx/error.log" -c "$tmp/nginx/nginx.conf" \
        -g 'daemon off;' >"$tmp/nginx/stdout.log" 2>&1 </dev/null &
    nginx_pid=$!
    for ((i = 0; i < 100; i++)); do
        kill -0 "$nginx_pid" 2>/dev/null || break
        if curl --noproxy '*' -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/small.json"; then
            nginx_port=$port
            break
        fi
        sleep 0.1
    done
    [ -n "$nginx_port" ] && break
    stop_nginx "$nginx_pid"
    nginx_pid=""
    if ! grep -q 'Address already in use' "$tmp/nginx/error.log" "$tmp/nginx/stdout.log" 2>/dev/null; then
        cat "$tmp/nginx/stdout.log" >&2 || true
        die "nginx did not start"
    fi
done
[ -n "$nginx_port" ] || die "nginx did not start (no free port after 5 attempts)"
nginx_url="http://127.0.0.1:$nginx_port/"
for f in small.json big.bin; do
    fetch "${nginx_url}$f" "$tmp/check" || die "nginx: GET $f failed"
    cmp -s "$tmp/check" "$tmp/www/$f" || die "nginx: $f served different bytes"
done

# --- measurements ----------------------------------------------------------------------------

nginx_version=$("$NGINX" -v 2>&1 | sed 's/^nginx version: //')
aside_version=$("$ASIDE_SERVER" --version 2>&1 | head -n 1 || true)
wrk_version=$(wrk -v 2>&1 | head -n 1 | awk '{print $2}' || true)
cpu=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo 2>/dev/null | head -n 1 || true)

echo "aside vs nginx over HTTP/1.1 keep-alive on 127.0.0.1"
echo "  reproduce:  ASIDE_THREADS=$THREADS ASIDE_SERVER=$ASIDE_SERVER bench/http_vs_nginx.sh $SECONDS_PER_RUN"
echo "  date:       $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "  machine:    $(nproc) cores${cpu:+, $cpu}, $(uname -sr)"
echo "  aside:      ${aside_version:-?}, $THREADS threads"
echo "  nginx:      $nginx_version, $THREADS worker processes, sendfile, open_file_cache"
echo "  wrk:        ${wrk_version:-?}, $WRK_THREADS threads, $WRK_CONNECTIONS connections, ${SECONDS_PER_RUN} s per run"
echo "  files:      small.json $SMALL_BYTES B (JSON), big.bin $BIG_BYTES B (random); aside serves both warm"
echo

runs=()
n=0
total=8
# measure SERVER FILE
measure() {
    local server=$1 file=$2 url out
    if [ "$server" = aside ]; then url="${aside_url}$file"; else url="${nginx_url}$file"; fi
    n=$((n + 1))
    out="$tmp/wrk/$n-$server-$file.txt"
    printf '  run %d/%d  %-5s %-10s ' "$n" "$total" "$server" "$file"
    kill -0 "$aside_pid" 2>/dev/null || die "aside is no longer running"
    kill -0 "$nginx_pid" 2>/dev/null || die "nginx is no longer running"
    wrk -t"$WRK_THREADS" -c"$WRK_CONNECTIONS" -d"${SECONDS_PER_RUN}s" --latency "$url" >"$out" 2>&1 </dev/null &
    wrk_pid=$!
    local rc=0
    wait "$wrk_pid" || rc=$?
    wrk_pid=""
    if [ "$rc" -ne 0 ]; then
        echo "wrk failed (exit $rc)"
        sed 's/^/    /' "$out"
        die "wrk failed on $server $file"
    fi
    python3 bench/ratio.py run "$out" || true
    runs+=("$server:$file:$out")
}

echo "runs (round 1: nginx first; round 2: aside first)"
measure nginx small.json
measure aside small.json
measure nginx big.bin
measure aside big.bin
measure aside small.json
measure nginx small.json
measure aside big.bin
measure nginx big.bin

# The servers must have survived the whole run.
kill -0 "$aside_pid" 2>/dev/null || die "aside exited during the measurements"
kill -0 "$nginx_pid" 2>/dev/null || die "nginx exited during the measurements"

echo
echo "results (GB/s = 10^9 bytes/s read by wrk, headers included; ratio = median aside req/s / median nginx req/s)"
status=0
python3 bench/ratio.py table \
    --file "small.json:$SMALL_BYTES B:$SMALL_TARGET" \
    --file "big.bin:1 MiB:$BIG_TARGET" \
    "${runs[@]}" || status=$?
if [ "$status" -ne 0 ]; then
    echo
    echo "http_vs_nginx: some measurements had errors (see ERROR lines above)" >&2
    exit 1
fi
