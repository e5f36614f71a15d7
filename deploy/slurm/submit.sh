#!/usr/bin/env bash
# Submits a distributed netrun run to Slurm: an array job of N load agents
# (netrun-agents.sbatch, agent K runs `--segment K/N` into OUT/agent-K) and a
# merge job that runs once all of them succeeded (netrun-merge.sbatch, into
# OUT/merged).
#
#   submit.sh SCENARIO N OUT [--wait] [--start-in SECONDS] [-- MERGE_FLAGS...]
#
# Every agent gets the same `--start-at`: SECONDS (default 30) after
# submission, time for the scheduler to start all N tasks. Prints the job
# ids as `agents_job=…`, `merge_job=…` and `start_at=…`. With --wait, returns
# when the merge job has ended, with its exit code (0 passed, 1 an
# expectation or baseline failed, 2 bad input), or 3 when it did not run
# (an agent failed, so the merge was cancelled). MERGE_FLAGS go to `netrun
# merge` (--baseline FILE, --junit FILE, --json). The netrun run is $NETRUN,
# else the one on PATH; Slurm options come from sbatch's usual SBATCH_*
# variables (SBATCH_PARTITION, SBATCH_ACCOUNT, ...), and the agents' array
# alone gets the sbatch options in NETRUN_AGENTS_SBATCH (split at spaces:
# "--exclusive --exclude=node7").
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)

usage() {
    echo "usage: $0 SCENARIO N OUT [--wait] [--start-in SECONDS] [-- MERGE_FLAGS...]" >&2
    exit 2
}

[ $# -ge 3 ] || usage
scenario=$1
segments=$2
out=$3
shift 3
wait=0
start_in=30
merge_flags=()
while [ $# -gt 0 ]; do
    case "$1" in
        --wait) wait=1 ;;
        --start-in)
            [ $# -ge 2 ] || usage
            start_in=$2
            shift
            ;;
        --)
            shift
            merge_flags=("$@")
            break
            ;;
        *) usage ;;
    esac
    shift
done

case "$segments" in
    '' | *[!0-9]* | 0) echo "N must be a whole number of agents, 1 or more (got '$segments')" >&2; exit 2 ;;
esac
case "$start_in" in
    '' | *[!0-9]*) echo "--start-in takes whole seconds (got '$start_in')" >&2; exit 2 ;;
esac
[ -f "$scenario" ] || { echo "scenario $scenario not found" >&2; exit 2; }
netrun=${NETRUN:-$(command -v netrun || true)}
if [ -z "$netrun" ] || [ ! -x "$netrun" ]; then
    echo "netrun not found: set NETRUN to its path or put it on PATH" >&2
    exit 2
fi

# The jobs run elsewhere, maybe in another folder: give them absolute paths.
scenario=$(cd "$(dirname "$scenario")" && pwd)/$(basename "$scenario")
netrun=$(cd "$(dirname "$netrun")" && pwd)/$(basename "$netrun")
mkdir -p "$out"
out=$(cd "$out" && pwd)
for old in "$out"/agent-* "$out/merged"; do
    if [ -e "$old" ]; then
        echo "$out already holds results ($old); give a new folder" >&2
        exit 2
    fi
done
mkdir -p "$out/logs"

start_at=$(date -u -d "@$(($(date +%s) + start_in))" +%Y-%m-%dT%H:%M:%SZ)

# shellcheck disable=SC2206 # split at spaces on purpose
agent_opts=(${NETRUN_AGENTS_SBATCH:-})
agents=$(sbatch --parsable \
    --array="1-$segments" \
    "${agent_opts[@]}" \
    --output="$out/logs/agent-%a.out" \
    --export="ALL,NETRUN=$netrun" \
    "$here/netrun-agents.sbatch" "$scenario" "$segments" "$out" "$start_at")
agents=${agents%%;*}
merge=$(sbatch --parsable \
    --dependency="afterok:$agents" \
    --kill-on-invalid-dep=yes \
    --output="$out/logs/merge.out" \
    --export="ALL,NETRUN=$netrun" \
    "$here/netrun-merge.sbatch" "$segments" "$out" "${merge_flags[@]}")
merge=${merge%%;*}
echo "agents_job=$agents"
echo "merge_job=$merge"
echo "start_at=$start_at"

[ "$wait" = 1 ] || exit 0

# `sbatch --wait` exits 0 for a job cancelled because its dependency failed,
# so ask scontrol for the job's state until it ends.
job_field() { # JOB FIELD: one field of `scontrol show job -o`
    scontrol show job -o "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1
}
state=""
unknown=0
while :; do
    state=$(job_field "$merge" JobState)
    case "$state" in
        PENDING | CONFIGURING | RUNNING | COMPLETING | SUSPENDED | REQUEUED | RESIZING) unknown=0 ;;
        # scontrol forgets a job MinJobAge after it ended; a few misses in a
        # row (the controller busy) are not yet that.
        "") unknown=$((unknown + 1)); [ "$unknown" -lt 30 ] || break ;;
        *) break ;;
    esac
    sleep 1
done

# Each agent's state, from the array's tasks (one line each).
scontrol show job -o "$agents" 2>/dev/null | while read -r line; do
    task=$(echo "$line" | tr ' ' '\n' | sed -n 's/^ArrayTaskId=//p')
    st=$(echo "$line" | tr ' ' '\n' | sed -n 's/^JobState=//p')
    code=$(echo "$line" | tr ' ' '\n' | sed -n 's/^ExitCode=//p')
    echo "agent $task: $st (exit $code), log $out/logs/agent-$task.out"
done

code=$(job_field "$merge" ExitCode)
code=${code%%:*}
if [ "$state" = COMPLETED ] || [ "$state" = FAILED ]; then
    echo "merge: $state (exit ${code:-?}), log $out/logs/merge.out"
    exit "${code:-3}"
fi
echo "merge: $state, it did not run to its end (an agent failed?); see sacct -j $agents" >&2
exit 3
