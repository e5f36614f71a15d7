#!/usr/bin/env bash
# The UDP path: `netrun probe udp` against the echo directly and through an
# unimpaired proxy, at 50k datagrams/s (targets: 0 loss, p50 within 30 µs of
# the direct echo's), then a rate search for the highest rate the proxy
# forwards with < 0.1 % loss (the direct echo's, searched the same way, is
# the reference: past it the probe and the echo are the limit, not the proxy).
source "$(dirname "$0")/../lib.sh"
need python3 jq

if [ "$QUICK" = 1 ]; then SECS=0.3; else SECS=2; fi
# The rate search: each step is one second of traffic (a fifth with QUICK).
if [ "$QUICK" = 1 ]; then STEP_SECS=0.2; else STEP_SECS=1; fi
RATES=(10000 20000 35000 50000 75000 100000 150000 200000 300000)

echo_port=$(free_port)
proxy_port=$(free_port)
spawn "$NETRUN" serve --http 127.0.0.1:0 --udp "127.0.0.1:$echo_port" --www "$WORK" >/dev/null 2>&1
spawn "$NETRUN" proxy --http 127.0.0.1:0 --udp "127.0.0.1:$proxy_port" \
    --upstream 127.0.0.1:9 --udp-upstream "127.0.0.1:$echo_port" >/dev/null 2>&1
sleep 0.5

# probe PORT RATE SECS: "loss_percent p50_ms p99_ms" of one probe run.
probe() {
    local port=$1 rate=$2 secs=$3 count interval_ns
    interval_ns=$((1000000000 / rate))
    count=$(python3 -c "print(int($rate * $secs))")
    "$NETRUN" probe udp "127.0.0.1:$port" --count "$count" --interval "${interval_ns}ns" \
        --timeout 1s --json -q | jq -r '"\(.loss_percent) \(.latency_p50_ms) \(.latency_p99_ms)"'
}

# The median of three runs by p50, so one noisy moment does not decide.
probe3() {
    local _
    for _ in 1 2 3; do probe "$@"; done | sort -g -k2 | sed -n 2p
}

log "direct and through the proxy at 50k/s"
read -r d_loss d_p50 d_p99 <<<"$(probe3 "$echo_port" 50000 "$SECS")"
read -r p_loss p_p50 p_p99 <<<"$(probe3 "$proxy_port" 50000 "$SECS")"
diff_us=$(python3 -c "print(round(($p_p50 - $d_p50) * 1000))")
row "UDP 50k/s through the proxy: loss" "${p_loss} %" "direct echo ${d_loss} %" "-" "0 %" \
    "$(python3 -c "print('yes' if float('$p_loss') == 0 else 'no')")"
row "UDP 50k/s through the proxy: RTT p50" "${p_p50} ms (+${diff_us} µs)" "direct echo ${d_p50} ms" \
    "$(ratio "$p_p50" "$d_p50")" "≤ direct + 30 µs" "$(at_most "$diff_us" 30)"
row "UDP 50k/s through the proxy: RTT p99" "${p_p99} ms" "direct echo ${d_p99} ms" \
    "$(ratio "$p_p99" "$d_p99")" "-" "-"

# highest PORT: the highest rate of RATES with < 0.1 % loss (stops at the first miss).
highest() {
    local port=$1 best=0 rate loss
    for rate in "${RATES[@]}"; do
        read -r loss _ <<<"$(probe "$port" "$rate" "$STEP_SECS")"
        log "port $port at $rate/s: loss $loss %"
        if python3 -c "import sys; sys.exit(0 if float('$loss') < 0.1 else 1)"; then
            best=$rate
        else
            break
        fi
    done
    echo "$best"
}

log "rate search (each step ${STEP_SECS}s)"
d_best=$(highest "$echo_port")
p_best=$(highest "$proxy_port")
row "UDP through the proxy: highest rate with < 0.1 % loss" "${p_best}/s" "direct echo ${d_best}/s" \
    "$(ratio "$p_best" "$d_best")" "report (≥ 50k/s)" "$(at_least "$p_best" 50000)"
