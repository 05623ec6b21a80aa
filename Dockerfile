# syntax=docker/dockerfile:1
# The acinode operator image (also runs the ACI emulator: `acinode emulator`). Build: make image.
#
# Pinned base: a full Python patch version on a fixed Debian release. For reproducible builds pin the digest too,
# e.g. --build-arg PYTHON_IMAGE=python:3.11.13-slim-bookworm@sha256:<digest> (docker buildx imagetools inspect).
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# --- build: install acinode and its dependencies into a virtualenv ------------------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/acinode
WORKDIR /src
# Metadata first, so the dependency layer is reused while only the code changes.
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN /opt/acinode/bin/pip install --no-compile . \
 && /opt/acinode/bin/python -m compileall -q -j 0 /opt/acinode/lib \
 && /opt/acinode/bin/acinode --version

# --- runtime: the virtualenv on a slim base, as a non-root user ---------------------------------------------
FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="acinode" \
      org.opencontainers.image.description="Serverless virtual nodes for Kubernetes, backed by Azure Container Instances" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
# The same uid/gid as the chart's securityContext; no home, no shell login.
RUN groupadd --system --gid 65532 acinode \
 && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin acinode
COPY --from=build /opt/acinode /opt/acinode
ENV PATH=/opt/acinode/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 65532:65532
# 10250: kubelet API; 8080: health (--liveness); 9090: metrics.
EXPOSE 10250 8080 9090
ENTRYPOINT ["acinode"]
CMD ["run", "--log-format=json", "--liveness=http://0.0.0.0:8080/healthz"]
