# kglance: one image for the operator (`kglance operator`) and the image sidecar (`kglance serve`).
#
# Two stages so that pip, venv tooling and the wheel build stay out of what runs in the cluster:
# the builder turns the source into wheels and installs them into /opt/kglance; the final stage is
# the Debian base plus Python 3.11, Debian's Ceph bindings and that one directory. Debian 12's
# python3 is 3.11, the only CPython its python3-rados/python3-rbd extension modules load into,
# and those bindings are not on PyPI, so the venv links Debian's two modules in rather than
# seeing all of dist-packages.
#
#   docker build -t kglance .          needs a Debian mirror and PyPI
#   scripts/image/build.sh             buildah, offline: BASE_IMAGE is a local debootstrap'd
#                                      bookworm that already has the Debian packages, and a
#                                      wheelhouse/ directory in the context holds every wheel
# Both stages install only the Debian packages the base lacks, and pip reads only wheelhouse/
# when the context has one, so the same file serves both builds (docs/image.md).

ARG BASE_IMAGE=debian:bookworm-slim

FROM ${BASE_IMAGE} AS builder
ARG DEBIAN_FRONTEND=noninteractive
RUN set -eu; missing=; \
    for pkg in python3 python3-venv; do \
        dpkg-query -W -f '${db:Status-Status}' "$pkg" 2>/dev/null | grep -qx installed || missing="$missing $pkg"; \
    done; \
    if [ -n "$missing" ]; then \
        apt-get update -q && apt-get install -y -q --no-install-recommends $missing; \
        rm -rf /var/lib/apt/lists/*; \
    fi
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore
RUN python3 -m venv /opt/build
COPY . /src
WORKDIR /src
# every extra, so the one image serves any StoreBackend type; the builder has no compiler, so a
# dependency without a wheel for this platform fails here rather than dragging one in
RUN set -eu; if [ -d wheelhouse ]; then export PIP_NO_INDEX=1 PIP_FIND_LINKS=/src/wheelhouse; fi; \
    /opt/build/bin/pip wheel -q --wheel-dir /wheels '.[all]'; \
    python3 -m venv --without-pip /opt/kglance; \
    /opt/build/bin/pip --python /opt/kglance/bin/python install -q --no-index --find-links /wheels \
        'kglance[all]'
# Debian's python3-rados/python3-rbd, installed in the final stage, appear in the venv as links
RUN set -eu; soabi=$(python3 -c 'import sysconfig; print(sysconfig.get_config_var("SOABI"))'); \
    site=$(/opt/kglance/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["platlib"])'); \
    for module in rados rbd; do \
        ln -s "/usr/lib/python3/dist-packages/$module.$soabi.so" "$site/$module.$soabi.so"; \
    done

FROM ${BASE_IMAGE}
ARG DEBIAN_FRONTEND=noninteractive
ARG VERSION=0.1.0
RUN set -eu; missing=; \
    for pkg in python3 python3-rados python3-rbd ca-certificates; do \
        dpkg-query -W -f '${db:Status-Status}' "$pkg" 2>/dev/null | grep -qx installed || missing="$missing $pkg"; \
    done; \
    if [ -n "$missing" ]; then \
        apt-get update -q && apt-get install -y -q --no-install-recommends $missing; \
        apt-get clean; rm -rf /var/lib/apt/lists/* /var/log/apt /var/log/dpkg.log; \
    fi
# uid 10001: outside the ranges Debian and most hosts hand out. Not named "operator": Debian
# already has a group of that name.
RUN set -eu; useradd --uid 10001 --user-group --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin kglance; \
    install -d -o 10001 -g 10001 -m 0750 /var/lib/kglance /run/kglance
COPY --from=builder /opt/kglance /opt/kglance
ENV PATH=/opt/kglance/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    KGLANCE_SOCKET=/run/kglance/kglance.sock
# fail the build, not the first pod, if the Ceph bindings or the program do not load
RUN python -c 'import rados, rbd, kglance.cli' && kglance --version
LABEL org.opencontainers.image.title="kglance" \
      org.opencontainers.image.description="glance_store rebuilt Kubernetes-native: operator and image sidecar" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
WORKDIR /var/lib/kglance
USER 10001:10001
ENTRYPOINT ["kglance"]
CMD ["serve"]
