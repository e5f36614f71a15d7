#!/usr/bin/env bash
# Bounded afl.rs runs of the fuzz targets, one after another:
#   fuzz/run.sh SECONDS [TARGET...]      (default: 10 s each, every target)
# Builds the targets (cargo afl build --release), runs each SECONDS on its
# corpus (fuzz/corpus/<target>, findings in fuzz/out/<target>), prints one
# line per target and exits 1 if any crashed, 3 if cargo-afl is missing.
set -euo pipefail
cd "$(dirname "$0")"

secs=${1:-10}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(scenario http_fields origin_path probe histogram results)
fi
if ! cargo afl --version >/dev/null 2>&1; then
    echo "cargo-afl is missing: cargo install cargo-afl (see fuzz/README.md)" >&2
    exit 3
fi
cargo afl build --release --locked --quiet

# No CPU-frequency or core-dump tuning on shared or CI machines; no UI.
export AFL_SKIP_CPUFREQ=1 AFL_NO_UI=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_AFFINITY=1
mkdir -p out
bin="${CARGO_TARGET_DIR:-target}/release"
failed=0
printf '%-12s %10s %8s %8s %7s %6s\n' target executions per_s corpus crashes hangs
for t in "${targets[@]}"; do
    rm -rf "out/$t"
    if ! cargo afl fuzz -V "$secs" -i "corpus/$t" -o "out/$t" "$bin/$t" >"out/$t.log" 2>&1; then
        echo "$t: afl-fuzz failed; the end of out/$t.log:" >&2
        tail -20 "out/$t.log" >&2
        failed=1
        continue
    fi
    stats="out/$t/default/fuzzer_stats"
    get() { awk -F' *: *' -v k="$1" '$1 == k {print $2}' "$stats"; }
    printf '%-12s %10s %8s %8s %7s %6s\n' "$t" "$(get execs_done)" "$(get execs_per_sec)" \
        "$(get corpus_count)" "$(get saved_crashes)" "$(get saved_hangs)"
    if [ "$(get saved_crashes)" != 0 ]; then
        echo "$t crashed; replay with: $bin/$t < FILE (in fuzz/)" >&2
        ls "out/$t/default/crashes/" >&2
        failed=1
    fi
done
exit "$failed"
