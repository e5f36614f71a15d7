#!/usr/bin/env bash
# Trace replay against a cache, pinned apart (issue 22's "50,000 requests/s
# from a trace against the cache"): the cache on one core, the client on the
# other, so the figure is the client's and the cache's, not two processes
# fighting for two cores. Caches: `netrun proxy --workers 1` and nginx
# `proxy_cache` (worker_processes 1), each in front of one `netrun serve`,
# warmed with every object of the catalog (1000 objects of 64 bytes, so
# every measured request is a hit; the origin's request count is checked
# afterwards). Clients, each on the client core against each cache:
#   wrk -t1 and -t2 with a Lua script cycling through the trace's paths,
#   wrk -t1 on one path (the plainest ceiling), oha --urls-from-file, and
#   `netrun probe http --trace` replaying the trace (`--timing fast`), with
#   and without `--csv` (a row per request written); and over HTTP/2 in clear
#   text, H2_CONNS connections × H2_STREAMS streams: h2load -i (the paths'
#   URLs) and `netrun probe http --http2 --streams --trace`. Pipelined
#   (HTTP/1.1, PIPELINE requests written back to back per connection, an
#   opt-in whose latency counts from the group's write): wrk -t1 with a Lua
#   script sending PIPELINE paths per request() and `netrun probe http
#   --pipeline`; compare them with each other only.
# Each row: the median of RUNS runs of DURATION (by requests/s), the
# client's CPU per request (getrusage) and the cache's (its /proc ticks).
# On 2 cores a row's requests/s is bounded by whichever side costs more per
# request; compare ratios on one machine, not absolutes across machines.
source "$(dirname "$0")/../lib.sh"
need nginx wrk taskset python3 curl
SERVER_CORE=${SERVER_CORE:-0}
CLIENT_CORE=${CLIENT_CORE:-1}
CONNS=${REPLAY_CONNS:-32}
RUNS=${RUNS:-3}
[ "$QUICK" = 1 ] && RUNS=1
# The trace netrun replays: long enough that no run reaches its end (the
# runs are bounded by DURATION); its first PATHS_N paths are the Lua
# script's and oha's list, so every client asks for the same objects in
# the same proportions.
REPLAY_LINES=${REPLAY_LINES:-3000000}
PATHS_N=${PATHS_N:-100000}
TCK=$(getconf CLK_TCK)
PIN="taskset -c $SERVER_CORE"
NGINX_WORKERS=1
export NGINX_WORKERS PIN
HAVE_TRACE=0
if "$NETRUN" probe http --help | grep -q -- '--trace'; then HAVE_TRACE=1; else log "this netrun's probe has no --trace: no netrun rows"; fi
HAVE_OHA=0
if command -v oha >/dev/null 2>&1; then HAVE_OHA=1; else log "oha missing: no oha rows"; fi
HAVE_H2LOAD=0
if command -v h2load >/dev/null 2>&1; then HAVE_H2LOAD=1; else log "h2load missing: no h2load rows"; fi
# HTTP/2 in clear text (prior knowledge): H2_CONNS connections × H2_STREAMS
# streams, the same requests in flight as CONNS HTTP/1.1 connections.
H2_CONNS=${H2_CONNS:-4}
H2_STREAMS=${H2_STREAMS:-8}
# Pipelined rows: requests per connection written together (0: no rows).
PIPELINE=${PIPELINE:-8}
HAVE_PIPELINE=0
if "$NETRUN" probe http --help | grep -q -- '--pipeline'; then HAVE_PIPELINE=1; else log "this netrun's probe has no --pipeline: no pipelined netrun row"; fi

log "trace: $REPLAY_LINES lines, Zipf 0.8 over 1000 objects of 64 bytes"
"$NETRUN" trace zipf --objects 1000 --alpha 0.8 --requests "$REPLAY_LINES" --size 64 \
    --rate 1000000 --seed 1 -o "$WORK/trace.csv" 2>/dev/null
python3 - "$WORK/trace.csv" "$PATHS_N" "$WORK/paths.txt" <<'PY'
import csv, sys
rows = csv.DictReader(open(sys.argv[1]))
with open(sys.argv[3], "w") as out:
    for _, r in zip(range(int(sys.argv[2])), rows):
        out.write(f"/objects/{r['key']}/{r['size']}\n")
