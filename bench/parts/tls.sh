#!/usr/bin/env bash
# netrun's origin and proxy over TLS + HTTP/2 against nginx over the same,
# loaded by h2load (nghttp2): same certificate (ECDSA P-256, made here with
# openssl, given to both), same connections, streams and request count, 1 KiB
# file. Origin: `netrun serve --tls-cert` vs nginx `ssl http2` serving the
# folder. Proxy (every request a cache hit, checked first): `netrun proxy`
# vs nginx `proxy_cache`, both `ssl http2` towards the clients and HTTPS
# towards the same `netrun serve --tls-cert` origin. The two take turns
# three times; each row is the median. Both log every request to a file.
# Neither proxy checks the origin's certificate (nginx's proxy_ssl_verify is
# off by default; netrun gets --upstream-insecure): the handshakes are real.
source "$(dirname "$0")/../lib.sh"
need nginx h2load openssl python3 curl

CONNS=${TLS_CONNS:-8}
STREAMS=${TLS_STREAMS:-8}
REQUESTS=${TLS_REQUESTS:-50000}
RUNS=3
if [ "$QUICK" = 1 ]; then RUNS=1 REQUESTS=5000; fi

www=$(bench_www)
self_signed_cert
chmod a+r "$WORK/key.pem" "$WORK/cert.pem"
TLS=(--tls-cert "$WORK/cert.pem" --tls-key "$WORK/key.pem")

origin_port=$(free_port)
proxy_port=$(free_port)
nginx_origin_port=$(free_port)
nginx_proxy_port=$(free_port)
mkdir -p "$WORK/nginx-cache"
chmod a+rwx "$WORK/nginx-cache"
# An hour of freshness: no entry goes stale during the run.
spawn "$NETRUN" serve --http "127.0.0.1:$origin_port" --udp "127.0.0.1:$(free_port)" \
    --www "$www" --max-age 1h "${TLS[@]}" --ca-out "$WORK/unused-ca.pem" >/dev/null 2>"$WORK/serve.log"
spawn "$NETRUN" proxy --http "127.0.0.1:$proxy_port" --udp "127.0.0.1:$(free_port)" \
    --upstream "https://127.0.0.1:$origin_port" --upstream-insecure \
    --udp-upstream 127.0.0.1:9 "${TLS[@]}" >/dev/null 2>"$WORK/proxy.log"
nginx_start tls "
    proxy_cache_path $WORK/nginx-cache keys_zone=hits:10m;
    server {
        listen 127.0.0.1:$nginx_origin_port ssl http2;
        ssl_certificate $WORK/cert.pem;
        ssl_certificate_key $WORK/key.pem;
        root $www;
        keepalive_requests 10000000;
        http2_max_concurrent_streams 128;
    }
    server {
        listen 127.0.0.1:$nginx_proxy_port ssl http2;
        ssl_certificate $WORK/cert.pem;
        ssl_certificate_key $WORK/key.pem;
        keepalive_requests 10000000;
        http2_max_concurrent_streams 128;
        location / {
            proxy_pass https://127.0.0.1:$origin_port;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_cache hits;
            add_header X-Cache \$upstream_cache_status;
        }
    }"
for p in "$origin_port" "$proxy_port" "$nginx_origin_port" "$nginx_proxy_port"; do wait_tcp "$p"; done

# Every server answers the file over HTTP/2; both proxies answer it from
# their cache (after one warming request).
for p in "$origin_port" "$proxy_port" "$nginx_origin_port" "$nginx_proxy_port"; do
    got=$(curl -sk --http2 -o /dev/null -w '%{http_code} %{size_download} %{http_version}' "https://127.0.0.1:$p/1k.txt")
    if [ "$got" != "200 1024 2" ]; then
        echo "127.0.0.1:$p answered '$got', expected '200 1024 2'" >&2
        exit 3
    fi
done
for p in "$proxy_port" "$nginx_proxy_port"; do
    got=$(curl -sk --http2 -D - -o /dev/null "https://127.0.0.1:$p/1k.txt" | tr -d '\r' | awk -F': ' 'tolower($1) == "x-cache" {print $2}')
    case $got in
    HIT*) ;;
    *)
        echo "127.0.0.1:$p/1k.txt is not a cache hit after warming (X-Cache: '$got')" >&2
        exit 3
        ;;
    esac
done

# h2load_once URL: "rps succeeded errors" of one h2load run.
h2load_once() {
    h2load -t 2 -c "$CONNS" -m "$STREAMS" -n "$REQUESTS" "$1" | python3 -c '
import re, sys
out = sys.stdin.read()
rps = re.search(r"finished in [0-9.]+\w+, ([0-9.]+) req/s", out).group(1)
m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored", out)
print(rps, m.group(4), int(m.group(5)) + int(m.group(6)))'
}

med() { printf '%s\n' "$@" | sort -g | sed -n "$((($# + 1) / 2))p"; }

compare() {
    local what=$1 netrun_port=$2 nginx_port=$3 target=$4
    local n_rps=() g_rps=() n_line="" g_line="" rps done errs
    for _ in $(seq "$RUNS"); do
        read -r rps done errs < <(h2load_once "https://127.0.0.1:$netrun_port/1k.txt")
        n_rps+=("$rps")
        n_line+=" $rps/$done/$errs"
        read -r rps done errs < <(h2load_once "https://127.0.0.1:$nginx_port/1k.txt")
        g_rps+=("$rps")
        g_line+=" $rps/$done/$errs"
    done
    log "$what (req/s / succeeded / errors): netrun$n_line · nginx$g_line · load $(cut -d' ' -f1-3 /proc/loadavg)"
    local n g r
    n=$(med "${n_rps[@]}")
    g=$(med "${g_rps[@]}")
    r=$(ratio "$n" "$g")
    row "$what, h2load $CONNS conns × $STREAMS streams, $REQUESTS × 1 KiB: req/s (each run's req/s / succeeded / errors: netrun$n_line; nginx$g_line)" \
        "$(printf '%.0f' "$n")" "nginx $(printf '%.0f' "$g")" "$r" "≥ $target" "$(at_least "$r" "$target")"
}

compare "origin over TLS + HTTP/2" "$origin_port" "$nginx_origin_port" 1.0
compare "proxy cache hits over TLS + HTTP/2" "$proxy_port" "$nginx_proxy_port" 1.0
log "proxy: $(grep -c ' HIT ' "$WORK/proxy.log" || true) hits logged; origin saw $(grep -c ' request\| GET ' "$WORK/serve.log" || true) requests"
