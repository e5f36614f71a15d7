#!/usr/bin/env bash
# `netrun link`: the user-space packet link between a namespace and this
# host, against independent tools (iperf3, ping, irtt) and against a plain
# veth pair (the kernel's own path, no netrun on it). Needs root.
#
# - ceiling: iperf3 UDP of 1500-byte IP packets (1472-byte payloads) as
#   fast as it can send, and TCP, through an unimpaired link; the median RTT
#   it adds (netrun probe udp, link vs veth; half of it is each crossing);
# - --rate 20Mbit/s and a constant 12 Mbit/s trace: iperf3 TCP goodput;
# - --delay 10ms: ping and irtt RTT medians minus the undelayed ones;
# - --loss 1% --delay 20ms: iperf3 (cubic) retransmits and goodput against
#   Mathis's MSS/RTT·1.22/√p;
# - bufferbloat at 10 Mbit/s: a UDP probe's RTT p99 under 4 cubic flows,
#   droptail of 1000 packets vs CoDel, and CoDel's sojourn p50.
source "$(dirname "$0")/../lib.sh"
need iperf3 irtt ping python3 jq
if [ "$(id -u)" != 0 ]; then
    echo "| netrun link | could not measure: needs root (network namespaces, TUN) | - | - | - | - |"
    exit 0
fi
if [ "$QUICK" = 1 ]; then SECS=1; else SECS=4; fi

echo_port=$(free_port)
irtt_port=$(free_port)
spawn "$NETRUN" serve --http 127.0.0.1:0 --udp "0.0.0.0:$echo_port" --www "$WORK" >/dev/null 2>&1
spawn irtt server -b "0.0.0.0:$irtt_port" -i 0 --timeout=60s >/dev/null 2>&1
sleep 0.3

# link FLAGS... -- COMMAND: runs COMMAND (a sh -c script, with $H the host
# end) behind `netrun link FLAGS`; the counters go to $WORK/counters.
link() {
    local flags=() script
    while [ "$1" != "--" ]; do flags+=("$1"); shift; done
    shift
    script="H=\$NETRUN_HOST; $*"
    "$NETRUN" link "${flags[@]}" -- sh -c "$script" 2>"$WORK/counters"
}

# iperf_server: a one-shot iperf3 server on a free port; echoes the port.
iperf_server() {
    local port
    port=$(free_port)
    timeout 300 iperf3 -s -1 -p "$port" >/dev/null 2>&1 &
    sleep 0.3
    echo "$port"
}

# A plain veth pair between a namespace and this host: the reference path.
REF_NS="netrun-bench-$$"
ip netns add "$REF_NS"
trap 'ip netns del "$REF_NS" 2>/dev/null; _bench_cleanup' EXIT
ip link add nrbench$$ type veth peer name eth0 netns "$REF_NS"
ip addr add 198.19.250.1/30 dev nrbench$$
ip link set nrbench$$ up
ip -n "$REF_NS" addr add 198.19.250.2/30 dev eth0
ip -n "$REF_NS" link set eth0 up
ip -n "$REF_NS" link set lo up

probe_p50() { # probe_p50 "<run prefix>" HOST: median RTT (ms) of 2000 datagrams
    $1 "$NETRUN" probe udp "$2:$echo_port" --count 2000 --interval 1ms --json -q | jq -r .latency_p50_ms
}

# --- ceiling ---------------------------------------------------------------
log "ceiling: UDP of 1500-byte packets through an unimpaired link"
p=$(iperf_server)
link -- "iperf3 -c \$H -p $p -u -b 5G -l 1472 -t $SECS -J" >"$WORK/udp.json"
read -r mbps pps lost <<<"$(jq -r '.end.sum | "\(.bits_per_second / 1e6) \(.packets / .seconds) \(.lost_percent)"' "$WORK/udp.json" 2>/dev/null || echo "0 0 100")"
# The receiver's figures: what crossed the link.
rx=$(jq -r '.end.sum_received // .end.sum | .bits_per_second / 1e6' "$WORK/udp.json" 2>/dev/null || echo 0)
rx_pps=$(python3 -c "print(round($rx * 1e6 / 8 / 1500))")
# iperf3's UDP sender (one send per packet) may be the limit: its sent rate says.
echo "| netrun link ceiling: UDP, 1500-byte packets received | $(printf %.0f "$rx") Mbit/s ($rx_pps packets/s; iperf3 sent $(printf %.0f "$mbps") Mbit/s, lost $(printf %.1f "$lost")%) | - | - | - | - |"
p=$(iperf_server)
tcp=$(link -- "iperf3 -c \$H -p $p -t $SECS -J" | jq -r '.end.sum_received.bits_per_second / 1e6')
p=$(iperf_server)
tcp_ref=$(ip netns exec "$REF_NS" iperf3 -c 198.19.250.1 -p "$p" -t "$SECS" -J | jq -r '.end.sum_received.bits_per_second / 1e6')
tcp_pps=$(python3 -c "print(round($tcp * 1e6 / 8 / 1448))")
echo "| netrun link ceiling: TCP goodput (1500-byte packets) | $(printf %.0f "$tcp") Mbit/s ($tcp_pps packets/s) | veth $(printf %.0f "$tcp_ref") Mbit/s | $(ratio "$tcp" "$tcp_ref") | ≥ 1000 Mbit/s | $(at_least "$tcp" 1000) |"

