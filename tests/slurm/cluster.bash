# A private one-node Slurm cluster for the tests in tests/slurm/ (sourced
# after tests/integration/lib.sh, so $T is this test's scratch directory).
#
# slurm_up starts munged (own key, socket and files under $T/slurm), slurmctld
# and slurmd (foreground processes of this test, ports picked free) for this
# host, NodeAddr 127.0.0.1, as root: ProctrackType=proctrack/linuxproc,
# TaskPlugin=task/none, SelectType=select/cons_tres, no accounting. It exports
# SLURM_CONF so that srun, squeue, scancel and sweepd's launcher use it, and
# waits until a step runs. slurm_down (registered with at_exit) stops all
# three. slurm_unusable prints why this machine cannot run slurmd (not root,
# the packages missing), or nothing when it can.
SLURM_DIR=$T/slurm
SLURM_PIDS=()

slurm_unusable() {
    if [ "$(id -u)" != 0 ]; then
        echo "slurmd needs root (this test runs as uid $(id -u))"
        return
    fi
    local c
    for c in munged slurmctld slurmd srun squeue scancel; do
        command -v "$c" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin command -v "$c" >/dev/null 2>&1 ||
            { echo "$c is missing (Debian packages slurm-wlm and munge: etc/install-deps --check)"; return; }
    done
}

# A TCP port nobody listens on (from a range the tests use alone).
_free_port() {
    local p
    for p in $(shuf -i 20000-40000 -n 50); do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return
        fi
    done
    echo 16817
}

slurm_up() {
    export PATH=$PATH:/usr/sbin
    mkdir -p "$SLURM_DIR/state" "$SLURM_DIR/spool"
    chmod 700 "$SLURM_DIR"
    head -c 128 /dev/urandom >"$SLURM_DIR/munge.key"
    chmod 400 "$SLURM_DIR/munge.key"
    munged --force --socket="$SLURM_DIR/munge.sock" --key-file="$SLURM_DIR/munge.key" \
        --pid-file="$SLURM_DIR/munged.pid" --log-file="$SLURM_DIR/munged.log" \
        --seed-file="$SLURM_DIR/munged.seed" || return 1
    local host cpus mem cport dport
    host=$(hostname -s)
    cpus=$(nproc)
    mem=$(awk '/MemTotal/ {print int($2 / 1024) - 512}' /proc/meminfo)
    cport=$(_free_port)
    dport=$(_free_port)
    [ "$dport" != "$cport" ] || dport=$((cport + 1))
    cat >"$SLURM_DIR/slurm.conf" <<CONF
ClusterName=sweepdtest
SlurmctldHost=$host
SlurmUser=root
SlurmctldPort=$cport
SlurmdPort=$dport
AuthType=auth/munge
AuthInfo=socket=$SLURM_DIR/munge.sock
StateSaveLocation=$SLURM_DIR/state
SlurmdSpoolDir=$SLURM_DIR/spool
SlurmctldPidFile=$SLURM_DIR/slurmctld.pid
SlurmdPidFile=$SLURM_DIR/slurmd.pid
SlurmctldLogFile=$SLURM_DIR/slurmctld.log
SlurmdLogFile=$SLURM_DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
MpiDefault=none
ReturnToService=2
KillWait=5
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
    export SLURM_CONF=$SLURM_DIR/slurm.conf
    slurmctld -D -c -f "$SLURM_CONF" >>"$SLURM_DIR/slurmctld.out" 2>&1 &
    SLURM_PIDS+=($!)
    slurmd -D -f "$SLURM_CONF" >>"$SLURM_DIR/slurmd.out" 2>&1 &
    SLURM_PIDS+=($!)
    local i
    for i in $(seq 1 100); do
        if [ "$(srun --immediate=5 -n1 -J sweepd-cluster-up echo up 2>/dev/null)" = up ]; then
            return 0
        fi
        sleep 0.2
    done
    echo "# slurm did not come up; logs:" >&2
    tail -n 20 "$SLURM_DIR"/*.log >&2
    return 1
}

slurm_down() {
    local p
    for p in "${SLURM_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${SLURM_PIDS[@]}"; do wait "$p" 2>/dev/null; done
    SLURM_PIDS=()
    [ -f "$SLURM_DIR/munged.pid" ] && kill -TERM "$(cat "$SLURM_DIR/munged.pid")" 2>/dev/null
    rm -f "$SLURM_DIR/munged.pid"
}
