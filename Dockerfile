# syntax=docker/dockerfile:1
# The chkmate operator image: Python 3.11 slim, the chkmate package and its dependencies (wheels built in the
# builder stage), git (GitPython runs it) and a pinned, checksum-verified OpenTofu. Runs as a numeric non-root
# user and works with a read-only root filesystem when /tmp is writable (the chart mounts an emptyDir there).
#
#   docker build -t chkmate-operator:0.1.0 .
#
# Versions are build arguments. To move OpenTofu, set both TOFU_VERSION and TOFU_SHA256: the sha256 of
# tofu_<version>_linux_<arch>.zip from the release's SHA256SUMS (verify that file's signature first).

ARG PYTHON_VERSION=3.11.14
ARG DEBIAN_RELEASE=bookworm

FROM python:${PYTHON_VERSION}-slim-${DEBIAN_RELEASE} AS builder
# OpenTofu 1.10.6 for linux/amd64. Another architecture needs its own TOFU_ARCH and TOFU_SHA256.
ARG TOFU_VERSION=1.10.6
ARG TOFU_ARCH=amd64
ARG TOFU_SHA256=15b7bed76420b50da3e121769c43341df8cd57d751ca14e6dbe9c850124c6dac
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl unzip \
    && rm -rf /var/lib/apt/lists/*
# The build fails here unless the download matches TOFU_SHA256 exactly.
RUN curl -fsSL --retry 3 -o "/tmp/tofu_${TOFU_VERSION}_linux_${TOFU_ARCH}.zip" \
        "https://github.com/opentofu/opentofu/releases/download/v${TOFU_VERSION}/tofu_${TOFU_VERSION}_linux_${TOFU_ARCH}.zip" \
    && echo "${TOFU_SHA256}  /tmp/tofu_${TOFU_VERSION}_linux_${TOFU_ARCH}.zip" | sha256sum --check --strict - \
    && mkdir -p /opt/tofu \
    && unzip -q "/tmp/tofu_${TOFU_VERSION}_linux_${TOFU_ARCH}.zip" tofu -d /opt/tofu \
    && /opt/tofu/tofu version
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
# One wheel for chkmate and one per dependency, installed offline in the final stage.
RUN python -m pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:${PYTHON_VERSION}-slim-${DEBIAN_RELEASE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 65532 chkmate \
    && useradd --system --uid 65532 --gid 65532 --home-dir /tmp --no-create-home \
        --shell /usr/sbin/nologin chkmate
COPY --from=builder /opt/tofu/tofu /usr/local/bin/tofu
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    python -m pip install --no-cache-dir --no-index --find-links=/wheels chkmate-operator
# HOME=/tmp: git and tofu write their configuration and caches there (the root filesystem may be read-only).
# The image ships OpenTofu only, so Environments with engine "terraform" run it too (a setting; override it
# with a terraform binary of your own).
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    CHKMATE_TERRAFORM_BINARY=tofu
USER 65532:65532
# kopf's liveness endpoint (CHKMATE_LIVENESS_PORT) and Prometheus metrics (CHKMATE_METRICS_PORT). In Kubernetes
# the chart's probes use /healthz; HEALTHCHECK serves plain `docker run`.
EXPOSE 8080 9090
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('CHKMATE_LIVENESS_PORT', '8080'), timeout=4)"]
ENTRYPOINT ["chkmate-operator"]
