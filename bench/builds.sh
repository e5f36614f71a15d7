#!/usr/bin/env bash
# Interleaved pinned CPU per request of several netrun builds (bench/builds.sh BIN...):
# each server alone on core 0 (--workers 1), wrk -t1 -c50 on core 1, logging
# to a file; ROUNDS rounds, every build once per round per measure. Give
# the builds distinct file names (copies: /tmp/netrun-before ...).

source "$(dirname "$0")/lib.sh"
need wrk taskset curl
ROUNDS=${ROUNDS:-3}
TCK=$(getconf CLK_TCK)
WWW=$(bench_www)
declare -A port pid pport ppid
for b in "$@"; do
    p=$(free_port)
    spawn taskset -c 0 "$b" serve --http "127.0.0.1:$p" --udp 127.0.0.1:0 --www "$WWW" --max-age 1h --workers 1 >/dev/null 2>"$WORK/$(basename "$b").log"
    port[$b]=$p pid[$b]=${PIDS[-1]}
    wait_tcp "$p"
    q=$(free_port)
    spawn taskset -c 0 "$b" proxy --http "127.0.0.1:$q" --udp 127.0.0.1:0 --upstream "127.0.0.1:$p" --udp-upstream 127.0.0.1:9 --workers 1 >/dev/null 2>"$WORK/$(basename "$b").proxy.log"
    pport[$b]=$q ppid[$b]=${PIDS[-1]}
    wait_tcp "$q"
    expect_file "http://127.0.0.1:$p/1k.txt" 1024
    expect_file "http://127.0.0.1:$p/1m.bin" 1048576
    expect_hit "$q"
done
one() { # NAME MEASURE URL PID
    local before after out
    before=$(cpu_ticks "$4") || return 3
    out=$(taskset -c 1 wrk -t1 -c50 -d"$DURATION" "$3")
    after=$(cpu_ticks "$4") || return 3
    python3 -c '
import re, sys
ticks, tck, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
n = int(re.search(r"(\d+) requests in", out).group(1))
rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))
bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
print("%s %s %.2f %.0f%s" % (sys.argv[4], sys.argv[5], ticks / tck * 1e6 / n, rps, " BAD" if bad else ""))' "$((after - before))" "$TCK" "$out" "$1" "$2"
}
for r in $(seq "$ROUNDS"); do
    for b in "$@"; do
        one "$b" origin-1k "http://127.0.0.1:${port[$b]}/1k.txt" "${pid[$b]}"
        one "$b" origin-1m "http://127.0.0.1:${port[$b]}/1m.bin" "${pid[$b]}"
        one "$b" hit-1k "http://127.0.0.1:${pport[$b]}/1k.txt" "${ppid[$b]}"
    done
done
for b in "$@"; do
    log "$b: $(grep -c ' request' "$WORK/$(basename "$b").log") origin log lines"
done
