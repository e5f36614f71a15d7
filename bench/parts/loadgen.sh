#!/usr/bin/env bash
# Closed-loop load generator speed: `netrun probe http` against nginx beside
# wrk and oha, same server, same connections, same duration, 1 KiB file,
# keep-alive. The three tools take turns (wrk, oha, netrun) three times and
# each row is the median, so load from elsewhere hits all of them alike.
# Rows: netrun requests/s vs wrk's (-t2, and -t1 against `--threads 1`) and
# vs oha's (target ≥ 1.0×).
source "$(dirname "$0")/../lib.sh"
need nginx wrk oha python3 curl

CONNS_LIST=${CONNS_LIST:-"32 128"}
RUNS=3
[ "$QUICK" = 1 ] && RUNS=1

nginx_1k loadgen
url=$NGINX_1K_URL

# netrun_rps CONNS [ARGS]: requests/s of one closed-loop probe lasting $DURATION.
netrun_rps() {
    "$NETRUN" probe http "$url" --concurrency "$1" "${@:2}" --duration "$DURATION" --json --quiet |
        python3 -c 'import json, sys; d = json.load(sys.stdin); assert d["errors"] == 0, d; print(d["requests_per_s"])'
}

for conns in $CONNS_LIST; do
    wrk_all=() oha_all=() net_all=() wrk1_all=() net1_all=()
    for _ in $(seq "$RUNS"); do
        wrk_all+=("$(wrk_once "$url" "$conns" | awk '{print $1}')")
        oha_all+=("$(oha_once "$url" "$conns" | awk '{print $1}')")
        net_all+=("$(netrun_rps "$conns")")
        wrk1_all+=("$(wrk -t1 -c"$conns" -d"$DURATION" "$url" | awk '/Requests\/sec/ {print $2}')")
        net1_all+=("$(netrun_rps "$conns" --threads 1)")
    done
    med() { printf '%s\n' "$@" | sort -g | sed -n "$((($# + 1) / 2))p"; }
    wrk=$(med "${wrk_all[@]}")
    oha=$(med "${oha_all[@]}")
    net=$(med "${net_all[@]}")
    wrk1=$(med "${wrk1_all[@]}")
    net1=$(med "${net1_all[@]}")
    log "$conns conns: wrk ${wrk_all[*]} · oha ${oha_all[*]} · netrun ${net_all[*]} · wrk -t1 ${wrk1_all[*]} · netrun --threads 1 ${net1_all[*]} req/s"
    r=$(ratio "$net" "$wrk")
    row "probe http closed loop, $conns conns, 1 KiB: req/s vs wrk" "$(printf '%.0f' "$net")" "wrk $(printf '%.0f' "$wrk")" "$r" "≥ 1.0" "$(at_least "$r" 1.0)"
    r=$(ratio "$net1" "$wrk1")
    row "probe http closed loop, $conns conns, 1 KiB, one client thread: req/s vs wrk -t1" "$(printf '%.0f' "$net1") (--threads 1)" "wrk -t1 $(printf '%.0f' "$wrk1")" "$r" "≥ 1.0" "$(at_least "$r" 1.0)"
    r=$(ratio "$net" "$oha")
    row "probe http closed loop, $conns conns, 1 KiB: req/s vs oha" "$(printf '%.0f' "$net")" "oha $(printf '%.0f' "$oha")" "$r" "≥ 1.0" "$(at_least "$r" 1.0)"
done
