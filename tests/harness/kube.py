"""A strict Kubernetes API emulator for operator tests, and helpers to run kopf against it.

kmock's ``KubernetesEmulator`` stores whatever clients send. ``StrictKubernetesEmulator`` answers
writes (create, patch, put, delete) the way a real API server does, so that operator bugs fail in
tests instead of passing silently:

* server-set metadata: ``uid``, ``resourceVersion`` (one global counter), ``creationTimestamp``,
  ``generation`` (bumped only when the content changes), ``generateName``, the URL's namespace;
* optimistic concurrency: a stale ``resourceVersion`` in a write gets 409 Conflict, a failed
  JSON-patch ``test`` gets 422 (kopf relies on both);
* the status subresource: the main resource ignores ``.status``, ``/status`` changes only it;
* custom resources are pruned, defaulted and validated against their CRD's structural schema
  (``tests.harness.schema``); metadata names and labels are validated for every resource;
* deletion: ``deletionTimestamp`` while finalizers remain, no new finalizers once deleting;
* every refusal is a Kubernetes ``Status`` body with the real reason and code;
* no-op writes change nothing: no new resourceVersion, no watch event;
* the body's apiVersion and kind must match the URL; undeclared resources are 404.

Fetches, lists and watches read the same store. A list carries the resourceVersion it reflects,
and a watch from a resourceVersion gets only the later events (kmock replays every object and can
lose the events written meanwhile, which stalls kopf). The built-in resources (namespaces, secrets,
configmaps, events, leases, jobs, CRDs, ...) are declared from kmock's bundled list.

Not emulated: label and field selectors, namespace existence and deletion, owner-reference garbage
collection, admission webhooks, server-side apply, dry runs, CEL validation rules.

``run_operator`` runs the real kopf operator in-process against such a server; ``wait_for`` polls
a condition in tests.

Does I/O: serves HTTP (through kmock), reads CRD files, runs kopf.
"""

import asyncio
import collections
import contextlib
import copy
import dataclasses
import datetime
import importlib.resources
import inspect
import json
import logging
import os
import pathlib
import random
import re
import typing
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable, Iterator, Mapping
from typing import Any, TypeVar

import aiohttp.web
import attrs
import jsonpatch
import jsonpointer
import kmock
import kopf
import yaml
import yarl
from kmock import Response  # type: ignore[attr-defined]  # public, but missing from kmock.__all__
from kopf._cogs.structs.references import Insights  # not exported: the only signal of discovery's end

from tests.harness import schema

Body = dict[str, Any]
ObjectKey = tuple[kmock.resource, str | None, str]
CrdSource = str | os.PathLike[str] | Mapping[str, Any]
SettingsHook = Callable[[kopf.OperatorSettings], None]
T = TypeVar("T")

ENVELOPE_FIELDS = ("apiVersion", "kind", "metadata")  # never pruned nor validated by the schema
SERVER_SET_FIELDS = ("uid", "resourceVersion", "creationTimestamp", "generation",
                     "deletionTimestamp", "deletionGracePeriodSeconds")
IMMUTABLE_FIELDS = ("name", "namespace", "uid")
CRD_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
MERGE_PATCH_TYPES = ("application/merge-patch+json", "application/strategic-merge-patch+json")
JSON_PATCH_TYPE = "application/json-patch+json"
METADATA_SHAPES = {"labels": dict, "annotations": dict, "finalizers": list}

BUNDLED_RESOURCES = importlib.resources.files("kmock") / "_internal" / "resources.json.gz"  # builtins of K3s

# k8s.io/apiserver/pkg/storage/names: no vowels and no look-alike digits; 5 of them after the prefix.
GENERATED_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"
MAX_GENERATE_NAME_PREFIX = 58  # 63 (a DNS label) minus the 5 random characters

# k8s.io/apimachinery/pkg/util/validation: RFC 1123 subdomains (names) and label names/values.
DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
LABEL_NAME_PART = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")


class ApiRefusal(Exception):
    """A request the real API server refuses; carries the ``Status`` body to answer with."""

    def __init__(self, code: int, reason: str, message: str, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(f"{code} {reason}: {message}")
        self.code = code
        self.status: Body = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code,
            **({"details": dict(details)} if details is not None else {}),
        }


