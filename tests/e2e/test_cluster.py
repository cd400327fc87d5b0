"""Against a real cluster: the chart's CRDs and the examples apply, and the operator makes them Ready.

Runs the operator as a subprocess (``kopf run -m chkmate.main``) with the current kubeconfig, in a fresh
namespace that is deleted afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
pytestmark = pytest.mark.e2e


def kubectl(*args: str, input: str | None = None) -> str:
    return subprocess.run(["kubectl", *args], input=input, capture_output=True, text=True, check=True).stdout


@pytest.fixture
def namespace() -> Iterator[str]:
    name = f"chkmate-e2e-{uuid.uuid4().hex[:8]}"
    kubectl("apply", "--server-side", "-f", str(ROOT / "charts" / "chkmate-operator" / "crds"))
    kubectl("create", "namespace", name)
    try:
        yield name
    finally:
        kubectl("delete", "namespace", name, "--wait=false")


@pytest.fixture
def operator(namespace: str) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, "CHKMATE_NAMESPACES": namespace, "CHKMATE_LIVENESS_PORT": "0", "CHKMATE_RETRY_DELAY": "2s"}
    process = subprocess.Popen(
        [sys.executable, "-m", "kopf", "run", "--standalone", "--namespace", namespace, "-m", "chkmate.main"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


def condition(namespace: str, resource: str, name: str, type_: str) -> dict[str, str] | None:
    obj = json.loads(kubectl("get", resource, name, "-n", namespace, "-o", "json"))
    return next((c for c in obj.get("status", {}).get("conditions", []) if c["type"] == type_), None)


def test_examples_apply_and_template_becomes_ready(namespace: str, operator: subprocess.Popen[bytes]) -> None:
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        manifest = path.read_text().replace("namespace: default", f"namespace: {namespace}")
        kubectl("apply", "-n", namespace, "-f", "-", input=manifest)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready = condition(namespace, "templates.chkmate.dev", "network", "Ready")
        if ready and ready["status"] == "True":
            break
        time.sleep(1)
    else:
        pytest.fail("Template network never became Ready")
    listed = kubectl("get", "chkmate", "-n", namespace)
    assert "network" in listed
