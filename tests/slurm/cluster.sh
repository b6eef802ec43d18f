#!/usr/bin/env bash
# A throw-away, single-node SLURM cluster for tests (Debian/Ubuntu, root, no systemd needed).
#
#   tests/slurm/cluster.sh start DIR   install slurm-wlm + munge if missing, write DIR/slurm.conf,
#                                      link it to /etc/slurm/slurm.conf, start munged, slurmctld,
#                                      slurmd, wait until the node is idle.
#   tests/slurm/cluster.sh stop DIR    stop the daemons started by `start DIR`, by their pid files.
#
# Exit codes of `start`: 0 cluster up; 3 cannot run here (not root, or SLURM/munge missing and
# apt-get absent or unable to install them), printed as "SKIP: ..."; anything else is a failure.
#
# Facts this relies on (see shared notes): the config must be at /etc/slurm/slurm.conf (SLURM_CONF
# is stripped inside jobs by the jobstep plugin); no slurmdbd, so status must come from squeue and
# MinJobAge must be long; EnforcePartLimits=ALL makes oversize requests fail instead of pending
# forever. Daemons are never killed by name, only through the pid files written into DIR.
set -euo pipefail

PARTITION="${FLANNEL_SLURM_PARTITION:-debug}"
ETC_CONF=/etc/slurm/slurm.conf
MUNGE_SOCKET_DIR=/run/munge

log() { printf '[cluster] %s\n' "$*" >&2; }
die() { printf '[cluster] ERROR: %s\n' "$*" >&2; exit 1; }
skip() { printf 'SKIP: %s\n' "$*" >&2; exit 3; }

usage() {
    echo "usage: $0 {start|stop} DIR" >&2
    exit 2
}

# --- helpers ----------------------------------------------------------------------------------

pid_alive() {  # pid_alive PIDFILE -> 0 if the process in PIDFILE is running
    local f="$1" pid
    [[ -s "$f" ]] || return 1
    pid="$(tr -dc '0-9' <"$f")"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null
}

