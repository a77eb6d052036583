#!/usr/bin/env bash
# install-swift.sh TOOLS_DIR: OpenStack Swift (server) from PyPI in TOOLS_DIR/swift-venv, plus
# Debian's memcached (tempauth keeps its tokens there).
#
# Why a separate venv: the Swift server pins eventlet, greenlet and PasteDeploy, which must not
# leak into the project venv; and PyPI Swift starts about twice as fast as Debian's 2.30 (newer
# eventlet). Idempotent: returns at once when the venv imports Swift at the wanted version.
# Environment: PYTHON (default python3; any CPython 3 works), SWIFT_PIP_SPEC (default swift==2.38.3).
# Prints SWIFT_BIN_DIR=... on stdout.
set -euo pipefail
SCRIPT_NAME=install-swift
SCRIPT_T0=$(date +%s%N)
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

TOOLS=$(realpath -m "${1:?usage: install-swift.sh TOOLS_DIR}")
PYTHON=${PYTHON:-python3}
SPEC=${SWIFT_PIP_SPEC:-swift==2.38.3}
VENV=$TOOLS/swift-venv

packages=(memcached curl)
# Debian's own python3 can only make venvs once python3-venv (ensurepip) is installed
if ! "$PYTHON" -c 'import ensurepip' 2>/dev/null; then
    case "$(realpath "$(command -v "$PYTHON")")" in
    /usr/bin/python3*) packages+=(python3-venv) ;;
    *) die "$PYTHON cannot create venvs (no ensurepip); set PYTHON to an interpreter that can" ;;
    esac
fi
apt_install_missing "${packages[@]}"

# The venv is current when its install finished (the marker is written last, so an interrupted
# pip never looks installed), it imports Swift, and the version satisfies SPEC.
MARKER=$VENV/.kglance-install-complete
venv_is_current() {
    [ -e "$MARKER" ] && [ -x "$VENV/bin/swift-proxy-server" ] &&
        "$VENV/bin/python" - "$SPEC" <<'EOF' 2>/dev/null
import sys
from importlib.metadata import version

import swift.proxy.server  # noqa: F401
from pip._vendor.packaging.requirements import Requirement

req = Requirement(sys.argv[1])
sys.exit(0 if req.specifier.contains(version(req.name), prereleases=True) else 1)
EOF
}

if ! venv_is_current; then
    say "pip install $SPEC into $VENV"
    rm -rf "$VENV"
    mkdir -p "$TOOLS"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$SPEC" ||
        die "pip install $SPEC into $VENV failed"
    touch "$MARKER"
    venv_is_current || die "$VENV does not import $SPEC after the install"
fi
say "swift $("$VENV/bin/python" -c 'from importlib.metadata import version; print(version("swift"))') in $VENV"
echo "SWIFT_BIN_DIR=$VENV/bin"
