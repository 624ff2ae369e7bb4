#!/usr/bin/env bash
# Start a real one-node SLURM cluster (munge, MariaDB, slurmdbd, slurmctld, slurmd) for
# speechmine's tests and for trying the slurm executor on one machine.
#
#   sudo scripts/slurm/start.sh            # install what is missing, start what is down
#   scripts/slurm/start.sh --check         # exit 0 when every daemon is up and the node
#                                          # is usable, 1 otherwise; starts nothing
#   export SLURM_CONF=/var/lib/speechmine-slurm/etc/slurm.conf   # then sinfo, sbatch ...
#
# Idempotent: with everything up it only checks (well under a second). Every file lives
# in the state dir ($SPEECHMINE_SLURM_DIR, default /var/lib/speechmine-slurm): configs,
# munge key, database, spool, logs, and one pid file per daemon, which is all stop.sh
# ever stops. Nothing in /etc is written, and no system service is used: clients find the
# cluster through SLURM_CONF. Why each setting is there: docs/slurm.md.
#
# Environment: SPEECHMINE_SLURM_DIR (state dir), SPEECHMINE_SLURM_PORT (slurmctld port,
# default 16817; slurmd and slurmdbd take the next two), SPEECHMINE_SLURM_MAX_ARRAY_SIZE
# (default 8), SPEECHMINE_SLURM_DEF_MEM_PER_CPU (MB, default 1024).
set -euo pipefail

STATE="${SPEECHMINE_SLURM_DIR:-/var/lib/speechmine-slurm}"
PORT="${SPEECHMINE_SLURM_PORT:-16817}"
MAX_ARRAY_SIZE="${SPEECHMINE_SLURM_MAX_ARRAY_SIZE:-8}"
DEF_MEM_PER_CPU="${SPEECHMINE_SLURM_DEF_MEM_PER_CPU:-1024}"
PARTITION=debug
CLUSTER=speechmine
WAIT_S=60  # per daemon and for the node; a cold start takes ~20 s in all

ETC="$STATE/etc" RUN="$STATE/run" LOG="$STATE/log" SPOOL="$STATE/spool" DB="$STATE/mysql"
export SLURM_CONF="$ETC/slurm.conf" MYSQL_UNIX_PORT="$RUN/mysqld.sock"
T0=$(date +%s.%N)

say() { echo "speechmine-slurm: $*"; }
die() { echo "speechmine-slurm: ERROR: $*" >&2; exit 1; }
elapsed() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

# alive NAME: the pid in $RUN/NAME.pid is a live process named NAME (a stale file, a
# reused pid of another program, or a zombie that no init reaps do not count).
alive() {
    local pid stat
    [[ -s $RUN/$1.pid ]] || return 1
    pid=$(tr -dc 0-9 <"$RUN/$1.pid")
    [[ -n $pid ]] && stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    # /proc/PID/stat: "PID (COMM) STATE ...", COMM cut to 15 characters
    [[ $stat =~ ^[0-9]+\ \((.*)\)\ ([A-Z]) && ${BASH_REMATCH[2]} != Z ]] &&
        [[ $1 == "${BASH_REMATCH[1]}"* ]]
}

# wait_for SECONDS COMMAND...: poll COMMAND every 0.2 s; false after SECONDS.
wait_for() {
    local limit=$1; shift
    local end=$((SECONDS + limit))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < end)) || return 1
        sleep 0.2
    done
}

# daemon NAME COMMAND...: start a daemon with its start-up messages in $LOG/NAME.start.log,
# without our stdio or the start lock (fd 9): a daemon holding them would keep a caller
# that reads our output waiting, and the lock taken for ever.
daemon() {
    local name=$1; shift
    "$@" </dev/null >>"$LOG/$name.start.log" 2>&1 9>&-
}

node_state() { sinfo -h -N -p "$PARTITION" -o %t 2>/dev/null | head -n1; }
# idle, mixed or allocated (a job may already run); not down, drained or not responding
node_usable() { [[ $(node_state) =~ ^(idle|mix|alloc)$ ]]; }
all_alive() { alive munged && alive mariadbd && alive slurmdbd && alive slurmctld && alive slurmd; }