@attrs.define(kw_only=True)
class StrictKubernetesEmulator(kmock.KubernetesEmulator):
    """kmock's Kubernetes emulator, holding clients to what a real API server enforces on writes."""

    _schemas: dict[kmock.resource, schema.Schema] = attrs.field(factory=dict, init=False)
    _resource_version: int = attrs.field(default=0, init=False)
    _written: dict[kmock.Request, Response] = attrs.field(factory=dict, init=False)
    _events: dict[kmock.resource, list[Body]] = attrs.field(factory=lambda: collections.defaultdict(list), init=False)
    _watchers: set["asyncio.Task[Any]"] = attrs.field(factory=set, init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        # Not resources.load_bundled(): it warns (importlib.resources.read_binary is deprecated).
        with importlib.resources.as_file(BUNDLED_RESOURCES) as bundled_path:
            self.resources.load_path(bundled_path)
        # Above kmock's own create/update/delete fallbacks: answer with what _handle() wrote.
        (self.fallback ** 1)[self._written.__contains__] << self._serve_written

    def register_crd(self, crd: Mapping[str, Any]) -> list[kmock.resource]:
        """Serve the CRD's served versions (discovery info and schema); return their resources."""
        if (crd.get("apiVersion"), crd.get("kind")) != ("apiextensions.k8s.io/v1", "CustomResourceDefinition"):
            raise ValueError(f"Not an apiextensions.k8s.io/v1 CustomResourceDefinition: {crd.get('kind')!r}")
        spec, names = crd["spec"], crd["spec"]["names"]
        served = [version for version in spec["versions"] if version.get("served", True)]
        resources = [kmock.resource(spec["group"], version["name"], names["plural"]) for version in served]
        for resource, version in zip(resources, served, strict=True):
            self.resources[resource] = kmock.ResourceInfo(
                kind=names["kind"],
                singular=names.get("singular", names["kind"].lower()),
                shortnames=names.get("shortNames", ()),
                categories=names.get("categories", ()),
                namespaced=spec["scope"] == "Namespaced",
                verbs=CRD_VERBS,
                subresources=version.get("subresources", {}).keys(),
            )
            if "schema" in version:
                self._schemas[resource] = version["schema"]["openAPIV3Schema"]
        return resources

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        if not _is_object_write(request):
            return await super()._handle(request)
        try:
            async with self._lock:
                self._written[request] = await self._write(request)
        except ApiRefusal as refusal:
            return aiohttp.web.json_response(refusal.status, status=refusal.code)
        try:
            # Skip KubernetesEmulator._handle(): its lenient writes are replaced by _write() above.
            # User-defined reactions still see the request first, then _serve_written() answers.
            return await super(kmock.KubernetesEmulator, self)._handle(request)
        finally:
            del self._written[request]

    async def close_watches(self) -> None:
        """End the server side of every watch stream.

        aiohttp does not cancel a handler when its client goes away, so a watch of a stopped
        operator would hold the server's shutdown for its full grace period (5 s).
        """
        watchers = list(self._watchers)
        for task in watchers:
            task.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)

    def _serve_written(self, request: kmock.Request) -> Response:
        return self._written[request]

    # Every answer of these fallbacks carries its status: kmock 0.8 copies the status of a returned
    # Response into its shared fallback reaction, so a bare dict after a 404 would be served as a 404.

    async def _serve_fetch(self, request: kmock.Request) -> kmock.Payload:
        async with self._lock:
            try:
                return Response(status=200, payload=self._live_object(_object_key(request)))
            except ApiRefusal as refusal:
                return _as_response(refusal)

    async def _serve_list(self, request: kmock.Request) -> kmock.Payload:
        """The current objects, with the resourceVersion they are consistent with (to watch from)."""
        if request.resource not in self.resources:
            return _as_response(_route_not_found())
        async with self._lock:
            items = [obj.raw for key, obj in self.objects.items() if _is_selected(request, key) and not obj.deleted]
            return Response(status=200, payload={"metadata": {"resourceVersion": str(self._resource_version)},
                                                 "items": items})

    async def _serve_watch(self, request: kmock.Request) -> AsyncIterator[kmock.Payload]:
        """A watch as the real server streams it: from its resourceVersion on, or all objects first.

        Not kmock's: it replays all objects even to a watch from a listing's resourceVersion (kopf
        then re-handles stale objects and its JSON patches fail forever), and it subscribes to
        the events only after the replay, losing the writes in between.
        """
        assert request.resource is not None  # only routed for resources; for type checkers
        task = asyncio.current_task()
        if task is not None:
            self._watchers.add(task)
            task.add_done_callback(self._watchers.discard)
        yield b""  # send the headers now: the stream may stay silent for long
        bus = self._buses[request.resource]
        async with self._lock:
            marker = await bus.mark()
            backlog = self._backlog(request)
        try:
            for event in backlog:
                yield event
            async for event in bus.stream(since=marker):
                if _is_selected(request, _event_key(request.resource, event)):
                    yield event
        finally:
            await bus.unmark(marker)

    def _backlog(self, request: kmock.Request) -> list[Body]:
        """The events a new watch starts with: those after its resourceVersion, or all objects."""
        assert request.resource is not None  # only routed for resources; for type checkers
        since = request.params.get("resourceVersion", "")
        if not since.isdigit() or since == "0":  # "" or "0": start with the current state
            return [{"type": "ADDED", "object": obj.raw}
                    for key, obj in self.objects.items() if _is_selected(request, key) and not obj.deleted]
        return [event for event in self._events[request.resource]
                if int(event["object"]["metadata"]["resourceVersion"]) > int(since)
                and _is_selected(request, _event_key(request.resource, event))]

    async def _write(self, request: kmock.Request) -> Response:
        self._check_route(request)
        if request.action == kmock.action.CREATE:
            return await self._create(request)
        key = _object_key(request)
        current = self._live_object(key)
        if request.action == kmock.action.DELETE:
            return await self._delete(request, key, current)
        return await self._update(request, key, current)

    async def _create(self, request: kmock.Request) -> Response:
        assert request.resource is not None  # guaranteed by _is_object_write(); for type checkers
        body = self._with_type_meta(request.resource, _require_object(request.data))
        metadata = _require_metadata(body)
        if metadata.get("namespace", request.namespace) != request.namespace:
            raise _bad_request("the namespace of the provided object does not match the namespace sent on the request")
        name = metadata.get("name") or _generate_name(metadata.get("generateName"))
        if not name:
            required = schema.FieldError("metadata.name", "FieldValueRequired",
                                         "Required value: name or generateName is required")
            raise _invalid(self._kind(request.resource), request.resource.group or "", "", [required])
        key = (request.resource, request.namespace, name)
        if key in self.objects and not self.objects[key].deleted:
            raise _already_exists(request.resource, name)
        fresh = {**body, "metadata": _fresh_metadata(metadata, name, request.namespace)}
        if self._has_status(request.resource):
            fresh.pop("status", None)  # only /status writes it
        created = self._stamp(self._admit(request.resource, fresh, current=None))
        await self._store(key, created, "ADDED")
        return Response(status=201, payload=created)

    async def _update(self, request: kmock.Request, key: ObjectKey, current: Body) -> Response:
        resource, _, name = key
        has_status = self._has_status(resource)
        if request.subresource not in (None, "status") or (request.subresource and not has_status):
            raise _route_not_found()
        changed = self._with_type_meta(resource, _changed_object(request, current))
        if not _same_resource_version(changed, current):
            raise _conflict(resource, name)
        if has_status:
            changed = _isolate_status(current, changed, request.subresource)
        updated = self._admit(resource, changed, current=current)
        if updated == current:
            return Response(payload=current)  # a no-op write is not stored (as in etcd)
        if _content_changed(current, updated, has_status):
            updated = _with_metadata(updated, generation=current["metadata"].get("generation", 0) + 1)
        if updated["metadata"].get("deletionTimestamp") and not updated["metadata"].get("finalizers"):
            return await self._finalize(key, updated)
        updated = self._stamp(updated)
        await self._store(key, updated, "MODIFIED")
        return Response(payload=updated)

    async def _delete(self, request: kmock.Request, key: ObjectKey, current: Body) -> Response:
        resource, _, name = key
        if not _preconditions_hold(request.data, current):
            raise _conflict(resource, name, "the precondition in the DeleteOptions does not match the object")
        metadata = current["metadata"]
        if metadata.get("deletionTimestamp"):
            return Response(payload=current)  # already being deleted: nothing changes
        if not metadata.get("finalizers"):
            return await self._finalize(key, current)
        generation = metadata.get("generation", 0)
        marked = self._stamp(_with_metadata(
            current,
            deletionTimestamp=_now(),
            deletionGracePeriodSeconds=0,
            generation=generation + 1 if generation else generation,
        ))
        await self._store(key, marked, "MODIFIED")
        return Response(payload=marked)

    async def _finalize(self, key: ObjectKey, last: Body) -> Response:
        deleted = self._stamp(last)
        await self._store(key, deleted, "DELETED")
        self.objects[key].delete()
        return Response(payload=deleted)

    def _admit(self, resource: kmock.resource, obj: Body, current: Body | None) -> Body:
        """Check and normalise an object about to be stored, as admission and validation would."""
        errors = []
        if current is not None:
            errors += _immutable_errors(current, obj) + _finalizer_errors(current, obj)
            obj = _with_server_fields(current, obj)
        errors += _metadata_errors(obj["metadata"], creating=current is None)
        crd_schema = self._schemas.get(resource)
        if crd_schema is not None:
            obj, schema_errors = _apply_schema(crd_schema, obj)
            errors += schema_errors
        if errors:
            raise _invalid(self._kind(resource), resource.group or "", obj["metadata"]["name"], errors)
        return obj

    def _check_route(self, request: kmock.Request) -> None:
        """Refuse writes to undeclared resources, and to namespaced ones out of a namespace (or back)."""
        if request.resource is None or request.resource not in self.resources:
            raise _route_not_found()
        namespaced = self.resources[request.resource].namespaced
        if namespaced is not None and namespaced != (request.namespace is not None):
            raise _route_not_found()

    def _with_type_meta(self, resource: kmock.resource, obj: Body) -> Body:
        """The object with the apiVersion and kind of its URL first; other ones in the body are refused."""
        api_version = f"{resource.group}/{resource.version}" if resource.group else str(resource.version)
        type_meta = {"apiVersion": api_version, "kind": self.resources[resource].kind or obj.get("kind")}
        for field, expected in type_meta.items():
            if obj.get(field) not in (None, expected):
                raise _bad_request(f"the {field} in the data ({obj[field]}) does not match the expected {field} "
                                   f"({expected})")
        return type_meta | obj

    def _has_status(self, resource: kmock.resource) -> bool:
        return "status" in self.resources[resource].subresources

    def _kind(self, resource: kmock.resource) -> str:
        return self.resources[resource].kind or str(resource.plural)

    def _live_object(self, key: ObjectKey) -> Body:
        if key not in self.objects or self.objects[key].deleted:
            raise _not_found(key[0], key[2])
        return copy.deepcopy(self.objects[key].raw)

    def _stamp(self, obj: Body) -> Body:
        self._resource_version += 1
        return _with_metadata(obj, resourceVersion=str(self._resource_version))

    async def _store(self, key: ObjectKey, obj: Body, event_type: str) -> None:
        if key in self.objects:
            self.objects[key].history.append(obj)
        else:
            self.objects[key] = obj
        event = {"type": event_type, "object": obj}
        self._events[key[0]].append(event)
        await self._buses[key[0]].put(event)


