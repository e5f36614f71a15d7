#!/usr/bin/env bash
# Memory: the peak RSS of a one-million-datagram `netrun probe udp` against
# a `netrun serve` UDP echo (as fast as it goes, --interval 0). Row: max RSS
# vs the 25 MB ceiling, in MiB (GNU time's "Maximum resident set size").
source "$(dirname "$0")/../lib.sh"
need python3
[ -x /usr/bin/time ] || { echo "missing tool: /usr/bin/time (Debian package time)" >&2; exit 3; }

COUNT=1000000
[ "$QUICK" = 1 ] && COUNT=100000

mkdir -p "$WORK/www"
http=$(free_port)
udp=$(free_port)
spawn "$NETRUN" serve --http "127.0.0.1:$http" --udp "127.0.0.1:$udp" --www "$WORK/www" >&2
wait_tcp "$http"

/usr/bin/time -v -o "$WORK/time.txt" "$NETRUN" probe udp "127.0.0.1:$udp" \
    --count "$COUNT" --interval 0 --timeout 1s --json --quiet >"$WORK/probe.json"
kib=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/time.txt")
# MiB, as ps and top count (the 25 MB ceiling was set from ru_maxrss / 1024).
mb=$(python3 -c 'import sys; print(f"{int(sys.argv[1]) / 1024:.1f}")' "$kib")
sent=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["sent"])' "$WORK/probe.json")
log "$sent datagrams sent, max RSS $kib KiB"
row "probe udp, $sent datagrams: max RSS (MiB)" "$mb" "25" "$(ratio "$mb" 25)" "≤ 25 MiB" "$(at_most "$mb" 25)"
