#!/usr/bin/env bash
# Set up everything the test suite needs on a fresh Debian 12 machine, start the real servers
# on 127.0.0.1, then run lint, type checks and the tests. Fails loudly on any failure.
#
#   scripts/test.sh               everything
#   scripts/test.sh -k ranges     extra arguments go to pytest
#
# Environment: PYTHON (default python3, must be CPython 3.11), KGLANCE_VENV (default .venv),
# KGLANCE_SERVERS_DIR (default .servers: server state, logs, data), KGLANCE_SKIP_LINT=1,
# KGLANCE_IMAGE_BUILD=1 (after the tests, build the container image with buildah and smoke-test
# it: scripts/image/build.sh and smoke.sh, about 3.5 minutes more; docs/image.md).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PYTHON=${PYTHON:-python3}
VENV=${KGLANCE_VENV:-$ROOT/.venv}
SERVERS=${KGLANCE_SERVERS_DIR:-$ROOT/.servers}
APT_PACKAGES=(nginx openssl curl)

log() { printf '\n== %s\n' "$*"; }

install_apt() {
    local missing=()
    for pkg in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    if ((${#missing[@]})); then
        log "apt-get install ${missing[*]}"
        # never let apt start the services it installs; the tests start their own on 127.0.0.1
        if [ ! -e /usr/sbin/policy-rc.d ]; then
            printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
        fi
        apt-get -o DPkg::Lock::Timeout=900 update -q
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -q "${missing[@]}"
    fi
}

install_python() {
    "$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' || {
        echo "kglance needs CPython 3.11 (Debian's Ceph bindings only import there)" >&2; exit 1; }
    if [ ! -x "$VENV/bin/python" ]; then
        log "creating $VENV"
        "$PYTHON" -m venv "$VENV"
    fi
    log "pip install -e .[test]"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    # strict editable mode builds a link tree that mypy can read (it cannot follow import hooks)
    "$VENV/bin/python" -m pip install -q -e ".[test,s3,swift,cinder,glance-store]" \
        --config-settings editable_mode=strict
    # Debian's librados/librbd bindings (python3-rados, python3-rbd) into the CPython 3.11 venv
    bash scripts/servers/link-ceph-bindings.sh "$VENV/bin/python"
}

stop_servers() {
    bash scripts/servers/nginx-down.sh "$SERVERS/nginx" >/dev/null 2>&1 || true
    bash scripts/servers/swift-down.sh "$SERVERS/swift" >/dev/null 2>&1 || true
    bash scripts/servers/ceph-down.sh "$SERVERS/ceph" >/dev/null 2>&1 || true
}

start_servers() {
    mkdir -p "$SERVERS"
    log "starting nginx, ceph (mon, mgr, osd, radosgw) and swift on 127.0.0.1"
    local pids=() name
    bash scripts/servers/nginx-up.sh "$SERVERS/nginx" > "$SERVERS/nginx.env" & pids+=($!)
    bash scripts/servers/ceph-up.sh "$SERVERS/ceph" > "$SERVERS/ceph.env" & pids+=($!)
    bash scripts/servers/swift-up.sh "$SERVERS/swift" "$SERVERS/tools" > "$SERVERS/swift.env" & pids+=($!)
    for pid in "${pids[@]}"; do wait "$pid"; done
    for name in nginx ceph swift; do
        set -a; . "$SERVERS/$name.env"; set +a
    done
}

install_apt
log "installing ceph and swift"
bash scripts/servers/install-ceph.sh
bash scripts/servers/install-swift.sh "$SERVERS/tools"
install_python
log "helm and kubectl into .tools/bin"
KGLANCE_HELM=$(bash scripts/tools/install-helm.sh)
export KGLANCE_HELM  # tests/chart render and lint the chart with it
trap stop_servers EXIT
start_servers

export PATH="$VENV/bin:$PATH"
export KGLANCE_REQUIRE_SERVERS=1  # a test whose server is missing fails instead of skipping
if [ "${KGLANCE_SKIP_LINT:-0}" != 1 ]; then
    log "ruff"
    ruff check .
    ruff format --check .
    log "mypy --strict"
    mypy -p kglance
    mypy tests $([ -d bench ] && echo bench)
fi
log "pytest"
pytest "$@"
if [ "${KGLANCE_IMAGE_BUILD:-0}" = 1 ]; then
    log "container image: buildah build and smoke test"
    bash scripts/image/build.sh
    KGLANCE_SMOKE_CEPH_ENV="$SERVERS/ceph.env" bash scripts/image/smoke.sh  # rbd round trip on the running cluster
fi
