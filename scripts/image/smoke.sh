#!/usr/bin/env bash
# smoke.sh: run the built image once, without a container engine, and check it works.
#
# Why buildah run: podman/crun cannot start containers on these machines (no rlimit or cgroup
# control), but `buildah run --isolation chroot` runs a command in a working container made from
# the image, as the image's user and with the host's network. Checked: the image's config names
# user 10001:10001 and entrypoint kglance; then inside the image, as that user:
#   * `kglance --version`, and that the process runs as uid 10001 with the venv first on PATH
#   * rados and rbd import (Debian's bindings linked into the venv), and every extra's SDK;
#     `kglance operator --help` once the CLI has that subcommand
#   * `kglance serve` with the injected sidecar's arguments (config /etc/kglance/glance-store.conf,
#     socket /run/kglance/kglance.sock) on a filesystem backend, then put, stat, get --expect
#     (the digests put reported) and rm with the image's own client finding the socket through
#     KGLANCE_SOCKET, bytes compared
#   * with KGLANCE_SMOKE_CEPH_ENV=FILE (the KEY=value file ceph-up.sh prints, default
#     .servers/ceph.env when present; "none" skips): the same round trip on an rbd backend,
#     so the image's librados and librbd talk to a real cluster
#
#   scripts/image/smoke.sh          smoke-test $KGLANCE_IMAGE (see env.sh)
set -euo pipefail
SCRIPT_NAME=image-smoke
SCRIPT_T0=$(date +%s%N)
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../servers/lib.sh
. "$HERE/../servers/lib.sh"
# shellcheck source=env.sh
. "$HERE/env.sh"

buildah inspect --type image "$KGLANCE_IMAGE" >/dev/null 2>&1 || die "no image $KGLANCE_IMAGE: run build.sh"
CEPH_ENV=${KGLANCE_SMOKE_CEPH_ENV:-$KGLANCE_ROOT/.servers/ceph.env}
STAGE=$(mktemp -d "$KGLANCE_IMAGE_DIR/tmp/smoke.XXXXXX")
ctr=
cleanup() {
    [ -z "$ctr" ] || buildah rm "$ctr" >/dev/null 2>&1 || true
    rm -rf "$STAGE" "$STAGE.conf"
}
trap cleanup EXIT

# -- what goes into the container under /smoke ----------------------------------------------------
backends=local:file
cat >"$STAGE/backends.conf" <<'CONF'
[local]
filesystem_store_datadir = /var/lib/kglance/volumes/local
CONF
if [ "$CEPH_ENV" != none ] && [ -r "$CEPH_ENV" ]; then
    # only what a client needs: no paths of the host's cluster directory leak in
    ceph_mon_host=$(sed -n 's/^CEPH_MON_HOST=//p' "$CEPH_ENV")
    ceph_user=$(sed -n 's/^CEPH_RESTRICTED_USER=//p' "$CEPH_ENV")
    ceph_keyring=$(sed -n 's/^CEPH_RESTRICTED_KEYRING=//p' "$CEPH_ENV")
    if [ -z "$ceph_user" ] || [ ! -r "$ceph_keyring" ]; then
        ceph_user=$(sed -n 's/^CEPH_USER=//p' "$CEPH_ENV")
        ceph_keyring=$(sed -n 's/^CEPH_KEYRING=//p' "$CEPH_ENV")
    fi
    ceph_pool=$(sed -n 's/^RBD_POOL=//p' "$CEPH_ENV")
    if [ -z "$ceph_mon_host" ] || [ ! -r "$ceph_keyring" ]; then
        die "$CEPH_ENV has no CEPH_MON_HOST or no readable keyring"
    fi
    printf '[global]\nmon host = %s\nlog to stderr = false\nlog file = /dev/null\n' "$ceph_mon_host" >"$STAGE/ceph.conf"
    cp "$ceph_keyring" "$STAGE/ceph.keyring"
    backends="$backends, ceph:rbd"
    cat >>"$STAGE/backends.conf" <<CONF
[ceph]
rbd_store_pool = ${ceph_pool:-rbd}
rbd_store_user = $ceph_user
rbd_store_ceph_conf = /smoke/ceph.conf
rbd_store_keyring = /smoke/ceph.keyring
rados_connect_timeout = 10
CONF
    say "with an rbd backend on the cluster at $ceph_mon_host (pool ${ceph_pool:-rbd}, user $ceph_user)"
