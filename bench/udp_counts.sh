#!/usr/bin/env bash
# bench/udp_counts.sh BIN [RATE] [SECS] [proxy|direct]: one `netrun probe udp`
# run against a fresh echo (through a fresh unimpaired proxy by default), with
# what each party did per datagram sent, counted by `perf stat` (software
# events and syscall tracepoints: they work without hardware counters, and
# unlike wall-clock figures they stay meaningful on a busy machine): CPU
# (task-clock), epoll_wait, recvmmsg, sendmmsg, sendto, futex, sched_yield
# calls, context switches and wake-ups. Optional: PROBE_BIN (another build
# for the probe), PIN_E / PIN_P / PIN_C (a prefix such as "taskset -c 1" for
# echo, proxy, probe). Loopback only; bounded by RATE x SECS datagrams.
set -u
BIN=$(realpath "$1"); RATE=${2:-50000}; SECS=${3:-2}; MODE=${4:-proxy}
D=$(mktemp -d); cd $D
fp() { python3 -c 'import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
E=$(fp); P=$(fp); W=$(mktemp -d)
${PIN_E:-} $BIN serve --http 127.0.0.1:0 --udp 127.0.0.1:$E --www $W >/dev/null 2>&1 & SP=$!
${PIN_P:-} $BIN proxy --http 127.0.0.1:0 --udp 127.0.0.1:$P --upstream 127.0.0.1:9 --udp-upstream 127.0.0.1:$E >/dev/null 2>&1 & PP=$!
sleep 0.5
EV=task-clock,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_recvmmsg,syscalls:sys_enter_sendmmsg,syscalls:sys_enter_sendto,syscalls:sys_enter_recvfrom,syscalls:sys_enter_futex,syscalls:sys_enter_sched_yield,sched:sched_switch,sched:sched_wakeup
perf stat -x, -e $EV -o echo.txt -p $SP & R1=$!
perf stat -x, -e $EV -o proxy.txt -p $PP & R2=$!
sleep 0.3
N=$(python3 -c "print(int($RATE*$SECS))")
T=$P; [ "$MODE" = direct ] && T=$E
perf stat -x, -e $EV -o probe.txt -- ${PIN_C:-} $(realpath "${PROBE_BIN:-$BIN}") probe udp 127.0.0.1:$T --count $N --interval $((1000000000/RATE))ns --timeout 1s --json -q > probe.json 2>/dev/null
kill -INT $R1 $R2; wait $R1 $R2
kill $SP $PP; wait $SP $PP 2>/dev/null
echo "$MODE $RATE/s x ${SECS}s load $(cut -d' ' -f1 /proc/loadavg): $(jq -c '{sent,loss_percent,latency_p50_ms,latency_p99_ms,pacing_mean_ms}' probe.json)"
for f in echo proxy probe; do
  [ "$MODE" = direct ] && [ $f = proxy ] && continue
  printf "%-6s" $f; awk -F, -v n=$N '/^[0-9]/ { split($3,a,":"); name=a[2]?a[2]:$3; sub("sys_enter_","",name); if ($3=="task-clock") printf " cpu_us=%.2f", $1*1000/n; else printf " %s=%.2f", name, $1/n }' $f.txt; echo
done
rm -rf $D $W
