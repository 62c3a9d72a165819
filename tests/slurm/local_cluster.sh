# A real one-node Slurm cluster on localhost, for the Slurm tests: munged, slurmctld and slurmd from
# Debian's packages (slurm-wlm, munge), everything - key, sockets, state, spool, logs, slurm.conf -
# in one directory, on ports nobody else uses, stopped by pid. Source it, then
#
#   slurm_cluster_check            prints why the cluster cannot start here (root, packages), or nothing
#   slurm_cluster_start DIR        start the daemons; exports SLURM_CONF; waits until the node is idle
#   slurm_cluster_stop DIR         cancel every job, stop the daemons by pid, wait for them
#
# The node advertises 8 CPUs (more than a CI machine has: SlurmdParameters=config_overrides lets
# slurmd accept it, so 3 or 4 CPU ranks fit one node) and 8 "GPUs": character devices made with
# mknod that alias /dev/null, so jobs that ask for --gpus-per-node get CUDA_VISIBLE_DEVICES set as
# on a GPU node (nothing opens them). Without mknod rights the node has no GPUs (slurm_cluster_gpus
# says how many). ProctrackType=proctrack/linuxproc and TaskPlugin=task/none need no cgroups.

slurm_cluster_check() {
    [ "$(id -u)" -eq 0 ] || { echo "the test Slurm cluster runs its daemons as root (run as root, as CI does)"; return; }
    local p
    for p in munged slurmctld slurmd sbatch scontrol squeue; do
        command -v "$p" >/dev/null 2>&1 ||
            { echo "$p not found (launch/setup.sh installs slurm-wlm and munge)"; return; }
    done
}

slurm_cluster_gpus=0

# A TCP port for a daemon, from a range that depends on our pid (two test runs side by side pick
# different ones): below the kernel's ephemeral range (32768 and up by default), where other tests'
# outgoing connections take ports at random - a port merely not listening could still be taken that
# way ("Address already in use", seen once in CI) - and in no socket's use now.
slurm_free_port() {
    local p=$((20000 + ($$ * 7 + $1) % 12000))
    while ss -tan 2>/dev/null | awk '{print $4}' | grep -q ":$p\$"; do p=$((p + 1)); done
    echo "$p"
}

slurm_cluster_start() {
    local d=$1 host cpus=8 mem gres="" i
    host=$(hostname -s)
    mem=$(awk '/MemTotal/ { print int($2 / 1024 / 2) }' /proc/meminfo)
    mkdir -p "$d/munge" "$d/state" "$d/spool" "$d/log" "$d/dev"
    chmod 700 "$d/munge"
    head -c 1024 /dev/urandom >"$d/munge/key"
    chmod 600 "$d/munge/key"
    munged --force --socket="$d/munge/sock" --key-file="$d/munge/key" --pid-file="$d/munge/pid" \
        --log-file="$d/log/munged.log" --seed-file="$d/munge/seed" || { echo "munged failed to start" >&2; return 1; }

    slurm_cluster_gpus=0
    for i in 0 1 2 3 4 5 6 7; do
        mknod "$d/dev/gpu$i" c 1 3 2>/dev/null || break
        slurm_cluster_gpus=$((i + 1))
    done
    : >"$d/gres.conf"
    if [ "$slurm_cluster_gpus" -gt 0 ]; then
        gres="Gres=gpu:$slurm_cluster_gpus"
        echo "NodeName=$host Name=gpu File=$d/dev/gpu[0-$((slurm_cluster_gpus - 1))]" >"$d/gres.conf"
    fi
    cat >"$d/slurm.conf" <<EOF
ClusterName=mmupttest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$(slurm_free_port 1)
SlurmdPort=$(slurm_free_port 2)
AuthType=auth/munge
AuthInfo=socket=$d/munge/sock
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$d/state
SlurmdSpoolDir=$d/spool
SlurmctldPidFile=$d/slurmctld.pid
SlurmdPidFile=$d/slurmd.pid
SlurmctldLogFile=$d/log/slurmctld.log
SlurmdLogFile=$d/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SlurmdParameters=config_overrides
SchedulerType=sched/builtin
SchedulerParameters=sched_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
MailProg=/bin/true
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobRequeue=1
MinJobAge=3600
KillWait=10
GresTypes=gpu
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem $gres State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    export SLURM_CONF=$d/slurm.conf
    slurmctld -i || { echo "slurmctld failed to start: $(tail -3 "$d/log/slurmctld.log" 2>/dev/null)" >&2; return 1; }
    slurmd || { echo "slurmd failed to start: $(tail -3 "$d/log/slurmd.log" 2>/dev/null)" >&2; return 1; }
    for i in $(seq 60); do
        [ "$(sinfo -h -N -o %t 2>/dev/null)" = idle ] && return 0
        sleep 0.5
    done
    echo "the test node never became idle: $(sinfo -N 2>&1 | tail -1); slurmd log: $(tail -3 "$d/log/slurmd.log")" >&2
    return 1
}

# slurm_job_wait JOBID STATE SECONDS: wait until the job reaches STATE; 0 if it did.
slurm_job_state() { scontrol show job "$1" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p'; }
slurm_job_wait() {
    local i st
    for i in $(seq $(($3 * 2))); do
        st=$(slurm_job_state "$1")
        [ "$st" = "$2" ] && return 0
        case "$st" in FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE) [ "$2" = "$st" ] || return 1 ;; esac
        sleep 0.5
    done
    return 1
}

slurm_cluster_stop() {
    local d=$1 f pid i
    if [ -n "${SLURM_CONF:-}" ] && [ -f "$d/slurmctld.pid" ]; then
        scancel --user=root >/dev/null 2>&1
        for i in $(seq 40); do [ -z "$(squeue -h 2>/dev/null)" ] && break; sleep 0.25; done
    fi
    for f in "$d/slurmd.pid" "$d/slurmctld.pid" "$d/munge/pid"; do
        [ -f "$f" ] || continue
        pid=$(cat "$f")
        kill "$pid" 2>/dev/null || continue
        for i in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
        kill -9 "$pid" 2>/dev/null || true
    done
}
