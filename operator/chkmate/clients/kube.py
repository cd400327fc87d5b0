"""A small async Kubernetes API client (aiohttp) for the few objects handlers read and write themselves.

kopf does the watching and patches the object being handled; this client covers the rest: reading Secrets
and ConfigMaps, creating Plans and runner Jobs, patching another object's spec or status. It authenticates with the same
credentials kopf logged in with (a :class:`kopf.ConnectionInfo`). I/O: HTTP to the API server only.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import ssl
import tempfile
from collections.abc import Mapping
from typing import Any

import aiohttp
import kopf

from chkmate import GROUP, VERSION, errors

Object = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Resource:
    """A resource type, as in URL paths: ``/apis/{group}/{version}/namespaces/{ns}/{plural}``."""

    group: str
    version: str
    plural: str

    def path(self, namespace: str | None, name: str | None = None, subresource: str | None = None) -> str:
        root = f"/api/{self.version}" if not self.group else f"/apis/{self.group}/{self.version}"
        parts = [root]
        if namespace is not None:
            parts.append(f"namespaces/{namespace}")
        parts.append(self.plural)
        if name is not None:
            parts.append(name)
        if subresource is not None:
            parts.append(subresource)
        return "/".join(parts)


SECRETS = Resource("", "v1", "secrets")
CONFIGMAPS = Resource("", "v1", "configmaps")
JOBS = Resource("batch", "v1", "jobs")  # the Job runner's runs
PODS = Resource("", "v1", "pods")  # read only: why a runner Job's pod failed


def ours(plural: str) -> Resource:
    return Resource(GROUP, VERSION, plural)


class KubeError(errors.TransientError):
    """The API server refused a request; ``status`` is the HTTP status."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message, retryable=status >= 500 or status == 429 or status == 409)
        self.status = status


class NotFound(KubeError):
    pass


class Conflict(KubeError):
    pass


class KubeClient:
    """One HTTP session for the operator's lifetime. Use as ``async with KubeClient(info) as kube:``."""

    def __init__(self, info: kopf.ConnectionInfo, *, timeout: float = 30.0) -> None:
        self._info = info
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    @property
    def info(self) -> kopf.ConnectionInfo:
        """The credentials it logged in with (another event loop opens its own client with them)."""
        return self._info

    async def __aenter__(self) -> KubeClient:
        connector = aiohttp.TCPConnector(ssl=_ssl_context(self._info), limit=32)
        headers = {"Accept": "application/json", **self._info.as_http_headers()}
        self._session = aiohttp.ClientSession(
            base_url=self._info.server.rstrip("/") + "/",
            connector=connector,
            headers=headers,
            timeout=self._timeout,
        )
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def get(self, resource: Resource, namespace: str, name: str) -> Object | None:
        """The object, or None when it does not exist."""
        try:
            return await self._request("GET", resource.path(namespace, name))
        except NotFound:
            return None

    async def list(self, resource: Resource, namespace: str, *, label_selector: str | None = None) -> list[Object]:
        params = {"labelSelector": label_selector} if label_selector else None
        found = await self._request("GET", resource.path(namespace), params=params)
        return list(found.get("items", []))

    async def create(self, resource: Resource, namespace: str, body: Mapping[str, Any]) -> Object:
        return await self._request("POST", resource.path(namespace), body=body)

    async def patch(
        self, resource: Resource, namespace: str, name: str, patch: Mapping[str, Any], *, status: bool = False
    ) -> Object:
        """A JSON merge patch of the object, or of its ``/status`` subresource."""
        path = resource.path(namespace, name, "status" if status else None)
        return await self._request("PATCH", path, body=patch, content_type="application/merge-patch+json")

    async def delete(self, resource: Resource, namespace: str, name: str) -> bool:
        """True if the object was there (now deleted or being deleted), False if it was already gone."""
        try:
            await self._request("DELETE", resource.path(namespace, name), body={"propagationPolicy": "Background"})
        except NotFound:
            return False
        return True

    async def read_secret_key(self, namespace: str, name: str, key: str) -> str | None:
        """The decoded value of one Secret key; None when the Secret or the key is missing."""
        secret = await self.get(SECRETS, namespace, name)
        if secret is None:
            return None
        data = secret.get("data") or {}
        if key in data:
            return base64.b64decode(data[key]).decode()
        string_data: Mapping[str, str] = secret.get("stringData") or {}
        return string_data.get(key)

    async def _request(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Object:
        if self._session is None:
            raise RuntimeError("KubeClient is not open: use `async with KubeClient(...)`.")
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": content_type} if data is not None else None
        try:
            async with self._session.request(
                method, path.lstrip("/"), data=data, params=params, headers=headers
            ) as response:
                text = await response.text()
                if response.status >= 400:
                    raise _error(method, path, response.status, text)
                parsed: Object = json.loads(text) if text else {}
                return parsed
        except aiohttp.ClientError as e:
            raise KubeError(f"{method} {path} failed: {e}", status=503) from e


def _error(method: str, path: str, status: int, text: str) -> KubeError:
    try:
        message = str(json.loads(text).get("message") or text)
    except ValueError:
        message = text or f"HTTP {status}"
    full = f"{method} {path}: {status} {message}"
    if status == 404:
        return NotFound(full, status=status)
    if status == 409:
        return Conflict(full, status=status)
    return KubeError(full, status=status)


def _ssl_context(info: kopf.ConnectionInfo) -> ssl.SSLContext | bool:
    if not info.server.startswith("https"):
        return False
    context = ssl.create_default_context(
        cafile=str(info.ca_path) if info.ca_path else None,
        cadata=_text(info.ca_data) if info.ca_data else None,
    )
    if info.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if info.certificate_path or info.certificate_data:
        cert = str(info.certificate_path) if info.certificate_path else _temp_pem(info.certificate_data)
        key = str(info.private_key_path) if info.private_key_path else _temp_pem(info.private_key_data)
        context.load_cert_chain(cert, key)
    return context


def _text(data: str | bytes | None) -> str:
    if data is None:
        return ""
    raw = data.encode() if isinstance(data, str) else data
    if b"-----BEGIN" not in raw:
        raw = base64.b64decode(raw)
    return raw.decode()


def _temp_pem(data: str | bytes | None) -> str:
    # ssl needs client certificates as files; kopf hands them over as data from kubeconfigs.
    handle = tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False)  # noqa: SIM115
    with handle:
        handle.write(_text(data))
    return handle.name