def load_crds(emulator: StrictKubernetesEmulator, sources: Iterable[CrdSource]) -> list[kmock.resource]:
    """Register CRDs from YAML files (other documents in them are skipped) or from dicts."""
    return [resource for crd in _crd_documents(sources) for resource in emulator.register_crd(crd)]


def _crd_documents(sources: Iterable[CrdSource]) -> Iterator[Mapping[str, Any]]:
    for source in sources:
        if isinstance(source, Mapping):
            yield source
        else:
            documents = yaml.safe_load_all(pathlib.Path(source).read_text(encoding="utf-8"))
            yield from (doc for doc in documents if doc and doc.get("kind") == "CustomResourceDefinition")


# Requests and bodies.
def _is_object_write(request: kmock.Request) -> bool:
    if request.resource is None:
        return False
    if request.action == kmock.action.CREATE:
        return True
    is_named_write = request.action in (kmock.action.UPDATE, kmock.action.DELETE) or request.method == kmock.method.PUT
    return request.name is not None and is_named_write


def _object_key(request: kmock.Request) -> ObjectKey:
    assert request.resource is not None and request.name is not None  # for type checkers
    return request.resource, request.namespace, request.name


def _is_selected(request: kmock.Request, key: ObjectKey) -> bool:
    resource, namespace, name = key
    return resource == request.resource and request.namespace in (None, namespace) and request.name in (None, name)


