# shellcheck shell=bash
# Source me: confines buildah to the project's .image directory and names the images.
#
# Why: there is no container engine on the build machines, only buildah run as root. vfs storage
# and chroot isolation need no kernel overlay or user namespaces; keeping storage, run state and
# temporary files under one git-ignored directory means a build never touches the host's
# /var/lib/containers and `rm -rf .image` undoes everything. The registries file lists no
# search registries, so an unqualified name can never be pulled from the network by accident.
#
#   KGLANCE_IMAGE_DIR   state directory (default: <repo>/.image)
#   KGLANCE_IMAGE       image built by build.sh (default: localhost/kglance:<version>)
#   KGLANCE_BASE_IMAGE  base made by make-base.sh (default: localhost/kglance-base:bookworm)
#   KGLANCE_PLAIN_BASE_IMAGE  make-base.sh --plain (default: localhost/kglance-base:bookworm-plain)

KGLANCE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
KGLANCE_IMAGE_DIR=${KGLANCE_IMAGE_DIR:-$KGLANCE_ROOT/.image}
KGLANCE_VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$KGLANCE_ROOT/pyproject.toml" | head -n 1)
KGLANCE_IMAGE=${KGLANCE_IMAGE:-localhost/kglance:$KGLANCE_VERSION}
KGLANCE_BASE_IMAGE=${KGLANCE_BASE_IMAGE:-localhost/kglance-base:bookworm}
KGLANCE_PLAIN_BASE_IMAGE=${KGLANCE_PLAIN_BASE_IMAGE:-localhost/kglance-base:bookworm-plain}

mkdir -p "$KGLANCE_IMAGE_DIR/storage" "$KGLANCE_IMAGE_DIR/run" "$KGLANCE_IMAGE_DIR/tmp"
if [ ! -e "$KGLANCE_IMAGE_DIR/storage.conf" ]; then
    cat >"$KGLANCE_IMAGE_DIR/storage.conf" <<CONF
[storage]
driver = "vfs"
graphroot = "$KGLANCE_IMAGE_DIR/storage"
runroot = "$KGLANCE_IMAGE_DIR/run"
CONF
fi
if [ ! -e "$KGLANCE_IMAGE_DIR/registries.conf" ]; then
    printf 'unqualified-search-registries = []\n' >"$KGLANCE_IMAGE_DIR/registries.conf"
fi

export KGLANCE_ROOT KGLANCE_IMAGE_DIR KGLANCE_VERSION KGLANCE_IMAGE KGLANCE_BASE_IMAGE KGLANCE_PLAIN_BASE_IMAGE
export CONTAINERS_STORAGE_CONF=$KGLANCE_IMAGE_DIR/storage.conf
export CONTAINERS_REGISTRIES_CONF=$KGLANCE_IMAGE_DIR/registries.conf
export STORAGE_DRIVER=vfs
export BUILDAH_ISOLATION=chroot
export TMPDIR=$KGLANCE_IMAGE_DIR/tmp