PY
cat >"$WORK/paths.lua" <<'LUA'
-- Cycles through the trace's paths (one per line of $PATHS), one list per thread.
local paths = {}
for line in io.lines(os.getenv("PATHS")) do paths[#paths + 1] = line end
local i = 0
request = function()
  i = i % #paths + 1
  return wrk.format(nil, paths[i])
end
LUA
cat >"$WORK/pipe.lua" <<'LUA'
-- As paths.lua, PIPELINE requests per request() (wrk writes them together
-- and counts each response).
local paths = {}
for line in io.lines(os.getenv("PATHS")) do paths[#paths + 1] = line end
local depth = tonumber(os.getenv("PIPELINE"))
local i = 0
request = function()
  local group = {}
  for k = 1, depth do
    i = i % #paths + 1
    group[k] = wrk.format(nil, paths[i])
  end
  return table.concat(group)
end
LUA
export PATHS=$WORK/paths.txt PIPELINE

origin_port=$(free_port)
spawn taskset -c "$SERVER_CORE" "$NETRUN" serve --http "127.0.0.1:$origin_port" --udp 127.0.0.1:0 \
    --www "$(bench_www)" --max-age 1h --workers 1 >/dev/null 2>"$WORK/serve.log"
proxy_port=$(free_port)
spawn taskset -c "$SERVER_CORE" "$NETRUN" proxy --http "127.0.0.1:$proxy_port" --udp 127.0.0.1:0 \
    --upstream "127.0.0.1:$origin_port" --cache-objects 1000 --workers 1 >/dev/null 2>"$WORK/proxy.log"
proxy_pid=${PIDS[-1]}
nginx_port=$(free_port)
nginx_h2_port=$(free_port)
mkdir -p "$WORK/nginx-cache"
chmod a+rwx "$WORK/nginx-cache"
nginx_start cache "
    proxy_cache_path $WORK/nginx-cache keys_zone=hits:10m;
    server {
        listen 127.0.0.1:$nginx_port;
        listen 127.0.0.1:$nginx_h2_port http2;
        keepalive_requests 10000000;
        location / {
            proxy_pass http://127.0.0.1:$origin_port;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_cache hits;
            add_header X-Cache \$upstream_cache_status;
        }
    }"
nginx_master=${PIDS[-1]}
wait_tcp "$origin_port"
wait_tcp "$proxy_port"
wait_tcp "$nginx_port"
wait_tcp "$nginx_h2_port"

# Warm both caches with every object, one request each, then check a hit.
mapfile -t all_paths < <(for k in $(seq 1000); do echo "--path=/objects/$k/64"; done)
for port in "$proxy_port" "$nginx_port"; do
    "$NETRUN" probe http "http://127.0.0.1:$port/" "${all_paths[@]}" --requests 1000 \
        --concurrency 1 --quiet >/dev/null
    got=$(curl -s -D - -o /dev/null "http://127.0.0.1:$port/objects/1000/64" | tr -d '\r' |
        awk -F': ' 'tolower($1) == "x-cache" {print $2}')
    case $got in HIT*) ;; *) echo "127.0.0.1:$port is not a cache hit after warming (X-Cache: '$got')" >&2; exit 3 ;; esac
done
warm=$(grep -c ' request' "$WORK/serve.log" || true)
log "origin requests after warming: $warm (2000 expected)"

