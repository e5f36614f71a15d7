#!/usr/bin/env bash
# bench/udp_agree.sh BIN [INTERVAL_US] [SECS]: irtt and `netrun probe udp` at the same interval,
# each direct (irtt's own server; netrun's echo) and through a fresh unimpaired `netrun proxy` of
# BIN: RTT p50 direct and through the proxy, per tool, so what the proxy adds can be read off both
# (irtt takes kernel receive timestamps, as the probe does since session 33). irtt's Go timer may
# not reach the interval: its rate is printed. Loopback only; bounded by SECS per run.
set -u
BIN=$(realpath "$1"); IV=${2:-1000}; SECS=${3:-2}
fp() { python3 -c 'import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
D=$(mktemp -d); W=$(mktemp -d)
IS=$(fp); IP=$(fp); E=$(fp); P=$(fp)
irtt server -b "127.0.0.1:$IS" -i 0 --timeout=30s >/dev/null 2>&1 & A=$!
"$BIN" proxy --http 127.0.0.1:0 --udp "127.0.0.1:$IP" --upstream 127.0.0.1:9 --udp-upstream "127.0.0.1:$IS" >/dev/null 2>&1 & B=$!
"$BIN" serve --http 127.0.0.1:0 --udp "127.0.0.1:$E" --www "$W" >/dev/null 2>&1 & C=$!
"$BIN" proxy --http 127.0.0.1:0 --udp "127.0.0.1:$P" --upstream 127.0.0.1:9 --udp-upstream "127.0.0.1:$E" >/dev/null 2>&1 & F=$!
sleep 0.5
irtt1() {
    irtt client -Q -i "${IV}us" -d "${SECS}s" --wait=500ms -o "$D/i.json" "127.0.0.1:$1" >/dev/null 2>&1 || { echo "irtt failed"; return; }
    python3 - "$D/i.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
r = sorted(x["delay"]["rtt"] / 1e6 for x in d["round_trips"] if "rtt" in x.get("delay", {}))
print("p50 %.4f ms (%.0f/s)" % (r[len(r) // 2], d["stats"]["packets_sent"] / (d["config"]["params"]["duration"] / 1e9)))
PY
}
probe1() {
    local n
    n=$(python3 -c "print(int($SECS * 1e6 / $IV))")
    "$BIN" probe udp "127.0.0.1:$1" --count "$n" --interval "${IV}us" --timeout 1s --json -q |
        jq -r '"p50 \(.latency_p50_ms) ms (loss \(.loss_percent) %)"'
}
echo "load $(cut -d' ' -f1 /proc/loadavg) $(basename "$BIN") interval ${IV}us"
echo "  irtt   direct $(irtt1 "$IS")  proxy $(irtt1 "$IP")"
echo "  probe  direct $(probe1 "$E")  proxy $(probe1 "$P")"
kill $A $B $C $F; wait 2>/dev/null; rm -rf "$D" "$W"