def _event_key(resource: kmock.resource, event: Body) -> ObjectKey:
    metadata = event["object"]["metadata"]
    return resource, metadata.get("namespace"), metadata["name"]


def _require_object(data: Any) -> Body:
    if not isinstance(data, dict):
        raise _bad_request(f"the object must be a JSON object, not {type(data).__name__}")
    return data


def _require_metadata(obj: Body) -> Body:
    """The object's metadata, if shaped as the server can decode it (else 400, as the real one)."""
    metadata = obj.get("metadata", {})
    if not isinstance(metadata, dict) or not all(
        isinstance(metadata[field], shape) for field, shape in METADATA_SHAPES.items()
        if metadata.get(field) is not None
    ):
        raise _bad_request(f"the object's metadata cannot be decoded: {metadata!r:.200}")
    return metadata


def _changed_object(request: kmock.Request, current: Body) -> Body:
    """The object as the request wants it: a PUT's body, or the current object with the patch applied."""
    changed = _patched_object(request, current)
    _require_metadata(changed)
    return changed


def _patched_object(request: kmock.Request, current: Body) -> Body:
    if request.method == kmock.method.PUT:
        return _require_object(request.data)
    headers = {name.lower(): value for name, value in request.headers.items()}
    media_type = headers.get("content-type", "").split(";")[0].strip()
    if media_type in MERGE_PATCH_TYPES:
        return _require_object(_merge_patch(current, _require_object(request.data)))
    if media_type == JSON_PATCH_TYPE and isinstance(request.data, list):
        try:
            return _require_object(jsonpatch.apply_patch(current, request.data))
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as e:
            message = f"the server rejected our request due to an error in our request: {e}"
            raise ApiRefusal(422, "Invalid", message) from e
    if media_type == JSON_PATCH_TYPE:
        raise _bad_request("a JSON patch must be a list of operations")
    raise ApiRefusal(415, "UnsupportedMediaType", f"the body of the request was in an unknown format ({media_type!r})"
                     f" - accepted media types include: {JSON_PATCH_TYPE}, {', '.join(MERGE_PATCH_TYPES)}")


