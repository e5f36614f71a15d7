#!/usr/bin/env bash
# netrun benchmarks against reference tools, in one run on this machine.
# Loopback only; every load is bounded in time. Not part of CI.
#
#   bench/run.sh            # builds release, installs nginx + wrk if missing, prints a table
#   DURATION=10s bench/run.sh
#
# Each line compares netrun with a reference measured in the same run and
# reports the ratio, so a noisy shared machine affects both sides alike.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-5s}
CONNS=${CONNS:-32}
THREADS=${THREADS:-2}

need() { command -v "$1" >/dev/null 2>&1; }
if ! need wrk || ! need nginx; then
    apt-get update -qq && apt-get install -y -qq wrk nginx-light >/dev/null
fi

cargo build --release --quiet
NETRUN=target/release/netrun
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 3; }

# --- services ---------------------------------------------------------------
NGINX_PORT=$(free_port); ORIGIN_PORT=$(free_port); ORIGIN_UDP=$(free_port)
PROXY_PORT=$(free_port); PROXY_UDP=$(free_port)
WWW=$(realpath www)
cat > "$WORK/nginx.conf" <<CONF
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 1024; }
http {
    access_log $WORK/nginx-access.log;   # netrun logs every request too
    include /etc/nginx/mime.types;
    server { listen 127.0.0.1:$NGINX_PORT; root $WWW; }
}
CONF
nginx -c "$WORK/nginx.conf" -g 'daemon off;' & PIDS+=($!)
$NETRUN serve --http 127.0.0.1:$ORIGIN_PORT --udp 127.0.0.1:$ORIGIN_UDP --www www >/dev/null 2>"$WORK/serve.log" & PIDS+=($!)
$NETRUN proxy --http 127.0.0.1:$PROXY_PORT --udp 127.0.0.1:$PROXY_UDP \
    --upstream 127.0.0.1:$ORIGIN_PORT --udp-upstream 127.0.0.1:$ORIGIN_UDP >/dev/null 2>"$WORK/proxy.log" & PIDS+=($!)
wait_port "$NGINX_PORT"; wait_port "$ORIGIN_PORT"; wait_port "$PROXY_PORT"
# RUST_LOG is not set: the services log one line per request at info, as users run them.

# The median of three wrk runs: one noisy neighbour spike does not decide a row.
wrk_rps() {
    for _ in 1 2 3; do wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" "$1" | awk '/Requests\/sec/ {print $2}'; done \
        | sort -g | sed -n 2p
}
ratio() { python3 -c "print(f'{float($1)/float($2):.2f}')"; }

declare -a ROWS
row() { ROWS+=("| $1 | $2 | $3 | $4 |"); }

# 1. Static file serving: netrun serve vs nginx, 584-byte index.html, wrk load.
N=$(wrk_rps "http://127.0.0.1:$NGINX_PORT/index.html")
S=$(wrk_rps "http://127.0.0.1:$ORIGIN_PORT/index.html")
row "origin: GET /index.html (wrk, $CONNS conns)" "$S req/s" "nginx $N req/s" "$(ratio "$S" "$N")"

# 2. Proxy cache hits: netrun proxy (every request a HIT) vs nginx serving the file.
curl -s -o /dev/null "http://127.0.0.1:$PROXY_PORT/index.html"
P=$(wrk_rps "http://127.0.0.1:$PROXY_PORT/index.html")
row "proxy: cache HIT /index.html (wrk, $CONNS conns)" "$P req/s" "nginx $N req/s" "$(ratio "$P" "$N")"

# 3. Large file: 1 MiB through the origin vs nginx (throughput).
NL=$(wrk_rps "http://127.0.0.1:$NGINX_PORT/data/large.bin")
SL=$(wrk_rps "http://127.0.0.1:$ORIGIN_PORT/data/large.bin")
row "origin: GET 1 MiB file (wrk)" "$SL req/s" "nginx $NL req/s" "$(ratio "$SL" "$NL")"

# 4. Load generator: netrun probe http vs wrk, both against nginx.
REQS=${REQS:-100000}
G=$($NETRUN probe http "http://127.0.0.1:$NGINX_PORT/index.html" --requests "$REQS" --concurrency "$CONNS" --json --quiet \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests_per_s"])')
row "load generator: probe http vs wrk against nginx" "$G req/s" "wrk $N req/s" "$(ratio "$G" "$N")"

# 5. UDP: 50k datagrams paced at 20k/s (one every 50 µs), to the origin's echo
#    directly and through the proxy's forwarder (the reference: one hop less).
udp_run() {
    $NETRUN probe udp "$1" --count 50000 --interval 50us --timeout 1s --json --quiet \
        | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["received"], d["loss_percent"], d["latency_p50_ms"], d["latency_p99_ms"], d["pacing_mean_ms"])'
}
read -r UR UL U50 U99 UPACE <<<"$(udp_run 127.0.0.1:$ORIGIN_UDP)"
read -r PR PL P50 P99 PPACE <<<"$(udp_run 127.0.0.1:$PROXY_UDP)"
row "udp: echo direct, 20k datagrams/s" "loss $UL %, p50 $U50 ms, p99 $U99 ms (pacing $UPACE ms)" "-" "-"
row "udp: through the proxy forwarder" "loss $PL %, p50 $P50 ms, p99 $P99 ms (pacing $PPACE ms)" "direct echo p50 $U50 ms" "$(ratio "$P50" "$U50") × p50"

echo
echo "netrun $(git describe --always --dirty 2>/dev/null || echo '?') · $(nproc) cores · wrk -t$THREADS -c$CONNS -d$DURATION · $(date -u +%Y-%m-%d)"
echo
echo "| benchmark | netrun | reference | ratio |"
echo "|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
