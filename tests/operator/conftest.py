"""The operator tier: the real chkmate operator (kopf) against the strict Kubernetes emulator.

``cluster`` is a client of the emulator with helpers to apply manifests and wait for conditions;
``chkmate`` starts the whole operator (as :mod:`chkmate.main` registers it) with fast settings.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import kopf
import pytest
import yaml

from chkmate import API_VERSION, main
from chkmate import settings as settings_
from chkmate.api import kinds
from chkmate.clients import kube as kube_client
from tests.fixtures import TOKEN
from tests.harness import kube

ROOT = Path(__file__).parents[2]
CRDS = sorted((ROOT / "crds").glob("*.yaml"))
NAMESPACE = "default"


@pytest.fixture
def kmock_options() -> dict[str, Any]:
    return {"cls": kube.StrictKubernetesEmulator}


@dataclasses.dataclass
class Cluster:
    """Test-side access to the emulated API server, through the operator's own client."""

    emulator: kube.StrictKubernetesEmulator
    client: kube_client.KubeClient

    async def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        info = kinds.BY_KIND[manifest["kind"]]
        manifest = {**manifest, "metadata": {"namespace": NAMESPACE, **manifest["metadata"]}}
        return await self.client.create(kube_client.ours(info.plural), NAMESPACE, manifest)

    async def get(self, kind: str, name: str) -> dict[str, Any] | None:
        return await self.client.get(kube_client.ours(kinds.BY_KIND[kind].plural), NAMESPACE, name)

    async def patch(self, kind: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        return await self.client.patch(kube_client.ours(kinds.BY_KIND[kind].plural), NAMESPACE, name, patch)

    async def delete(self, kind: str, name: str) -> bool:
        return await self.client.delete(kube_client.ours(kinds.BY_KIND[kind].plural), NAMESPACE, name)

    async def condition(self, kind: str, name: str, type_: str) -> dict[str, Any] | None:
        obj = await self.get(kind, name) or {}
        return next((c for c in obj.get("status", {}).get("conditions", []) if c["type"] == type_), None)

    async def wait_condition(
        self, kind: str, name: str, type_: str, status: str, reason: str | None = None, timeout: float = 10
    ) -> dict[str, Any]:
        """Wait until the condition has that status (and reason); return the whole object."""

        async def matches() -> dict[str, Any] | None:
            obj = await self.get(kind, name)
            for c in (obj or {}).get("status", {}).get("conditions", []):
                if c["type"] == type_ and c["status"] == status and reason in (None, c.get("reason")):
                    return obj
            return None

        try:
            return await kube.wait_for(matches, timeout=timeout)
        except TimeoutError:
            found = await self.get(kind, name)
            raise AssertionError(f"{kind}/{name} never got {type_}={status}/{reason}: {found}") from None

    async def secret(self, name: str, data: dict[str, str]) -> None:
        """Create or replace a Secret (stringData is what users write; the API server stores data)."""
        body = {
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": NAMESPACE},
            "data": {key: base64.b64encode(value.encode()).decode() for key, value in data.items()},
        }
        if await self.client.get(kube_client.SECRETS, NAMESPACE, name) is None:
            await self.client.create(kube_client.SECRETS, NAMESPACE, body)
        else:
            await self.client.patch(kube_client.SECRETS, NAMESPACE, name, {"data": body["data"]})

    async def events(self, name: str) -> list[dict[str, Any]]:
        found = await self.client.list(kube_client.Resource("", "v1", "events"), NAMESPACE)
        return [e for e in found if e.get("involvedObject", {}).get("name") == name]


@pytest.fixture
async def cluster(kmock: kube.StrictKubernetesEmulator) -> AsyncIterator[Cluster]:
    kube.load_crds(kmock, CRDS)
    async with kube_client.KubeClient(kopf.ConnectionInfo(server=str(kmock.url))) as client:
        yield Cluster(kmock, client)
    await kmock.close_watches()


def quick_settings(tmp_path: Path, **changes: Any) -> settings_.Settings:
    """The tier's settings (fast retries, short deadlines, no ports), with ``changes``."""
    return settings_.Settings(
        **{
            "retry_delay": 0.3,
            "liveness_port": 0,
            "metrics_port": 0,
            "namespaces": (NAMESPACE,),
            "work_dir": tmp_path / "work",
            "github_timeout": 5,
            "git_timeout": 30,
            "gc_refreeze": 0,  # a full collection of the whole test process at every operator start: slow
            **changes,
        }
    )


@pytest.fixture
def operator_settings(tmp_path: Path) -> settings_.Settings:
    """Fast retries for tests; override in a test module (with :func:`quick_settings`) to change more."""
    return quick_settings(tmp_path)


Starter = Callable[[], contextlib.AbstractAsyncContextManager[Cluster]]


@pytest.fixture
def start_chkmate(cluster: Cluster, operator_settings: settings_.Settings) -> Starter:
    """Starts the whole operator, as ``kopf run -m chkmate.main`` would; can be used several times in a test."""

    @contextlib.asynccontextmanager
    async def start() -> AsyncIterator[Cluster]:
        registry = kopf.OperatorRegistry()
        url = str(cluster.emulator.url)

        def login(logger: Any, settings: kopf.OperatorSettings) -> kopf.ConnectionInfo:
            return kopf.ConnectionInfo(server=url, default_namespace=NAMESPACE)

        # The webhook receiver (when a test's settings give it a port) listens on loopback only.
        main.register(registry, login=login, settings=lambda: operator_settings, webhook_host="127.0.0.1")
        async with kube.run_operator(registry, url, namespaces=(NAMESPACE,), login=False):
            yield cluster

    return start


@pytest.fixture
async def chkmate(start_chkmate: Starter) -> AsyncIterator[Cluster]:
    """The whole chkmate operator running against the emulator for the whole test."""
    async with start_chkmate() as cluster:
        yield cluster


async def connect_repository(
    cluster: Cluster, github: Any, git_server: Any, name: str, files: dict[str, str], *, owner: str = "octo"
) -> None:
    """A repository on the GitHub double with a first commit of ``files``, reached through a Ready token
    connection ``gh`` and a Ready GitHubRepository of the same name."""
    github.create_repo(owner, name)
    git_server.commit_files(owner, name, "main", files, "init")
    await cluster.secret("gh-token", {"token": TOKEN})
    await cluster.apply({"apiVersion": API_VERSION, "kind": "GitHubConnection", "metadata": {"name": "gh"},
                         "spec": {"apiUrl": github.url, "tokenSecretRef": {"name": "gh-token", "key": "token"}}})
    await cluster.apply({"apiVersion": API_VERSION, "kind": "GitHubRepository", "metadata": {"name": name},
                         "spec": {"connectionRef": {"name": "gh"}, "owner": owner, "name": name}})
    await cluster.wait_condition("GitHubRepository", name, "Ready", "True")


def example(name: str, **overrides: Any) -> dict[str, Any]:
    """A manifest from examples/ with top-level spec keys replaced (None removes a key)."""
    document: dict[str, Any] = yaml.safe_load((ROOT / "examples" / f"{name}.yaml").read_text())
    assert document["apiVersion"] == API_VERSION
    spec = {**document["spec"], **overrides}
    document["spec"] = {key: value for key, value in spec.items() if value is not None}
    return document


def renamed(
    manifest: dict[str, Any], name: str, edit: Callable[[dict[str, Any]], None] | None = None
) -> dict[str, Any]:
    copy = yaml.safe_load(yaml.safe_dump(manifest))
    copy["metadata"]["name"] = name
    if edit is not None:
        edit(copy)
    return copy