def _merge_patch(target: Any, patch: Any) -> Any:
    """Apply a JSON merge patch (RFC 7386): dicts merge, null removes a key, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch(result.get(key), value)
    return result


def _same_resource_version(changed: Body, current: Body) -> bool:
    """Whether the write's resourceVersion, if it carries one, is the stored one (a precondition)."""
    wanted = (changed.get("metadata") or {}).get("resourceVersion")
    return not wanted or wanted == current["metadata"]["resourceVersion"]


def _preconditions_hold(delete_options: Any, current: Body) -> bool:
    """Whether the uid and resourceVersion preconditions of the DeleteOptions, if any, hold."""
    if not isinstance(delete_options, dict):
        return True  # no DeleteOptions in the body
    preconditions = delete_options.get("preconditions") or {}
    return all(current["metadata"].get(field) == preconditions[field]
               for field in ("uid", "resourceVersion") if preconditions.get(field))


def _isolate_status(current: Body, changed: Body, subresource: str | None) -> Body:
    """With a status subresource, ``/status`` changes only ``.status``, the main resource all but it."""
    source, target = (changed, current) if subresource == "status" else (current, changed)
    isolated = {key: value for key, value in target.items() if key != "status"}
    return isolated | ({"status": source["status"]} if "status" in source else {})


def _content_changed(current: Body, updated: Body, has_status: bool) -> bool:
    """Whether the write changes what ``metadata.generation`` counts: all but metadata (and status)."""
    ignored = {"metadata", "status"} if has_status else {"metadata"}
    return any(current.get(key) != updated.get(key) for key in current.keys() | updated.keys() if key not in ignored)


# Metadata.
def _now() -> str:
    return datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _generate_name(prefix: Any) -> str | None:
    if not prefix or not isinstance(prefix, str):
        return None
    return prefix[:MAX_GENERATE_NAME_PREFIX] + "".join(random.choices(GENERATED_NAME_CHARS, k=5))


def _fresh_metadata(metadata: Body, name: str, namespace: str | None) -> Body:
    client_set = {key: value for key, value in metadata.items() if key not in (*SERVER_SET_FIELDS, "namespace")}
    return client_set | {
        "name": name,
        **({"namespace": namespace} if namespace is not None else {}),
        "uid": str(uuid.uuid4()),
        "creationTimestamp": _now(),
        "generation": 1,
    }


def _with_metadata(obj: Body, **fields: Any) -> Body:
    return {**obj, "metadata": {**obj["metadata"], **fields}}


