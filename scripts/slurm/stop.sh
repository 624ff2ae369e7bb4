#!/usr/bin/env bash
# Stop the one-node SLURM cluster that scripts/slurm/start.sh started: only the daemons
# named by its pid files in $SPEECHMINE_SLURM_DIR/run (default /var/lib/speechmine-slurm),
# never any other slurmctld, slurmd, munged or MariaDB on the machine. Jobs still queued or
# running on this cluster are cancelled first, so no job process outlives it. The state
# dir is kept (the next start is faster); delete it to start from nothing.
#
# SPEECHMINE_SLURM_ONLY_SLURM=1 stops slurmd, slurmctld and slurmdbd only, keeping jobs
# (start.sh uses it to restart them after a configuration change).
set -uo pipefail

STATE="${SPEECHMINE_SLURM_DIR:-/var/lib/speechmine-slurm}"
RUN="$STATE/run"
export SLURM_CONF="$STATE/etc/slurm.conf"

# running PID [NAME]: PID is alive (not a zombie, which no init may reap) and named NAME.
running() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    [[ $stat =~ ^[0-9]+\ \((.*)\)\ ([A-Z]) && ${BASH_REMATCH[2]} != Z ]] &&
        [[ -z ${2:-} || $2 == "${BASH_REMATCH[1]}"* ]]
}

# pid_of NAME: the pid in $RUN/NAME.pid when that process is alive and is NAME.
pid_of() {
    local pid
    [[ -s $RUN/$1.pid ]] || return 1
    pid=$(tr -dc 0-9 <"$RUN/$1.pid")
    [[ -n $pid ]] && running "$pid" "$1" && echo "$pid"
}

stop() {  # TERM, then KILL after 20 s
    local pid i
    pid=$(pid_of "$1") || { rm -f "$RUN/$1.pid"; return 0; }
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 100; i++)); do
        running "$pid" || break
        sleep 0.2
    done
    if running "$pid"; then
        echo "speechmine-slurm: $1 ($pid) ignored SIGTERM for 20 s: killing it" >&2
        kill -KILL "$pid" 2>/dev/null
    fi
    rm -f "$RUN/$1.pid"
    echo "speechmine-slurm: stopped $1 ($pid)"
}

if [[ ${SPEECHMINE_SLURM_ONLY_SLURM:-0} != 1 ]] && pid_of slurmctld >/dev/null; then
    scancel --full --quiet --partition=debug 2>/dev/null
    # let slurmd see its job steps end (KillWait=5) before it stops
    for ((i = 0; i < 50; i++)); do
        [[ -z $(squeue -h -t running,completing -o %i 2>/dev/null) ]] && break
        sleep 0.2
    done
fi
stop slurmd
stop slurmctld
stop slurmdbd
if [[ ${SPEECHMINE_SLURM_ONLY_SLURM:-0} != 1 ]]; then
    stop mariadbd
    stop munged
fi
exit 0
