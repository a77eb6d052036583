#!/usr/bin/env bash
# link-ceph-bindings.sh VENV_PYTHON: make Debian's python3-rados/python3-rbd importable from a venv.
#
# Why symlinks: the Ceph bindings are not on PyPI as wheels; Debian 12 builds them for its CPython
# 3.11, and the extension ABI (cpython-311-x86_64-linux-gnu) is shared by every CPython 3.11, so
# a pyenv 3.11 venv can load them. Linking only the extension modules keeps the rest of Debian's
# dist-packages (old requests, urllib3, six...) out of the venv. Other Python versions cannot use
# these modules: the script refuses them. Idempotent. Needs: install-ceph.sh.
set -euo pipefail
SCRIPT_NAME=link-ceph-bindings
SCRIPT_T0=$(date +%s%N)
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

PY=${1:?usage: link-ceph-bindings.sh VENV_PYTHON (e.g. .venv/bin/python)}
DIST=/usr/lib/python3/dist-packages
[ -x "$PY" ] || command -v "$PY" >/dev/null || die "$PY is not an executable Python"

read -r IMPL VER SOABI IS_VENV SITE < <("$PY" -c '
import sys, sysconfig
print(sys.implementation.name, "%d.%d" % sys.version_info[:2], sysconfig.get_config_var("SOABI"),
      int(sys.prefix != sys.base_prefix), sysconfig.get_paths()["platlib"])') ||
    die "cannot run $PY"
{ [ "$IMPL" = cpython ] && [ "$VER" = 3.11 ]; } ||
    die "$PY is $IMPL $VER; Debian 12's rados/rbd bindings load only into CPython 3.11"

# Debian's own python3, or a venv made with --system-site-packages, already sees them
if "$PY" -c 'import rados, rbd' 2>/dev/null; then
    say "rados and rbd already import in $PY; nothing to link"
    exit 0
fi
[ "$IS_VENV" = 1 ] || die "$PY is not a venv; refusing to add files to a system-wide site-packages"
for module in rados rbd; do
    so=$DIST/$module.$SOABI.so
    [ -e "$so" ] || die "$so is missing: run install-ceph.sh (python3-rados, python3-rbd)"
    ln -sfn "$so" "$SITE/$module.$SOABI.so"
done
"$PY" -c 'import rados, rbd' || die "$PY still cannot import rados and rbd"
say "linked rados and rbd into $SITE"
