#!/usr/bin/env bash
# Origin speed: `netrun serve` against nginx serving the same folder, in one
# run: a 1 KiB file at 1, 50 and 200 keep-alive connections and a 1 MiB file
# at 50, requests/s and p99. Equal work: nginx runs `worker_processes auto`
# with its access log in a file; netrun's per-request log lines (stderr at
# the default level) are redirected to a file too.
source "$(dirname "$0")/../lib.sh"
need nginx wrk python3 curl

WWW=$(bench_www)

NGINX_PORT=$(free_port)
ORIGIN_PORT=$(free_port)
ORIGIN_UDP=$(free_port)
nginx_start origin "server { listen 127.0.0.1:$NGINX_PORT; root $WWW; }"
spawn "$NETRUN" serve --http "127.0.0.1:$ORIGIN_PORT" --udp "127.0.0.1:$ORIGIN_UDP" \
    --www "$WWW" >/dev/null 2>"$WORK/serve.log"
wait_tcp "$NGINX_PORT"
wait_tcp "$ORIGIN_PORT"
# Both must really serve the files, or the figures compare error pages.
for port in "$NGINX_PORT" "$ORIGIN_PORT"; do
    expect_file "http://127.0.0.1:$port/1k.txt" 1024
    expect_file "http://127.0.0.1:$port/1m.bin" 1048576
done

# wrk needs at least as many connections as threads.
origin_stats() {
    local url=$1 conns=$2 threads=2 _
    [ "$conns" -lt 2 ] && threads=1
    for _ in 1 2 3; do
        local out rps p99
        out=$(wrk -t"$threads" -c"$conns" -d"$DURATION" --latency "$url")
        rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
        p99=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
        echo "$rps $p99"
    done | sort -g | sed -n 2p
}

measure() {
    local label=$1 file=$2 conns=$3 target=$4 n ng
    log "$label: netrun, then nginx"
    n=$(origin_stats "http://127.0.0.1:$ORIGIN_PORT/$file" "$conns")
    ng=$(origin_stats "http://127.0.0.1:$NGINX_PORT/$file" "$conns")
    local n_rps=${n% *} n_p99=${n#* } ng_rps=${ng% *} ng_p99=${ng#* } r
    r=$(ratio "$n_rps" "$ng_rps")
    row "origin $label: req/s" "$n_rps" "$ng_rps (nginx)" "$r" "≥ $target" "$(at_least "$r" "$target")"
    r=$(ratio "$n_p99" "$ng_p99")
    row "origin $label: p99 ms" "$n_p99" "$ng_p99 (nginx)" "$r" "≤ 1.5" "$(at_most "$r" 1.5)"
}

measure "1 KiB, 1 conn" 1k.txt 1 1.0
measure "1 KiB, 50 conns" 1k.txt 50 1.0
measure "1 KiB, 200 conns" 1k.txt 200 1.0
measure "1 MiB, 50 conns" 1m.bin 50 0.9

# The equal-work rule held: both wrote a line per request.
log "log lines: netrun $(grep -c ' request' "$WORK/serve.log" || true), nginx $(wc -l <"$WORK/origin/access.log")"
