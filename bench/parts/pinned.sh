#!/usr/bin/env bash
# CPU per request, pinned: the server on one core (`taskset`) with one worker
# (nginx `worker_processes 1`, netrun `--workers 1`), the load generator on
# the other core. A server's CPU per request is its user+system time over
# the run (/proc/PID/stat, every thread; nginx's master and worker summed)
# divided by the requests the client completed; a client's is its own
# user+system time (getrusage) over its requests. On a shared machine this
# is the stable figure: requests/s says who got the cores, CPU time per
# request says what each request costs. Both servers log every request to a
# file (nginx's access log; netrun's stderr redirected).
#
# Rows: origin 1 KiB (target ≤ 0.9× nginx) and 1 MiB (reported), cache hits
# (≤ 0.8× nginx proxy_cache), the probe's client CPU per request (≤ 1.0×
# wrk's; oha's reported). The requests/s of each pinned run is shown beside.
source "$(dirname "$0")/../lib.sh"
need nginx wrk taskset python3 curl pgrep
# oha is one of the probe's references; its row is left out when missing.
TOOLS=(wrk netrun)
if command -v oha >/dev/null 2>&1; then TOOLS+=(oha); else log "oha missing: no oha row"; fi

SERVER_CORE=${SERVER_CORE:-0}
CLIENT_CORE=${CLIENT_CORE:-1}
CONNS=${PINNED_CONNS:-50}
RUNS=3
[ "$QUICK" = 1 ] && RUNS=1
TCK=$(getconf CLK_TCK)
PIN="taskset -c $SERVER_CORE"
NGINX_WORKERS=1
export NGINX_WORKERS PIN
# Builds before --workers existed take the core count, which taskset makes 1.
WORKERS=()
if "$NETRUN" serve --help | grep -q -- '--workers'; then WORKERS=(--workers 1); fi

WWW=$(bench_www)

# server_cpu URL PID...: "µs_per_request req_per_s" of the median (by CPU
# per request) of RUNS wrk -t1 runs on the client core against URL, the CPU
# being what the PIDs used during the run.
server_cpu() {
    local url=$1 _ before after out
    shift
    for _ in $(seq "$RUNS"); do
        before=$(cpu_ticks "$@") || return 3
        out=$(taskset -c "$CLIENT_CORE" wrk -t1 -c"$CONNS" -d"$DURATION" "$url")
        after=$(cpu_ticks "$@") || return 3
        python3 -c '
import re, sys
ticks, tck, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
n = int(re.search(r"(\d+) requests in", out).group(1))
rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))
bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
if bad: sys.exit(f"{bad.group(1)} error responses: {out}")
print("%.2f %.0f" % (ticks / tck * 1e6 / n, rps))' "$((after - before))" "$TCK" "$out"
    done | sort -g | sed -n "$(((RUNS + 1) / 2))p"
}

# compare LABEL NETRUN_URL NGINX_URL TARGET NETRUN_PIDS NGINX_PIDS
compare() {
    local label=$1 n_url=$2 ng_url=$3 target=$4 n ng r met
    read -ra n_pids <<<"$5"
    read -ra ng_pids <<<"$6"
    log "$label: netrun, then nginx (server on core $SERVER_CORE, wrk -t1 -c$CONNS on core $CLIENT_CORE)"
    n=$(server_cpu "$n_url" "${n_pids[@]}")
    ng=$(server_cpu "$ng_url" "${ng_pids[@]}")
    r=$(ratio "${n% *}" "${ng% *}")
    local shown=- met=-
    if [ "$target" != - ]; then shown="≤ $target" met=$(at_most "$r" "$target"); fi
    row "pinned $label: server CPU µs/request" "${n% *} (${n#* } req/s)" "${ng% *} (${ng#* } req/s, nginx)" "$r" "$shown" "$met"
}

# --- origin: netrun serve vs nginx, the same files
ng_port=$(free_port)
nginx_start origin "server { listen 127.0.0.1:$ng_port; root $WWW; keepalive_requests 10000000; }"
ng_master=${PIDS[-1]}
n_port=$(free_port)
spawn taskset -c "$SERVER_CORE" "$NETRUN" serve --http "127.0.0.1:$n_port" --udp 127.0.0.1:0 \
    --www "$WWW" --max-age 1h "${WORKERS[@]}" >/dev/null 2>"$WORK/serve.log"
n_pid=${PIDS[-1]}
wait_tcp "$ng_port"
wait_tcp "$n_port"
for port in "$ng_port" "$n_port"; do
    expect_file "http://127.0.0.1:$port/1k.txt" 1024
    expect_file "http://127.0.0.1:$port/1m.bin" 1048576
