#!/usr/bin/env bash
# swift-down.sh DIR [--purge]: stop what swift-up.sh DIR started; --purge also deletes DIR.
#
# Only processes named in DIR's pid files whose command line contains DIR are signalled, so a
# reused PID or someone else's Swift is never touched. Safe to run when nothing is up.
set -uo pipefail
SCRIPT_NAME=swift-down
SCRIPT_T0=$(date +%s%N)
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

DIR=$(realpath -m "${1:?usage: swift-down.sh DIR [--purge]}")
stop_all_in "$DIR/run" "$DIR/"
if [ "${2:-}" = --purge ]; then
    if [ -d "$DIR" ] && [ -n "$(ls -A "$DIR")" ] && [ ! -e "$DIR/etc/swift.conf" ]; then
        echo "swift-down: $DIR has no etc/swift.conf; not deleting it" >&2
        exit 1
    fi
    rm -rf "$DIR"
fi
say "stopped"
