#!/usr/bin/env bash
# Set up a development machine: a virtualenv in .venv with chkmate and its dev tools, plus the system
# tools the tests use (git, terraform is expected on the machine; helm, kubectl and promtool via
# dev/install-tools.sh). Idempotent; safe to re-run. Downloads go to .cache/ (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
need_apt=()
command -v git >/dev/null || need_apt+=(git)
if ((${#need_apt[@]})); then
    echo "bootstrap: installing ${need_apt[*]} with apt-get" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [[ ! -x .venv/bin/python ]]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[dev]" 2>&1 | grep -v "^WARNING: Location" || true
bash dev/install-tools.sh
.venv/bin/python -c "import chkmate, kopf, kmock, githubkit, git, hcl2" || {
    echo "bootstrap: the Python dependencies did not install" >&2
    exit 1
}
echo "bootstrap: ready ($(.venv/bin/python --version), $(git --version))" >&2
