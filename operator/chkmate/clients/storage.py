"""Plan outputs and Terraform state, kept in Kubernetes objects (never in a status).

* A plan's readable text goes to a ConfigMap ``<plan>-output`` (cut to fit the object size limit, the tail
  kept); the binary plan file goes gzip-compressed into Secrets ``<plan>-planfile-<i>``, chunked below 1 MiB
  each, with its sha256 recorded so an apply can check it applies exactly what was planned and approved. Both
  are owned by the Plan: deleting the Plan garbage-collects them.
* Anything else too big for one Secret (the Job runner's bundles and results) goes through the same chunking
  (:func:`save_chunks`, :func:`load_chunks`).
* State lives in the Secret ``chkmate-state-<environment>`` (gzip, key ``state``; the builtin engine's last
  applied configuration under ``builtin``). It is written back after every apply, failed ones included.
* The state lock is the annotation ``chkmate.dev/lock`` on that Secret, taken with an optimistic-concurrency
  patch (resourceVersion), so two runs never hold it at once; a lock older than the run deadline is reported
  as stale, never broken silently.

I/O: the Kubernetes API through :class:`chkmate.clients.kube.KubeClient`.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime
import gzip
import hashlib
from collections.abc import Mapping
from typing import Any

from chkmate import errors
from chkmate.api.conditions import Reasons
from chkmate.clients import kube

# Secrets and ConfigMaps hold at most 1 MiB; leave room for metadata and base64 (4/3).
CHUNK_BYTES = 700 * 1024
TEXT_LIMIT = 900 * 1024
LOCK_ANNOTATION = "chkmate.dev/lock"
STATE_KEY = "state"
BUILTIN_KEY = "builtin"


@dataclasses.dataclass(frozen=True)
class StoredOutput:
    config_map: str
    secret_prefix: str
    chunks: int
    sha256: str


@dataclasses.dataclass(frozen=True)
class State:
    terraform: bytes | None
    builtin: bytes | None


@dataclasses.dataclass(frozen=True)
class Lock:
    holder: str
    since: datetime.datetime


class Locked(errors.ChkmateError):
    reason = Reasons.LOCKED
    retryable = True

    def __init__(self, message: str, *, lock: Lock, stale: bool) -> None:
        super().__init__(message)
        self.lock = lock
        self.stale = stale


class ChunkMissing(errors.ChkmateError):
    """A Secret of a chunked value is missing (deleted, or not written yet)."""

    def __init__(self, message: str, *, name: str) -> None:
        super().__init__(message)
        self.name = name


def owner_reference(body: Mapping[str, Any]) -> dict[str, Any]:
    """An ownerReference to ``body`` (garbage collection deletes what it owns with it)."""
    meta = body["metadata"]
    return {
        "apiVersion": body["apiVersion"],
        "kind": body["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


async def save_plan_output(
    client: kube.KubeClient,
    namespace: str,
    plan: str,
    owner: Mapping[str, Any],
    *,
    text: str,
    plan_file: bytes | None,
    labels: Mapping[str, str],
) -> StoredOutput:
    refs = [owner_reference(owner)]
    if len(text.encode()) > TEXT_LIMIT:
        kept = text.encode()[-TEXT_LIMIT:].decode(errors="ignore")
        text = f"(the first part of the plan is cut: it is longer than {TEXT_LIMIT} bytes)\n{kept}"
    config_map, prefix = f"{plan}-output", f"{plan}-planfile"
    readable = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": config_map, "namespace": namespace, "labels": dict(labels), "ownerReferences": refs},
        "data": {"plan.txt": text},
    }
    packed = gzip.compress(plan_file or b"", mtime=0)
    _, chunks = await asyncio.gather(
        put(client, kube.CONFIGMAPS, namespace, readable),
        save_chunks(client, namespace, prefix, packed, owners=refs, labels=labels),
    )
    return StoredOutput(config_map, prefix, chunks, hashlib.sha256(plan_file or b"").hexdigest())


async def save_chunks(
    client: kube.KubeClient,
    namespace: str,
    prefix: str,
    data: bytes,
    *,
    owners: list[dict[str, Any]],
    labels: Mapping[str, str],
) -> int:
    """Write ``data`` into Secrets ``<prefix>-<i>`` (key ``chunk``) below the object size limit; their count."""
    chunks = [data[i : i + CHUNK_BYTES] for i in range(0, len(data), CHUNK_BYTES)] or [b""]
    for index, chunk in enumerate(chunks):
        await put(
            client,
            kube.SECRETS,
            namespace,
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "Opaque",
                "metadata": {
                    "name": f"{prefix}-{index}",
                    "namespace": namespace,
                    "labels": dict(labels),
                    "ownerReferences": owners,
                },
                "data": {"chunk": base64.b64encode(chunk).decode()},
            },
        )
    return len(chunks)


async def load_chunks(client: kube.KubeClient, namespace: str, prefix: str, chunks: int) -> bytes:
    """What :func:`save_chunks` wrote, joined; :class:`ChunkMissing` names a missing Secret."""
    data = b""
    for index in range(chunks):
        secret = await client.get(kube.SECRETS, namespace, f"{prefix}-{index}")
        if secret is None:
            raise ChunkMissing(f"Secret {prefix}-{index} is missing.", name=f"{prefix}-{index}")
        data += base64.b64decode((secret.get("data") or {}).get("chunk", ""))
    return data


async def load_plan_file(client: kube.KubeClient, namespace: str, prefix: str, chunks: int, sha256: str) -> bytes:
    """The stored plan file, checked against the sha256 recorded when it was planned."""
    try:
        data = await load_chunks(client, namespace, prefix, chunks)
    except ChunkMissing as e:
        raise errors.ChkmateError(
            f"The stored plan is incomplete: Secret {e.name} is missing.", reason=Reasons.APPLY_FAILED
        ) from e
    plan_file = gzip.decompress(data) if data else b""
    if hashlib.sha256(plan_file).hexdigest() != sha256:
        raise errors.ChkmateError(
            "The stored plan does not match the plan that was approved; it is not applied.", reason=Reasons.APPLY_FAILED
        )
    return plan_file


def state_secret(environment: str) -> str:
    return f"chkmate-state-{environment}"


async def load_state(client: kube.KubeClient, namespace: str, environment: str) -> State:
    return _state_of(await client.get(kube.SECRETS, namespace, state_secret(environment)))


def _state_of(secret: Mapping[str, Any] | None) -> State:
    data = (secret or {}).get("data") or {}
    return State(terraform=_unpack(data.get(STATE_KEY)), builtin=_unpack(data.get(BUILTIN_KEY)))


async def save_state(
    client: kube.KubeClient, namespace: str, environment: str, owner: Mapping[str, Any], state: State
) -> None:
    data = {
        key: base64.b64encode(gzip.compress(value, mtime=0)).decode()
        for key, value in ((STATE_KEY, state.terraform), (BUILTIN_KEY, state.builtin))
        if value is not None
    }
    name = state_secret(environment)
    if await client.get(kube.SECRETS, namespace, name) is None:
        await _create_state_secret(client, namespace, environment, owner)
    await client.patch(kube.SECRETS, namespace, name, {"data": data})


async def acquire_lock(
    client: kube.KubeClient,
    namespace: str,
    environment: str,
    owner: Mapping[str, Any],
    holder: str,
    *,
    now: datetime.datetime,
    stale_after: datetime.timedelta,
) -> State:
    """Take the environment's state lock for ``holder``, or raise :class:`Locked` naming who holds it; the state
    the Secret holds (read in the same round trip: whoever holds the lock is the only writer)."""
    name = state_secret(environment)
    secret = await client.get(kube.SECRETS, namespace, name)
    if secret is None:
        secret = await _create_state_secret(client, namespace, environment, owner)
    current = parse_lock(secret["metadata"].get("annotations", {}).get(LOCK_ANNOTATION))
    if current is not None and current.holder != holder:
        stale = now - current.since > stale_after
        note = (
            " It looks stale (older than the run deadline): remove the annotation "
            f"{LOCK_ANNOTATION} on Secret {name} if no run is going on."
            if stale
            else ""
        )
        raise Locked(
            f"The state of {environment!r} is locked by {current.holder} since {current.since.isoformat()}.{note}",
            lock=current,
            stale=stale,
        )
    value = f"{holder} {now.astimezone(datetime.UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}"
    patch = {
        "metadata": {"resourceVersion": secret["metadata"]["resourceVersion"], "annotations": {LOCK_ANNOTATION: value}}
    }
    try:
        locked = await client.patch(kube.SECRETS, namespace, name, patch)
    except kube.Conflict as e:  # someone else took it between our read and our write
        raise Locked(
            f"The state of {environment!r} was locked by another run just now.",
            lock=Lock("another run", now),
            stale=False,
        ) from e
    return _state_of(locked)


async def release_lock(client: kube.KubeClient, namespace: str, environment: str, holder: str) -> None:
    secret = await client.get(kube.SECRETS, namespace, state_secret(environment))
    if secret is None:
        return
    current = parse_lock(secret["metadata"].get("annotations", {}).get(LOCK_ANNOTATION))
    if current is not None and current.holder == holder:
        await client.patch(
            kube.SECRETS, namespace, state_secret(environment), {"metadata": {"annotations": {LOCK_ANNOTATION: None}}}
        )


def parse_lock(value: str | None) -> Lock | None:
    if not value:
        return None
    holder, _, since = value.rpartition(" ")
    try:
        moment = datetime.datetime.fromisoformat(since.replace("Z", "+00:00"))
    except ValueError:
        return Lock(value, datetime.datetime.min.replace(tzinfo=datetime.UTC))
    return Lock(holder or value, moment)


async def _create_state_secret(
    client: kube.KubeClient, namespace: str, environment: str, owner: Mapping[str, Any]
) -> dict[str, Any]:
    # Owned by the Environment, but not as controller and without blocking deletion: deleting an
    # Environment deletes its state, which is what its deletion means.
    reference = {**owner_reference(owner), "controller": False, "blockOwnerDeletion": False}
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": state_secret(environment),
            "namespace": namespace,
            "labels": {"chkmate.dev/environment": environment},
            "ownerReferences": [reference],
        },
        "data": {},
    }
    try:
        return await client.create(kube.SECRETS, namespace, body)
    except kube.Conflict:
        found = await client.get(kube.SECRETS, namespace, state_secret(environment))
        assert found is not None
        return found


async def put(client: kube.KubeClient, resource: kube.Resource, namespace: str, body: dict[str, Any]) -> None:
    """Create the object, or patch the data and metadata of the one of that name (one round trip when new, the
    usual case: a plan's outputs are written once)."""
    name = body["metadata"]["name"]
    try:
        await client.create(resource, namespace, body)
    except kube.Conflict:  # 409 AlreadyExists
        await client.patch(resource, namespace, name, {k: v for k, v in body.items() if k in ("data", "metadata")})


def _unpack(value: str | None) -> bytes | None:
    return gzip.decompress(base64.b64decode(value)) if value else None