def _with_server_fields(current: Body, changed: Body) -> Body:
    """The changed object with the fields only the server sets taken from the stored object."""
    kept = {key: value for key, value in current["metadata"].items() if key in (*SERVER_SET_FIELDS, *IMMUTABLE_FIELDS)}
    metadata = changed.get("metadata") or {}
    return {**changed, "metadata": kept | {
        key: value for key, value in metadata.items() if key not in (*SERVER_SET_FIELDS, *IMMUTABLE_FIELDS)
    }}


def _metadata_errors(metadata: Body, *, creating: bool) -> list[schema.FieldError]:
    errors = _name_errors(metadata["name"]) if creating else []
    errors += _labels_errors(metadata.get("labels") or {})
    annotations = metadata.get("annotations") or {}
    errors += [schema.FieldError(f"metadata.annotations.{key}", "FieldValueTypeInvalid",
                                 f"Invalid value: {json.dumps(value)}: must be a string")
               for key, value in annotations.items() if not isinstance(value, str)]
    return errors


def _name_errors(name: Any) -> list[schema.FieldError]:
    if isinstance(name, str) and len(name) <= 253 and DNS_SUBDOMAIN.fullmatch(name):
        return []
    return [schema.FieldError(
        "metadata.name", "FieldValueInvalid",
        f"Invalid value: {json.dumps(name)}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric"
        " characters, '-' or '.', and must start and end with an alphanumeric character"
        f" (regex used for validation is '{DNS_SUBDOMAIN.pattern}')",
    )]


def _labels_errors(labels: Mapping[str, Any]) -> list[schema.FieldError]:
    errors = []
    for key, value in labels.items():
        prefix, _, name_part = key.rpartition("/")
        if (prefix and not DNS_SUBDOMAIN.fullmatch(prefix)) or len(name_part) > 63 \
                or not LABEL_NAME_PART.fullmatch(name_part):
            errors.append(schema.FieldError(
                "metadata.labels", "FieldValueInvalid",
                f"Invalid value: {json.dumps(key)}: name part must consist of alphanumeric characters, '-', '_'"
                f" or '.', and must start and end with an alphanumeric character, at most 63 characters"
                f" (regex used for validation is '{LABEL_NAME_PART.pattern}')"))
        if not isinstance(value, str) or len(value) > 63 or not LABEL_VALUE.fullmatch(value):
            errors.append(schema.FieldError(
                "metadata.labels", "FieldValueInvalid",
                f"Invalid value: {json.dumps(value)}: a valid label must be an empty string or consist of"
                " alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric"
                f" character, at most 63 characters (regex used for validation is '{LABEL_VALUE.pattern}')"))
    return errors


def _immutable_errors(current: Body, changed: Body) -> list[schema.FieldError]:
    metadata = changed.get("metadata") or {}
    return [schema.FieldError(f"metadata.{field}", "FieldValueInvalid",
                              f"Invalid value: {json.dumps(metadata[field])}: field is immutable")
            for field in IMMUTABLE_FIELDS
            if metadata.get(field) is not None and metadata[field] != current["metadata"].get(field)]


def _finalizer_errors(current: Body, changed: Body) -> list[schema.FieldError]:
    if not current["metadata"].get("deletionTimestamp"):
        return []
    existing = current["metadata"].get("finalizers") or []
    added = [name for name in (changed.get("metadata") or {}).get("finalizers") or [] if name not in existing]
    if not added:
        return []
    return [schema.FieldError(
        "metadata.finalizers", "FieldValueForbidden",
        "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers"
        f" []string{{{', '.join(json.dumps(name) for name in added)}}}",
    )]


# Structural schemas: the envelope (apiVersion, kind, metadata) is the server's, the rest the CRD's.
def _apply_schema(crd_schema: schema.Schema, obj: Body) -> tuple[Body, list[schema.FieldError]]:
    content_schema = {
        **crd_schema,
        "properties": {k: v for k, v in crd_schema.get("properties", {}).items() if k not in ENVELOPE_FIELDS},
        "required": [k for k in crd_schema.get("required", []) if k not in ENVELOPE_FIELDS],
    }
    content = {key: value for key, value in obj.items() if key not in ENVELOPE_FIELDS}
    content = schema.apply_defaults(content_schema, schema.prune(content_schema, content))
    envelope = {key: obj[key] for key in ENVELOPE_FIELDS if key in obj}
    return envelope | content, schema.validate(content_schema, content)


# Kubernetes Status errors, worded as the real API server words them.
def _qualified(resource: kmock.resource) -> str:
    return f"{resource.plural}.{resource.group}" if resource.group else str(resource.plural)


