# Shared helpers for bench/run.sh and bench/parts/*.sh (sourced, not run).
# Every part starts its own services on free loopback ports, prints markdown
# table rows on stdout and diagnostics on stderr; everything it starts is
# killed when it exits.
# shellcheck shell=bash

set -euo pipefail

NETRUN=${NETRUN:-target/release/netrun}
DURATION=${DURATION:-5s}
QUICK=${QUICK:-0}
if [ -z "${WORK:-}" ]; then
    WORK=$(mktemp -d)
    _BENCH_OWN_WORK=1
fi
export NETRUN WORK DURATION QUICK

PIDS=()
_bench_cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    if [ "${_BENCH_OWN_WORK:-0}" = 1 ]; then rm -rf "$WORK"; fi
}
trap _bench_cleanup EXIT

log() { echo "[$(basename "${0:-bench}")] $*" >&2; }

# need CMD...: exit 3 (could not measure) when a tool is missing.
need() {
    local c
    for c in "$@"; do
        if ! command -v "$c" >/dev/null 2>&1; then
            echo "missing tool: $c (bench/run.sh installs nginx, wrk, irtt, hyperfine, h2load and oha)" >&2
            exit 3
        fi
    done
}

# free_port: a port free for both TCP and UDP on 127.0.0.1 (the kernel's choice).
free_port() {
    python3 - <<'PY'
import socket
while True:
    t = socket.socket(); t.bind(("127.0.0.1", 0)); p = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", p)); u.close(); t.close(); print(p); break
    except OSError:
        t.close(); u.close()
PY
}

# wait_tcp PORT: until 127.0.0.1:PORT accepts, at most 10 s.
wait_tcp() {
    local _
    for _ in $(seq 200); do
        if (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "127.0.0.1:$1 never accepted a connection" >&2
    exit 3
}

# spawn CMD...: run in the background, killed when the part exits.
spawn() {
    "$@" &
    PIDS+=($!)
}

# bench_www: $WORK/www with a 1 KiB text file (1k.txt) and a 1 MiB binary
# one (1m.bin), written fresh, readable by nginx's workers (an unprivileged
# user: they must be able to enter $WORK and its parents, and mktemp -d makes
# them 0700). Prints the folder.
bench_www() {
    local d=$WORK
    while [ "$d" != / ] && [ -d "$d" ]; do
        stat -c %A "$d" | grep -q 'x$' || chmod a+x "$d"
        d=$(dirname "$d")
    done
    mkdir -p "$WORK/www"
    chmod a+rx "$WORK/www"
    python3 -c 'import sys; sys.stdout.write(("netrun benchmark file " * 64)[:1024])' >"$WORK/www/1k.txt"
    head -c 1048576 /dev/urandom >"$WORK/www/1m.bin"
    chmod a+r "$WORK/www/1k.txt" "$WORK/www/1m.bin"
    echo "$WORK/www"
}

# expect_file URL SIZE: exit 3 unless URL answers 200 with SIZE bytes, so a
# figure never compares error pages.
expect_file() {
    local got
    got=$(curl -s -o /dev/null -w '%{http_code} %{size_download}' "$1")
    if [ "$got" != "200 $2" ]; then
        echo "$1 answered '$got', expected '200 $2'" >&2
        exit 3
    fi
}

# expect_hit PORT...: warm 127.0.0.1:PORT/1k.txt on each caching proxy, then
# exit 3 unless the next answer is a hit (X-Cache: HIT...), so a cache figure
# never measures misses.
expect_hit() {
    local port got
    for port in "$@"; do
        curl -s -o /dev/null "http://127.0.0.1:$port/1k.txt"
        got=$(curl -s -D - -o /dev/null "http://127.0.0.1:$port/1k.txt" | tr -d '\r' | awk -F': ' 'tolower($1) == "x-cache" {print $2}')
        case $got in
        HIT*) ;;
        *)
            echo "127.0.0.1:$port/1k.txt is not a cache hit after warming (X-Cache: '$got')" >&2
            exit 3
            ;;
        esac
    done
}

# self_signed_cert: a P-256 certificate for localhost and 127.0.0.1 with its
# key, $WORK/cert.pem and $WORK/key.pem, for the TLS parts.
self_signed_cert() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
        -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
}

# nginx_start NAME CONF_BODY: nginx in the foreground with CONF_BODY inside
# http{}, worker_processes $NGINX_WORKERS (auto unless a part pins it),
# access log to a file (the equal-work rule: netrun's services log every
# request to a file too). With PIN set (e.g. "taskset -c 0") it runs under it.
nginx_start() {
    local name=$1 body=$2
    mkdir -p "$WORK/$name"
    cat >"$WORK/$name.conf" <<CONF
worker_processes ${NGINX_WORKERS:-auto};
pid $WORK/$name/nginx.pid;
error_log $WORK/$name/error.log;
events { worker_connections 4096; }
http {
    access_log $WORK/$name/access.log;
    include /etc/nginx/mime.types;
    client_body_temp_path $WORK/$name/body;
    proxy_temp_path $WORK/$name/proxy;
    fastcgi_temp_path $WORK/$name/fastcgi;
    uwsgi_temp_path $WORK/$name/uwsgi;
    scgi_temp_path $WORK/$name/scgi;
    $body
}
CONF
    # shellcheck disable=SC2086
    spawn ${PIN:-} nginx -c "$WORK/$name.conf" -g 'daemon off;'
}

