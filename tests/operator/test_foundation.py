"""Every kind, applied to the emulated API server, gets its conditions from the running operator."""

from __future__ import annotations

import asyncio

import pytest

from chkmate.clients import kube as kube_client
from tests.harness import kube
from tests.operator.conftest import Cluster, example, renamed


async def test_template_becomes_ready_with_revision_and_version(chkmate: Cluster) -> None:
    await chkmate.apply(example("template"))
    obj = await chkmate.wait_condition("Template", "network", "Ready", "True", "Succeeded")
    status = obj["status"]
    assert status["revision"].startswith("sha256:")
    assert status["files"] == 3
    assert status["observedGeneration"] == obj["metadata"]["generation"] == 1
    assert [v["source"] for v in status["versions"]] == ["user"]
    valid = next(c for c in status["conditions"] if c["type"] == "Valid")
    assert valid["status"] == "True" and valid["observedGeneration"] == 1


async def test_a_template_edit_records_a_new_version_and_invalid_hcl_is_reported(chkmate: Cluster) -> None:
    await chkmate.apply(example("template"))
    first = await chkmate.wait_condition("Template", "network", "Ready", "True")
    await chkmate.patch("Template", "network", {"spec": {"files": {"extra.tf": "locals { x = 1 }\n"}}})
    await kube.wait_for(lambda: _versions(chkmate, 2), timeout=10)
    await chkmate.patch("Template", "network", {"spec": {"files": {"broken.tf": 'resource "x" "y" {\n  a = \n}\n'}}})
    obj = await chkmate.wait_condition("Template", "network", "Ready", "False", "InvalidHCL")
    ready = next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")
    assert ready["message"].startswith("broken.tf:2")
    assert len(obj["status"]["versions"]) == 2  # an invalid edit is no version
    assert first["status"]["revision"] != obj["status"]["revision"]
    assert any(e["reason"] == "InvalidHCL" and e["type"] == "Warning" for e in await chkmate.events("network"))


async def _versions(cluster: Cluster, count: int) -> bool:
    obj = await cluster.get("Template", "network") or {}
    return len(obj.get("status", {}).get("versions", [])) == count


@pytest.mark.parametrize(
    ("kind", "name", "status", "reason"),
    [
        ("GitHubConnection", "acme", "False", "SecretNotFound"),  # the example's Secret is not applied
        ("GitHubRepository", "infra-live", "False", "DependencyNotReady"),  # so its connection is not Ready
        ("Template", "network", "True", "Succeeded"),
        ("TemplateRepoLink", "network", "False", "DependencyNotReady"),  # the connection is not Ready
        ("Environment", "production", "False", "DependencyNotReady"),  # its repository is not reachable
        ("Plan", "production-manual-1", "False", "DependencyNotReady"),
    ],
)
async def test_every_example_gets_its_conditions(
    chkmate: Cluster, kind: str, name: str, status: str, reason: str
) -> None:
    for manifest in ("githubconnection", "githubrepository", "template", "templaterepolink", "environment", "plan"):
        await chkmate.apply(example(manifest))
    obj = await chkmate.wait_condition(kind, name, "Ready", status, reason)
    assert obj["status"]["observedGeneration"] == 1
    assert all(c["observedGeneration"] == 1 for c in obj["status"]["conditions"])


@pytest.mark.parametrize(
    ("kind", "manifest", "spec", "field"),
    [
        (
            "GitHubConnection",
            "githubconnection",
            {"tokenSecretRef": {"name": "t", "key": "token"}},
            "spec: set exactly",
        ),
        ("GitHubRepository", "githubrepository", {"create": False}, "spec: scaffold applies only"),
        ("TemplateRepoLink", "templaterepolink", {"syncDirection": "Pull"}, "spec: autoSync pushes"),
        ("Environment", "environment", {"linkRef": {"name": "network"}}, "spec: set exactly one of repositoryRef"),
        ("Environment", "environment", {"approval": {"mode": "manual", "requiredApprovals": 2}}, "spec.approval:"),
    ],
)
async def test_cross_field_mistakes_are_invalid_spec_naming_the_field(
    chkmate: Cluster, kind: str, manifest: str, spec: dict[str, object], field: str
) -> None:
    document = example(manifest, **spec)
    name = document["metadata"]["name"]
    await chkmate.apply(document)
    obj = await chkmate.wait_condition(kind, name, "Ready", "False", "InvalidSpec")
    conditions = {c["type"]: c for c in obj["status"]["conditions"]}
    assert conditions["Ready"]["message"].startswith(field), conditions["Ready"]["message"]
    assert conditions["Stalled"]["status"] == "True"
    events = await chkmate.events(name)
    assert any(e["reason"] == "InvalidSpec" and e["type"] == "Warning" for e in events)


