#!/usr/bin/env bash
# A single-node Slurm cluster in one folder, for tests and for trying the
# netrun job scripts on a laptop: a munge key, slurm.conf, and munged,
# slurmctld and slurmd started as plain background processes (no systemd).
#
#   deploy/slurm/test-cluster.sh up   [DIR]   start it; prints `export SLURM_CONF=…`
#   deploy/slurm/test-cluster.sh down [DIR]   stop its daemons, wait until they are gone
#
# DIR (default /tmp/netrun-slurm) holds everything: the configuration, the
# daemons' state, pid files and logs, and the job completion log that
# `sacct --completion` reads (no slurmdbd here). Needs root (slurmd runs
# jobs as their submitter) and Debian's slurmctld, slurmd, slurm-client and
# munge packages. Nothing outside DIR is touched: the munge socket and the
# ports (two free ones, picked at `up`) are this cluster's own, so a system
# Slurm or munge on the same machine is left alone.
set -euo pipefail

usage() {
    echo "usage: $0 up|down [DIR]" >&2
    exit 2
}

[ $# -ge 1 ] || usage
action=$1
dir=${2:-/tmp/netrun-slurm}

# The node gets more CPUs than the machine has (with config_overrides), so
# that N agents of one array job run at once even on a two-core laptop: they
# mostly wait on the network, and a barrier is only tested if all of them run.
NODE_CPUS=${NODE_CPUS:-16}
NODE=netrun-node

daemon_pids() {
    local f
    for f in munged slurmctld slurmd; do
        [ -s "$dir/run/$f.pid" ] && cat "$dir/run/$f.pid"
    done
    return 0
}

# Waits (up to 20 s) until none of the given pids is alive.
wait_gone() {
    local pid i
    for i in $(seq 200); do
        local alive=0
        for pid in "$@"; do
            kill -0 "$pid" 2>/dev/null && alive=1
        done
        [ "$alive" = 0 ] && return 0
        sleep 0.1
    done
    return 1
}

# A TCP port nobody listens on, from the ephemeral range's lower neighbours.
free_port() {
    local port
    while :; do
        port=$((20000 + RANDOM % 20000))
        if ! ss -Hltn "sport = :$port" | grep -q .; then
            echo "$port"
            return
        fi
    done
}

down() {
    [ -d "$dir/run" ] || { echo "no cluster in $dir"; return 0; }
    # slurmd first (it kills the job steps it still runs), then the controller, then munge.
    local name pid pids=()
    for name in slurmd slurmctld munged; do
        if [ -s "$dir/run/$name.pid" ]; then
            pid=$(cat "$dir/run/$name.pid")
            if kill -0 "$pid" 2>/dev/null; then
                kill -TERM "$pid"
                pids+=("$pid")
                if ! wait_gone "$pid"; then
                    echo "$name ($pid) did not stop in 20 s; killing it" >&2
                    kill -KILL "$pid" 2>/dev/null || true
                    wait_gone "$pid" || true
                fi
            fi
            rm -f "$dir/run/$name.pid"
        fi
    done
    echo "cluster in $dir stopped (${#pids[@]} daemons)"
}

up() {
    if [ "$(id -u)" != 0 ]; then
        echo "test-cluster.sh up needs root (slurmd starts jobs as their users)" >&2
        exit 3
    fi
    local bin
    for bin in munged slurmctld slurmd sbatch; do
        if ! command -v "$bin" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$bin" ]; then
            echo "$bin not found: apt-get install -y slurmctld slurmd slurm-client munge" >&2
            exit 3
        fi
    done
    export PATH="$PATH:/usr/sbin"
    if [ -n "$(daemon_pids)" ] && kill -0 $(daemon_pids) 2>/dev/null; then
        echo "a cluster already runs in $dir; run: $0 down $dir" >&2
        exit 1
    fi

    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    # munged refuses key files and sockets in folders others may write to.
    chmod 0755 "$dir"
    mkdir -p "$dir/run" "$dir/log" "$dir/munge" "$dir/ctld" "$dir/spool"
    chmod 0700 "$dir/munge"
    chmod 0755 "$dir/run"
    if [ ! -s "$dir/munge/munge.key" ]; then
        dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
    fi
    chmod 0400 "$dir/munge/munge.key"
    local socket=$dir/run/munge.socket
    munged --force \
        --socket="$socket" \
        --key-file="$dir/munge/munge.key" \
        --pid-file="$dir/run/munged.pid" \
        --log-file="$dir/log/munged.log" \
        --seed-file="$dir/munge/munged.seed"
    # munged forks and writes its pid file once it serves.
    local i
    for i in $(seq 100); do
        [ -S "$socket" ] && [ -s "$dir/run/munged.pid" ] && break
        sleep 0.1
    done
    [ -S "$socket" ] || { echo "munged did not start: see $dir/log/munged.log" >&2; exit 3; }

    local ctld_port slurmd_port
    ctld_port=$(free_port)
    slurmd_port=$(free_port)
    while [ "$slurmd_port" = "$ctld_port" ]; do slurmd_port=$(free_port); done
    cat >"$dir/slurm.conf" <<EOF
# Written by deploy/slurm/test-cluster.sh: one node, everything under $dir.
ClusterName=netrun-test
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$socket
StateSaveLocation=$dir/ctld
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
PlugStackConfig=$dir/plugstack.conf
# No cgroups: plain process tracking works in any container.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
# No slurmdbd: finished jobs go to a text log that sacct --completion reads.
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/jobcomp.log
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
SlurmdParameters=config_overrides
# The merge job waits on the agents: a failed agent cancels it at once
# rather than leaving it pending with DependencyNeverSatisfied.
DependencyParameters=kill_invalid_depend
MinJobAge=600
NodeName=$NODE NodeHostname=$(hostname -s) NodeAddr=127.0.0.1 CPUs=$NODE_CPUS RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
EOF
    : >"$dir/plugstack.conf"
    export SLURM_CONF=$dir/slurm.conf
    slurmctld -f "$SLURM_CONF"
    slurmd -f "$SLURM_CONF" -N "$NODE"

    # Ready when the node takes jobs.
    local state=""
    for i in $(seq 300); do
        state=$(sinfo -h -n "$NODE" -o %t 2>/dev/null || true)
        case "$state" in idle | mix | alloc) break ;; esac
        sleep 0.1
    done
    case "$state" in
        idle | mix | alloc) ;;
        *)
            echo "the node did not come up (state '$state'): see $dir/log/" >&2
            down
            exit 3
            ;;
    esac
    echo "export SLURM_CONF=$SLURM_CONF" >"$dir/env"
    echo "cluster up in $dir (node $NODE, $NODE_CPUS CPUs, slurmctld on port $ctld_port)"
    echo "export SLURM_CONF=$SLURM_CONF"
}

case "$action" in
    up) up ;;
    down) down ;;
    *) usage ;;
esac
