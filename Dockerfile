# syntax=docker/dockerfile:1
# The acinode operator image, for builders that have a container engine. The image the project builds, tests and
# publishes is made WITHOUT one by `make image` (image/build.py: Debian bookworm packages pinned in image/lock/,
# the Python dependencies pinned with hashes in image/requirements.lock, acinode's wheel; a reproducible OCI
# archive). This Dockerfile produces the same layout from the same pinned inputs, so that either can be used:
#   - Debian bookworm's python3.11 at /usr/bin/python3.11, acinode and its dependencies in
#     /usr/lib/python3/dist-packages, /usr/bin/acinode as the entrypoint;
#   - uid/gid 65532 (the chart's securityContext), a root filesystem that may be mounted read-only (only /tmp is
#     written: the chart mounts an emptyDir there);
#   - ports 10250 (kubelet API), 8080 (health), 9090 (metrics).
# It is not byte-for-byte reproducible (apt and the layer metadata of docker build are not); `make image` is.
ARG DEBIAN_IMAGE=debian:bookworm-slim

FROM ${DEBIAN_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.11 python3-pip python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY image/requirements.lock image/build-requirements.txt ./image/
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN python3.11 -m venv /opt/builder \
 && /opt/builder/bin/pip install --no-deps --require-hashes -r image/build-requirements.txt \
 && /opt/builder/bin/pip wheel --no-deps --no-build-isolation -w /wheels . \
 && /opt/builder/bin/pip install --no-deps --no-compile --only-binary=:all: --require-hashes \
      --target /out/usr/lib/python3/dist-packages -r image/requirements.lock \
 && /opt/builder/bin/pip install --no-deps --no-compile --target /out/usr/lib/python3/dist-packages /wheels/acinode-*.whl \
 && rm -rf /out/usr/lib/python3/dist-packages/bin \
 && mkdir -p /out/usr/bin \
 && printf '#!/usr/bin/python3.11\nimport sys\n\nfrom acinode.cli import main\n\nif __name__ == "__main__":\n    sys.exit(main())\n' \
      > /out/usr/bin/acinode \
 && chmod 0755 /out/usr/bin/acinode

FROM ${DEBIAN_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="acinode" \
      org.opencontainers.image.description="Serverless virtual nodes for Kubernetes, backed by Azure Container Instances" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/acinode/acinode" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.11-minimal libpython3.11-stdlib ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 65532 nonroot \
 && useradd --system --uid 65532 --gid 65532 --home-dir /home/nonroot --create-home --shell /usr/sbin/nologin nonroot
COPY --from=build /out/ /
RUN python3.11 -m compileall -q --invalidation-mode unchecked-hash /usr/lib/python3/dist-packages \
 && /usr/bin/acinode --version
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    HOME=/home/nonroot \
    LANG=C.UTF-8
USER 65532:65532
# 10250: kubelet API; 8080: health (--liveness); 9090: metrics.
EXPOSE 10250 8080 9090
ENTRYPOINT ["/usr/bin/acinode"]
CMD ["run", "--log-format=json", "--liveness=http://0.0.0.0:8080/healthz"]
