#!/usr/bin/env bash
# One listening socket shared by the workers, or one SO_REUSEPORT socket per
# worker: requests/s unpinned with two workers each, netrun
# `--listen-sockets shared` against `per-worker` and nginx
# `worker_processes 2` without and with `listen ... reuseport`, for the
# origin's 1 KiB file and proxy cache hits, at 1, 50 and 200 keep-alive
# connections with wrk -t1, wrk -t2 and oha. The four servers of a row run
# back to back, the order turned round every other row, ROUNDS times (default
# 1); each cell is the median of its rounds. Rows: per-worker over shared
# (netrun), and reuseport over not (nginx, the reference column). No target:
# the figures choose the default.
source "$(dirname "$0")/../lib.sh"
need nginx wrk oha python3 curl

ROUNDS=${ROUNDS:-1}
WWW=$(bench_www)
o_port=$(free_port)
spawn "$NETRUN" serve --http "127.0.0.1:$o_port" --udp 127.0.0.1:0 --www "$WWW" --max-age 1h \
    --workers 2 >/dev/null 2>"$WORK/serve.log"
o_pw=$(free_port)
spawn "$NETRUN" serve --http "127.0.0.1:$o_pw" --udp 127.0.0.1:0 --www "$WWW" --max-age 1h \
    --workers 2 --listen-sockets per-worker >/dev/null 2>"$WORK/serve-pw.log"
p_port=$(free_port)
spawn "$NETRUN" proxy --http "127.0.0.1:$p_port" --udp 127.0.0.1:0 --workers 2 \
    --upstream "127.0.0.1:$o_port" --udp-upstream 127.0.0.1:9 >/dev/null 2>"$WORK/proxy.log"
p_pw=$(free_port)
spawn "$NETRUN" proxy --http "127.0.0.1:$p_pw" --udp 127.0.0.1:0 --workers 2 --listen-sockets per-worker \
    --upstream "127.0.0.1:$o_port" --udp-upstream 127.0.0.1:9 >/dev/null 2>"$WORK/proxy-pw.log"
ng=$(free_port) ng_rp=$(free_port) c=$(free_port) c_rp=$(free_port)
mkdir -p "$WORK/nginx-cache"
chmod a+rwx "$WORK/nginx-cache"
cache_server() {
    echo "server {
        listen 127.0.0.1:$1 $2;
        keepalive_requests 10000000;
        location / {
            proxy_pass http://127.0.0.1:$o_port;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_cache hits;
            proxy_cache_valid 200 1h;
        }
    }"
}
NGINX_WORKERS=2 nginx_start both "
    proxy_cache_path $WORK/nginx-cache keys_zone=hits:10m;
    server { listen 127.0.0.1:$ng; root $WWW; keepalive_requests 10000000; }
    server { listen 127.0.0.1:$ng_rp reuseport; root $WWW; keepalive_requests 10000000; }
    $(cache_server "$c" '')
    $(cache_server "$c_rp" reuseport)"
ports=("$o_port" "$o_pw" "$p_port" "$p_pw" "$ng" "$ng_rp" "$c" "$c_rp")
for p in "${ports[@]}"; do wait_tcp "$p"; done
for p in "${ports[@]}"; do
    curl -s -o /dev/null "http://127.0.0.1:$p/1k.txt"
    expect_file "http://127.0.0.1:$p/1k.txt" 1024
done
expect_hit "$p_port" "$p_pw"

# rps CLIENT PORT CONNS: requests/s of one run against 127.0.0.1:PORT/1k.txt.
rps() {
    local url="http://127.0.0.1:$2/1k.txt"
    case $1 in
    wrk-t1 | wrk-t2) wrk "-t${1#wrk-t}" -c"$3" -d"$DURATION" "$url" | awk '/Requests\/sec/ {print $2}' ;;
    oha) oha_once "$url" "$3" | awk '{print $1}' ;;
    esac
}
median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

turn=0
for what in origin cache; do
    if [ "$what" = origin ]; then
        four=("$o_port" "$o_pw" "$ng" "$ng_rp")
    else
        four=("$p_port" "$p_pw" "$c" "$c_rp")
    fi
    for conns in 1 50 200; do
        for client in wrk-t1 wrk-t2 oha; do
            [ "$client" = wrk-t2 ] && [ "$conns" -lt 2 ] && continue
            log "$what, $conns conns, $client"
            : >"$WORK/cells"
            for _ in $(seq "$ROUNDS"); do
                # Interleaved, the order reversed every other round.
                order=(0 1 2 3)
                [ $((turn % 2)) = 1 ] && order=(3 2 1 0)
                turn=$((turn + 1))
                for i in "${order[@]}"; do
                    echo "$i $(rps "$client" "${four[$i]}" "$conns")" >>"$WORK/cells"
                done
            done
            cell() { awk -v i="$1" '$1 == i {print $2}' "$WORK/cells" | median; }
            shared=$(cell 0) per=$(cell 1) n=$(cell 2) n_rp=$(cell 3)
            row "$what 1 KiB, $conns conns, $client, 2 workers: req/s shared → per-worker" \
                "$shared → $per ($(ratio "$per" "$shared")×)" \
                "nginx $n → reuseport $n_rp ($(ratio "$n_rp" "$n")×)" \
                "$(ratio "$per" "$n_rp") (per-worker / nginx reuseport)" "-" "-"
        done
    done
done
