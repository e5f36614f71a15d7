#!/usr/bin/env bash
# netrun benchmarks against reference tools, in one run on this machine.
# Loopback only; every load is bounded in time. Not part of CI.
#
#   bench/run.sh                  # every part; installs nginx, wrk, irtt, hyperfine, h2load (nghttp2-client), oha if missing
#   bench/run.sh origin udp       # only these parts (bench/parts/<name>.sh)
#   DURATION=10s bench/run.sh     # longer wrk/oha runs (default 5s)
#   QUICK=1 bench/run.sh          # a short smoke run of every part (numbers not meaningful)
#
# Each row compares netrun with a reference measured in the same run and
# reports the ratio, so a noisy shared machine affects both sides alike.
set -euo pipefail
cd "$(dirname "$0")/.."

# Every part under bench/parts/, in this order first (the rest alphabetically).
ORDER=(pinned origin cache clients loadgen openloop h2 delay udp startup rss)
PARTS=()
for p in "${ORDER[@]}"; do [ -f "bench/parts/$p.sh" ] && PARTS+=("$p"); done
for f in bench/parts/*.sh; do
    [ -e "$f" ] || continue
    p=$(basename "$f" .sh)
    [[ " ${PARTS[*]} " == *" $p "* ]] || PARTS+=("$p")
done
if [ "$#" -gt 0 ]; then PARTS=("$@"); fi
for p in "${PARTS[@]}"; do
    if [ ! -f "bench/parts/$p.sh" ]; then
        echo "unknown part '$p'; parts: $(cd bench/parts && ls -- *.sh | sed 's/\.sh$//' | tr '\n' ' ')" >&2
        exit 2
    fi
done

need() { command -v "$1" >/dev/null 2>&1; }
missing=()
for tool in nginx wrk irtt hyperfine h2load; do need "$tool" || missing+=("$tool"); done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "== installing ${missing[*]} (Debian)" >&2
    pkgs=$(printf '%s\n' "${missing[@]}" | sed 's/^nginx$/nginx-light/; s/^h2load$/nghttp2-client/' | tr '\n' ' ')
    # shellcheck disable=SC2086
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $pkgs >/dev/null
fi
export PATH="$HOME/.cargo/bin:$PATH"
if ! need oha; then
    echo "== installing oha (cargo install oha --locked; a few minutes)" >&2
    cargo install oha --locked --quiet
fi

echo "== building netrun (release)" >&2
cargo build --release --locked --quiet
export NETRUN=$PWD/target/release/netrun
export DURATION=${DURATION:-5s}
WORK=$(mktemp -d)
export WORK
trap 'rm -rf "$WORK"' EXIT

ROWS=()
for p in "${PARTS[@]}"; do
    echo "== $p" >&2
    mkdir -p "$WORK/$p"
    status=0
    out=$(WORK="$WORK/$p" bash "bench/parts/$p.sh") || status=$?
    if [ "$status" -ne 0 ]; then
        ROWS+=("| $p | could not measure (exit $status; see above) | - | - | - | - |")
    fi
    if [ -n "$out" ]; then
        while IFS= read -r line; do ROWS+=("$line"); done <<<"$out"
    fi
done

cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
echo
echo "netrun $(git describe --always --dirty 2>/dev/null || echo '?') · $(date -u +%Y-%m-%d) · $(nproc) cores ($cpu) · $(uname -sr) · duration $DURATION per wrk/oha run, median of 3"
echo "nginx $(nginx -v 2>&1 | sed 's/.*nginx\///') · $(wrk --version 2>&1 | head -1 | awk '{print $2}' | sed 's/^debian\///') wrk · oha $(oha --version | awk '{print $2}') · irtt $(irtt version 2>/dev/null | awk 'NR==1 {print $NF}')"
echo
echo "| measure | netrun | reference | ratio | target | met |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
