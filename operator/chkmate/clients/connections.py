"""GitHub clients per GitHubConnection, built from the Secrets the connection names.

:meth:`GitHubConnections.client` reads the Secret(s) again (one GET), so a rotated key or token is used
without a restart; a client is reused while its configuration's fingerprint is unchanged, which keeps its
token cache and ETag cache warm. The connection's own reconcile calls it (on every change of the connection
or of its Secrets, which are watched); every other object calls :meth:`GitHubConnections.current`, which
returns that client without reading the Secrets again while the connection's spec is unchanged.
I/O: reads Secrets through the Kubernetes client.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from chkmate import errors
from chkmate.api import connections
from chkmate.api.conditions import Reasons
from chkmate.clients import github, kube

Key = tuple[str, str]


class SecretNotFound(errors.ChkmateError):
    reason = Reasons.SECRET_NOT_FOUND
    retryable = True


@dataclasses.dataclass
class GitHubConnections:
    """The operator-wide registry of GitHub clients, keyed by connection (namespace, name)."""

    timeout: float = github.DEFAULT_TIMEOUT
    # Told of every response: (namespace, connection, client, HTTP status; 0 when no response came).
    on_response: Callable[[str, str, github.GitHubClient, int], None] | None = None
    _clients: dict[Key, github.GitHubClient] = dataclasses.field(default_factory=dict)
    _specs: dict[Key, connections.GitHubConnectionSpec] = dataclasses.field(default_factory=dict)

    async def client(
        self, kube_client: kube.KubeClient, namespace: str, name: str, spec: connections.GitHubConnectionSpec
    ) -> github.GitHubClient:
        auth = await read_auth(kube_client, namespace, spec)
        current = self._clients.get((namespace, name))
        self._specs[(namespace, name)] = spec
        if current is not None and current.fingerprint == github.fingerprint(spec.api_url, auth):
            return current
        client = github.GitHubClient(spec.api_url, auth, timeout=self.timeout)
        if self.on_response is not None:
            report = self.on_response
            client.on_response = lambda status: report(namespace, name, client, status)
        self._clients[(namespace, name)] = client
        if current is not None:
            await current.close()
        return client

    async def current(
        self, kube_client: kube.KubeClient, namespace: str, name: str, spec: connections.GitHubConnectionSpec
    ) -> github.GitHubClient:
        """The connection's client as its last reconcile built it (Secrets read only when there is none yet, or
        the spec changed since)."""
        found = self._clients.get((namespace, name))
        if found is not None and self._specs.get((namespace, name)) == spec:
            return found
        return await self.client(kube_client, namespace, name, spec)

    def cached(self, namespace: str, name: str) -> github.GitHubClient | None:
        return self._clients.get((namespace, name))

    async def forget(self, namespace: str, name: str) -> None:
        client = self._clients.pop((namespace, name), None)
        self._specs.pop((namespace, name), None)
        if client is not None:
            await client.close()

    async def close(self) -> None:
        for key in list(self._clients):
            await self.forget(*key)

    def all(self) -> dict[Key, github.GitHubClient]:
        return dict(self._clients)


async def read_auth(
    kube_client: kube.KubeClient, namespace: str, spec: connections.GitHubConnectionSpec
) -> github.Auth:
    if spec.private_key_secret_ref is not None:
        ref = spec.private_key_secret_ref
        assert spec.app_id is not None and spec.installation_id is not None  # the model guarantees it
        key = await _secret(kube_client, namespace, ref.name, ref.key, "spec.privateKeySecretRef")
        return github.AppAuth(spec.app_id, spec.installation_id, key)
    assert spec.token_secret_ref is not None  # the model guarantees exactly one
    ref = spec.token_secret_ref
    return github.TokenAuth((await _secret(kube_client, namespace, ref.name, ref.key, "spec.tokenSecretRef")).strip())


async def _secret(kube_client: kube.KubeClient, namespace: str, name: str, key: str, field: str) -> str:
    value = await kube_client.read_secret_key(namespace, name, key)
    if not value:
        raise SecretNotFound(f"{field}: Secret {name!r} has no key {key!r} (or does not exist) in {namespace!r}.")
    return value
