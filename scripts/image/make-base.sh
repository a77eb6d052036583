#!/usr/bin/env bash
# make-base.sh: build the local base image $KGLANCE_BASE_IMAGE from Debian 12 packages, offline
# from any container registry.
#
# Why: the Dockerfile's default base is debian:bookworm-slim from Docker Hub, which these build
# machines cannot pull, and RUN steps there cannot use the package mirrors either. debootstrap
# fetches the same Debian 12 packages through the host's apt mirror instead, with the Debian
# packages both Dockerfile stages need (python3, python3-venv, python3-rados, python3-rbd,
# ca-certificates) already installed, so the Dockerfile's "install what is missing" steps find
# nothing to do and the build runs without network. Like the slim image, the base carries no
# documentation, man pages or translations, and dpkg is told to keep leaving them out.
#
#   scripts/image/make-base.sh            build unless the base image exists
#   scripts/image/make-base.sh --force    rebuild (re-runs debootstrap)
#   scripts/image/make-base.sh --plain    $KGLANCE_PLAIN_BASE_IMAGE instead: the same slim
#                                         bookworm without those packages, like debian:bookworm-slim,
#                                         so a build takes the Dockerfile's apt-get path (build.sh
#                                         --plain-base; apt then needs the host's mirror)
#
# Environment: KGLANCE_DEBIAN_MIRROR (default: the host's first apt mirror), see env.sh.
set -euo pipefail
SCRIPT_NAME=make-base
SCRIPT_T0=$(date +%s%N)
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../servers/lib.sh
. "$HERE/../servers/lib.sh"
# shellcheck source=env.sh
. "$HERE/env.sh"

PACKAGES=python3,python3-venv,python3-rados,python3-rbd,ca-certificates
ROOTFS=$KGLANCE_IMAGE_DIR/rootfs-bookworm

host_mirror() {
    local uri
    uri=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null |
        grep -v security | head -n 1 || true)
    [ -n "$uri" ] || uri=$(awk '$1 == "deb" && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
    echo "${uri:-http://deb.debian.org/debian}"
}

force=0
for arg in "$@"; do
    case $arg in
    --force) force=1 ;;
    --plain)
        PACKAGES=
        ROOTFS=$KGLANCE_IMAGE_DIR/rootfs-bookworm-plain
        KGLANCE_BASE_IMAGE=$KGLANCE_PLAIN_BASE_IMAGE
        ;;
    *) die "unknown argument $arg (see the header of $0)" ;;
    esac
done
apt_install_missing buildah debootstrap
if ((!force)) && buildah inspect --type image "$KGLANCE_BASE_IMAGE" >/dev/null 2>&1; then
    say "$KGLANCE_BASE_IMAGE exists (--force rebuilds it)"
    exit 0
fi

if ((force)) || [ ! -e "$ROOTFS/.kglance-base-complete" ]; then
    rm -rf "$ROOTFS"
    mirror=${KGLANCE_DEBIAN_MIRROR:-$(host_mirror)}
    say "debootstrap bookworm from $mirror with ${PACKAGES:-no extra packages}"
    debootstrap --variant=minbase ${PACKAGES:+--include="$PACKAGES"} bookworm "$ROOTFS" "$mirror" \
        >"$KGLANCE_IMAGE_DIR/debootstrap.log" 2>&1 ||
        { tail -n 20 "$KGLANCE_IMAGE_DIR/debootstrap.log" >&2; die "debootstrap failed"; }
    # what debian:bookworm-slim leaves out, for these packages and every later apt-get install
    cat >"$ROOTFS/etc/dpkg/dpkg.cfg.d/kglance-slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
CFG
    find "$ROOTFS/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete
    find "$ROOTFS/usr/share/doc" -mindepth 1 -type d -empty -delete
    rm -rf "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* "$ROOTFS"/var/cache/apt/archives/*.deb \
        "$ROOTFS"/var/cache/apt/*.bin \
        "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/log/*.log "$ROOTFS"/var/cache/debconf/*-old
    find "$ROOTFS/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
    touch "$ROOTFS/.kglance-base-complete"
fi

say "importing the root filesystem as $KGLANCE_BASE_IMAGE"
ctr=$(buildah from scratch)
trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
mnt=$(buildah mount "$ctr")
tar -C "$ROOTFS" --exclude=./.kglance-base-complete --exclude='./proc/*' --exclude='./sys/*' \
    --exclude='./dev/*' -cf - . | tar -C "$mnt" -xpf -
buildah umount "$ctr" >/dev/null
buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --cmd /bin/bash --label org.opencontainers.image.description="Debian 12 minbase + ${PACKAGES:-nothing}" \
    "$ctr"
buildah commit --quiet --rm "$ctr" "$KGLANCE_BASE_IMAGE" >/dev/null
trap - EXIT
say "done: $(buildah images --format '{{.Name}}:{{.Tag}} {{.Size}}' "$KGLANCE_BASE_IMAGE")"