else
    say "no Ceph cluster given (KGLANCE_SMOKE_CEPH_ENV): filesystem backend only"
fi
{
    printf '[DEFAULT]\nenabled_backends = %s\n[glance_store]\ndefault_backend = local\n' "$backends"
    cat "$STAGE/backends.conf"
} >"$STAGE/glance-store.conf"
rm "$STAGE/backends.conf"

cat >"$STAGE/inside.sh" <<'INSIDE'
#!/bin/sh
# runs inside the image as its own user
set -eu
fail() { echo "inside: FAIL: $*" >&2; exit 1; }
cd /smoke
[ "$(id -u)" = 10001 ] || fail "running as uid $(id -u), not 10001"
[ "$(command -v kglance)" = /opt/kglance/bin/kglance ] || fail "kglance on PATH is $(command -v kglance)"
kglance --version
python -c 'import rados, rbd; print("rados", rados.Rados().version(), "rbd", rbd.RBD().version())'
# every extra's SDK (the one image serves every StoreBackend type and runs the operator)
python -c 'import boto3, swiftclient, keystoneauth1, cinderclient, os_brick, oslo_config, kopf, yaml'
if kglance --help | grep -qw operator; then
    kglance operator --help >/dev/null || fail "kglance operator --help failed"
    echo "kglance operator: present"
fi
# the arguments the injected sidecar runs with; the clients find the socket through the
# image's KGLANCE_SOCKET, as the application containers do
kglance serve --config /etc/kglance/glance-store.conf --socket /run/kglance/kglance.sock \
    --log-level warning 2>serve.log &
serve=$!
trap 'kill $serve 2>/dev/null || true' EXIT
i=0
until kglance backends >backends.json 2>/dev/null; do
    i=$((i + 1))
    [ "$i" -lt 150 ] || { cat serve.log >&2; fail "the sidecar did not answer within 30 s"; }
    kill -0 $serve 2>/dev/null || { cat serve.log >&2; fail "kglance serve exited"; }
    sleep 0.2
done
python -c 'import json; print("backends:", *(b["id"] + ":" + b["type"] for b in json.load(open("backends.json"))))'
head -c 3000000 /dev/urandom >image.raw
for backend in $(sed -n 's/^enabled_backends = //p' /etc/kglance/glance-store.conf | tr ',' '\n' | cut -d: -f1); do
    id=$(python -c 'import uuid; print(uuid.uuid4())')
    kglance put --backend "$backend" --id "$id" image.raw >put.json
    size=$(kglance stat --backend "$backend" "$id" |
        python -c 'import json, sys; print(json.load(sys.stdin)["size"])')
    [ "$size" = 3000000 ] || fail "$backend: stat says $size bytes, put 3000000"
    kglance get --backend "$backend" --expect put.json -o fetched.raw "$id"
    cmp image.raw fetched.raw || fail "$backend: the bytes read back differ"
    kglance rm --backend "$backend" "$id" >/dev/null
    if kglance stat --backend "$backend" "$id" >/dev/null 2>&1; then
        fail "$backend: $id still exists after rm"
    fi
    rm -f fetched.raw
    echo "$backend: put, stat ($size), get --expect, rm: ok"
done
kill $serve
wait $serve || true
trap - EXIT
echo "inside: all checks passed"
INSIDE
chmod 0755 "$STAGE/inside.sh"

# the image's configuration, as a kubelet would read it
config=$(buildah inspect --type image --format '{{.OCIv1.Config.User}} {{.OCIv1.Config.Entrypoint}}' "$KGLANCE_IMAGE")
[ "$config" = '10001:10001 [kglance]' ] || die "image user and entrypoint are $config"
say "user 10001:10001, entrypoint kglance"

ctr=$(buildah from --pull=never "$KGLANCE_IMAGE")
mv "$STAGE/glance-store.conf" "$STAGE.conf"
chmod 0444 "$STAGE.conf" # root's, read-only: how the injected config Secret appears
buildah copy --quiet "$ctr" "$STAGE.conf" /etc/kglance/glance-store.conf >/dev/null
rm -f "$STAGE.conf"
buildah copy --quiet --chown 10001:10001 "$ctr" "$STAGE" /smoke >/dev/null
say "running the checks in $KGLANCE_IMAGE"
timeout 180 buildah run --isolation chroot --network host "$ctr" -- /smoke/inside.sh ||
    die "the smoke test failed in $KGLANCE_IMAGE"
say "passed"