done
ng_pids=$(with_children "$ng_master")
compare "origin 1 KiB, $CONNS conns" "http://127.0.0.1:$n_port/1k.txt" "http://127.0.0.1:$ng_port/1k.txt" 0.9 "$n_pid" "$ng_pids"
compare "origin 1 MiB, $CONNS conns" "http://127.0.0.1:$n_port/1m.bin" "http://127.0.0.1:$ng_port/1m.bin" - "$n_pid" "$ng_pids"
log "log lines: netrun $(grep -c ' request' "$WORK/serve.log" || true), nginx $(wc -l <"$WORK/origin/access.log")"

# --- cache hits: netrun proxy vs nginx proxy_cache in front of that origin
p_port=$(free_port)
spawn taskset -c "$SERVER_CORE" "$NETRUN" proxy --http "127.0.0.1:$p_port" --udp 127.0.0.1:0 \
    --upstream "127.0.0.1:$n_port" --udp-upstream 127.0.0.1:9 "${WORKERS[@]}" \
    >/dev/null 2>"$WORK/proxy.log"
p_pid=${PIDS[-1]}
c_port=$(free_port)
mkdir -p "$WORK/nginx-cache"
chmod a+rwx "$WORK/nginx-cache"
nginx_start cache "
    proxy_cache_path $WORK/nginx-cache keys_zone=hits:10m;
    server {
        listen 127.0.0.1:$c_port;
        keepalive_requests 10000000;
        location / {
            proxy_pass http://127.0.0.1:$n_port;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_cache hits;
            proxy_cache_valid 200 1h;
            add_header X-Cache \$upstream_cache_status;
        }
    }"
c_master=${PIDS[-1]}
wait_tcp "$p_port"
wait_tcp "$c_port"
expect_hit "$p_port" "$c_port"
compare "cache hit 1 KiB, $CONNS conns" "http://127.0.0.1:$p_port/1k.txt" "http://127.0.0.1:$c_port/1k.txt" 0.8 "$p_pid" "$(with_children "$c_master")"

# --- the probe as a client: its CPU per request against wrk's and oha's,
# all on the client core against the pinned nginx origin.
url="http://127.0.0.1:$ng_port/1k.txt"
# client_cpu TOOL: "µs_per_request req_per_s" of one run of TOOL.
client_cpu() {
    local out
    case $1 in
    wrk)
        out=$(cpu_run "$WORK/cpu" taskset -c "$CLIENT_CORE" wrk -t1 -c"$CONNS" -d"$DURATION" "$url")
        python3 -c '
import re, sys
n = int(re.search(r"(\d+) requests in", sys.argv[2]).group(1))
rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", sys.argv[2]).group(1))
print("%.2f %.0f" % (float(open(sys.argv[1]).read()) * 1e6 / n, rps))' "$WORK/cpu" "$out"
        ;;
    oha)
        out=$(cpu_run "$WORK/cpu" taskset -c "$CLIENT_CORE" oha --no-tui --output-format json -c "$CONNS" -z "$DURATION" "$url")
        python3 -c '
import json, sys
d = json.loads(sys.argv[2])
codes = d["statusCodeDistribution"]
assert set(codes) == {"200"}, codes
n = codes["200"]
print("%.2f %.0f" % (float(open(sys.argv[1]).read()) * 1e6 / n, d["summary"]["requestsPerSec"]))' "$WORK/cpu" "$out"
        ;;
    netrun)
        out=$(cpu_run "$WORK/cpu" taskset -c "$CLIENT_CORE" "$NETRUN" probe http "$url" \
            --concurrency "$CONNS" --duration "$DURATION" --json --quiet)
        python3 -c '
import json, sys
d = json.loads(sys.argv[2])
assert d["errors"] == 0, d
print("%.2f %.0f" % (float(open(sys.argv[1]).read()) * 1e6 / d["requests"], d["requests_per_s"]))' "$WORK/cpu" "$out"
        ;;
    esac
}
declare -A all=()
for _ in $(seq "$RUNS"); do
    for tool in "${TOOLS[@]}"; do all[$tool]+="$(client_cpu "$tool")"$'\n'; done
done
med() { grep . | sort -g | sed -n "$(((RUNS + 1) / 2))p"; }
n=$(med <<<"${all[netrun]}")
for tool in "${TOOLS[@]}"; do
    [ "$tool" = netrun ] && continue
    ref=$(med <<<"${all[$tool]}")
    r=$(ratio "${n% *}" "${ref% *}")
    target=- met=-
    if [ "$tool" = wrk ]; then target="≤ 1.0" met=$(at_most "$r" 1.0); fi
    row "pinned probe http, $CONNS conns, 1 KiB: client CPU µs/request vs $tool" "${n% *} (${n#* } req/s)" "${ref% *} (${ref#* } req/s, $tool)" "$r" "$target" "$met"
done
