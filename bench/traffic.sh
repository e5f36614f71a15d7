#!/usr/bin/env bash
# Traffic benchmarks (issue 22), not part of CI:
#  replay: issue 22's "requests/s from a trace against the cache", pinned
#     apart (bench/parts/replay.sh): `netrun proxy --workers 1` and nginx
#     `proxy_cache` on one core, each warmed with a 1000-object catalog;
#     on the other core wrk (-t1, -t2, a Lua list of the trace's paths, and
#     one path), oha (--urls-from-file) and `netrun probe http --trace`
#     (timing fast, with and without --csv): requests/s and CPU per request
#     of client and cache, median of RUNS runs of DURATION; then the same
#     trace (LINES, default 1 million) replayed by one `netrun run` holding
#     proxy, origin and client together (the figure of earlier sessions);
#  rss: the whole-run replay of a 10-million-line trace: peak RSS of the
#     netrun process (flat memory), requests/s, the disk its results took;
#  ramp: a stage ramp 100 → 1000 requests/s over 10 s against the origin:
#     requests scheduled and actually sent in each second against the ramp.
#  RUN_PIPELINE=N: the whole runs' workload pipelines N requests per
#     connection (`pipeline = N`, an opt-in: latency from the group's write).
# Everything on loopback, bounded in count and time (replay about 4
# minutes, rss about 10, ramp 15 s); every file it writes lives in one
# temporary folder, removed on exit (the replay's results are removed as
# soon as they are measured: ~200 MB for replay, ~1.9 GB for rss).
#
#   cargo build --release && bench/traffic.sh            # replay and ramp
#   bench/traffic.sh replay                              # one part
#   NETRUN=target/release/netrun LINES=10000000 CONCURRENCY=32 bench/traffic.sh rss
#   RUNS=1 DURATION=3s bench/traffic.sh replay           # a quicker, noisier replay
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
NETRUN=${NETRUN:-$root/target/release/netrun}
CONCURRENCY=${CONCURRENCY:-32}
parts=${*:-replay ramp}
want() { [[ " $parts " == *" $1 "* ]]; }
for p in $parts; do
  case $p in replay | rss | ramp) ;; *) echo "unknown part $p: give replay, rss and/or ramp" >&2; exit 2 ;; esac
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "netrun $("$NETRUN" --version | cut -d' ' -f2-), $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?'); $(nproc) cores"

# whole_run LINES: one `netrun run` replaying a LINES-line trace through its
# own proxy: requests/s, CPU per request, peak RSS, the disk its results took.
whole_run() {
LINES=$1
echo "== trace replay in one netrun run: $LINES lines (Zipf 0.8 over 1000 objects of 64 bytes), timing fast, concurrency $CONCURRENCY${RUN_PIPELINE:+, pipeline $RUN_PIPELINE}, through the cache (load: $(cut -d' ' -f1-3 /proc/loadavg))"
"$NETRUN" trace zipf --objects 1000 --alpha 0.8 --requests "$LINES" --size 64 --rate 1000000 --seed 1 -o "$work/big.csv" 2>/dev/null
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
${RUN_PIPELINE:+pipeline = $RUN_PIPELINE}
EOF2
/usr/bin/time -v "$NETRUN" run "$work/replay.toml" --quiet --out "$work/out" >/dev/null 2>"$work/time.txt"
rm -f "$work/big.csv"
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
echo "result files: $(du -sh "$work/out" | cut -f1) (http_requests.csv $(du -h "$work/out/replay/http_requests.csv" | cut -f1), services.log $(du -h "$work/out/replay/services.log" | cut -f1)); removed"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
rm -rf "$work/out"
}

if want replay; then
echo "== trace replay, pinned apart: caches on core ${SERVER_CORE:-0}, clients on core ${CLIENT_CORE:-1}, $CONCURRENCY connections (load: $(cut -d' ' -f1-3 /proc/loadavg))"
mkdir -p "$work/pinned"
NETRUN=$NETRUN WORK=$work/pinned REPLAY_CONNS=$CONCURRENCY bash "$root/bench/parts/replay.sh"
rm -rf "$work/pinned"
whole_run "${LINES:-1000000}"
fi

if want rss; then
whole_run "${LINES:-10000000}"
fi

if want ramp; then
echo "== stage ramp: rate 100 -> 1000 requests/s over 10 s, against the origin (load: $(cut -d' ' -f1-3 /proc/loadavg))"
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
# Each row holds its scheduled start (start_offset_ms) and its actual send
# (send_offset_ms): count both per second against the ramp's integral
# over that second, 100 + 90 (k + 1/2) requests.
python3 - "$work/out/ramp/http_requests.csv" "$work/out/ramp.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
row = next(csv.DictReader(open(sys.argv[2])))
if not rows or not rows[0].get("send_offset_ms"):
    sys.exit("http_requests.csv has no send_offset_ms: a netrun before it recorded the actual send")
sched, sent = [0] * 11, [0] * 11
for r in rows:
    for counts, col in ((sched, "start_offset_ms"), (sent, "send_offset_ms")):
        counts[min(int(float(r[col]) // 1000), 10)] += 1
worst = (0.0, 0)
print("second  target  scheduled  sent  error (sent vs target)")
for k in range(10):
    want = 100 + 90 * (k + 0.5)
    err = (sent[k] - want) / want * 100
    worst = max(worst, (abs(err), k))
    print(f"{k:>6}  {want:>6.0f}  {sched[k]:>9}  {sent[k]:>4}  {err:+6.2f} %")
if sent[10]:
    print(f"sent after 10 s: {sent[10]}")
lags = sorted(float(r["send_offset_ms"]) - float(r["start_offset_ms"]) for r in rows)
print(f"requests {row['requests']}, errors {row['errors']}; send lag p50 {lags[len(lags) // 2]:.3f} ms, "
      f"p99 {lags[len(lags) * 99 // 100]:.3f} ms, max {lags[-1]:.3f} ms (pacing_max_ms {row['pacing_max_ms']})")
print(f"worst second: {worst[1]}, {worst[0]:.2f} % off (target: within 5 %: {'met' if worst[0] <= 5 else 'NOT met'})")
PY
rm -rf "$work/out"
fi
