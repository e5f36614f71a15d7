#!/usr/bin/env bash
# Pinned proxy CPU per cache hit of several netrun builds, interleaved
# (bench/mixed-hits.sh BIN...): hits alone, and mixed traffic where every
# 10th request on each keep-alive connection revalidates (Cache-Control:
# no-cache), which hyper answers. Each proxy alone on core 0 (--workers 1,
# logging to a file), its origin and wrk -t1 -c50 on core 1; ROUNDS rounds.

source "$(dirname "$0")/lib.sh"
need wrk taskset curl
cat >"$WORK/mix.lua" <<'LUA'
counter = 0
request = function()
  counter = counter + 1
  if counter % 10 == 0 then
    return wrk.format("GET", "/1k.txt", {["Cache-Control"] = "no-cache"})
  end
  return wrk.format("GET", "/1k.txt")
end
LUA
ROUNDS=${ROUNDS:-3}
TCK=$(getconf CLK_TCK)
WWW=$(bench_www)
declare -A port pport ppid
for b in "$@"; do
    p=$(free_port)
    spawn taskset -c 1 "$b" serve --http "127.0.0.1:$p" --udp 127.0.0.1:0 --www "$WWW" --max-age 1h --workers 1 >/dev/null 2>"$WORK/$(basename "$b").log"
    port[$b]=$p
    wait_tcp "$p"
    q=$(free_port)
    spawn taskset -c 0 "$b" proxy --http "127.0.0.1:$q" --udp 127.0.0.1:0 --upstream "127.0.0.1:$p" --udp-upstream 127.0.0.1:9 --workers 1 >/dev/null 2>"$WORK/$(basename "$b").proxy.log"
    pport[$b]=$q ppid[$b]=${PIDS[-1]}
    wait_tcp "$q"
    expect_hit "$q"
done
one() { # NAME MEASURE PID wrk-args...
    local name=$1 measure=$2 pid=$3 before after out
    shift 3
    before=$(cpu_ticks "$pid")
    out=$(taskset -c 1 wrk -t1 -c50 -d"$DURATION" "$@")
    after=$(cpu_ticks "$pid")
    python3 -c '
import re, sys
ticks, tck, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
n = int(re.search(r"(\d+) requests in", out).group(1))
print("%s %s %.2f us/request, %d requests" % (sys.argv[4], sys.argv[5], ticks / tck * 1e6 / n, n))' "$((after - before))" "$TCK" "$out" "$name" "$measure"
}
for r in $(seq "$ROUNDS"); do
    for b in "$@"; do
        one "$b" hit-only "${ppid[$b]}" "http://127.0.0.1:${pport[$b]}/1k.txt"
        one "$b" mixed-1-in-10 "${ppid[$b]}" -s "$WORK/mix.lua" "http://127.0.0.1:${pport[$b]}/1k.txt"
    done
done
for b in "$@"; do
    log "$b: $(grep -c ' HIT ' "$WORK/$(basename "$b").proxy.log") proxy access lines with HIT"
done