log "ceiling: added latency (netrun probe udp, link vs veth)"
via_link=$(link -- "\"$NETRUN\" probe udp \$H:$echo_port --count 2000 --interval 1ms --json -q" | jq -r .latency_p50_ms)
via_veth=$(probe_p50 "ip netns exec $REF_NS" 198.19.250.1)
added_us=$(python3 -c "print(round(($via_link - $via_veth) * 1000 / 2))")
echo "| netrun link: latency added per crossing, median | $added_us µs (RTT p50 $via_link ms vs veth $via_veth ms) | - | - | ≤ 50 µs | $(at_most "$added_us" 50) |"

# --- rate and trace ---------------------------------------------------------
log "--rate 20Mbit/s and a constant 12 Mbit/s trace: iperf3 TCP"
p=$(iperf_server)
r20=$(link --rate 20Mbit/s -- "iperf3 -c \$H -p $p -t 3 -J" | jq -r '.end.sum_received.bits_per_second / 1e6')
ok=$(python3 -c "print('yes' if 18 <= $r20 <= 20.5 else 'no')")
echo "| netrun link --rate 20Mbit/s: iperf3 TCP goodput | $(printf %.2f "$r20") Mbit/s | - | - | 18–20.5 | $ok |"
trace="$WORK/constant.up"
"$NETRUN" link --make-trace constant:12Mbit/s >"$trace"
p=$(iperf_server)
r12=$(link --trace "$trace" -- "iperf3 -c \$H -p $p -t 3 -J" | jq -r '.end.sum_received.bits_per_second / 1e6')
ok=$(python3 -c "print('yes' if 10.8 <= $r12 <= 12.1 else 'no')")
echo "| netrun link --trace (1 opportunity/ms): iperf3 TCP goodput | $(printf %.2f "$r12") Mbit/s | - | - | 10.8–12.1 | $ok |"

# --- delay ------------------------------------------------------------------
log "--delay 10ms: ping and irtt medians"
ping_p50() { python3 -c '
import re, statistics, sys
rtts = [float(m) for m in re.findall(r"time=([0-9.]+) ms", sys.stdin.read())]
print(statistics.median(rtts) if rtts else 0)'; }
pc=$((SECS * 50))
p0=$(link -- "ping -c $pc -i 0.02 \$H" | ping_p50)
p10=$(link --delay 10ms -- "ping -c $pc -i 0.02 \$H" | ping_p50)
err=$(python3 -c "print(round(($p10 - $p0 - 20) * 1000))")
echo "| netrun link --delay 10ms: ping RTT p50 − undelayed | $(python3 -c "print(round($p10 - $p0, 3))") ms ($err µs off; undelayed $p0 ms) | - | - | 20 ms ± 0.2 | $(at_most "${err#-}" 200) |"
irtt_p50() {
    link "$@" -- "irtt client -Q -i 10ms -d ${SECS}s -o - \$H:$irtt_port" |
        jq -r '.stats.rtt.median / 1e6'
}
i0=$(irtt_p50)
i10=$(irtt_p50 --delay 10ms)
err=$(python3 -c "print(round(($i10 - $i0 - 20) * 1000))")
echo "| netrun link --delay 10ms: irtt RTT p50 − undelayed | $(python3 -c "print(round($i10 - $i0, 3))") ms ($err µs off; undelayed $i0 ms) | - | - | 20 ms ± 0.2 | $(at_most "${err#-}" 200) |"

# --- loss: Mathis -------------------------------------------------------------
log "--loss 1% --delay 20ms: iperf3 cubic against Mathis"
p=$(iperf_server)
link --loss 1% --delay 20ms -- "iperf3 -C cubic -c \$H -p $p -t $((SECS * 2)) -J" >"$WORK/loss.json"
good=$(jq -r '.end.sum_received.bits_per_second / 1e6' "$WORK/loss.json")
retr=$(jq -r '.end.sum_sent.retransmits' "$WORK/loss.json")
mathis=$(python3 -c "print(1448 * 8 / 0.040 * 1.22 / 0.01 ** 0.5 / 1e6)")
r=$(ratio "$good" "$mathis")
ok=$(python3 -c "print('yes' if $retr > 0 and 0.5 <= $good / $mathis <= 2 else 'no')")
echo "| netrun link --loss 1% --delay 20ms: iperf3 (cubic) goodput | $(printf %.2f "$good") Mbit/s, $retr retransmits | Mathis $(printf %.2f "$mathis") Mbit/s | $r | ×½–×2, retransmits > 0 | $ok |"

# --- bufferbloat --------------------------------------------------------------
log "bufferbloat: a UDP probe under 4 cubic flows, droptail 1000 vs codel"
bloat() { # bloat QUEUE: "probe_p99_ms sojourn_p50"
    local p q=$1
    p=$(iperf_server)
    link --rate 10Mbit/s --delay 5ms --queue "$q" -- \
        "iperf3 -C cubic -c \$H -p $p -t $((SECS * 3)) -P 4 >/dev/null & sleep 3; \"$NETRUN\" probe udp \$H:$echo_port --count $((SECS * 100)) --interval 10ms --timeout 5s --json -q; wait" |
        jq -r .latency_p99_ms
}
tail99=$(bloat droptail:1000)
codel99=$(bloat codel)
sojourn=$(awk '/^sojourn p50/ {print $3, $4}' "$WORK/counters")
r=$(ratio "$tail99" "$codel99")
ok=$(python3 -c "print('yes' if $tail99 >= 10 * $codel99 else 'no')")
echo "| netrun link 10 Mbit/s: UDP probe RTT p99 under load, droptail 1000 | $tail99 ms | codel $codel99 ms (codel sojourn p50 $sojourn) | $r | ≥ ×10 | $ok |"