# measure PIDS -- CMD...: runs CMD on the client core; prints "rps client_us server_us"
# (requests read from CMD's output by `parse_rps`).
measure() {
    local pids=() before after out
    while [ "$1" != -- ]; do pids+=("$1"); shift; done
    shift
    before=$(cpu_ticks "${pids[@]}") || return 3
    out=$(cpu_run "$WORK/cpu" taskset -c "$CLIENT_CORE" "$@")
    after=$(cpu_ticks "${pids[@]}") || return 3
    python3 - "$out" "$(cat "$WORK/cpu")" "$((after - before))" "$TCK" <<'PY'
import json, re, sys
out, cpu, ticks, tck = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
if out.lstrip().startswith("{"):
    d = json.loads(out)
    if "summary" in d and "requestsPerSec" in d["summary"]:      # oha
        rps = d["summary"]["requestsPerSec"]
        n = sum(d.get("statusCodeDistribution", {}).values())
        bad = n - d.get("statusCodeDistribution", {}).get("200", 0)
    else:                                                        # netrun probe --json
        rps, n, bad = d["requests_per_s"], d["requests"], d["errors"]
        if d.get("cache_hit_ratio") is not None and d["cache_hit_ratio"] < 1:
            sys.exit(f"not every request hit: cache_hit_ratio {d['cache_hit_ratio']}")
elif "req/s" in out and "requests:" in out:                      # h2load
    m = re.search(r"(\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout", out)
    n, bad = int(m.group(1)), sum(int(g) for g in m.groups()[1:])
    rps = float(re.search(r"finished in [0-9.]+m?s, ([0-9.]+) req/s", out).group(1))
    # A response that came as the run stopped counts in the codes, not in `succeeded`.
    codes = re.search(r"status codes: \d+ 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    bad += sum(int(g) for g in codes.groups()) if codes else n
else:                                                            # wrk
    n = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    bad = int(m.group(1)) if m else 0
if bad:
    sys.exit(f"{bad} errors or non-200 answers: {out[:2000]}")
print("%.0f %.2f %.2f" % (rps, cpu * 1e6 / n, ticks / tck * 1e6 / n))
PY
}

# median PIDS -- CMD...: the median (by requests/s) of RUNS measure runs.
median() {
    local _
    for _ in $(seq "$RUNS"); do measure "$@"; done | sort -g | sed -n "$(((RUNS + 1) / 2))p"
}

# client_cmd NAME PORT H2PORT: the client command line of row NAME against
# PORT (HTTP/1.1) or H2PORT (h2c).
client_cmd() {
    local url="http://127.0.0.1:$2" h2url="http://127.0.0.1:$3"
    case $1 in
    wrk1-paths) echo wrk -t1 -c"$CONNS" -d"$DURATION" -s "$WORK/paths.lua" "$url" ;;
    wrk2-paths) echo wrk -t2 -c"$CONNS" -d"$DURATION" -s "$WORK/paths.lua" "$url" ;;
    wrk1-one) echo wrk -t1 -c"$CONNS" -d"$DURATION" "$url/objects/1/64" ;;
    oha-urls)
        sed "s|^|$url|" "$PATHS" >"$WORK/urls-$2.txt"
        echo oha --no-tui --output-format json -c "$CONNS" -z "$DURATION" --urls-from-file "$WORK/urls-$2.txt"
        ;;
    netrun-trace) echo "$NETRUN" probe http "$url/" --trace "$WORK/trace.csv" --timing fast \
        --concurrency "$CONNS" --duration "$DURATION" --quiet --json ;;
    netrun-trace-csv) echo "$NETRUN" probe http "$url/" --trace "$WORK/trace.csv" --timing fast \
        --concurrency "$CONNS" --duration "$DURATION" --quiet --json --csv "$WORK/rows.csv" ;;
    h2load-h2c)
        sed "s|^|$h2url|" "$PATHS" >"$WORK/h2urls-$3.txt"
        echo h2load -c "$H2_CONNS" -m "$H2_STREAMS" -D "${DURATION%s}" -i "$WORK/h2urls-$3.txt"
        ;;
    wrk1-pipe) echo wrk -t1 -c"$CONNS" -d"$DURATION" -s "$WORK/pipe.lua" "$url" ;;
    netrun-trace-pipe) echo "$NETRUN" probe http "$url/" --trace "$WORK/trace.csv" --timing fast \
        --concurrency "$CONNS" --duration "$DURATION" --pipeline "$PIPELINE" --quiet --json ;;
    netrun-trace-h2c) echo "$NETRUN" probe http "$h2url/" --http2 --streams "$H2_STREAMS" \
        --trace "$WORK/trace.csv" --timing fast --concurrency "$H2_CONNS" --duration "$DURATION" --quiet --json ;;
    esac
}

CLIENTS=(wrk1-paths wrk2-paths wrk1-one)
[ "$HAVE_OHA" = 1 ] && CLIENTS+=(oha-urls)
[ "$HAVE_TRACE" = 1 ] && CLIENTS+=(netrun-trace netrun-trace-csv)
[ "$HAVE_H2LOAD" = 1 ] && CLIENTS+=(h2load-h2c)
[ "$HAVE_TRACE" = 1 ] && CLIENTS+=(netrun-trace-h2c)
[ "$PIPELINE" -gt 1 ] && CLIENTS+=(wrk1-pipe)
[ "$PIPELINE" -gt 1 ] && [ "$HAVE_PIPELINE" = 1 ] && CLIENTS+=(netrun-trace-pipe)
# Only some rows: CLIENTS_ONLY="netrun-trace wrk1-paths netrun-trace-pipe wrk1-pipe".
if [ -n "${CLIENTS_ONLY:-}" ]; then read -ra CLIENTS <<<"$CLIENTS_ONLY"; fi
echo "| client (on core $CLIENT_CORE, $CONNS conns) | cache (core $SERVER_CORE) | req/s | client CPU µs/req | cache CPU µs/req | load |"
echo "|---|---|---:|---:|---:|---|"
for client in "${CLIENTS[@]}"; do
    for cache in netrun nginx; do
        if [ "$cache" = netrun ]; then port=$proxy_port h2port=$proxy_port pids=("$proxy_pid"); else
            port=$nginx_port h2port=$nginx_h2_port
            read -ra pids <<<"$(with_children "$nginx_master")"
        fi
        read -ra cmd <<<"$(client_cmd "$client" "$port" "$h2port")"
        log "$client against $cache"
        r=$(median "${pids[@]}" -- "${cmd[@]}")
        read -r rps cus sus <<<"$r"
        echo "| $client | $cache | $rps | $cus | $sus | $(cut -d' ' -f1-3 /proc/loadavg) |"
        rm -f "$WORK/rows.csv"
    done
done
after=$(grep -c ' request' "$WORK/serve.log" || true)
log "origin requests in all: $after (after warming: $warm; more means a measured request missed)"
rm -f "$WORK/trace.csv" "$WORK"/urls-*.txt "$WORK"/h2urls-*.txt
