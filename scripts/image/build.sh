#!/usr/bin/env bash
# build.sh: build the kglance image from the repository's Dockerfile with buildah, offline.
#
# Why not `docker build .`: these machines have no container engine and their containers can
# neither pull from registries nor reach PyPI over TLS. So the base comes from make-base.sh (a
# debootstrap'd bookworm that already has the Debian packages) and the wheels are downloaded here
# on the host into a wheelhouse that the Dockerfile installs from without an index. The Python
# versions are pinned to the project's test venv (`pip freeze`), so the image runs the
# dependency versions the test suite ran against.
#
#   scripts/image/build.sh               from the working tree, as `docker build .` would
#   scripts/image/build.sh --from-head   from the last commit only (git archive HEAD)
#   scripts/image/build.sh --export      also write .image/out/kglance-<version>.oci.tar
#   scripts/image/build.sh --plain-base  on make-base.sh --plain (no Debian packages
#                                        preinstalled): checks the apt-get path `docker build .`
#                                        takes, with apt reaching the host's mirror
#
# Environment: KGLANCE_PYTHON (host Python with pip used for downloads: default .venv/bin/python,
# else python3), and env.sh's variables. Prints the image name and size; timings go to stderr.
set -euo pipefail
SCRIPT_NAME=image-build
SCRIPT_T0=$(date +%s%N)
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../servers/lib.sh
. "$HERE/../servers/lib.sh"
# shellcheck source=env.sh
. "$HERE/env.sh"

from_head=0 export_archive=0 base_args=()
for arg in "$@"; do
    case $arg in
    --from-head) from_head=1 ;;
    --export) export_archive=1 ;;
    --plain-base)
        base_args=(--plain)
        KGLANCE_BASE_IMAGE=$KGLANCE_PLAIN_BASE_IMAGE
        ;;
    *) die "unknown argument $arg (see the header of $0)" ;;
    esac
done
PY=${KGLANCE_PYTHON:-$KGLANCE_ROOT/.venv/bin/python}
[ -x "$PY" ] || PY=python3
CONTEXT=$KGLANCE_IMAGE_DIR/context
WHEELHOUSE=$KGLANCE_IMAGE_DIR/wheelhouse
LOGS=$KGLANCE_IMAGE_DIR/logs
mkdir -p "$LOGS"

apt_install_missing buildah debootstrap
bash "$HERE/make-base.sh" "${base_args[@]}"

# -- the build context: the files .dockerignore lets in, plus the wheelhouse ----------------------
say "assembling the build context ($([ $from_head = 1 ] && echo HEAD || echo working tree))"
rm -rf "$CONTEXT"
mkdir -p "$CONTEXT"
SOURCES=(pyproject.toml README.md src drivers sidecar operator)
if ((from_head)); then
    git -C "$KGLANCE_ROOT" archive --format=tar HEAD -- "${SOURCES[@]}" | tar -C "$CONTEXT" -xf -
else
    tar -C "$KGLANCE_ROOT" --exclude=__pycache__ --exclude='*.pyc' -cf - "${SOURCES[@]}" |
        tar -C "$CONTEXT" -xf -
fi
cp "$KGLANCE_ROOT/Dockerfile" "$KGLANCE_ROOT/.dockerignore" "$CONTEXT/"

# -- wheels: every dependency of kglance[all] plus the build backend, for this platform ----------
constraints=$KGLANCE_IMAGE_DIR/constraints.txt
if "$PY" -m pip freeze --exclude-editable 2>/dev/null | grep -E '^[A-Za-z0-9_.-]+==' >"$constraints.new"; then
    mv "$constraints.new" "$constraints"
else
    : >"$constraints" # no venv to pin to: the newest versions that satisfy pyproject.toml
    rm -f "$constraints.new"
fi
key=$(cat "$CONTEXT/pyproject.toml" "$constraints" | sha256sum | cut -c1-16)
if [ "$(cat "$WHEELHOUSE/.key" 2>/dev/null)" != "$key" ]; then
    say "downloading wheels (pyproject.toml or the pinned versions changed)"
    rm -rf "$WHEELHOUSE" "$KGLANCE_IMAGE_DIR/dist"
    "$PY" -m pip wheel -q --no-deps --wheel-dir "$KGLANCE_IMAGE_DIR/dist" "$CONTEXT" >"$LOGS/pip-wheel.log" 2>&1 ||
        { tail -n 20 "$LOGS/pip-wheel.log" >&2; die "building the kglance wheel failed"; }
    wheel=$(ls "$KGLANCE_IMAGE_DIR"/dist/kglance-*.whl)
    "$PY" -m pip download -q --dest "$WHEELHOUSE" --only-binary=:all: -c "$constraints" \
        "${wheel}[all]" 'setuptools>=68' wheel >"$LOGS/pip-download.log" 2>&1 ||
        { tail -n 20 "$LOGS/pip-download.log" >&2; die "downloading the wheels failed"; }
    rm -f "$WHEELHOUSE"/kglance-*.whl # kglance itself is built from the context
    echo "$key" >"$WHEELHOUSE/.key"
fi
cp -al "$WHEELHOUSE" "$CONTEXT/wheelhouse"

# -- build -----------------------------------------------------------------------------------------
say "buildah bud $KGLANCE_IMAGE from $KGLANCE_BASE_IMAGE (log: $LOGS/bud.log)"
buildah bud --pull=never --isolation chroot --network host --layers=false \
    --build-arg BASE_IMAGE="$KGLANCE_BASE_IMAGE" --build-arg VERSION="$KGLANCE_VERSION" \
    --tag "$KGLANCE_IMAGE" --file "$CONTEXT/Dockerfile" "$CONTEXT" >"$LOGS/bud.log" 2>&1 ||
    { tail -n 30 "$LOGS/bud.log" >&2; die "buildah bud failed"; }
buildah rmi --prune >/dev/null 2>&1 || true # the builder stage's leftovers
rm -rf "$CONTEXT"

if ((export_archive)); then
    archive=$KGLANCE_IMAGE_DIR/out/kglance-$KGLANCE_VERSION.oci.tar
    mkdir -p "$(dirname "$archive")"
    rm -f "$archive"
    buildah push --quiet "$KGLANCE_IMAGE" "oci-archive:$archive:$KGLANCE_IMAGE" >/dev/null
    say "exported $archive ($(du -h "$archive" | cut -f1))"
fi
say "built $KGLANCE_IMAGE"
buildah images --format '{{.Name}}:{{.Tag}} {{.Size}}' "$KGLANCE_IMAGE"
