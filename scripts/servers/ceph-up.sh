#!/usr/bin/env bash
# ceph-up.sh DIR: a one-node Ceph cluster on 127.0.0.1 with radosgw (S3 and Swift APIs), for the
# rbd, cinder, s3 and swift driver tests. Stop it with ceph-down.sh DIR.
#
# Why this shape: 1 mon, 1 mgr (Pacific serves `df` and pool stats through it), 1 OSD on memstore
# (RAM, no disk setup, starts in seconds), cephx on (drivers must pass real credentials), and
# every pool created up front in one librados session (radosgw would otherwise create them one
# by one, some lazily on the first S3 write). Everything (conf, keyrings, pid files, sockets,
# logs, OSD data) lives under DIR; nothing in /etc/ceph or /var/lib/ceph is used.
#
# Idempotent: when the cluster from DIR is already up and healthy it only prints the details.
# Prints KEY=value lines on stdout (also kept in DIR/env); progress goes to stderr.
#
# Environment (defaults in brackets):
#   CEPH_MON_PORT [6789] CEPH_MON_PORT_V2 [3300] RGW_PORT [7480]
#   CEPH_MEMSTORE_BYTES [4294967296]  RAM cap of the OSD. Writes hang, not fail, when it is full,
#                                     so the end of this script checks `ceph health`.
#   CEPH_START_TIMEOUT [120]          seconds for each readiness wait
# Needs: install-ceph.sh.
set -euo pipefail
SCRIPT_NAME=ceph-up
SCRIPT_T0=$(date +%s%N)
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"

DIR=$(realpath -m "${1:?usage: ceph-up.sh DIR}")
MON_PORT=${CEPH_MON_PORT:-6789}
MON_PORT_V2=${CEPH_MON_PORT_V2:-3300}
RGW_PORT=${RGW_PORT:-7480}
MEMSTORE_BYTES=${CEPH_MEMSTORE_BYTES:-4294967296}
TIMEOUT=${CEPH_START_TIMEOUT:-120}
CONF=$DIR/ceph.conf
RBD_POOL=rbd
RGW_NAME=client.rgw.kglance
RESTRICTED_CLIENT=kglance
# fixed test credentials (loopback only)
S3_ACCESS_KEY=KGLANCETESTACCESSKEY
S3_SECRET_KEY=kglance-test-secret-key-0000000000000000
RGW_SWIFT_USER=test:swift
RGW_SWIFT_KEY=kglance-test-swift-key
ADMIN=(/usr/bin/python3 "$HERE/ceph_admin.py" "$CONF")
DAEMONS=(mon.a mgr.x osd.0 "$RGW_NAME")

[[ $MEMSTORE_BYTES =~ ^[0-9]+$ ]] || die "CEPH_MEMSTORE_BYTES must be a number of bytes, not '$MEMSTORE_BYTES'"
{ command -v ceph-mon >/dev/null && [ -x /usr/bin/radosgw ]; } || die "Ceph is not installed: run install-ceph.sh first"
refuse_foreign_dir "$DIR" ceph.conf
lock_dir "$DIR"

daemon_alive() { pid_alive "$DIR/run/$1.pid" "$CONF"; }
rgw_answers() { curl -sf -o /dev/null --max-time 5 "http://127.0.0.1:$RGW_PORT/"; }

# ---- already up? --------------------------------------------------------------------------------
all_alive() {
    local d
    for d in "${DAEMONS[@]}"; do daemon_alive "$d" || return 1; done
}
if [ -s "$DIR/env" ] && all_alive && rgw_answers; then
    say "cluster from $DIR is already running; checking health"
    "${ADMIN[@]}" --connect-timeout 15 health --wait 15 ||
        die "the running cluster is unhealthy; restart it: ceph-down.sh $DIR --purge && ceph-up.sh $DIR"
    cat "$DIR/env"
    exit 0
fi

