#!/usr/bin/env bash
# The whole check, as CI runs it: set up, lint, type-check, layer contracts, CRD staleness, tests.
# Extra arguments go to pytest (e.g. dev/test.sh -k conditions).
set -euo pipefail
cd "$(dirname "$0")/.."

bash dev/bootstrap.sh
export PATH="$PWD/.venv/bin:$PATH"

echo "== ruff" && ruff check operator tests bench
echo "== mypy --strict" && mypy
echo "== import contracts" && lint-imports --no-cache
echo "== CRDs up to date" && python -m chkmate.api.crdgen --check
echo "== pytest" && python -m pytest "$@"