async def test_invalid_spec_is_not_retried_and_recovers_on_fix(chkmate: Cluster) -> None:
    await chkmate.apply(example("templaterepolink", syncDirection="Pull"))
    stalled = await chkmate.wait_condition("TemplateRepoLink", "network", "Ready", "False", "InvalidSpec")
    await asyncio.sleep(1.5)  # several retry delays (0.3 s in tests)
    again = await chkmate.get("TemplateRepoLink", "network") or {}
    # No hot loop: nothing was written while nothing changed.
    assert again["metadata"]["resourceVersion"] == stalled["metadata"]["resourceVersion"]
    await chkmate.patch("TemplateRepoLink", "network", {"spec": {"syncDirection": "Bidirectional"}})
    obj = await chkmate.wait_condition("TemplateRepoLink", "network", "Ready", "False", "DependencyNotFound")
    assert "Stalled" not in {c["type"] for c in obj["status"]["conditions"]}  # retried: the Template may come
    assert obj["status"]["observedGeneration"] == 2


async def test_schema_violations_are_refused_by_the_api_server_naming_the_field(chkmate: Cluster) -> None:
    with pytest.raises(kube_client.KubeError) as e:
        await chkmate.apply(example("templaterepolink", syncDirection="Sideways"))
    assert e.value.status == 422
    assert "spec.syncDirection" in e.value.message and "Sideways" in e.value.message


async def test_missing_dependency_is_reported_then_resolved(chkmate: Cluster) -> None:
    await chkmate.apply(example("githubrepository"))
    obj = await chkmate.wait_condition("GitHubRepository", "infra-live", "Ready", "False", "DependencyNotFound")
    ready = next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")
    assert "spec.connectionRef: GitHubConnection 'acme' does not exist" in ready["message"]
    await chkmate.apply(example("githubconnection"))
    await chkmate.wait_condition("GitHubRepository", "infra-live", "Ready", "False", "DependencyNotReady")


async def test_requested_at_is_echoed_and_transition_time_kept(chkmate: Cluster) -> None:
    await chkmate.apply(example("template"))
    first = await chkmate.wait_condition("Template", "network", "Ready", "True")
    ready_before = next(c for c in first["status"]["conditions"] if c["type"] == "Ready")
    await asyncio.sleep(1.1)  # timestamps have second precision: make a moved time visible
    await chkmate.patch("Template", "network", {"metadata": {"annotations": {"chkmate.dev/requestedAt": "now-1"}}})

    async def echoed() -> dict[str, object] | None:
        obj = await chkmate.get("Template", "network") or {}
        return obj if obj.get("status", {}).get("lastHandledReconcileAt") == "now-1" else None

    obj = await kube.wait_for(echoed, timeout=10)
    ready_after = next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")
    assert ready_after["lastTransitionTime"] == ready_before["lastTransitionTime"]
    assert obj["metadata"]["generation"] == 1  # an annotation is no spec change


async def test_kopf_state_lives_in_chkmate_annotations_not_in_status(chkmate: Cluster) -> None:
    await chkmate.apply(example("template"))
    obj = await chkmate.wait_condition("Template", "network", "Ready", "True")
    assert "kopf" not in obj["status"]
    annotations = obj["metadata"].get("annotations", {})
    assert any(key.startswith("state.chkmate.dev/") for key in annotations)
    assert not any("kopf.zalando.org" in key for key in annotations)


def test_renamed_copies_deeply() -> None:
    original = example("template")
    copy = renamed(original, "other", lambda d: d["spec"]["files"].clear())
    assert original["spec"]["files"] and copy["metadata"]["name"] == "other"
