#!/usr/bin/env bash
# Startup cost: a one-request scenario (origin and proxy up, one HTTP
# request through the proxy, CSVs written, services down), timed by
# hyperfine. Round 1 measured 6.6 ms on another machine; "no regression"
# allows 10 % on top. With STARTUP_REF=/path/to/an/older/netrun, both
# binaries are timed in the same hyperfine run and the row compares them
# instead (the fair comparison on a shared machine); STARTUP_REF_LABEL names
# it in the table (e.g. the commit it was built from).
source "$(dirname "$0")/../lib.sh"
need hyperfine python3

BASELINE_MS=6.6
REF=${STARTUP_REF:-}
mkdir -p "$WORK/www"
echo "hello" >"$WORK/www/index.html"
cat >"$WORK/one.toml" <<TOML
name = "one"
description = "one request: services up, one GET through the proxy, CSVs, services down"

[topology]
host = "127.0.0.1"
www = "www"
origin = { http = 0, udp = 0 }
proxy = { http = 0, udp = 0 }

[[workload]]
kind = "http"
name = "one"
target = "proxy"
paths = ["/index.html"]
requests = 1
TOML

# The scenario must really run before it is timed.
if ! "$NETRUN" run --quiet --out "$WORK/results" "$WORK/one.toml" >/dev/null; then
    echo "the one-request scenario failed" >&2
    exit 3
fi
runs=50
[ "$QUICK" = 1 ] && runs=10
cmds=("$NETRUN run --quiet --out $WORK/results $WORK/one.toml")
if [ -n "$REF" ]; then
    "$REF" run --quiet --out "$WORK/ref" "$WORK/one.toml" >/dev/null || {
        echo "STARTUP_REF=$REF could not run the scenario" >&2
        exit 3
    }
    cmds+=("$REF run --quiet --out $WORK/ref $WORK/one.toml")
fi
hyperfine --style none --warmup 5 --runs "$runs" --export-json "$WORK/startup.json" "${cmds[@]}" >&2
# "mean_ms cpu_ms" of result I.
figures() {
    python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))["results"][int(sys.argv[2])]
print("%.2f %.2f" % (r["mean"] * 1000, (r["user"] + r["system"]) * 1000))' "$WORK/startup.json" "$1"
}
read -r mean cpu < <(figures 0)
if [ -n "$REF" ]; then
    read -r ref_mean ref_cpu < <(figures 1)
    label=${STARTUP_REF_LABEL:-the reference binary}
    # Round 3's target: no slower than the release before it, in the same run.
    row "one-request scenario: mean ms (hyperfine)" "$mean" "$ref_mean ($label, same run)" "$(ratio "$mean" "$ref_mean")" "≤ 1.0×" "$(at_most "$(ratio "$mean" "$ref_mean")" 1.0)"
    # CPU time barely depends on what else the machine runs.
    row "one-request scenario: CPU ms, user+sys (hyperfine)" "$cpu" "$ref_cpu ($label, same run)" "$(ratio "$cpu" "$ref_cpu")" "-" "-"
    exit 0
fi
limit=$(python3 -c "print('%.2f' % ($BASELINE_MS * 1.1))")
row "one-request scenario: mean ms (hyperfine)" "$mean" "$BASELINE_MS (round 1, another machine)" "$(ratio "$mean" "$BASELINE_MS")" "≤ $limit ms" "$(at_most "$mean" "$limit")"
# CPU time barely depends on what else the machine runs (the wall time
# does: waiting for a core, fsync behind other writers): shown to tell a
# regression from a busy machine.
row "one-request scenario: CPU ms, user+sys (hyperfine)" "$cpu" "-" "-" "-" "-"
