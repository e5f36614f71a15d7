#!/usr/bin/env bash
# HTTP/2 load generator speed: `netrun probe http --http2` against h2load
# (nghttp2) on nginx with `ssl http2` (and h2c: `http2` without TLS), same
# connections, same streams per connection, same request count, 1 KiB file.
# The two tools take turns three times and each row is the median, so load
# from elsewhere hits both alike. Neither checks the made certificate
# (h2load never does; netrun gets --insecure: the handshake is still real).
# Rows: netrun requests/s vs h2load's (target ≥ 1.0×), with both request
# counts and error counts, and each client's CPU time per request (user +
# system, from /usr/bin/time): a figure a busy machine disturbs less.
source "$(dirname "$0")/../lib.sh"
need nginx h2load openssl python3 curl /usr/bin/time

CONNS=${H2_CONNS:-8}
STREAMS=${H2_STREAMS:-8}
REQUESTS=${H2_REQUESTS:-50000}
RUNS=3
if [ "$QUICK" = 1 ]; then RUNS=1 REQUESTS=5000; fi

www=$(bench_www)
self_signed_cert
tls_port=$(free_port)
h2c_port=$(free_port)
nginx_start h2 "
    server {
        listen 127.0.0.1:$tls_port ssl http2;
        ssl_certificate $WORK/cert.pem;
        ssl_certificate_key $WORK/key.pem;
        root $www;
        keepalive_requests 10000000;
        http2_max_concurrent_streams 128;
    }
    server {
        listen 127.0.0.1:$h2c_port http2;
        root $www;
        keepalive_requests 10000000;
        http2_max_concurrent_streams 128;
    }"
wait_tcp "$tls_port"
wait_tcp "$h2c_port"
got=$(curl -sk --http2 -o /dev/null -w '%{http_code} %{size_download} %{http_version}' "https://127.0.0.1:$tls_port/1k.txt")
if [ "$got" != "200 1024 2" ]; then
    echo "nginx over TLS answered '$got', expected '200 1024 2'" >&2
    exit 3
fi

# cpu_us RESPONSES: CPU µs per response of the command /usr/bin/time timed.
cpu_us() { awk -v n="$1" '{printf "%.1f", ($1 + $2) * 1e6 / (n > 0 ? n : 1)}' "$WORK/time"; }

# h2load_once URL: "rps done errors cpu_us" of one h2load run.
h2load_once() {
    local out
    out=$(/usr/bin/time -f '%U %S' -o "$WORK/time" h2load -t 2 -c "$CONNS" -m "$STREAMS" -n "$REQUESTS" "$1" | python3 -c '
import re, sys
out = sys.stdin.read()
rps = re.search(r"finished in [0-9.]+\w+, ([0-9.]+) req/s", out).group(1)
m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored", out)
print(rps, m.group(4), int(m.group(5)) + int(m.group(6)))')
    echo "$out $(cpu_us "$(awk '{print $2}' <<<"$out")")"
}

# netrun_once URL [flags]: "rps responses errors cpu_us" of one probe.
netrun_once() {
    local url=$1 out
    shift
    out=$(/usr/bin/time -f '%U %S' -o "$WORK/time" "$NETRUN" probe http "$url" --http2 \
        --streams "$STREAMS" --concurrency "$CONNS" --requests "$REQUESTS" --json --quiet "$@" |
        python3 -c '
import json, sys
d = json.load(sys.stdin)
print(d["requests_per_s"], d["received"], d["errors"])')
    echo "$out $(cpu_us "$(awk '{print $2}' <<<"$out")")"
}

med() { printf '%s\n' "$@" | sort -g | sed -n "$((($# + 1) / 2))p"; }

for mode in tls h2c; do
    if [ "$mode" = tls ]; then
        url="https://127.0.0.1:$tls_port/1k.txt"
        flags=(--insecure)
    else
        url="http://127.0.0.1:$h2c_port/1k.txt"
        flags=()
    fi
    h2_rps=() net_rps=() h2_cpu=() net_cpu=() h2_line="" net_line=""
    for _ in $(seq "$RUNS"); do
        read -r rps done errs cpu < <(h2load_once "$url")
        h2_rps+=("$rps") h2_cpu+=("$cpu")
        h2_line+=" $rps/$done/$errs"
        read -r rps done errs cpu < <(netrun_once "$url" "${flags[@]}")
        net_rps+=("$rps") net_cpu+=("$cpu")
        net_line+=" $rps/$done/$errs"
    done
    log "$mode, $CONNS conns × $STREAMS streams, $REQUESTS requests (req/s / responses / errors):" \
        "h2load$h2_line · netrun$net_line; CPU µs/request h2load ${h2_cpu[*]} · netrun ${net_cpu[*]}" \
        "· load $(cut -d' ' -f1-3 /proc/loadavg)"
    h2=$(med "${h2_rps[@]}")
    net=$(med "${net_rps[@]}")
    r=$(ratio "$net" "$h2")
    row "probe http --http2 ($mode), $CONNS conns × $STREAMS streams, $REQUESTS × 1 KiB: req/s vs h2load (runs' req/s / responses / errors: netrun$net_line; h2load$h2_line)" \
        "$(printf '%.0f' "$net")" "h2load $(printf '%.0f' "$h2")" "$r" "≥ 1.0" "$(at_least "$r" 1.0)"
    h2=$(med "${h2_cpu[@]}")
    net=$(med "${net_cpu[@]}")
    r=$(ratio "$net" "$h2")
    row "probe http --http2 ($mode): client CPU per request (user + system)" \
        "$net µs" "h2load $h2 µs" "$r" "-" "-"
done
