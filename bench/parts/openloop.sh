#!/usr/bin/env bash
# Open-loop truth: `netrun probe http --rate R` against nginx beside
# `oha -q R`, same connections and duration, in turns, at 200 and 2000
# requests/s. netrun counts latency from each request's scheduled start;
# oha (by default) from its actual send, and with --latency-correction from
# the schedule too. Rows: netrun's p50 minus oha's (target: within 0.1 ms),
# p99 beside oha's corrected p99, and netrun's own pacing error.
source "$(dirname "$0")/../lib.sh"
need nginx oha python3 curl

CONNS=${CONNS:-32}
RUNS=3
[ "$QUICK" = 1 ] && RUNS=1

nginx_1k openloop
url=$NGINX_1K_URL

# netrun_once RATE: "p50_ms p99_ms pacing_mean_ms pacing_max_ms" of one run.
netrun_once() {
    "$NETRUN" probe http "$url" --rate "$1" --concurrency "$CONNS" --duration "$DURATION" --json --quiet |
        python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["errors"] == 0, d
print(*("-" if v is None else v for v in (d["latency_p50_ms"], d["latency_p99_ms"], d["pacing_mean_ms"], d["pacing_max_ms"])))'
}

# median_by COLUMN LINE...: the line whose COLUMN (1-based) is the median.
median_by() {
    local col=$1
    shift
    printf '%s\n' "$@" | sort -g -k"$col" | sed -n "$((($# + 1) / 2))p"
}

for rate in 200 2000; do
    net_all=() oha_all=() ohac_all=()
    for _ in $(seq "$RUNS"); do
        oha_all+=("$(oha_once "$url" "$CONNS" -q "$rate")")
        net_all+=("$(netrun_once "$rate")")
        ohac_all+=("$(oha_once "$url" "$CONNS" -q "$rate" --latency-correction)")
    done
    log "rate $rate: netrun (p50 p99 pacing_mean pacing_max) ${net_all[*]}"
    log "rate $rate: oha (rps p50 p99) ${oha_all[*]} · corrected ${ohac_all[*]}"
    read -r np50 np99 _ _ <<<"$(median_by 1 "${net_all[@]}")"
    read -r _ op50 _ <<<"$(median_by 2 "${oha_all[@]}")"
    read -r _ _ ocp99 <<<"$(median_by 3 "${ohac_all[@]}")"
    pmean=$(printf '%s\n' "${net_all[@]}" | awk '{print $3}' | sort -g | sed -n "$(((RUNS + 1) / 2))p")
    pmax=$(printf '%s\n' "${net_all[@]}" | awk '{print $4}' | sort -g | sed -n "$(((RUNS + 1) / 2))p")
    diff=$(python3 -c 'import sys; print(f"{float(sys.argv[1]) - float(sys.argv[2]):+.3f} ms")' "$np50" "$op50")
    met=$(python3 -c 'import sys; print("yes" if abs(float(sys.argv[1]) - float(sys.argv[2])) <= 0.1 else "no")' "$np50" "$op50")
    row "open loop $rate req/s, $CONNS conns: latency p50 (ms)" "$np50" "oha $op50" "$diff" "within 0.1 ms" "$met"
    row "open loop $rate req/s, $CONNS conns: latency p99 (ms)" "$np99" "oha corrected $ocp99" "$(ratio "$np99" "$ocp99")" "-" "-"
    # "-": a netrun without HTTP pacing columns (before they existed).
    met=no
    [ "$pmean" != "-" ] && met=$(at_most "$pmean" 0.05)
    row "open loop $rate req/s: netrun pacing error mean / max (ms)" "$pmean / $pmax" "-" "-" "tens of µs (mean ≤ 0.05)" "$met"
done
