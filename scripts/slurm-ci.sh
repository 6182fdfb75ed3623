#!/usr/bin/env bash
# A real single-node Slurm for tests: install, start, stop.   usage: scripts/slurm-ci.sh up|down|status
#
# One node "localhost" (CPUs=64 by config_overrides, 8 fake GPUs made with mknod), two partitions that mimic
# the user's queues: gpu_6000ada (Default) and gpu_h200, the latter carrying a QOS with MaxSubmitJobsPerUser
# so the site's submit limit can be tested. Accounting (slurmdbd on mariadb) is on, because `sacct` is how
# jobs that left the queue are settled. Needs root (daemons, mknod, apt-get); no systemd.
#
# Facts this rests on: ../shared reference "slurm-ci.md" (Slurm 22.05 on Debian bookworm).
# Everything lives in $XDIMO_SLURM_STATE (default /tmp/xdimo-slurm); the only file outside it is the link
# /etc/slurm/slurm.conf, so that `sinfo`, `sbatch`, ... work for any shell without SLURM_CONF.
# `up` twice is a no-op; `up` after a half-dead start restarts everything from a fresh state dir
# (a drained node would otherwise stay drained across restarts).
set -euo pipefail

STATE=${XDIMO_SLURM_STATE:-/tmp/xdimo-slurm}
DB_PORT=${XDIMO_SLURM_DB_PORT:-3316}          # not 3306: keep clear of a mariadb the machine may run
SUBMIT_LIMIT=${XDIMO_SLURM_SUBMIT_LIMIT:-2}    # MaxSubmitJobsPerUser on gpu_h200 (running + pending)
CLUSTER_NAME=xdimo
QOS_NAME=h200_submit_limit
NGPUS=8
CONF=$STATE/etc/slurm.conf
SYS_CONF=/etc/slurm/slurm.conf
PACKAGES=(slurmctld slurmd slurm-client munge slurmdbd mariadb-server)
export SLURM_CONF=$CONF

log() { printf 'slurm-ci: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# --- install --------------------------------------------------------------------------------------------

install_packages() {
    local missing=()
    for bin in slurmctld slurmd sbatch munged slurmdbd mariadbd; do
        command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ] || missing+=("$bin")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        log "packages already installed"
        return
    fi
    [ "$(id -u)" = 0 ] || die "missing ${missing[*]}; run as root to apt-get install them"
    local t0; t0=$(now)
    # policy-rc.d keeps the packages' own services from starting: this script starts the daemons itself.
    DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" >/dev/null
    log "installed ${PACKAGES[*]} in $(elapsed "$t0") s"
}

# --- configuration --------------------------------------------------------------------------------------

write_configs() {
    local host; host=$(hostname -s)
    mkdir -p "$STATE"/{etc,run,log,ctld,spool,fakegpu,mysql,mysql-run}
    # Gres files must be character devices, or slurmd drops the GPUs and drains the node.
    for i in $(seq 0 $((NGPUS - 1))); do
        [ -c "$STATE/fakegpu/gpu$i" ] || mknod "$STATE/fakegpu/gpu$i" c 1 3
    done
    cat >"$CONF" <<EOF
# written by xdimo scripts/slurm-ci.sh: a throwaway single-node test cluster
ClusterName=$CLUSTER_NAME
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
ReturnToService=2
MailProg=/bin/true
KillWait=5
MinJobAge=300
GresTypes=gpu
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStorageTRES=gres/gpu
AccountingStorageEnforce=limits,qos
SchedulerParameters=sched_min_interval=100000
NodeName=localhost NodeAddr=127.0.0.1 CPUs=64 RealMemory=16000 Gres=gpu:$NGPUS State=UNKNOWN
PartitionName=gpu_6000ada Nodes=localhost Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu_h200 Nodes=localhost MaxTime=INFINITE State=UP QOS=$QOS_NAME
EOF
    cat >"$STATE/etc/gres.conf" <<EOF
NodeName=localhost Name=gpu File=$STATE/fakegpu/gpu[0-$((NGPUS - 1))]
EOF
    cat >"$STATE/etc/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdHost=$host
DbdAddr=127.0.0.1
SlurmUser=root
PidFile=$STATE/run/slurmdbd.pid
LogFile=$STATE/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=xdimo
StorageLoc=slurm_acct_db
EOF
    chmod 600 "$STATE/etc/slurmdbd.conf"
    link_system_conf
}

