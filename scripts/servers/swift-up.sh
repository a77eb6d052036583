#!/usr/bin/env bash
# swift-up.sh DIR [TOOLS_DIR]: OpenStack Swift all-in-one on 127.0.0.1 with tempauth, for the
# swift driver tests. Stop it with swift-down.sh DIR.
#
# Why this shape: one device, one replica and workers=0 (one process per server) is the smallest
# real Swift; tempauth needs no Keystone; the proxy pipeline carries the middleware the driver
# relies on (slo, dlo, bulk, tempurl, copy, versioned_writes, symlink, quotas). Config, rings,
# data, logs and pid files all live under DIR (swift_dir = DIR/etc; /etc/swift is never read).
#
# Users (tempauth):
#   test:tester   / testing   admin of account AUTH_test          (SWIFT_USER, SWIFT_KEY)
#   test2:tester2 / testing2  admin of a second account AUTH_test2 (SWIFT_USER2, SWIFT_KEY2)
#   test:tester3  / testing3  non-admin in AUTH_test: sees only what container ACLs grant
#                                                                  (SWIFT_USER3, SWIFT_KEY3)
#   admin:admin   / admin     reseller admin                       (SWIFT_ADMIN_USER, SWIFT_ADMIN_KEY)
#
# Idempotent: when the Swift from DIR is already up it only prints the details.
# Prints KEY=value lines on stdout (also kept in DIR/env); progress goes to stderr.
#
# Environment (defaults in brackets):
#   SWIFT_BIN_DIR [TOOLS_DIR/swift-venv/bin, else swift-proxy-server's directory on PATH]
#   SWIFT_PORT [8080]  SWIFT_BACKEND_PORT [6200: object, +1 container, +2 account]
#   SWIFT_MEMCACHED_PORT [11211]  SWIFT_START_TIMEOUT [90]
# Needs: install-swift.sh TOOLS_DIR (PyPI swift + memcached). The filesystem under DIR must
# support user xattrs (ext4, xfs, tmpfs do); the script checks.
set -euo pipefail
SCRIPT_NAME=swift-up
SCRIPT_T0=$(date +%s%N)
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"

DIR=$(realpath -m "${1:?usage: swift-up.sh DIR [TOOLS_DIR]}")
TOOLS=${2:+$(realpath -m "$2")}
PORT=${SWIFT_PORT:-8080}
OBJECT_PORT=${SWIFT_BACKEND_PORT:-6200}
CONTAINER_PORT=$((OBJECT_PORT + 1))
ACCOUNT_PORT=$((OBJECT_PORT + 2))
MEMCACHED_PORT=${SWIFT_MEMCACHED_PORT:-11211}
TIMEOUT=${SWIFT_START_TIMEOUT:-90}
ETC=$DIR/etc
DEVICE=$DIR/srv/node/d1
LOGS=$DIR/log
SERVERS=(object container account proxy)
AUTH_URL=http://127.0.0.1:$PORT/auth/v1.0

if [ -n "${SWIFT_BIN_DIR:-}" ]; then
    BIN=$SWIFT_BIN_DIR
elif [ -n "$TOOLS" ]; then
    BIN=$TOOLS/swift-venv/bin
elif command -v swift-proxy-server >/dev/null; then
    BIN=$(dirname "$(command -v swift-proxy-server)")
else
    die "no Swift binaries: run install-swift.sh TOOLS_DIR and pass TOOLS_DIR (or set SWIFT_BIN_DIR)"
fi
[ -x "$BIN/swift-proxy-server" ] || die "$BIN/swift-proxy-server is missing: run install-swift.sh"
command -v memcached >/dev/null || die "memcached is missing: run install-swift.sh"
# the interpreter the Swift scripts run with (for the xattr probe and ring building)
PY=$(head -n1 "$BIN/swift-proxy-server" | sed 's/^#! *//')
refuse_foreign_dir "$DIR" etc/swift.conf
lock_dir "$DIR"

