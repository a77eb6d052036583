#!/usr/bin/env bash
# ceph-down.sh DIR [--purge]: stop the cluster that ceph-up.sh DIR started; --purge also deletes DIR.
#
# Only processes named in DIR's pid files whose command line carries DIR/ceph.conf are signalled,
# so a reused PID or another engineer's cluster is never touched. Safe to run when nothing is up.
set -uo pipefail
SCRIPT_NAME=ceph-down
SCRIPT_T0=$(date +%s%N)
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

DIR=$(realpath -m "${1:?usage: ceph-down.sh DIR [--purge]}")
CONF=$DIR/ceph.conf
# radosgw first: it needs the OSD to shut down cleanly (otherwise it hangs until SIGKILL)
stop_pidfiles "$CONF" "$DIR/run/client.rgw.kglance.pid" "$DIR/run/mgr.x.pid"
stop_all_in "$DIR/run" "$CONF"
if [ "${2:-}" = --purge ]; then
    if [ -d "$DIR" ] && [ -n "$(ls -A "$DIR")" ] && [ ! -e "$CONF" ]; then
        echo "ceph-down: $DIR has no ceph.conf; not deleting it" >&2
        exit 1
    fi
    rm -rf "$DIR"
fi
say "stopped"