# Clients without SLURM_CONF read /etc/slurm/slurm.conf: point it here, but never clobber a real site's file.
link_system_conf() {
    mkdir -p "$(dirname "$SYS_CONF")"
    if [ -e "$SYS_CONF" ] && [ ! -L "$SYS_CONF" ]; then
        log "leaving $SYS_CONF alone (not ours): export SLURM_CONF=$CONF to use the test cluster"
        return
    fi
    ln -sfn "$CONF" "$SYS_CONF"
}

# --- daemons --------------------------------------------------------------------------------------------

pid_alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_for() {  # wait_for SECONDS WHAT CMD...: poll CMD every 0.2 s
    local limit=$1 what=$2; shift 2
    local deadline=$((SECONDS + limit))
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt "$deadline" ] || die "$what not ready after ${limit}s (logs: $STATE/log)"
        sleep 0.2
    done
}

start_munge() {
    if pid_alive /run/munge/munged.pid; then return; fi
    [ -s /etc/munge/munge.key ] || runuser -u munge -- mungekey --create >/dev/null
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    runuser -u munge -- /usr/sbin/munged --force
    wait_for 10 munged test -S /run/munge/munge.socket.2
}

start_mariadb() {
    # mariadbd runs as mysql: its socket, pid and log live in a folder that user owns.
    local run=$STATE/mysql-run sock=$STATE/mysql-run/mysqld.sock
    chown -R mysql:mysql "$STATE/mysql" "$run"
    if [ ! -d "$STATE/mysql/mysql" ]; then
        mariadb-install-db --user=mysql --datadir="$STATE/mysql" --skip-test-db \
            --auth-root-authentication-method=socket >"$STATE/log/mariadb-install.log" 2>&1 \
            || die "mariadb-install-db failed (see $STATE/log/mariadb-install.log)"
    fi
    setsid mariadbd --user=mysql --datadir="$STATE/mysql" --socket="$sock" --port="$DB_PORT" \
        --bind-address=127.0.0.1 --pid-file="$run/mariadb.pid" --log-error="$run/mariadb.log" \
        --innodb-buffer-pool-size=32M --skip-log-bin </dev/null >/dev/null 2>&1 &
    wait_for 30 mariadb mariadb --socket="$sock" -uroot -e 'select 1'
    mariadb --socket="$sock" -uroot <<'EOF'
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'xdimo';
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'xdimo';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
EOF
}

# Accounting objects must exist before slurmctld starts: the partition names the QOS, and with
# AccountingStorageEnforce=limits every submitting user needs an association.
setup_accounting() {
    wait_for 30 slurmdbd sacctmgr -n list cluster
    sacctmgr -i add cluster "$CLUSTER_NAME" >/dev/null 2>&1 || true
    sacctmgr -i add qos "$QOS_NAME" MaxSubmitJobsPerUser="$SUBMIT_LIMIT" >/dev/null 2>&1 || true
    sacctmgr -i modify qos "$QOS_NAME" set MaxSubmitJobsPerUser="$SUBMIT_LIMIT" >/dev/null 2>&1 || true
    sacctmgr -i add account xdimo Cluster="$CLUSTER_NAME" Description=tests Organization=xdimo >/dev/null 2>&1 || true
    local users=(root)
    [ -n "${SUDO_USER:-}" ] && users+=("$SUDO_USER")
    for extra in ${XDIMO_SLURM_USERS:-}; do users+=("$extra"); done
    for u in "${users[@]}"; do
        sacctmgr -i add user "$u" Account=xdimo Cluster="$CLUSTER_NAME" >/dev/null 2>&1 || true
    done
    sacctmgr -n -P list assoc user=root format=user | grep -qx root || die "no accounting association for root"
}