# nginx_1k NAME: nginx serving bench_www's files with keep-alive connections
# that never run out of requests, checked to answer the 1 KiB file; sets
# NGINX_1K_URL to it. (Not a $(...) call: nginx must be spawned by this shell
# to be killed on exit.)
nginx_1k() {
    local www port
    www=$(bench_www)
    port=$(free_port)
    nginx_start "$1" "server { listen 127.0.0.1:$port; root $www; keepalive_requests 10000000; }"
    wait_tcp "$port"
    NGINX_1K_URL="http://127.0.0.1:$port/1k.txt"
    expect_file "$NGINX_1K_URL" 1024
}

# to_ms VALUE: wrk's latency ("812.00us", "1.20ms", "2.00s") in milliseconds.
to_ms() {
    python3 -c '
import re, sys
v = sys.argv[1]
m = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", v)
if not m: print("nan"); sys.exit()
scale = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[m.group(2)]
print("%.3f" % (float(m.group(1)) * scale))' "$1"
}

# wrk_once URL CONNS: "rps p50_ms p99_ms" of one wrk run.
wrk_once() {
    local out rps p50 p99
    out=$(wrk -t2 -c"$2" -d"$DURATION" --latency "$1")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p50=$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")
    p99=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
    echo "$rps $p50 $p99"
}

# The median of three runs (by requests/s): one noisy-neighbour spike does
# not decide a row.
_median3() { sort -g | sed -n 2p; }

# wrk_stats URL CONNS: "rps p50_ms p99_ms" of the median of three wrk runs.
wrk_stats() {
    local _
    for _ in 1 2 3; do wrk_once "$1" "$2"; done | _median3
}

# wrk_rps URL CONNS: median requests/s of three wrk runs.
wrk_rps() { wrk_stats "$1" "$2" | awk '{print $1}'; }

# oha_once URL CONNS [oha args]: "rps p50_ms p99_ms" of one oha run.
oha_once() {
    local url=$1 conns=$2
    shift 2
    oha --no-tui --output-format json -c "$conns" -z "$DURATION" "$@" "$url" | python3 -c '
import json, sys
d = json.load(sys.stdin)
p = d["latencyPercentiles"]
print("%.1f %.3f %.3f" % (d["summary"]["requestsPerSec"], p["p50"] * 1000, p["p99"] * 1000))'
}

# oha_stats URL CONNS [oha args]: the median of three oha runs.
oha_stats() {
    local _
    for _ in 1 2 3; do oha_once "$@"; done | _median3
}

# ratio A B: A/B with two decimals ("-" when either is missing).
ratio() {
    python3 -c '
import sys
try: print(f"{float(sys.argv[1]) / float(sys.argv[2]):.2f}")
except (ValueError, ZeroDivisionError): print("-")' "$1" "$2"
}

# at_least VALUE TARGET / at_most VALUE TARGET: "yes" or "no".
at_least() { python3 -c 'import sys; print("yes" if float(sys.argv[1]) >= float(sys.argv[2]) else "no")' "$1" "$2"; }
at_most() { python3 -c 'import sys; print("yes" if float(sys.argv[1]) <= float(sys.argv[2]) else "no")' "$1" "$2"; }

# row MEASURE NETRUN REFERENCE RATIO TARGET MET: one markdown table row.
row() { echo "| $1 | $2 | $3 | $4 | $5 | $6 |"; }

# --- CPU per request (the pinned mode) ---------------------------------------

# cpu_ticks PID...: user+system clock ticks these processes used so far, all
# their threads (/proc/PID/stat fields 14 and 15; the name in parentheses
# may hold spaces, so fields are counted after it). Fails (status 3, no
# output) when one of them is gone: its ticks went with it, and a sum
# without them would make a difference wrong (negative, once: a caller
# whose $(...) printed nothing subtracted its whole "before"). Callers
# check the status: $(...) does not stop a script on its own.
cpu_ticks() {
    local t=0 p stat
    for p in "$@"; do
        if ! stat=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null) || [ -z "$stat" ]; then
            echo "process $p exited during a CPU measurement; no figure from it" >&2
            return 3
        fi
        t=$((t + $(awk '{print $12 + $13}' <<<"$stat")))
    done
    echo "$t"
}

# with_children PID: PID and its child processes (nginx's master, workers
# and cache manager), leaving out nginx's cache loader: it exits by design
# about a minute after start (taking its ticks with it), and its work is
# not per request.
with_children() {
    local c kids=()
    for c in $(pgrep -P "$1" || true); do
        grep -q 'cache loader' "/proc/$c/cmdline" 2>/dev/null || kids+=("$c")
    done
    echo "$1" "${kids[@]}"
}

# cpu_run CPU_FILE CMD...: runs CMD (its stdout passes through) and writes
# the seconds of user+system CPU it used, its threads and children
# included, to CPU_FILE (getrusage of the waited-for child).
cpu_run() {
    local f=$1
    shift
    python3 -c '
import resource, subprocess, sys
r = subprocess.run(sys.argv[2:])
u = resource.getrusage(resource.RUSAGE_CHILDREN)
open(sys.argv[1], "w").write("%.6f\n" % (u.ru_utime + u.ru_stime))
sys.exit(r.returncode)' "$f" "$@"
}

# us_per DELTA_SECONDS REQUESTS: microseconds of CPU per request, 2 decimals.
us_per() { python3 -c 'import sys; print("%.2f" % (float(sys.argv[1]) * 1e6 / float(sys.argv[2])))' "$1" "$2"; }