# pid files are checked against DIR, which every daemon's command line contains
alive() { pid_alive "$DIR/run/$1.pid" "$DIR/"; }
http_answers() { curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$1/"; }
healthy() { curl -sf -o /dev/null --max-time 2 "http://127.0.0.1:$PORT/healthcheck"; }

# ---- already up? --------------------------------------------------------------------------------
all_alive() {
    local s
    for s in memcached "${SERVERS[@]}"; do alive "$s" || return 1; done
}
if [ -s "$DIR/env" ] && all_alive && healthy; then
    say "swift from $DIR is already running"
    cat "$DIR/env"
    exit 0
fi

# ---- fresh start ----------------------------------------------------------------------------------
stop_all_in "$DIR/run" "$DIR/"
require_free_ports "$PORT" "$OBJECT_PORT" "$CONTAINER_PORT" "$ACCOUNT_PORT" "$MEMCACHED_PORT"
empty_dir "$DIR"
LOG_DIR=$LOGS # from here on, a failure shows the tail of each log
# a failed start stops whatever it started (the logs stay in DIR/log)
trap 'stop_all_in "$DIR/run" "$DIR/"' EXIT
mkdir -p "$ETC" "$DIR"/{run,log,cache} "$DEVICE"

# Swift keeps object metadata in user.swift.metadata* xattrs (values split at 254 bytes)
"$PY" - "$DEVICE" <<'EOF' || die "user xattrs do not work under $DIR; put DIR on ext4, xfs or tmpfs"
import os
import sys

probe = os.path.join(sys.argv[1], ".xattr-probe")
open(probe, "w").close()
try:
    for i in range(4):
        os.setxattr(probe, f"user.swift.metadata{i or ''}", b"x" * 254)
except OSError as e:
    sys.exit(f"setxattr on {sys.argv[1]}: {e}")
finally:
    os.unlink(probe)
EOF

cat >"$ETC/swift.conf" <<EOF
[swift-hash]
swift_hash_path_prefix = kglance-test-prefix
swift_hash_path_suffix = kglance-test-suffix

[storage-policy:0]
name = gold
default = yes

[swift-constraints]
EOF

server_defaults() { # server_defaults PORT
    cat <<EOF
# written by kglance scripts/servers/swift-up.sh
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $1
workers = 0
user = $(id -un)
swift_dir = $ETC
devices = $DIR/srv/node
mount_check = false
disable_fallocate = true
recon_cache_path = $DIR/cache
log_level = INFO
eventlet_debug = false

EOF
}

{
    server_defaults "$OBJECT_PORT"
    cat <<EOF
[pipeline:main]
pipeline = object-server

[app:object-server]
use = egg:swift#object

[object-replicator]
[object-reconstructor]
[object-updater]
[object-auditor]
EOF
} >"$ETC/object-server.conf"

{
    server_defaults "$CONTAINER_PORT"
    cat <<EOF
[pipeline:main]
pipeline = container-server

[app:container-server]
use = egg:swift#container

[container-replicator]
[container-updater]
[container-auditor]
[container-sync]
[container-sharder]
EOF
} >"$ETC/container-server.conf"

{
    server_defaults "$ACCOUNT_PORT"
    cat <<EOF
[pipeline:main]
pipeline = account-server

[app:account-server]
use = egg:swift#account

[account-replicator]
[account-auditor]
[account-reaper]
EOF
} >"$ETC/account-server.conf"

{
    server_defaults "$PORT"
    cat <<EOF
[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk tempurl formpost tempauth copy container-quotas account-quotas slo dlo versioned_writes symlink proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
allow_account_management = true
conn_timeout = 2
node_timeout = 10

[filter:tempauth]
use = egg:swift#tempauth
user_admin_admin = admin .admin .reseller_admin
user_test_tester = testing .admin
user_test2_tester2 = testing2 .admin
user_test_tester3 = testing3

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$MEMCACHED_PORT

[filter:catch_errors]
use = egg:swift#catch_errors

[filter:gatekeeper]
use = egg:swift#gatekeeper

[filter:healthcheck]
use = egg:swift#healthcheck

[filter:proxy-logging]
use = egg:swift#proxy_logging

[filter:listing_formats]
use = egg:swift#listing_formats

[filter:bulk]
use = egg:swift#bulk

[filter:tempurl]
use = egg:swift#tempurl

[filter:formpost]
use = egg:swift#formpost

[filter:copy]
use = egg:swift#copy

[filter:container-quotas]
use = egg:swift#container_quotas

[filter:account-quotas]
use = egg:swift#account_quotas

[filter:slo]
use = egg:swift#slo

[filter:dlo]
use = egg:swift#dlo

[filter:versioned_writes]
use = egg:swift#versioned_writes
allow_versioned_writes = true
allow_object_versioning = true

[filter:symlink]
use = egg:swift#symlink
EOF
} >"$ETC/proxy-server.conf"

say "starting memcached and the object, container and account servers"
memcached -d -l 127.0.0.1 -p "$MEMCACHED_PORT" -U 0 -m 64 -u "$(id -un)" -P "$DIR/run/memcached.pid" \
    9<&- </dev/null >>"$LOGS/memcached.log" 2>&1 || die "memcached failed to start"
# setsid: the servers must outlive this script and its process group. Their output goes to
# DIR/log so `$(swift-up.sh DIR)` does not wait on them, and they must not inherit the lock on
# DIR (fd 9), or the next swift-up.sh would wait for them.
spawn() {
    setsid "$BIN/swift-$1-server" "$ETC/$1-server.conf" --verbose 9<&- </dev/null >>"$LOGS/$1.log" 2>&1 &
    echo $! >"$DIR/run/$1.pid"
}
# the storage servers start without rings; build the rings while they import
for s in object container account; do spawn "$s"; done

# three rings (part power 6, one replica, one device) in one process: swift-ring-builder would
# need nine separate runs
"$PY" - "$ETC" "$OBJECT_PORT" "$CONTAINER_PORT" "$ACCOUNT_PORT" <<'EOF' 2>>"$LOGS/rings.log" || die "building the rings failed"
import sys

from swift.common.ring import RingBuilder

etc = sys.argv[1]
for name, port in zip(("object", "container", "account"), map(int, sys.argv[2:5])):
    builder = RingBuilder(6, 1, 1)
    builder.add_dev({"id": 0, "region": 1, "zone": 1, "ip": "127.0.0.1", "port": port,
                     "device": "d1", "weight": 100.0, "meta": ""})
    builder.rebalance()
    builder.save(f"{etc}/{name}.builder")
    builder.get_ring().save(f"{etc}/{name}.ring.gz")
EOF
say "rings built; starting the proxy"
spawn proxy

servers_ready() {
    local s
    for s in memcached "${SERVERS[@]}"; do
        alive "$s" || die "swift $s exited during start-up"
    done
    http_answers "$OBJECT_PORT" && http_answers "$CONTAINER_PORT" && http_answers "$ACCOUNT_PORT" && healthy
}
wait_until "$TIMEOUT" "the swift servers" servers_ready

# One round trip through every server: auth, container PUT, object PUT/GET/DELETE.
say "servers up; checking a write path"
token=$(curl -sf -D - -o /dev/null -H 'X-Auth-User: test:tester' -H 'X-Auth-Key: testing' "$AUTH_URL" |
    tr -d '\r' | awk -F': ' 'tolower($1) == "x-auth-token" {print $2}') || true
[ -n "$token" ] || die "tempauth did not issue a token for test:tester"
probe=http://127.0.0.1:$PORT/v1/AUTH_test/kglance-start-probe
round_trip() {
    curl -sf -o /dev/null -X PUT -H "X-Auth-Token: $token" "$probe" &&
        curl -sf -o /dev/null -X PUT -H "X-Auth-Token: $token" --data-binary probe "$probe/object" &&
        [ "$(curl -sf -H "X-Auth-Token: $token" "$probe/object")" = probe ] &&
        curl -sf -o /dev/null -X DELETE -H "X-Auth-Token: $token" "$probe/object" &&
        curl -sf -o /dev/null -X DELETE -H "X-Auth-Token: $token" "$probe"
}
round_trip ||
    die "a PUT/GET/DELETE round trip through the proxy failed"

cat >"$DIR/env" <<EOF
SWIFT_AUTH_URL=$AUTH_URL
SWIFT_AUTH_VERSION=1
SWIFT_USER=test:tester
SWIFT_KEY=testing
SWIFT_STORAGE_URL=http://127.0.0.1:$PORT/v1/AUTH_test
SWIFT_USER2=test2:tester2
SWIFT_KEY2=testing2
SWIFT_STORAGE_URL2=http://127.0.0.1:$PORT/v1/AUTH_test2
SWIFT_USER3=test:tester3
SWIFT_KEY3=testing3
SWIFT_ADMIN_USER=admin:admin
SWIFT_ADMIN_KEY=admin
SWIFT_CONF_DIR=$ETC
EOF
trap - EXIT
say "ready"
cat "$DIR/env"
