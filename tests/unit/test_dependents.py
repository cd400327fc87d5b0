"""The wake-up of objects waiting for a dependency, against a recording API client (no cluster needed)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import kopf
import pytest

from chkmate import settings
from chkmate.api import conditions as conds
from chkmate.api import kinds
from chkmate.controllers import dependents, indexing, memos


class RecordingKube:
    """Stands in for the API client: records the annotation patches."""

    def __init__(self) -> None:
        self.patched: list[tuple[str, dict[str, Any]]] = []

    async def __aenter__(self) -> RecordingKube:
        return self

    async def patch(self, resource: Any, namespace: str, name: str, body: dict[str, Any], **_: Any) -> None:
        self.patched.append((name, body["metadata"]["annotations"]))

    async def close(self) -> None:
        pass


class Index(dict[tuple[str, str], list[indexing.Summary]]):
    pass


def summary(name: str, ready: str, reason: str) -> indexing.Summary:
    return indexing.Summary("ns", name, 1, {"repositoryRef": {"name": "live"}}, ready, reason, "")  # type: ignore[arg-type]


def repository_ready(version: str) -> kopf.Body:
    return kopf.Body({
        "metadata": {"name": "live", "namespace": "ns", "uid": "u-live", "resourceVersion": version},
        "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded"}]},
    })


async def test_who_still_waits_a_moment_after_a_wake_up_is_woken_once_more(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dependents, "RECHECK_AFTER", 0.05)
    memo = memos.Memo(settings.Settings(work_dir=tmp_path))
    kube = RecordingKube()
    await memo.connect(kube)  # type: ignore[arg-type]
    environments = Index({("ns", "live"): [
        summary("waits", conds.FALSE, conds.Reasons.DEPENDENCY_NOT_READY),
        summary("failed-otherwise", conds.FALSE, conds.Reasons.PLAN_FAILED),
        summary("fine", conds.TRUE, conds.Reasons.SUCCEEDED),
    ]})  # fmt: skip
    indexes = {
        indexing.reference_index_name(kinds.ENVIRONMENT, "repository"): environments,
        indexing.reference_index_name(kinds.TEMPLATE_REPO_LINK, "repository"): Index(),
    }
    handler = dependents.handler_for(kinds.GITHUB_REPOSITORY)
    log = logging.getLogger("test")
    await handler(type="MODIFIED", body=repository_ready("7"), memo={memos.MEMO_KEY: memo}, logger=log, **indexes)
    assert [name for name, _ in kube.patched] == ["waits"], "only what waits for a dependency is woken"
    first = kube.patched[0][1]
    assert first[dependents.WOKEN_ANNOTATION] == "GitHubRepository/live@7"
    assert "chkmate.dev/requestedAt" not in first

    await asyncio.sleep(0.2)  # "waits" still waits (its reconcile failed again meanwhile): woken once more
    assert [name for name, _ in kube.patched] == ["waits", "waits"]
    assert kube.patched[1][1][dependents.WOKEN_ANNOTATION] != first[dependents.WOKEN_ANNOTATION]

    environments[("ns", "live")] = [summary("waits", conds.TRUE, conds.Reasons.SUCCEEDED)]
    await handler(type="MODIFIED", body=repository_ready("8"), memo={memos.MEMO_KEY: memo}, logger=log, **indexes)
    await asyncio.sleep(0.2)
    assert len(kube.patched) == 2, "Ready already before: not a transition; nothing waits any more"
    await memo.close()