stop_pidfile() {  # stop_pidfile NAME PIDFILE: SIGTERM, wait up to 15 s, then SIGKILL
    local name="$1" f="$2" pid i
    if ! [[ -s "$f" ]]; then
        log "$name: no pid file ($f), nothing to stop"
        return 0
    fi
    pid="$(tr -dc '0-9' <"$f")"
    if [[ -z "$pid" ]] || ! kill -0 "$pid" 2>/dev/null; then
        log "$name: pid ${pid:-?} not running"
        rm -f "$f"
        return 0
    fi
    # Guard against a recycled pid: the process must still be the daemon we started.
    if [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" != "$name" ]]; then
        log "$name: pid $pid is now '$(cat "/proc/$pid/comm" 2>/dev/null)', not $name; leaving it alone"
        rm -f "$f"
        return 0
    fi
    log "$name: stopping pid $pid"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "$name: pid $pid ignored SIGTERM, sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$f"
}

wait_for_pidfile() {  # wait_for_pidfile NAME PIDFILE LOGFILE
    local name="$1" f="$2" logf="$3" i
    for ((i = 0; i < 100; i++)); do
        pid_alive "$f" && return 0
        sleep 0.1
    done
    [[ -f "$logf" ]] && tail -n 30 "$logf" >&2
    die "$name did not start (no live pid in $f)"
}

install_packages() {
    local missing=()
    command -v slurmctld >/dev/null 2>&1 || missing+=(slurmctld)
    command -v slurmd >/dev/null 2>&1 || missing+=(slurmd)
    command -v sbatch >/dev/null 2>&1 || missing+=(sbatch)
    command -v munged >/dev/null 2>&1 || [[ -x /usr/sbin/munged ]] || missing+=(munged)
    if ((${#missing[@]} == 0)); then
        return 0
    fi
    command -v apt-get >/dev/null 2>&1 ||
        skip "apt-get not found and ${missing[*]} not installed: cannot install slurm-wlm/munge here"
    log "missing: ${missing[*]}; installing slurm-wlm and munge with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    # An environment that cannot install packages (no network, no mirror) cannot run the test:
    # say so loudly as a SKIP rather than failing the workflow's tests.
    apt-get update -qq >&2 || skip "apt-get update failed (no network/mirror?)"
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >&2 ||
        skip "apt-get install slurm-wlm munge failed (see the apt output above)"
}

# --- start ------------------------------------------------------------------------------------

cmd_start() {
    local dir="$1"
    [[ "$(id -u)" == 0 ]] || skip "not root: a local SLURM cluster needs root (apt-get, daemons, /etc/slurm)"
    # Another cluster on this machine would share /etc/slurm/slurm.conf and ports 6817/6818.
    if [[ -e "$ETC_CONF" || -L "$ETC_CONF" ]]; then
        local target
        target="$(readlink -f "$ETC_CONF" || true)"
        if [[ ! -L "$ETC_CONF" ]]; then
            die "$ETC_CONF is a regular file (a real SLURM installation?); refusing to replace it"
        fi
        if [[ "$target" != "$dir/slurm.conf" ]] && [[ -n "$target" ]] &&
            pid_alive "$(dirname "$target")/slurmctld.pid"; then
            die "another test cluster is running (config $target); stop it first"
        fi
    fi

    install_packages

    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    if pid_alive "$dir/slurmctld.pid" || pid_alive "$dir/slurmd.pid"; then
        die "a cluster from $dir is already running; run '$0 stop $dir' first"
    fi
    mkdir -p "$dir/state" "$dir/spool" "$dir/log"

    # munge: reuse a munged that already answers (not ours: we will not stop it), else start one.
    rm -f "$dir/munged.pid"
    if munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
        log "munged already running; reusing it"
    else
        if [[ ! -s /etc/munge/munge.key ]]; then
            log "creating /etc/munge/munge.key"
            install -d -o munge -g munge -m 0700 /etc/munge
            if command -v mungekey >/dev/null 2>&1; then
                mungekey --create --keyfile=/etc/munge/munge.key
            else
                dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
            fi
            chown munge:munge /etc/munge/munge.key
            chmod 0400 /etc/munge/munge.key
        fi
        install -d -o munge -g munge -m 0755 "$MUNGE_SOCKET_DIR"
        install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
        # munged (running as munge) writes its pid file in its own run dir, which it can always
        # write (DIR may be a 0700 mktemp dir); DIR/munged.pid records that we started it.
        rm -f "$MUNGE_SOCKET_DIR/munged.pid"
        runuser -u munge -- /usr/sbin/munged --pid-file="$MUNGE_SOCKET_DIR/munged.pid" ||
            die "munged failed to start"
        wait_for_pidfile munged "$MUNGE_SOCKET_DIR/munged.pid" /var/log/munge/munged.log
        cp "$MUNGE_SOCKET_DIR/munged.pid" "$dir/munged.pid"
        munge -n </dev/null | unmunge >/dev/null || die "munge round trip failed"
    fi

    # Node line from the hardware, RealMemory lowered to ~95 % so the node is not drained for
    # "Low RealMemory"; memory is not enforced anyway (no cgroups).
    local hw mem mem95
    hw="$(slurmd -C | head -n 1)"
    [[ "$hw" == NodeName=* ]] || die "unexpected 'slurmd -C' output: $hw"
    mem="$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$hw")"
    [[ -n "$mem" ]] || die "no RealMemory in 'slurmd -C' output: $hw"
    mem95=$((mem * 95 / 100))
    hw="$(sed -e 's/^NodeName=[^ ]* //' -e "s/RealMemory=[0-9]*/RealMemory=$mem95/" <<<"$hw")"

    cat >"$dir/slurm.conf" <<EOF
# Generated by tests/slurm/cluster.sh for a single-node test cluster. Do not use in production.
ClusterName=flanneltest
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# A job asking for more than the partition/node can give is rejected at submit time instead of
# pending forever.
EnforcePartLimits=ALL
# Finished jobs stay visible to squeue for 5 min (no accounting: squeue is the status source).
MinJobAge=300
ReturnToService=2
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/backfill
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName=localhost NodeAddr=127.0.0.1 $hw State=UNKNOWN
PartitionName=$PARTITION Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF

    mkdir -p /etc/slurm
    ln -sfn "$dir/slurm.conf" "$ETC_CONF"
    log "wrote $dir/slurm.conf, linked from $ETC_CONF"

    /usr/sbin/slurmctld || die "slurmctld failed to start (see $dir/log/slurmctld.log)"
    wait_for_pidfile slurmctld "$dir/slurmctld.pid" "$dir/log/slurmctld.log"
    /usr/sbin/slurmd -N localhost || die "slurmd failed to start (see $dir/log/slurmd.log)"
    wait_for_pidfile slurmd "$dir/slurmd.pid" "$dir/log/slurmd.log"

    local i state=""
    for ((i = 0; i < 60; i++)); do
        state="$(sinfo -h -N -n localhost -o '%t' 2>/dev/null | head -n 1 || true)"
        [[ "$state" == idle ]] && break
        sleep 0.5
    done
    if [[ "$state" != idle ]]; then
        sinfo -N -l >&2 || true
        tail -n 20 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 || true
        die "node not idle after 30 s (state: '${state:-none}')"
    fi
    log "cluster up: partition '$PARTITION', node localhost idle ($(sinfo -h -o '%c CPUs, %m MB' | head -n 1))"
}

# --- stop -------------------------------------------------------------------------------------

cmd_stop() {
    local dir="$1"
    [[ -d "$dir" ]] || { log "no such directory $dir; nothing to stop"; return 0; }
    dir="$(cd "$dir" && pwd)"
    # Jobs still running would outlive slurmd (their slurmstepd is a separate process): cancel
    # them by id first. Every job on this private test cluster belongs to the test.
    if pid_alive "$dir/slurmctld.pid" && [[ "$(readlink -f "$ETC_CONF" 2>/dev/null)" == "$dir/slurm.conf" ]]; then
        local ids i
        ids="$(squeue -h -t PENDING,RUNNING,CONFIGURING,COMPLETING,SUSPENDED -o '%i' 2>/dev/null | tr '\n' ' ')"
        if [[ -n "${ids// /}" ]]; then
            log "cancelling SLURM jobs still active: $ids"
            # shellcheck disable=SC2086
            scancel $ids 2>/dev/null || true
            for ((i = 0; i < 30; i++)); do
                [[ -z "$(squeue -h -t PENDING,RUNNING,CONFIGURING,COMPLETING,SUSPENDED -o '%i' 2>/dev/null)" ]] && break
                sleep 0.5
            done
        fi
    fi
    stop_pidfile slurmd "$dir/slurmd.pid"
    stop_pidfile slurmctld "$dir/slurmctld.pid"
    # Only a munged that `start` launched has this pid file.
    if [[ -e "$dir/munged.pid" ]]; then
        stop_pidfile munged "$dir/munged.pid"
        rm -f "$MUNGE_SOCKET_DIR/munged.pid"
    fi
    if [[ -L "$ETC_CONF" && "$(readlink -f "$ETC_CONF")" == "$dir/slurm.conf" ]]; then
        rm -f "$ETC_CONF"
        log "removed $ETC_CONF"
    fi
}

[[ $# -eq 2 ]] || usage
case "$1" in
start) cmd_start "$2" ;;
stop) cmd_stop "$2" ;;
*) usage ;;
esac