# ---- fresh start: stop our leftovers ------------------------------------------------------------
stop_all_in "$DIR/run" "$CONF"
require_free_ports "$MON_PORT" "$MON_PORT_V2" "$RGW_PORT"
empty_dir "$DIR"
LOG_DIR=$DIR/log # from here on, a failure shows the tail of each log
# a failed start stops whatever it started (the logs stay in DIR/log)
trap 'stop_all_in "$DIR/run" "$CONF"' EXIT
mkdir -p "$DIR"/{run,log,mon,mgr/ceph-x,osd/ceph-0,rgw,crash}
FSID=$(cat /proc/sys/kernel/random/uuid)
OSD_UUID=$(cat /proc/sys/kernel/random/uuid)
MON_ADDRS="[v2:127.0.0.1:$MON_PORT_V2,v1:127.0.0.1:$MON_PORT]"
# The mgr loads every Python module it finds (about 9 s of CPU). Skip all but Pacific's always-on
# modules: those cannot be skipped (the mgr reports them as failed, HEALTH_ERR). `df` and pool
# stats are served by the mgr's C++ core, not by modules.
MGR_ALWAYS_ON="balancer crash devicehealth orchestrator pg_autoscaler progress rbd_support status telemetry volumes"
MGR_DISABLED=$(find /usr/share/ceph/mgr -mindepth 1 -maxdepth 1 -type d -printf '%f\n' |
    grep -vxF -f <(tr ' ' '\n' <<<"$MGR_ALWAYS_ON") | sort | paste -sd, -)

cat >"$CONF" <<EOF
# written by kglance scripts/servers/ceph-up.sh; the whole cluster lives under $DIR
[global]
fsid = $FSID
mon host = $MON_ADDRS
public addr = 127.0.0.1
cluster addr = 127.0.0.1
public network = 127.0.0.0/8
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $DIR/keyring
run dir = $DIR/run
pid file = $DIR/run/\$name.pid
admin socket = $DIR/run/\$name.asok
log file = $DIR/log/\$name.log
mon cluster log file = $DIR/log/cluster.log
crash dir = $DIR/crash
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool delete = true
mon allow pool size one = true
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 0
mon max pg per osd = 1000
mgr stats period = 1
rbd default features = layering,exclusive-lock,object-map,fast-diff,deep-flatten

[mon]
mon data = $DIR/mon/\$cluster-\$id
# the default of 1 s adds about a second to every monitor command
paxos propose interval = 0.1
auth allow insecure global id reclaim = false

[mgr]
mgr data = $DIR/mgr/\$cluster-\$id
mgr initial modules =
mgr disabled modules = $MGR_DISABLED

[osd]
osd data = $DIR/osd/\$cluster-\$id
osd objectstore = memstore
memstore device bytes = $MEMSTORE_BYTES
osd class load list = *
osd class default list = *
osd op num shards = 1
osd op num threads per shard = 2

[client.$RESTRICTED_CLIENT]
keyring = $DIR/ceph.client.$RESTRICTED_CLIENT.keyring

[$RGW_NAME]
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT
rgw data = $DIR/rgw
rgw enable usage log = false
rgw thread pool size = 64
# lifecycle threads sleep 5 s between attempts and make shutdown wait for them
rgw enable lc threads = false
# reclaim deleted objects' data within seconds (default: after 2 hours), so tests that upload
# and delete a few hundred MiB do not fill the memstore OSD
rgw gc obj min wait = 0
rgw gc processor period = 5
EOF

# One keyring holds every entity; `ceph-mon --mkfs` imports it into the auth database.
say "keyring and monmap"
KEYRING=$DIR/keyring
ceph-authtool --create-keyring "$KEYRING" --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-authtool "$KEYRING" --gen-key -n client.admin \
    --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' --cap mds 'allow *' >/dev/null
ceph-authtool "$KEYRING" --gen-key -n osd.0 \
    --cap mon 'allow profile osd' --cap mgr 'allow profile osd' --cap osd 'allow *' >/dev/null
ceph-authtool "$KEYRING" --gen-key -n mgr.x \
    --cap mon 'allow profile mgr' --cap osd 'allow *' --cap mds 'allow *' >/dev/null
ceph-authtool "$KEYRING" --gen-key -n "$RGW_NAME" \
    --cap mon 'allow rw' --cap osd 'allow rwx' --cap mgr 'allow rw' >/dev/null
monmaptool --create --fsid "$FSID" --addv a "$MON_ADDRS" "$DIR/monmap" >/dev/null
ceph-mon --conf "$CONF" -i a --mkfs --monmap "$DIR/monmap" --keyring "$KEYRING" \
    </dev/null >"$DIR/log/mon-mkfs.stderr" 2>&1 || die "ceph-mon --mkfs failed"

