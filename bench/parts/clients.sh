#!/usr/bin/env bash
# Requests/s unpinned, whatever the client's settings: `netrun serve`
# against nginx (worker_processes auto) and `netrun proxy` cache hits
# against nginx proxy_cache, at 1, 50 and 200 keep-alive connections, each
# measured with wrk -t1, wrk -t2 and oha (one run each, the two servers back
# to back). Targets: origin ≥ 1.0× nginx, cache hits ≥ 1.2× proxy_cache.
source "$(dirname "$0")/../lib.sh"
need nginx wrk oha python3 curl

WWW=$(bench_www)
o_port=$(free_port)
spawn "$NETRUN" serve --http "127.0.0.1:$o_port" --udp 127.0.0.1:0 --www "$WWW" --max-age 1h \
    >/dev/null 2>"$WORK/serve.log"
p_port=$(free_port)
spawn "$NETRUN" proxy --http "127.0.0.1:$p_port" --udp 127.0.0.1:0 \
    --upstream "127.0.0.1:$o_port" --udp-upstream 127.0.0.1:9 >/dev/null 2>"$WORK/proxy.log"
ng_port=$(free_port)
c_port=$(free_port)
mkdir -p "$WORK/nginx-cache"
chmod a+rwx "$WORK/nginx-cache"
nginx_start both "
    proxy_cache_path $WORK/nginx-cache keys_zone=hits:10m;
    server { listen 127.0.0.1:$ng_port; root $WWW; keepalive_requests 10000000; }
    server {
        listen 127.0.0.1:$c_port;
        keepalive_requests 10000000;
        location / {
            proxy_pass http://127.0.0.1:$o_port;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_cache hits;
            proxy_cache_valid 200 1h;
        }
    }"
for p in "$o_port" "$p_port" "$ng_port" "$c_port"; do wait_tcp "$p"; done
for p in "$o_port" "$p_port" "$ng_port" "$c_port"; do
    curl -s -o /dev/null "http://127.0.0.1:$p/1k.txt"
    expect_file "http://127.0.0.1:$p/1k.txt" 1024
done

# rps CLIENT URL CONNS: requests/s of one run.
rps() {
    case $1 in
    wrk-t1 | wrk-t2)
        wrk "-t${1#wrk-t}" -c"$3" -d"$DURATION" "$2" | awk '/Requests\/sec/ {print $2}'
        ;;
    oha) oha_once "$2" "$3" | awk '{print $1}' ;;
    esac
}

for what in origin cache; do
    if [ "$what" = origin ]; then
        n_url="http://127.0.0.1:$o_port/1k.txt" ref_url="http://127.0.0.1:$ng_port/1k.txt" target=1.0 ref=nginx
    else
        n_url="http://127.0.0.1:$p_port/1k.txt" ref_url="http://127.0.0.1:$c_port/1k.txt" target=1.2 ref="nginx proxy_cache"
    fi
    for conns in 1 50 200; do
        for client in wrk-t1 wrk-t2 oha; do
            # wrk needs at least as many connections as threads.
            [ "$client" = wrk-t2 ] && [ "$conns" -lt 2 ] && continue
            log "$what, $conns conns, $client"
            n=$(rps "$client" "$n_url" "$conns")
            r=$(rps "$client" "$ref_url" "$conns")
            q=$(ratio "$n" "$r")
            row "$what 1 KiB, $conns conns, $client: req/s" "$n" "$r ($ref)" "$q" "≥ $target" "$(at_least "$q" "$target")"
        done
    done
done
