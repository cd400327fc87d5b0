"""Runner Jobs and the Secrets that carry their bundles and results, through the Kubernetes API.

The values (names, manifests, what a status means, the codec) are :mod:`chkmate.domain.jobs`; this module only
reads and writes them:

* a *blob* (a bundle or a result, gzip JSON) lives in a head Secret ``<name>``: the data inline when it fits one
  Secret, else its sha256 and the count of chunk Secrets ``<name>-<i>`` (:func:`chkmate.clients.storage.save_chunks`)
  written before the head, so a head that exists names a complete blob;
* :func:`create_job` creates a Job or returns the one of that name (a restarted operator finds its Job);
* :func:`pod_failure` says how the Job's pod ended (best effort, for a clearer failure message).

Used by the operator (bundles, Jobs) and by ``chkmate run-job`` in the Job's pod (results). I/O: the Kubernetes
API through :class:`chkmate.clients.kube.KubeClient`.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from typing import Any

from chkmate import errors
from chkmate.clients import kube, storage
from chkmate.domain import jobs

SHA_KEY = "sha256"
CHUNKS_KEY = "chunks"
BLOB_KEY = "blob"


async def write_blob(
    client: kube.KubeClient,
    namespace: str,
    name: str,
    data: bytes,
    *,
    owners: list[dict[str, Any]],
    labels: Mapping[str, str],
) -> None:
    """Store ``data`` under ``name``: chunks first (when it does not fit one Secret), the head last."""
    head: dict[str, str] = {SHA_KEY: _b64(hashlib.sha256(data).hexdigest().encode())}
    if len(data) <= storage.CHUNK_BYTES:
        head |= {CHUNKS_KEY: _b64(b"0"), BLOB_KEY: _b64(data)}
    else:
        count = await storage.save_chunks(client, namespace, name, data, owners=owners, labels=labels)
        head[CHUNKS_KEY] = _b64(str(count).encode())
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels), "ownerReferences": owners},
        "data": head,
    }
    await storage.put(client, kube.SECRETS, namespace, body)


async def read_blob(client: kube.KubeClient, namespace: str, name: str) -> bytes | None:
    """The blob stored under ``name``, checked against its sha256; None when there is none (yet)."""
    head = await client.get(kube.SECRETS, namespace, name)
    if head is None:
        return None
    data = head.get("data") or {}
    try:
        count = int(base64.b64decode(data.get(CHUNKS_KEY, "")).decode() or "0")
        expected = base64.b64decode(data.get(SHA_KEY, "")).decode()
        blob = (
            base64.b64decode(data.get(BLOB_KEY, ""))
            if count == 0
            else await storage.load_chunks(client, namespace, name, count)
        )
    except storage.ChunkMissing as e:
        raise errors.ChkmateError(f"Runner data {name!r} is incomplete: {e.message}") from e
    except ValueError as e:
        raise errors.ChkmateError(f"Secret {name!r} is not runner data.") from e
    if hashlib.sha256(blob).hexdigest() != expected:
        raise errors.ChkmateError(f"Runner data {name!r} does not match its sha256; it is not used.")
    return blob


async def delete_blob(client: kube.KubeClient, namespace: str, name: str) -> None:
    """Delete the head (readers see no blob from then on), then its chunks."""
    head = await client.get(kube.SECRETS, namespace, name)
    if head is None:
        return
    try:
        count = int(base64.b64decode((head.get("data") or {}).get(CHUNKS_KEY, "")).decode() or "0")
    except ValueError:
        count = 0
    await client.delete(kube.SECRETS, namespace, name)
    for index in range(count):
        await client.delete(kube.SECRETS, namespace, f"{name}-{index}")


async def create_job(client: kube.KubeClient, namespace: str, manifest: Mapping[str, Any]) -> kube.Object:
    """Create the Job, or return the Job of that name that exists already."""
    try:
        return await client.create(kube.JOBS, namespace, manifest)
    except kube.Conflict:
        found = await client.get(kube.JOBS, namespace, manifest["metadata"]["name"])
        if found is None:  # created and deleted between our two calls: the caller tries again
            raise
        return found


async def get_job(client: kube.KubeClient, namespace: str, name: str) -> kube.Object | None:
    return await client.get(kube.JOBS, namespace, name)


async def delete_job(client: kube.KubeClient, namespace: str, name: str) -> bool:
    """Delete the Job and (in the background) its pods; False when it was gone already."""
    return await client.delete(kube.JOBS, namespace, name)


async def pod_failure(client: kube.KubeClient, namespace: str, job: str) -> str:
    """How the Job's pod ended (e.g. ``OOMKilled (exit code 137)``), or "" when that cannot be read."""
    try:
        pods = await client.list(kube.PODS, namespace, label_selector=f"job-name={job}")
    except kube.KubeError:  # e.g. no permission to list pods: the Job's own message has to do
        return ""
    return jobs.pod_failure(pods, job)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
