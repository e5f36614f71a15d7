#!/usr/bin/env bash
# Injected delay precision: `netrun proxy --delay 5ms` (and `--jitter 1ms`)
# must add what it is asked each way, within 50 µs at the median and 200 µs
# at p99, measured by irtt and by `netrun probe udp` through the proxy at
# 1k and 20k datagrams/s.
#
# The added delay is measured against the same path without the delay: an
# undelayed proxy in front of the same echo, measured in the same run, so the
# proxy's own forwarding time and the host's noise cancel out. At each
# quantile q: added_q = (RTT_q(delayed proxy) − RTT_q(undelayed proxy)) / 2,
# compared with what was asked at that quantile (5 ms; with ±1 ms uniform
# jitter each way a round trip's extra is triangular on ±2 ms, so its p99 is
# 1.717 ms above 10 ms, its median exactly 10 ms).
source "$(dirname "$0")/../lib.sh"
need irtt python3 jq

DELAY_MS=5
JITTER_MS=1
if [ "$QUICK" = 1 ]; then SECS=0.5; else SECS=3; fi

irtt_port=$(free_port)
echo_port=$(free_port)
spawn irtt server -b "127.0.0.1:$irtt_port" -i 0 --timeout=30s >/dev/null 2>&1
spawn "$NETRUN" serve --http 127.0.0.1:0 --udp "127.0.0.1:$echo_port" --www "$WORK" >/dev/null 2>&1

# proxy UPSTREAM_PORT [impairment flags]: starts a proxy forwarding UDP to
# 127.0.0.1:UPSTREAM_PORT and echoes its UDP port.
proxy() {
    local up=$1 port
    shift
    port=$(free_port)
    spawn "$NETRUN" proxy --http 127.0.0.1:0 --udp "127.0.0.1:$port" \
        --upstream 127.0.0.1:9 --udp-upstream "127.0.0.1:$up" "$@" >/dev/null 2>&1
    echo "$port"
}

declare -A PORT
PORT[irtt_ref]=$(proxy "$irtt_port")
PORT[irtt_delay]=$(proxy "$irtt_port" --delay "${DELAY_MS}ms")
PORT[irtt_jitter]=$(proxy "$irtt_port" --delay "${DELAY_MS}ms" --jitter "${JITTER_MS}ms")
PORT[probe_ref]=$(proxy "$echo_port")
PORT[probe_delay]=$(proxy "$echo_port" --delay "${DELAY_MS}ms")
PORT[probe_jitter]=$(proxy "$echo_port" --delay "${DELAY_MS}ms" --jitter "${JITTER_MS}ms")
# The proxies bind before they answer: give them a moment (UDP has no accept to wait for).
sleep 0.5

# measure TOOL PORT RATE: "p50_ms p99_ms" of the round trips through 127.0.0.1:PORT.
measure() {
    local tool=$1 port=$2 rate=$3 interval_us count out
    interval_us=$((1000000 / rate))
    count=$(python3 -c "print(int($rate * $SECS))")
    case $tool in
    irtt)
        out="$WORK/irtt-$port-$rate.json"
        irtt client -Q -i "${interval_us}us" -d "${SECS}s" --wait=500ms \
            -o "$out" "127.0.0.1:$port" >/dev/null 2>&1 || { log "irtt failed through port $port"; exit 3; }
        python3 - "$out" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
rtts = sorted(rt["delay"]["rtt"] / 1e6 for rt in d["round_trips"] if "rtt" in rt.get("delay", {}))
if len(rtts) < 10:
    sys.exit("too few irtt replies")
q = lambda p: rtts[min(len(rtts) - 1, int(p * len(rtts)))]
print("%.4f %.4f" % (q(0.50), q(0.99)))
PY
        ;;
    probe)
        "$NETRUN" probe udp "127.0.0.1:$port" --count "$count" --interval "${interval_us}us" \
            --timeout 1s --json -q | jq -r '"\(.latency_p50_ms) \(.latency_p99_ms)"'
        ;;
    esac
}

# report TOOL RATE LABEL REF IMPAIRED EXTRA50 EXTRA99: two rows (median, p99)
# of the delay added each way at RATE, EXTRA_q being the asked round-trip
# extra (ms) at that quantile.
report() {
    local tool=$1 rate=$2 label=$3 ref=$4 imp=$5 x50=$6 x99=$7
    python3 - "$tool" "$rate" "$label" "$ref" "$imp" "$x50" "$x99" <<'PY'
import sys
tool, rate, label, ref, imp, x50, x99 = sys.argv[1:]
ref = [float(v) for v in ref.split()]
imp = [float(v) for v in imp.split()]
rate = f"{int(rate) // 1000}k/s"
for i, (name, asked_rtt, target_us) in enumerate([("p50", float(x50), 50), ("p99", float(x99), 200)]):
    added = (imp[i] - ref[i]) / 2          # ms, each way
    asked = asked_rtt / 2
    err_us = (added - asked) * 1000
    met = "yes" if abs(err_us) <= target_us else "no"
    ratio = f"{added / asked:.3f}" if asked else "-"
    print(f"| {label}, {tool} {rate}: delay added each way, {name} | {added:.3f} ms ({err_us:+.0f} µs) "
          f"| asked {asked:.3f} ms (RTT {name} undelayed {ref[i]:.3f}, delayed {imp[i]:.3f} ms) "
          f"| {ratio} | ±{target_us} µs | {met} |")
PY
}

tri99=$(python3 -c "print(2 * $DELAY_MS + (2 - 0.08 ** 0.5) * $JITTER_MS)")
for rate in 1000 20000; do
    for tool in irtt probe; do
        log "$tool at $rate datagrams/s"
        ref=$(measure "$tool" "${PORT[${tool}_ref]}" "$rate")
        delayed=$(measure "$tool" "${PORT[${tool}_delay]}" "$rate")
        report "$tool" "$rate" "--delay ${DELAY_MS}ms" "$ref" "$delayed" $((2 * DELAY_MS)) $((2 * DELAY_MS))
        if [ "$rate" = 1000 ]; then
            jit=$(measure "$tool" "${PORT[${tool}_jitter]}" "$rate")
            report "$tool" "$rate" "--delay ${DELAY_MS}ms --jitter ${JITTER_MS}ms" "$ref" "$jit" \
                $((2 * DELAY_MS)) "$tri99"
        fi
    done
done