node_idle() { sinfo -h -n localhost -o %T | grep -qx idle; }

start_slurm() {
    local t0; t0=$(now)
    slurmdbd || die "slurmdbd did not start (see $STATE/log/slurmdbd.log)"
    setup_accounting
    log "slurmdbd + accounting ready in $(elapsed "$t0") s"
    slurmctld -i || die "slurmctld did not start (see $STATE/log/slurmctld.log)"
    wait_for 30 slurmctld scontrol ping
    slurmd -N localhost || die "slurmd did not start (see $STATE/log/slurmd.log)"
    wait_for 60 "node localhost (idle)" node_idle
    log "slurmctld + slurmd ready in $(elapsed "$t0") s"
}

is_up() {
    pid_alive "$STATE/run/slurmctld.pid" && pid_alive "$STATE/run/slurmd.pid" \
        && pid_alive "$STATE/run/slurmdbd.pid" && pid_alive "$STATE/mysql-run/mariadb.pid" \
        && scontrol ping >/dev/null 2>&1
}

cmd_up() {
    [ "$(id -u)" = 0 ] || die "run as root (starts daemons, makes device nodes)"
    local t0
    install_packages
    if is_up; then
        link_system_conf
        log "already up (state $STATE)"
        return
    fi
    stop_daemons
    rm -rf "$STATE"
    t0=$(now)
    write_configs
    start_munge
    start_mariadb
    log "mariadb ready at $(elapsed "$t0") s"
    start_slurm
    log "up in $(elapsed "$t0") s (state $STATE; partitions: $(sinfo -h -o %P | tr '\n' ' '))"
}

# --- stop -----------------------------------------------------------------------------------------------

drain_queue() {
    scontrol ping >/dev/null 2>&1 || return 0
    local ids; ids=$(squeue -h -o %A 2>/dev/null || true)
    [ -z "$ids" ] && return 0
    # shellcheck disable=SC2086
    scancel $ids 2>/dev/null || true
    local deadline=$((SECONDS + 30))
    while [ -n "$(squeue -h -o %A 2>/dev/null)" ] && [ $SECONDS -lt $deadline ]; do sleep 0.5; done
}

stop_pidfile() {  # stop_pidfile FILE NAME: TERM, wait up to 15 s, then KILL
    local file=$1 name=$2 pid t0; t0=$(now)
    [ -s "$file" ] || return 0
    pid=$(cat "$file")
    kill -0 "$pid" 2>/dev/null || { rm -f "$file"; return 0; }
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 75); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
        log "$name ($pid) ignored TERM; killing"
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$file"
    log "stopped $name in $(elapsed "$t0") s"
}

stop_daemons() {
    # slurmd and slurmctld stop side by side; slurmdbd after slurmctld (which flushes accounting to it on
    # the way out), mariadb last.
    stop_pidfile "$STATE/run/slurmd.pid" slurmd &
    stop_pidfile "$STATE/run/slurmctld.pid" slurmctld
    wait
    stop_pidfile "$STATE/run/slurmdbd.pid" slurmdbd
    stop_pidfile "$STATE/mysql-run/mariadb.pid" mariadbd
}

cmd_down() {
    local t0; t0=$(now)
    [ -f "$CONF" ] || { log "not up (no $CONF)"; return 0; }
    drain_queue
    stop_daemons
    # munged is left running: it is shared with anything else on the machine that uses munge.
    log "down in $(elapsed "$t0") s"
}

cmd_status() {
    if is_up; then
        sinfo -o '%P %a %D %T %G' && squeue
    else
        log "not up (state $STATE)"
        return 1
    fi
}

case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
