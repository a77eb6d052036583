# shellcheck shell=bash
# Helpers sourced by the server scripts in this directory (not executable on its own).
#
# Why this exists: the test machines have no systemd and PID 1 does not reap orphans, so a
# stopped daemon lingers as a zombie and its PID is soon reused by something else. Every start
# and stop here therefore goes through pid files whose process is checked (state and command
# line) before it is trusted or signalled, and every wait has a deadline that ends in a loud
# failure showing the daemon logs.

# Print a progress line on stderr (stdout is reserved for KEY=value output).
# Callers set SCRIPT_NAME and SCRIPT_T0 (date +%s%N) first.
say() {
    echo "[$SCRIPT_NAME +$((($(date +%s%N) - SCRIPT_T0) / 1000000))ms] $*" >&2
}

# Print the last lines of each non-empty log file given, for failure reports.
show_logs() {
    local f
    for f in "$@"; do
        [ -s "$f" ] || continue
        echo "---- tail of $f" >&2
        tail -n "${LOG_TAIL_LINES:-12}" "$f" | cut -c1-400 >&2
    done
}

# die MESSAGE: report, show the tail of every log in LOG_DIR (if the caller set it), exit 1.
die() {
    echo "$SCRIPT_NAME: ERROR: $*" >&2
    if [ -n "${LOG_DIR:-}" ] && [ -d "$LOG_DIR" ]; then
        show_logs "$LOG_DIR"/*
    fi
    exit 1
}

# pid_alive PIDFILE NEEDLE: true if the pid in PIDFILE is a live, non-zombie process with an
# argument that starts with NEEDLE (so a reused PID is never mistaken for our daemon; the needle
# is a path under the data directory, e.g. DIR/ceph.conf).
pid_alive() {
    local pid state
    pid=$(cat "$1" 2>/dev/null) || return 1
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    state=$(awk '/^State:/ {print $2}' "/proc/$pid/status" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ] || return 1
    { printf ' ' && tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -qF -- " $2"
}

# stop_pidfiles NEEDLE PIDFILE...: SIGTERM every live one at once (Ceph daemons take 2-4 s each
# to shut down), wait up to 15 s, SIGKILL what is left; remove the pid files.
stop_pidfiles() {
    local needle=$1 f i left
    shift
    for f in "$@"; do
        pid_alive "$f" "$needle" && kill -TERM "$(cat "$f")" 2>/dev/null
    done
    for ((i = 0; i < 150; i++)); do
        left=0
        for f in "$@"; do
            pid_alive "$f" "$needle" && left=1
        done
        ((left)) || break
        sleep 0.1
    done
    for f in "$@"; do
        if pid_alive "$f" "$needle"; then
            echo "${SCRIPT_NAME:-stop}: $(basename "$f" .pid) ignored SIGTERM, sending SIGKILL" >&2
            kill -KILL "$(cat "$f")" 2>/dev/null
        fi
        rm -f "$f"
    done
    return 0
}

# stop_all_in RUN_DIR NEEDLE: stop every daemon with a pid file in RUN_DIR.
stop_all_in() {
    local files=("$1"/*.pid)
    [ -e "${files[0]}" ] || return 0
    stop_pidfiles "$2" "${files[@]}"
}

# wait_until SECONDS DESCRIPTION CMD...: poll CMD (which should be quiet) every 0.2 s; die when
# the deadline passes. CMD may itself call die, e.g. when the daemon it waits for has exited.
wait_until() {
    local deadline=$(($(date +%s) + $1)) what=$2
    shift 2
    until "$@"; do
        [ "$(date +%s)" -lt "$deadline" ] || die "timed out waiting for $what"
        sleep 0.2
    done
}

# port_in_use PORT: true if something accepts TCP connections on 127.0.0.1:PORT.
port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# require_free_ports PORT...: die if another process (not ours) already listens there; otherwise
# a readiness probe could succeed against a stranger's server.
require_free_ports() {
    local p
    for p in "$@"; do
        if port_in_use "$p"; then
            die "127.0.0.1:$p is already in use by another process; free it or pick another port (see the script header)"
        fi
    done
}

# refuse_foreign_dir DIR MARKER: refuse to wipe a non-empty DIR that we did not create.
refuse_foreign_dir() {
    if [ -d "$1" ] && [ -n "$(ls -A "$1")" ] && [ ! -e "$1/$2" ]; then
        echo "$SCRIPT_NAME: $1 is not empty and has no $2; refusing to wipe it" >&2
        exit 1
    fi
}

# lock_dir DIR: create DIR and hold an exclusive lock on it until the script exits, so two
# concurrent `*-up.sh DIR` calls do not build the same server twice (the second one waits, then
# finds the server up). The lock is on DIR itself, which is emptied but never removed.
lock_dir() {
    mkdir -p "$1"
    exec 9<"$1"
    flock -w 600 9 || die "another $SCRIPT_NAME has held the lock on $1 for 10 minutes"
}

# empty_dir DIR: delete everything inside DIR (keeping DIR and so its lock).
empty_dir() {
    find "$1" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
}

# apt_install_missing PACKAGE...: install those not yet installed; a no-op (no apt call) otherwise.
apt_install_missing() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    ((${#missing[@]})) || return 0
    [ "$(id -u)" = 0 ] || {
        echo "$SCRIPT_NAME: need root to apt-get install ${missing[*]}" >&2
        return 1
    }
    # apt must not start the services it installs (memcached on :11211, ...): our scripts start
    # their own under a data directory. Left in place, like scripts/test.sh does.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
    fi
    local apt=(apt-get -o DPkg::Lock::Timeout=900 -o Acquire::Retries=3 -q)
    say "apt-get install ${missing[*]}"
    "${apt[@]}" update >/dev/null
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y --no-install-recommends "${missing[@]}" >/dev/null
}
