#!/usr/bin/env bash
# install-ceph.sh: install Debian 12's Ceph (Pacific 16.2) packages that ceph-up.sh needs.
#
# Why apt and not containers: CI machines have no Docker and no systemd, and Debian's daemons
# run fine as plain processes under a data directory. python3-rados/python3-rbd are the only
# Ceph bindings for CPython 3.11 (link-ceph-bindings.sh makes them importable from a venv).
# Idempotent: returns at once when everything is present. Needs root for the install.
set -euo pipefail
SCRIPT_NAME=install-ceph
SCRIPT_T0=$(date +%s%N)
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

apt_install_missing ceph-mon ceph-mgr ceph-osd ceph-common radosgw python3-rados python3-rbd curl
say "ceph packages present ($(dpkg-query -W -f='${Version}' ceph-common))"
