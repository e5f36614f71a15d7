#!/usr/bin/env bash
# The soak: the origin and two proxies under a mixed load for SOAK_DURATION
# (default 10 minutes), their RSS, open file descriptors and threads and the
# load's latency sampled every 10 s. Not part of `cargo test` (minutes, not
# seconds); bench/README.md ("Soak") has the figures of the last run.
#
#   bench/soak.sh                        # 10 minutes; release build
#   SOAK_DURATION=180 bench/soak.sh      # shorter (at least 180 s to judge)
#   NETRUN=target/debug/netrun bench/soak.sh
#
# The load, all on loopback:
#   proxy A (in front of `netrun serve`, www/; 1 % loss and 5 ms ± 2 ms each
#   way on its clients' link):
#     - keep-alive churn: `netrun probe http --no-keep-alive`, 40 req/s
#     - keep-alive clients: `netrun probe http`, 40 req/s, 8 in flight
#     - UDP through the forwarder: `netrun probe udp`, 2 flows, 50 datagrams/s each
#     - Range requests (random ranges of a 1 MiB file) and conditional ones
#       (If-None-Match, If-Modified-Since), checked byte for byte (soak.py)
#     - slow readers: 3 clients reading the 1 MiB file at ~40 KB/s, and one
#       that asks for it 32 times pipelined and stops reading (the write
#       timeout, 15 s here, must close it)
#   proxy B (in front of a small Python upstream that answers `Vary:
#   Accept-Language`, max-age 30 s, 16 KiB bodies; 8 MiB cache, so entries
#   are evicted): 50 languages x 20 paths = 1,000 variants, 30 req/s,
#   checked per variant.
#
# Pass (exit 0): for each service, RSS and open fds flat (the median of the
# last minute within 10 % of the median of the second minute), no panic or
# ERROR line in the services' logs, and no error the load did not cause
# (every checked answer right; the probes' errors 0; UDP loss near the 1 %
# asked). Exit 1: failed; exit 3: could not run. Run it with `nice -n 19`
# on a shared machine; the load average is printed with the figures.
source "$(dirname "$0")/lib.sh"
need python3 curl

SOAK_DURATION=${SOAK_DURATION:-600}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -x "$NETRUN" ]; then
    log "building $NETRUN (release)"
    (cd "$ROOT" && cargo build --release --quiet)
fi

O_HTTP=$(free_port)
O_UDP=$(free_port)
A_HTTP=$(free_port)
A_UDP=$(free_port)
B_HTTP=$(free_port)
B_UDP=$(free_port)
V_HTTP=$(free_port)

spawn "$NETRUN" serve --http "127.0.0.1:$O_HTTP" --udp "127.0.0.1:$O_UDP" \
    --www "$ROOT/www" --max-age 30s >/dev/null 2>"$WORK/origin.log"
ORIGIN_PID=$!
spawn "$NETRUN" proxy --http "127.0.0.1:$A_HTTP" --udp "127.0.0.1:$A_UDP" \
    --upstream "127.0.0.1:$O_HTTP" --udp-upstream "127.0.0.1:$O_UDP" \
    --write-timeout 15s --loss 1 --delay 5ms --jitter 2ms --seed 26 \
    >/dev/null 2>"$WORK/proxy-a.log"
PROXY_A_PID=$!
spawn python3 "$ROOT/bench/soak.py" vary-upstream "$V_HTTP" 2>"$WORK/vary.log"
wait_tcp "$V_HTTP"
spawn "$NETRUN" proxy --http "127.0.0.1:$B_HTTP" --udp "127.0.0.1:$B_UDP" \
    --upstream "127.0.0.1:$V_HTTP" --udp-upstream "127.0.0.1:$O_UDP" \
    --cache-size 8MiB >/dev/null 2>"$WORK/proxy-b.log"
PROXY_B_PID=$!
wait_tcp "$O_HTTP"
wait_tcp "$A_HTTP"
wait_tcp "$B_HTTP"
curl -sf -o /dev/null "http://127.0.0.1:$A_HTTP/index.html" || {
    echo "proxy A does not answer /index.html" >&2
    exit 3
}

log "soak: ${SOAK_DURATION}s; origin $ORIGIN_PID, proxy A $PROXY_A_PID, proxy B $PROXY_B_PID; load average $(cut -d' ' -f1-3 /proc/loadavg)"

# The netrun probes run for the whole soak; their summaries are checked at the end.
PATHS=(--path /index.html --path /style.css --path /img/logo.png --path /docs/ --path /hello.txt --path /data/info.json)
spawn "$NETRUN" probe http "http://127.0.0.1:$A_HTTP/" "${PATHS[@]}" --no-keep-alive \
    --rate 40 --concurrency 8 --duration "${SOAK_DURATION}s" --timeout 10s --json -q \
    >"$WORK/churn.json" 2>"$WORK/churn.log"
spawn "$NETRUN" probe http "http://127.0.0.1:$A_HTTP/" "${PATHS[@]}" \
    --rate 40 --concurrency 8 --duration "${SOAK_DURATION}s" --timeout 10s --json -q \
    >"$WORK/keepalive.json" 2>"$WORK/keepalive.log"
spawn "$NETRUN" probe udp "127.0.0.1:$A_UDP" --flows 2 --interval 20ms \
    --count $((SOAK_DURATION * 50)) --size 256 --timeout 2s --json -q \
    >"$WORK/udp.json" 2>"$WORK/udp.log"

status=0
python3 "$ROOT/bench/soak.py" drive \
    --duration "$SOAK_DURATION" \
    --proxy-a "127.0.0.1:$A_HTTP" --proxy-b "127.0.0.1:$B_HTTP" \
    --www "$ROOT/www" \
    --pids "origin=$ORIGIN_PID,proxy_a=$PROXY_A_PID,proxy_b=$PROXY_B_PID" \
    --probes "churn=$WORK/churn.json,keepalive=$WORK/keepalive.json,udp=$WORK/udp.json" \
    --logs "origin=$WORK/origin.log,proxy_a=$WORK/proxy-a.log,proxy_b=$WORK/proxy-b.log" \
    --csv "${SOAK_CSV:-$WORK/soak.csv}" || status=$?
exit "$status"