# The daemons fork into the background themselves and write their pid files under DIR/run.
# They must not inherit the lock on DIR (fd 9), or the next ceph-up.sh would wait for them.
# stdin/stdout/stderr are redirected so `$(ceph-up.sh DIR)` does not wait on them.
say "start mon"
ceph-mon --conf "$CONF" -i a 9<&- </dev/null >>"$DIR/log/mon.stderr" 2>&1 || die "ceph-mon failed to start"
say "start mgr"
ceph-mgr --conf "$CONF" -i x 9<&- </dev/null >>"$DIR/log/mgr.stderr" 2>&1 || die "ceph-mgr failed to start"

# `osd new` waits for the monitor quorum (connect timeout), then registers osd.0
timeout $((TIMEOUT + 30)) "${ADMIN[@]}" --connect-timeout "$TIMEOUT" osd-new "$OSD_UUID" 0 \
    2>>"$DIR/log/admin.stderr" || die "monitor did not come up or 'osd new' failed"
say "mon up; mkfs osd"
ceph-osd --conf "$CONF" -i 0 --mkfs --osd-uuid "$OSD_UUID" </dev/null >"$DIR/log/osd-mkfs.stderr" 2>&1 ||
    die "ceph-osd --mkfs failed"
say "start osd"
ceph-osd --conf "$CONF" -i 0 9<&- </dev/null >>"$DIR/log/osd.stderr" 2>&1 || die "ceph-osd failed to start"

pools=(--pool "$RBD_POOL:rbd")
for p in .rgw.root default.rgw.log default.rgw.control default.rgw.meta \
    default.rgw.buckets.index default.rgw.buckets.data default.rgw.buckets.non-ec; do
    pools+=(--pool "$p:rgw")
done
timeout $((TIMEOUT + 30)) "${ADMIN[@]}" setup "${pools[@]}" --rbd-pool "$RBD_POOL" --wait "$TIMEOUT" \
    --restricted "$RESTRICTED_CLIENT" "$DIR/ceph.client.$RESTRICTED_CLIENT.keyring" \
    2>>"$DIR/log/admin.stderr" || die "pool setup failed (osd not up?)"
say "osd up, pools created"

radosgw --conf "$CONF" -n "$RGW_NAME" 9<&- </dev/null >>"$DIR/log/rgw.stderr" 2>&1 || die "radosgw failed to start"
rgw_ready() {
    daemon_alive "$RGW_NAME" || die "radosgw exited during start-up"
    rgw_answers
}
wait_until "$TIMEOUT" "radosgw on 127.0.0.1:$RGW_PORT" rgw_ready
say "radosgw up; creating users"
radosgw-admin --conf "$CONF" user create --uid test --display-name "kglance test" \
    --access-key "$S3_ACCESS_KEY" --secret-key "$S3_SECRET_KEY" </dev/null >/dev/null 2>>"$DIR/log/admin.stderr" ||
    die "radosgw-admin user create failed"
radosgw-admin --conf "$CONF" subuser create --uid test --subuser "$RGW_SWIFT_USER" --access full \
    --key-type swift --secret-key "$RGW_SWIFT_KEY" </dev/null >/dev/null 2>>"$DIR/log/admin.stderr" ||
    die "radosgw-admin subuser create failed"

say "waiting for HEALTH_OK"
timeout $((TIMEOUT + 30)) "${ADMIN[@]}" health --wait "$TIMEOUT" 2>>"$DIR/log/admin.stderr" ||
    die "cluster did not become healthy"
for d in "${DAEMONS[@]}"; do daemon_alive "$d" || die "$d is not running"; done

cat >"$DIR/env" <<EOF
CEPH_CONF=$CONF
CEPH_KEYRING=$KEYRING
CEPH_USER=admin
CEPH_FSID=$FSID
CEPH_MON_HOST=$MON_ADDRS
RBD_POOL=$RBD_POOL
CEPH_RESTRICTED_USER=$RESTRICTED_CLIENT
CEPH_RESTRICTED_KEYRING=$DIR/ceph.client.$RESTRICTED_CLIENT.keyring
S3_ENDPOINT=http://127.0.0.1:$RGW_PORT
S3_ACCESS_KEY=$S3_ACCESS_KEY
S3_SECRET_KEY=$S3_SECRET_KEY
S3_REGION=us-east-1
RGW_SWIFT_AUTH_URL=http://127.0.0.1:$RGW_PORT/auth/1.0
RGW_SWIFT_USER=$RGW_SWIFT_USER
RGW_SWIFT_KEY=$RGW_SWIFT_KEY
EOF
trap - EXIT
say "ready"
cat "$DIR/env"
