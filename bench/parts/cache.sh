#!/usr/bin/env bash
# Cache hits: `netrun proxy` against nginx `proxy_cache`, both in front of
# the same `netrun serve` origin, cache warm, every request a hit (checked
# with X-Cache before measuring), 1 KiB file, 50 and 200 keep-alive
# connections. Both log every request to a file (nginx access log; netrun's
# per-request lines on stderr redirected).
source "$(dirname "$0")/../lib.sh"
need nginx wrk python3 curl

WWW=$(bench_www)

ORIGIN_PORT=$(free_port)
ORIGIN_UDP=$(free_port)
PROXY_PORT=$(free_port)
PROXY_UDP=$(free_port)
NGINX_PORT=$(free_port)
# An hour of freshness: no entry goes stale during the run.
spawn "$NETRUN" serve --http "127.0.0.1:$ORIGIN_PORT" --udp "127.0.0.1:$ORIGIN_UDP" \
    --www "$WWW" --max-age 1h >/dev/null 2>"$WORK/serve.log"
spawn "$NETRUN" proxy --http "127.0.0.1:$PROXY_PORT" --udp "127.0.0.1:$PROXY_UDP" \
    --upstream "127.0.0.1:$ORIGIN_PORT" --udp-upstream "127.0.0.1:$ORIGIN_UDP" \
    >/dev/null 2>"$WORK/proxy.log"
mkdir -p "$WORK/nginx-cache"
chmod a+rwx "$WORK/nginx-cache"
nginx_start cache "
    proxy_cache_path $WORK/nginx-cache keys_zone=hits:10m;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / {
            proxy_pass http://127.0.0.1:$ORIGIN_PORT;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_cache hits;
            add_header X-Cache \$upstream_cache_status;
        }
    }"
wait_tcp "$ORIGIN_PORT"
wait_tcp "$PROXY_PORT"
wait_tcp "$NGINX_PORT"

# Warm both caches, then insist the next answer is a hit.
expect_hit "$PROXY_PORT" "$NGINX_PORT"

for conns in 50 200; do
    log "cache hits, $conns conns: netrun proxy, then nginx proxy_cache"
    n=$(wrk_stats "http://127.0.0.1:$PROXY_PORT/1k.txt" "$conns")
    ng=$(wrk_stats "http://127.0.0.1:$NGINX_PORT/1k.txt" "$conns")
    n_rps=$(awk '{print $1}' <<<"$n")
    ng_rps=$(awk '{print $1}' <<<"$ng")
    r=$(ratio "$n_rps" "$ng_rps")
    row "cache hit 1 KiB, $conns conns: req/s" "$n_rps" "$ng_rps (nginx proxy_cache)" "$r" "≥ 1.2" "$(at_least "$r" 1.2)"
done
origin_requests=$(grep -c ' request' "$WORK/serve.log" || true)
log "origin saw $origin_requests requests in all (the two warm-ups and nothing more is the goal)"