def _resource_details(resource: kmock.resource, name: str) -> Body:
    return {"name": name, "group": resource.group or "", "kind": resource.plural}


def _not_found(resource: kmock.resource, name: str) -> ApiRefusal:
    return ApiRefusal(404, "NotFound", f'{_qualified(resource)} "{name}" not found', _resource_details(resource, name))


def _route_not_found() -> ApiRefusal:
    return ApiRefusal(404, "NotFound", "the server could not find the requested resource")


def _already_exists(resource: kmock.resource, name: str) -> ApiRefusal:
    return ApiRefusal(409, "AlreadyExists", f'{_qualified(resource)} "{name}" already exists',
                      _resource_details(resource, name))


def _conflict(resource: kmock.resource, name: str,
              why: str = "the object has been modified; please apply your changes to the latest version and try again",
              ) -> ApiRefusal:
    return ApiRefusal(409, "Conflict", f'Operation cannot be fulfilled on {_qualified(resource)} "{name}": {why}',
                      _resource_details(resource, name))


def _as_response(refusal: ApiRefusal) -> Response:
    return Response(status=refusal.code, payload=refusal.status)


def _bad_request(message: str) -> ApiRefusal:
    return ApiRefusal(400, "BadRequest", message)


def _invalid(kind: str, group: str, name: str, errors: list[schema.FieldError]) -> ApiRefusal:
    listed = str(errors[0]) if len(errors) == 1 else f"[{', '.join(map(str, errors))}]"
    causes = [{"reason": error.reason, "message": error.detail, "field": error.field} for error in errors]
    qualified_kind = f"{kind}.{group}" if group else kind
    return ApiRefusal(422, "Invalid", f'{qualified_kind} "{name}" is invalid: {listed}',
                      {"name": name, "group": group, "kind": kind, "causes": causes})


# Running kopf against the emulator.
def quick_settings(settings: kopf.OperatorSettings) -> None:
    """Tune kopf for fast, quiet tests against a local emulator (its defaults suit real clusters)."""
    settings.persistence.finalizer = "chkmate.dev/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="state.chkmate.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="state.chkmate.dev", key="last-handled-configuration")
    settings.posting.level = logging.WARNING  # post only warnings and errors as k8s Events
    # kmock 0.8 cannot parse the path /api/v1/namespaces (500): do not list and watch namespaces
    # (nor CRDs); serve the given namespaces and the resources discovered at startup.
    settings.scanning.disabled = True
    settings.networking.connect_timeout = 1
    settings.networking.request_timeout = 5
    settings.networking.error_backoffs = (0.1, 0.2, 0.5)
    settings.watching.connect_timeout = 1
    settings.watching.reconnect_backoff = 0.05
    settings.queueing.idle_timeout = 0.5
    settings.queueing.exit_timeout = 0.5
    settings.queueing.error_delays = (0.1, 0.2, 0.5, 1)
    settings.execution.default_backoff = 0.5  # retry a failed handler soon, not after 60 s


@contextlib.asynccontextmanager
async def run_operator(
    registry: kopf.OperatorRegistry,
    server_url: str | yarl.URL,
    *,
    namespaces: Collection[str] = ("default",),
    memo: object | None = None,
    settings_hook: SettingsHook | None = None,
    wait_seconds: float = 10,
    login: bool = True,
) -> AsyncIterator["asyncio.Task[None]"]:
    """Run kopf in this event loop against ``server_url`` until the block exits; yield its task.

    Adds a login handler for ``server_url`` to ``registry`` (use a fresh registry per run), unless
    ``login`` is false because the registry brings its own.
    ``settings_hook`` adjusts the settings after ``quick_settings``. Waits until kopf is ready
    (startup handlers done, resources and namespaces discovered); on exit, raises the stop flag
    and awaits kopf's clean exit. Both waits give up after ``wait_seconds``.
    """
    settings = kopf.OperatorSettings()
    quick_settings(settings)
    if settings_hook is not None:
        settings_hook(settings)
    if login:
        _add_login(registry, str(server_url))
    stop_flag, ready_flag, insights = asyncio.Event(), asyncio.Event(), Insights()
    operator = _operate(registry=registry, settings=settings, memo=memo, standalone=True,
                        clusterwide=False, namespaces=list(namespaces), insights=insights,
                        stop_flag=stop_flag, ready_flag=ready_flag)
    task = asyncio.create_task(operator, name="kopf operator")
    try:
        await _until_ready(task, _readiness(ready_flag, insights), wait_seconds)
        yield task
    finally:
        stop_flag.set()
        await asyncio.wait_for(task, wait_seconds)
        settings.execution.executor.shutdown(wait=True)


