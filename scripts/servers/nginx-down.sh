#!/usr/bin/env bash
# Stop the nginx that nginx-up.sh started from DIR. Safe to run at any time: nothing running is
# success, and only a process whose command line names DIR/nginx.conf is ever signalled.
#
#   scripts/servers/nginx-down.sh DIR
#
# Why the care: on the CI machines PID 1 does not reap orphans, so a stopped nginx lingers as a
# zombie (state Z, which counts as stopped here), and PIDs are reused quickly, so a stale pid
# file may name somebody else's process.
set -euo pipefail
DIR=$(realpath -m "${1:?usage: nginx-down.sh DIR}")
PIDFILE=$DIR/nginx.pid
CONF=$DIR/nginx.conf

# ours PID: the process is alive (not a zombie) and is the nginx master started with our conf
ours() {
    local pid=$1
    [ -n "$pid" ] && [ -r "/proc/$pid/status" ] || return 1
    grep -qs '^State:[[:space:]]*[^Z]' "/proc/$pid/status" || return 1
    tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$CONF"
}

pid=$(cat "$PIDFILE" 2>/dev/null || true)
if ! ours "$pid"; then
    rm -f "$PIDFILE"
    exit 0
fi
# TERM is nginx's fast shutdown: the master stops its workers and exits
kill -TERM "$pid" 2>/dev/null || true
for _ in $(seq 1 100); do
    ours "$pid" || break
    sleep 0.1
done
if ours "$pid"; then
    echo "nginx-down: master $pid ignored SIGTERM for 10 s, killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
fi
rm -f "$PIDFILE"