if [[ ${1:-} == --check ]]; then
    all_alive && node_usable
    exit
fi

# --- packages (Debian 12: Slurm 22.05) -----------------------------------------------------
need=()
for bin in munged:munge mariadbd:mariadb-server mariadb-install-db:mariadb-server \
    slurmdbd:slurmdbd slurmctld:slurm-wlm slurmd:slurm-wlm sinfo:slurm-wlm sacct:slurm-wlm; do
    command -v "${bin%%:*}" >/dev/null || need+=("${bin#*:}")
done
if ((${#need[@]})); then
    mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
    [[ $EUID -eq 0 ]] || die "not root: cannot apt-get install ${need[*]} (run as root, or set SPEECHMINE_SKIP_SLURM=1 to skip the SLURM tests)"
    command -v apt-get >/dev/null || die "no apt-get: install ${need[*]} (Slurm >= 22.05) yourself"
    say "installing ${need[*]}"
    mkdir -p "$LOG"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >"$LOG/apt.log" 2>&1 ||
        die "apt-get update failed (no network to Debian?): see $LOG/apt.log"
    apt-get install -y -qq --no-install-recommends "${need[@]}" >>"$LOG/apt.log" 2>&1 ||
        die "apt-get install ${need[*]} failed: see $LOG/apt.log"
    for bin in munged mariadbd slurmdbd slurmctld slurmd sinfo sacct; do
        command -v "$bin" >/dev/null || die "$bin still missing after apt-get install: see $LOG/apt.log"
    done
    say "installed in $(elapsed) s"
fi
[[ $EUID -eq 0 ]] || { all_alive && node_usable && exit 0; die "not root: cannot start the daemons (run as root)"; }

mkdir -p "$ETC" "$RUN" "$LOG" "$SPOOL/ctld" "$SPOOL/d" "$STATE/munge"
chmod 700 "$STATE/munge"
# One start.sh at a time (several pytest workers may call it together).
exec 9>"$RUN/start.lock"
flock 9

# --- configuration ---------------------------------------------------------------------------
HOST=$(hostname -s)
CPUS=$(nproc --all)
# slurmd drains a node that claims more memory than it has: give Slurm 90 % of it.
REAL_MEM=$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 * 0.9 }' /proc/meminfo)
# The socket/core layout as slurmd sees it, so CR_Core counts real cores.
TOPO=$(slurmd -C | head -n1 | grep -o 'Boards=[0-9]* SocketsPerBoard=[0-9]* CoresPerSocket=[0-9]* ThreadsPerCore=[0-9]*')

write_if_changed() {  # write_if_changed FILE MODE < content; returns 0 when FILE changed
    local new
    new=$(cat)
    if [[ -f $1 && "$(cat "$1")" == "$new" ]]; then return 1; fi
    printf '%s\n' "$new" >"$1.tmp"
    chmod "$2" "$1.tmp"
    mv -f "$1.tmp" "$1"
}

changed=0
write_if_changed "$ETC/slurm.conf" 644 <<EOF && changed=1
# Written by scripts/slurm/start.sh (every setting explained in docs/slurm.md).
ClusterName=$CLUSTER
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$RUN/munge.socket,cred_expire=10
StateSaveLocation=$SPOOL/ctld
SlurmdSpoolDir=$SPOOL/d
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=$DEF_MEM_PER_CPU
MaxArraySize=$MAX_ARRAY_SIZE
ReturnToService=2
SchedulerParameters=batch_sched_delay=0,sched_interval=2
KillWait=5
MinJobAge=300
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$((PORT + 2))
AccountingStoragePass=$RUN/munge.socket
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS $TOPO RealMemory=$REAL_MEM State=UNKNOWN
PartitionName=$PARTITION Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF

write_if_changed "$ETC/slurmdbd.conf" 600 <<EOF && changed=1
# Written by scripts/slurm/start.sh (docs/slurm.md).
AuthType=auth/munge
AuthInfo=socket=$RUN/munge.socket
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$((PORT + 2))
SlurmUser=root
PidFile=$RUN/slurmdbd.pid
LogFile=$LOG/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=root
StorageLoc=slurm_acct_db
EOF

if [[ ! -s $STATE/munge/munge.key ]]; then
    (umask 077 && head -c 1024 /dev/urandom >"$STATE/munge/munge.key.tmp")
    mv "$STATE/munge/munge.key.tmp" "$STATE/munge/munge.key"
fi

if ((changed)) && { alive slurmctld || alive slurmd || alive slurmdbd; }; then
    say "configuration changed: restarting the slurm daemons"
    SPEECHMINE_SLURM_ONLY_SLURM=1 "$(dirname "$0")/stop.sh" 9>&-
fi

if all_alive && node_usable; then
    say "already up in $(elapsed) s (partition $PARTITION, SLURM_CONF=$SLURM_CONF)"
    exit 0
fi

# --- daemons, in dependency order ------------------------------------------------------------
if ! alive munged; then
    daemon munged munged --force --key-file="$STATE/munge/munge.key" --socket="$RUN/munge.socket" \
        --pid-file="$RUN/munged.pid" --log-file="$LOG/munged.log" --seed-file="$STATE/munge/seed"
    wait_for "$WAIT_S" alive munged || die "munged did not start: see $LOG/munged.log"
fi

if ! alive mariadbd; then
    if [[ ! -d $DB/mysql ]]; then
        rm -rf "$DB"
        mariadb-install-db --no-defaults --user=root --datadir="$DB" \
            --auth-root-authentication-method=socket --skip-test-db >"$LOG/mariadb-install.log" 2>&1 ||
            die "mariadb-install-db failed: see $LOG/mariadb-install.log"
    fi
    # Unix socket only, small buffers: a private database for accounting only.
    # mariadbd stays in the foreground: setsid -f runs it detached, in its own session.
    daemon mariadbd setsid -f mariadbd --no-defaults --user=root --datadir="$DB" \
        --socket="$MYSQL_UNIX_PORT" --pid-file="$RUN/mariadbd.pid" --log-error="$LOG/mariadb.log" \
        --skip-networking --innodb-buffer-pool-size=32M --innodb-log-file-size=8M --skip-log-bin
    wait_for "$WAIT_S" mariadb-admin --no-defaults --socket="$MYSQL_UNIX_PORT" -uroot ping ||
        die "MariaDB did not start: see $LOG/mariadb.log"
fi

if ! alive slurmdbd; then
    daemon slurmdbd slurmdbd  # daemonises; finds slurmdbd.conf beside $SLURM_CONF
    wait_for "$WAIT_S" sacctmgr -n -i list cluster ||
        die "slurmdbd did not answer: see $LOG/slurmdbd.log"
fi

if ! alive slurmctld; then
    daemon slurmctld slurmctld
    wait_for "$WAIT_S" scontrol ping || die "slurmctld did not start: see $LOG/slurmctld.log"
fi

if ! alive slurmd; then
    daemon slurmd slurmd
    wait_for "$WAIT_S" alive slurmd || die "slurmd did not start: see $LOG/slurmd.log"
fi

# A node left down or drained by an earlier run (or a killed slurmd) is put back.
if ! wait_for 5 node_usable; then
    scontrol update NodeName="$HOST" State=RESUME >/dev/null 2>&1 || true
    wait_for "$WAIT_S" node_usable ||
        die "node $HOST is '$(node_state)', not idle: see $LOG/slurmctld.log and $LOG/slurmd.log"
fi
all_alive || die "a daemon exited after starting: see $LOG/"

say "up in $(elapsed) s: partition $PARTITION, $CPUS CPUs, ${REAL_MEM} MB," \
    "MaxArraySize=$MAX_ARRAY_SIZE; export SLURM_CONF=$SLURM_CONF"