async def _operate(**kwargs: Any) -> None:
    """``kopf.operator()``, but leaving alone at exit the tasks that are not the operator's.

    At exit, kopf awaits for 5 s and then cancels every task created since it started, thinking
    them its handlers' leftovers: that includes the local HTTP servers' connections (kmock's too).
    """
    preexisting = frozenset(asyncio.all_tasks())
    tasks = await kopf.spawn_tasks(**kwargs)
    try:
        await kopf.run_tasks(tasks, ignored=_ForeignTasks(preexisting))
    finally:
        await _stop_daemons(preexisting)


async def _stop_daemons(preexisting: frozenset["asyncio.Task[Any]"]) -> None:
    """Cancel the daemons kopf 1.45 sometimes leaves running at exit (it would wait 5 s for them)."""
    leftovers = [task for task in asyncio.all_tasks() if task not in preexisting and _is_daemon(task)]
    for task in leftovers:
        task.cancel()
    await asyncio.gather(*leftovers, return_exceptions=True)


def _is_daemon(task: "asyncio.Task[Any]") -> bool:
    return task.get_name().startswith(("runner of ", "time-limited waiting for the daemon stopper"))


@dataclasses.dataclass(frozen=True)
class _ForeignTasks(Collection["asyncio.Task[Any]"]):
    """A live view of the tasks that are not kopf's: the older ones and the local servers' ones.

    kopf only asks ``task in ignored``; iterating lists the older tasks only.
    """

    preexisting: frozenset["asyncio.Task[Any]"]

    def __contains__(self, task: object) -> bool:
        return task in self.preexisting or (
            isinstance(task, asyncio.Task) and (not _is_operators(task) or _is_daemon(task)))

    def __iter__(self) -> Iterator["asyncio.Task[Any]"]:
        return iter(self.preexisting)

    def __len__(self) -> int:
        return len(self.preexisting)


def _is_operators(task: "asyncio.Task[Any]") -> bool:
    """Whether the task runs kopf's or chkmate's code (not a test server's connection or a fixture's teardown)."""
    frame = getattr(task.get_coro(), "cr_frame", None)
    module = frame.f_globals.get("__name__", "") if frame is not None else ""
    return module.startswith(("kopf", "chkmate"))


def _add_login(registry: kopf.OperatorRegistry, server_url: str) -> None:
    def login_to_emulator(**_: Any) -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(server=server_url, default_namespace="default")

    kopf.on.login(registry=registry, id="harness-login")(login_to_emulator)


async def _readiness(ready_flag: asyncio.Event, insights: Insights) -> None:
    """Wait until kopf ran its startup handlers and discovered what to watch."""
    # Stopped earlier, kopf leaves its discovery requests retrying on a closed session for 5 s.
    await ready_flag.wait()
    await insights.ready_resources.wait()
    await insights.ready_namespaces.wait()


async def _until_ready(task: "asyncio.Task[None]", readiness: Awaitable[None], wait_seconds: float) -> None:
    ready = asyncio.ensure_future(readiness)
    try:
        done, _ = await asyncio.wait({task, ready}, timeout=wait_seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        ready.cancel()
    if task in done:
        await task  # re-raise why the operator exited before becoming ready
        raise RuntimeError("The operator exited before it became ready.")
    if ready not in done:
        raise TimeoutError(f"The operator did not become ready within {wait_seconds} s.")


@typing.overload
async def wait_for(
    predicate: Callable[[], Awaitable[T]], timeout: float = ..., interval: float = ...,
) -> T: ...


@typing.overload
async def wait_for(
    predicate: Callable[[], T], timeout: float = ..., interval: float = ...,
) -> T: ...


async def wait_for(
    predicate: Callable[[], Any], timeout: float = 5, interval: float = 0.02,
) -> Any:
    """Poll a sync or async predicate until it returns a truthy value; return that value."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = predicate()
        value = await result if inspect.isawaitable(result) else result
        if value:
            return value
        if asyncio.get_running_loop().time() >= deadline:
            raise TimeoutError(f"The condition is still false after {timeout} s: {predicate!r}")
        await asyncio.sleep(interval)
