#!/usr/bin/env bash
# Traffic benchmarks (issue 22), not part of CI:
#  1. replay a LINES-line trace (default 10 million) through the proxy's
#     cache, timing = "fast": peak RSS of the whole netrun process (services
#     and workload) and requests/s;
#  2. a stage ramp 100 → 1000 requests/s over 10 s against the origin:
#     requests sent in each second against the ramp's integral.
# Everything on loopback, bounded in count and time.
#
#   cargo build --release && bench/traffic.sh
#   NETRUN=target/release/netrun LINES=1000000 CONCURRENCY=32 bench/traffic.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
NETRUN=${NETRUN:-$root/target/release/netrun}
LINES=${LINES:-10000000}
CONCURRENCY=${CONCURRENCY:-32}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== trace replay: $LINES lines, timing fast, concurrency $CONCURRENCY, through the cache"
"$NETRUN" trace uniform --objects 1000 --requests "$LINES" --size 64 --rate 1000000 -o "$work/big.csv" 2>/dev/null
cat > "$work/replay.toml" <<EOF2
name = "replay"
[topology]
www = "$root/www"
[origin]
max_age = "1h"
[cache]
capacity_objects = 1000
[[workload]]
name = "replay"
kind = "http"
trace = "big.csv"
timing = "fast"
concurrency = $CONCURRENCY
EOF2
/usr/bin/time -v "$NETRUN" run "$work/replay.toml" --quiet --out "$work/out" >/dev/null 2>"$work/time.txt"
rss_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")
cpu_s=$(awk -F': ' '/User time|System time/ {s += $2} END {print s}' "$work/time.txt")
python3 - "$work/out/replay.csv" "$rss_kb" "$cpu_s" <<'PY'
import csv, sys
row = next(csv.DictReader(open(sys.argv[1])))
rss = int(sys.argv[2]) / 1024
cpu_us = float(sys.argv[3]) * 1e6 / int(row["requests"])
print(f"requests {row['requests']}, errors {row['errors']}, hit ratio {row['cache_hit_ratio']}, "
      f"{float(row['requests_per_s']):,.0f} requests/s, peak RSS {rss:.1f} MiB")
print(f"CPU (user + system, the whole run: clients, proxy, origin, results) {cpu_us:.1f} us "
      f"per request")
print(f"target: peak RSS < 100 MiB: {'met' if rss < 100 else 'NOT met'}; "
      f">= 50,000 requests/s: {'met' if float(row['requests_per_s']) >= 50000 else 'NOT met'}")
PY

echo "== stage ramp: rate 100 -> 1000 requests/s over 10 s, against the origin"
cat > "$work/ramp.toml" <<EOF2
name = "ramp"
[topology]
www = "$root/www"
[[workload]]
name = "ramp"
kind = "http"
target = "origin"
paths = ["/index.html"]
concurrency = 64
rate = 100
stages = [{ duration = "10s", rate = 1000 }]
EOF2
"$NETRUN" run "$work/ramp.toml" --quiet --out "$work/out" >/dev/null
# Rows carry each request's scheduled start; a request left at most
# pacing_max_ms after it. So the sends that actually left in second k are
# the scheduled ones, give or take those scheduled within pacing_max_ms
# before either edge: that bound is the error reported per second.
python3 - "$work/out/ramp/http_requests.csv" "$work/out/ramp.csv" <<'PY'
import bisect, csv, sys
starts = sorted(float(r["start_offset_ms"]) for r in csv.DictReader(open(sys.argv[1])))
row = next(csv.DictReader(open(sys.argv[2])))
late = float(row["pacing_max_ms"])
n = lambda a, b: bisect.bisect_left(starts, b) - bisect.bisect_left(starts, a)
worst = 0.0
for k in range(10):
    lo, hi = 1000 * k, 1000 * (k + 1)
    sched = n(lo, hi)
    want = 100 + 90 * (k + 0.5)
    # Fewest: those of the last `late` ms left after the second;
    # most: those of the previous second's last `late` ms arrived in it.
    fewest, most = sched - n(hi - late, hi), sched + n(lo - late, lo)
    err = max(abs(fewest - want), abs(most - want)) / want * 100
    worst = max(worst, err)
    print(f"second {k}: scheduled {sched}, sent {fewest}..{most}, ramp {want:.0f}, error within {err:.2f} %")
print(f"requests {row['requests']}, pacing error mean {row['pacing_mean_ms']} ms, max {late} ms")
print(f"worst second: within {worst:.2f} % (target: within 5 %: {'met' if worst <= 5 else 'NOT met'})")
PY
