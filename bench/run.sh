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

wrk_rps() { wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" "$1" | awk '/Requests\/sec/ {print $2}'; }
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

# 5. UDP: probe at full speed against the origin's echo and through the proxy.
U=$($NETRUN probe udp 127.0.0.1:$ORIGIN_UDP --count 50000 --interval 0 --timeout 1s --json --quiet \
    | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["received"]/d["duration_s"], d["latency_p50_ms"])')
UP=$($NETRUN probe udp 127.0.0.1:$PROXY_UDP --count 50000 --interval 0 --timeout 1s --json --quiet \
    | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["received"]/d["duration_s"], d["latency_p50_ms"])')
row "udp echo (probe, interval 0, 50k datagrams)" "$(echo "$U" | awk '{printf "%.0f replies/s, p50 %s ms", $1, $2}')" "-" "-"
row "udp through proxy forwarder" "$(echo "$UP" | awk '{printf "%.0f replies/s, p50 %s ms", $1, $2}')" "direct echo" "$(ratio "$(echo "$UP" | cut -d' ' -f1)" "$(echo "$U" | cut -d' ' -f1)")"

echo
echo "netrun $(git describe --always --dirty 2>/dev/null || echo '?') · $(nproc) cores · wrk -t$THREADS -c$CONNS -d$DURATION · $(date -u +%Y-%m-%d)"
echo
echo "| benchmark | netrun | reference | ratio |"
echo "|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
