"""The e2e tier needs a real cluster: it is skipped unless KUBECONFIG is set (e.g. a kind cluster)."""

import os
import shutil

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    reason = None
    if not os.environ.get("KUBECONFIG"):
        reason = "needs a real cluster: set KUBECONFIG (e.g. `kind create cluster`)"
    elif shutil.which("kubectl") is None:
        reason = "needs kubectl on the PATH"
    if reason is None:
        return
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.skip(reason=reason))
