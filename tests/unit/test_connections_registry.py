"""The registry of GitHub clients: the connection's reconcile reads its Secrets; everything else reuses its client."""

from __future__ import annotations

from typing import cast

from chkmate.api import connections
from chkmate.clients import connections as registry
from chkmate.clients import kube


class Secrets:
    """Stands in for the Kubernetes client: Secret values by (namespace, name, key), and how often each was read."""

    def __init__(self, values: dict[tuple[str, str, str], str]) -> None:
        self.values = values
        self.reads = 0

    async def read_secret_key(self, namespace: str, name: str, key: str) -> str | None:
        self.reads += 1
        return self.values.get((namespace, name, key))


def spec(api_url: str = "https://api.github.com") -> connections.GitHubConnectionSpec:
    return connections.GitHubConnectionSpec.model_validate(
        {"apiUrl": api_url, "tokenSecretRef": {"name": "gh", "key": "token"}}
    )


async def test_other_objects_reuse_the_client_the_connection_built_without_reading_its_secret() -> None:
    secrets = Secrets({("ns", "gh", "token"): "ghp_first"})
    client = cast(kube.KubeClient, secrets)
    clients = registry.GitHubConnections()
    try:
        built = await clients.client(client, "ns", "conn", spec())  # the connection's reconcile
        assert secrets.reads == 1
        for _ in range(3):
            assert await clients.current(client, "ns", "conn", spec()) is built
        assert secrets.reads == 1

        # A rotated token: the connection's reconcile (woken by the Secret watch) builds a new client...
        secrets.values[("ns", "gh", "token")] = "ghp_second"
        rotated = await clients.client(client, "ns", "conn", spec())
        assert rotated is not built and await clients.current(client, "ns", "conn", spec()) is rotated

        # ...and a spec the registry has not seen yet (the connection not reconciled since) reads the Secret.
        other = await clients.current(client, "ns", "conn", spec("https://ghe.example.com/api/v3"))
        assert other is not rotated and secrets.reads == 3
    finally:
        await clients.close()


async def test_a_connection_never_built_is_built_on_first_use() -> None:
    secrets = Secrets({("ns", "gh", "token"): "ghp_first"})
    clients = registry.GitHubConnections()
    try:
        first = await clients.current(cast(kube.KubeClient, secrets), "ns", "conn", spec())
        assert first is clients.cached("ns", "conn") and secrets.reads == 1
    finally:
        await clients.close()
