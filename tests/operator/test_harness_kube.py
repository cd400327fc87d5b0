"""The strict Kubernetes API emulator of the test harness, over plain HTTP, and kopf running against it."""

import asyncio
import json
import logging
import pathlib
import re
import uuid
from typing import Any

import aiohttp
import kopf
import pytest
import yaml

from tests.harness import kube

pytestmark = pytest.mark.kmock(cls=kube.StrictKubernetesEmulator)

GROUP = "test.chkmate.dev"
WIDGETS = f"/apis/{GROUP}/v1/namespaces/default/widgets"
GADGETS = f"/apis/{GROUP}/v1/namespaces/default/gadgets"
CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
MERGE = {"Content-Type": "application/merge-patch+json"}
JSON_PATCH = {"Content-Type": "application/json-patch+json"}
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")

WIDGET_SCHEMA = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "required": ["repository"],
            "properties": {
                "repository": {"type": "string", "minLength": 1},
                "syncDirection": {"type": "string", "enum": ["Push", "Pull", "Bidirectional"], "default": "Push"},
                "replicas": {"type": "integer", "minimum": 0},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            },
        },
        "status": {
            "type": "object",
            "properties": {"phase": {"type": "string"}, "observedGeneration": {"type": "integer"}},
        },
    },
}
WIDGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"widgets.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {"kind": "Widget", "plural": "widgets", "singular": "widget",
                  "shortNames": ["wg"], "categories": ["chkmate"]},
        "versions": [{"name": "v1", "served": True, "storage": True, "subresources": {"status": {}},
                      "schema": {"openAPIV3Schema": WIDGET_SCHEMA}}],
    },
}
GADGET_CRD = {  # no status subresource: status is a normal field
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"gadgets.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {"kind": "Gadget", "plural": "gadgets"},
        "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
            "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}],
    },
}


@pytest.fixture
def crd_file(tmp_path: pathlib.Path) -> pathlib.Path:
    """The widget CRD in a multi-document YAML file, among a document that is not a CRD."""
    path = tmp_path / "crds.yaml"
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "unrelated"}}
    path.write_text(yaml.safe_dump_all([config_map, WIDGET_CRD]), encoding="utf-8")
    return path


@pytest.fixture
def emulator(kmock: kube.StrictKubernetesEmulator, crd_file: pathlib.Path) -> kube.StrictKubernetesEmulator:
    kube.load_crds(kmock, [crd_file, GADGET_CRD])
    return kmock


@pytest.fixture(autouse=True)
def no_server_errors(kmock: kube.StrictKubernetesEmulator) -> Any:
    """Every answer is deliberate: the emulator itself never fails (kmock collects such errors)."""
    yield
    assert kmock.errors == []


async def call(emulator: kube.StrictKubernetesEmulator, method: str, path: str, body: Any = None,
               headers: dict[str, str] | None = None) -> tuple[int, Any]:
    async with emulator.request(method, path, json=body, headers=headers) as response:
        return response.status, await response.json()


async def create(emulator: kube.StrictKubernetesEmulator, body: Any, path: str = WIDGETS) -> tuple[int, Any]:
    return await call(emulator, "POST", path, body)


async def patch(emulator: kube.StrictKubernetesEmulator, path: str, body: Any,
                headers: dict[str, str] = MERGE) -> tuple[int, Any]:
    return await call(emulator, "PATCH", path, body, headers)


def widget(name: str = "w1", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/v1", "kind": "Widget", "metadata": {"name": name},
            "spec": {"repository": "org/repo", **spec}}


async def read_events(response: aiohttp.ClientResponse, count: int) -> list[tuple[str, str]]:
    """The next ``count`` watch events as (type, resourceVersion)."""
    events: list[tuple[str, str]] = []
    async with asyncio.timeout(2):
        while len(events) < count:
            line = await response.content.readline()
            if line.strip():
                event = json.loads(line)
                events.append((event["type"], event["object"]["metadata"]["resourceVersion"]))
    return events


class TestCreation:
    async def test_sets_server_metadata(self, emulator: kube.StrictKubernetesEmulator) -> None:
        status, body = await create(emulator, widget())
        assert status == 201
        metadata = body["metadata"]
        assert uuid.UUID(metadata["uid"]).version == 4
        assert metadata["resourceVersion"].isdigit()
        assert RFC3339.fullmatch(metadata["creationTimestamp"])
        assert metadata["generation"] == 1
        assert metadata["namespace"] == "default"  # from the URL

    async def test_stores_what_get_returns(self, emulator: kube.StrictKubernetesEmulator) -> None:
        _, created = await create(emulator, {"metadata": {"name": "w1"}, "spec": {"repository": "r"}})
        status, fetched = await call(emulator, "GET", f"{WIDGETS}/w1")
        assert status == 200
        assert fetched == created == emulator.objects[f"{GROUP}/v1/widgets", "default", "w1"].raw
        assert (fetched["apiVersion"], fetched["kind"]) == (f"{GROUP}/v1", "Widget")  # filled in from the URL

    async def test_generate_name(self, emulator: kube.StrictKubernetesEmulator) -> None:
        _, body = await create(emulator, {"metadata": {"generateName": "w-"}, "spec": {"repository": "r"}})
        assert re.fullmatch(r"w-[bcdfghjklmnpqrstvwxz2456789]{5}", body["metadata"]["name"])

    async def test_without_name_is_invalid(self, emulator: kube.StrictKubernetesEmulator) -> None:
        status, body = await create(emulator, {"spec": {"repository": "r"}})
        assert status == 422
        assert body["details"]["causes"] == [{"field": "metadata.name", "reason": "FieldValueRequired",
                                              "message": "Required value: name or generateName is required"}]

    async def test_existing_name_is_already_exists(self, emulator: kube.StrictKubernetesEmulator) -> None:
        await create(emulator, widget())
        status, body = await create(emulator, widget())
        assert status == 409
        assert body == {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "code": 409,
            "reason": "AlreadyExists", "message": f'widgets.{GROUP} "w1" already exists',
            "details": {"name": "w1", "group": GROUP, "kind": "widgets"},
        }

    async def test_other_namespace_in_body_is_refused(self, emulator: kube.StrictKubernetesEmulator) -> None:
        status, body = await create(emulator, {**widget(), "metadata": {"name": "w1", "namespace": "other"}})
        assert (status, body["reason"]) == (400, "BadRequest")

    async def test_other_kind_in_body_is_refused(self, emulator: kube.StrictKubernetesEmulator) -> None:
        status, body = await create(emulator, {**widget(), "kind": "Gadget"})
        assert (status, body["reason"]) == (400, "BadRequest")
        assert "kind" in body["message"]

    @pytest.mark.parametrize("path", [
        pytest.param(f"/apis/{GROUP}/v1/widgets", id="namespaced-resource-without-namespace"),
        pytest.param(f"/apis/{GROUP}/v1/namespaces/default/gizmos", id="undeclared-resource"),
    ])
    async def test_unknown_routes_are_not_found(self, emulator: kube.StrictKubernetesEmulator, path: str) -> None:
        status, body = await create(emulator, {**widget(), "metadata": {"name": "w1", "namespace": "default"}},
                                    path=path)
        assert (status, body["reason"]) == (404, "NotFound")

    async def test_status_is_dropped_with_a_status_subresource(
        self, emulator: kube.StrictKubernetesEmulator,
    ) -> None:
        _, body = await create(emulator, {**widget(), "status": {"phase": "Faked"}})
        assert "status" not in body


class TestResourceVersions:
    async def test_one_counter_increases_on_every_write(self, emulator: kube.StrictKubernetesEmulator) -> None:
        _, first = await create(emulator, {**widget("w1"), "metadata": {"name": "w1", "finalizers": ["x/y"]}})
        _, second = await create(emulator, widget("w2"))
        _, patched = await patch(emulator, f"{WIDGETS}/w1", {"spec": {"replicas": 1}})
        _, status_patched = await patch(emulator, f"{WIDGETS}/w1/status", {"status": {"phase": "Ready"}})
        _, marked = await call(emulator, "DELETE", f"{WIDGETS}/w1")
        writes = (first, second, patched, status_patched, marked)
        versions = [int(body["metadata"]["resourceVersion"]) for body in writes]
        assert versions == sorted(set(versions))

    async def test_stale_version_in_a_patch_is_a_conflict(self, emulator: kube.StrictKubernetesEmulator) -> None:
        _, created = await create(emulator, widget())
        await patch(emulator, f"{WIDGETS}/w1", {"spec": {"replicas": 1}})
        stale = {"metadata": {"resourceVersion": created["metadata"]["resourceVersion"]}, "spec": {"replicas": 2}}
        status, body = await patch(emulator, f"{WIDGETS}/w1", stale)
        assert status == 409
        assert body == {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "code": 409,
            "reason": "Conflict",
            "message": f'Operation cannot be fulfilled on widgets.{GROUP} "w1": the object has been modified; '
                       "please apply your changes to the latest version and try again",
            "details": {"name": "w1", "group": GROUP, "kind": "widgets"},
        }

    async def test_current_version_in_a_patch_applies(self, emulator: kube.StrictKubernetesEmulator) -> None:
        _, created = await create(emulator, widget())
        current = {"metadata": {"resourceVersion": created["metadata"]["resourceVersion"]}, "spec": {"replicas": 2}}
        status, body = await patch(emulator, f"{WIDGETS}/w1", current)
        assert (status, body["spec"]["replicas"]) == (200, 2)

    async def test_json_patch_test_on_the_version(self, emulator: kube.StrictKubernetesEmulator) -> None:
        _, created = await create(emulator, widget())
        version = created["metadata"]["resourceVersion"]
        ops = [{"op": "test", "path": "/metadata/resourceVersion", "value": version},
               {"op": "add", "path": "/metadata/finalizers", "value": ["chkmate.dev/finalizer"]}]
        status, body = await patch(emulator, f"{WIDGETS}/w1", ops, JSON_PATCH)
        assert (status, body["metadata"]["finalizers"]) == (200, ["chkmate.dev/finalizer"])
        status, body = await patch(emulator, f"{WIDGETS}/w1", ops, JSON_PATCH)  # the version is stale now
        assert (status, body["reason"]) == (422, "Invalid")

    async def test_json_patch_replacing_the_version_is_a_conflict(
        self, emulator: kube.StrictKubernetesEmulator,
    ) -> None:
        await create(emulator, widget())
        ops = [{"op": "replace", "path": "/metadata/resourceVersion", "value": "999999"}]
        status, body = await patch(emulator, f"{WIDGETS}/w1", ops, JSON_PATCH)
        assert (status, body["reason"]) == (409, "Conflict")

    async def test_no_op_patch_changes_nothing(self, emulator: kube.StrictKubernetesEmulator) -> None:
        _, created = await create(emulator, widget())
        status, body = await patch(emulator, f"{WIDGETS}/w1", {"spec": {"repository": "org/repo"}})
        assert (status, body) == (200, created)
        assert len(emulator.objects[f"{GROUP}/v1/widgets", "default", "w1"].history) == 1


class TestStatusSubresource:
    async def test_main_resource_ignores_status(self, emulator: kube.StrictKubernetesEmulator) -> None:
        await create(emulator, widget())
        await patch(emulator, f"{WIDGETS}/w1/status", {"status": {"phase": "Ready"}})
        _, body = await patch(emulator, f"{WIDGETS}/w1", {"spec": {"replicas": 3}, "status": {"phase": "Faked"}})
        assert (body["spec"]["replicas"], body["status"]) == (3, {"phase": "Ready"})

    async def test_status_changes_only_status(self, emulator: kube.StrictKubernetesEmulator) -> None:
        _, created = await create(emulator, widget())
        change = {"metadata": {"labels": {"a": "b"}}, "spec": {"replicas": 3}, "status": {"phase": "Ready"}}
        status, body = await patch(emulator, f"{WIDGETS}/w1/status", change)
        assert status == 200
        assert body["status"] == {"phase": "Ready"}
        assert body["spec"] == created["spec"]
        assert "labels" not in body["metadata"]
        assert int(body["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
        assert body["metadata"]["generation"] == 1

    async def test_without_subresource_status_is_a_normal_field(
        self, emulator: kube.StrictKubernetesEmulator,
    ) -> None:
        await create(emulator, {"metadata": {"name": "g1"}, "spec": {"size": 1}}, path=GADGETS)
        _, body = await patch(emulator, f"{GADGETS}/g1", {"status": {"phase": "Ready"}})
        assert body["status"] == {"phase": "Ready"}
        status, body = await patch(emulator, f"{GADGETS}/g1/status", {"status": {"phase": "Other"}})
        assert (status, body["reason"]) == (404, "NotFound")


class TestGeneration:
    async def test_bumps_only_on_content_changes(self, emulator: kube.StrictKubernetesEmulator) -> None:
        await create(emulator, widget())
        _, body = await patch(emulator, f"{WIDGETS}/w1", {"metadata": {"labels": {"a": "b"}}})
        assert body["metadata"]["generation"] == 1
        _, body = await patch(emulator, f"{WIDGETS}/w1/status", {"status": {"phase": "Ready"}})
        assert body["metadata"]["generation"] == 1
        _, body = await patch(emulator, f"{WIDGETS}/w1", {"spec": {"replicas": 2}})
        assert body["metadata"]["generation"] == 2

    async def test_status_counts_without_a_status_subresource(
        self, emulator: kube.StrictKubernetesEmulator,
    ) -> None:
        await create(emulator, {"metadata": {"name": "g1"}}, path=GADGETS)
        _, body = await patch(emulator, f"{GADGETS}/g1", {"status": {"phase": "Ready"}})
        assert body["metadata"]["generation"] == 2

    async def test_bumps_when_marked_for_deletion(self, emulator: kube.StrictKubernetesEmulator) -> None:
        await create(emulator, {**widget(), "metadata": {"name": "w1", "finalizers": ["x/y"]}})
        _, body = await call(emulator, "DELETE", f"{WIDGETS}/w1")
        assert body["metadata"]["generation"] == 2


class TestValidation:
    async def test_enum_violation_is_invalid(self, emulator: kube.StrictKubernetesEmulator) -> None:
        status, body = await create(emulator, widget(syncDirection="Sideways"))
        assert status == 422
        detail = 'Unsupported value: "Sideways": supported values: "Push", "Pull", "Bidirectional"'
        assert body == {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "code": 422,
            "reason": "Invalid", "message": f'Widget.{GROUP} "w1" is invalid: spec.syncDirection: {detail}',
            "details": {"name": "w1", "group": GROUP, "kind": "Widget", "causes": [
                {"reason": "FieldValueNotSupported", "message": detail, "field": "spec.syncDirection"}]},
        }

    async def test_all_violations_are_listed(self, emulator: kube.StrictKubernetesEmulator) -> None:
        status, body = await create(emulator, {"metadata": {"name": "w1"}, "spec": {"replicas": -1}})
        assert status == 422
        assert [cause["field"] for cause in body["details"]["causes"]] == ["spec.repository", "spec.replicas"]
        assert body["message"].startswith(f'Widget.{GROUP} "w1" is invalid: [spec.repository: Required value, ')

    async def test_map_values_are_validated(self, emulator: kube.StrictKubernetesEmulator) -> None:
        status, body = await create(emulator, widget(labels={"team": 7}))
        assert (status, body["details"]["causes"][0]["field"]) == (422, "spec.labels.team")

    async def test_unknown_fields_are_pruned_and_defaults_applied(
        self, emulator: kube.StrictKubernetesEmulator,
    ) -> None:
        _, body = await create(emulator, {**widget(labels={"a": "b"}, extra={"kept": {"x": 1}}, typo=1), "top": 1})
        assert body["spec"] == {"repository": "org/repo", "labels": {"a": "b"}, "extra": {"kept": {"x": 1}},
                                "syncDirection": "Push"}
        assert "top" not in body

    async def test_patch_results_are_validated(self, emulator: kube.StrictKubernetesEmulator) -> None:
        _, created = await create(emulator, widget())
        status, _ = await patch(emulator, f"{WIDGETS}/w1", {"spec": {"repository": None}})
        assert status == 422
        status, _ = await patch(emulator, f"{WIDGETS}/w1", [{"op": "replace", "path": "/spec/replicas",
                                                              "value": "many"}], JSON_PATCH)
        assert status == 422
        status, _ = await patch(emulator, f"{WIDGETS}/w1/status", {"status": {"observedGeneration": "1"}})
        assert status == 422
        _, fetched = await call(emulator, "GET", f"{WIDGETS}/w1")
        assert fetched == created

    async def test_strategic_merge_patch_is_a_merge_patch(self, emulator: kube.StrictKubernetesEmulator) -> None:
        await create(emulator, widget(labels={"a": "1", "b": "2"}))
        headers = {"Content-Type": "application/strategic-merge-patch+json"}
        status, body = await patch(emulator, f"{WIDGETS}/w1", {"spec": {"labels": {"a": None}}}, headers)
        assert (status, body["spec"]["labels"]) == (200, {"b": "2"})

    async def test_unknown_patch_type_is_unsupported(self, emulator: kube.StrictKubernetesEmulator) -> None:
        await create(emulator, widget())
        status, body = await patch(emulator, f"{WIDGETS}/w1", {"spec": {}}, {"Content-Type": "application/json"})
        assert (status, body["reason"]) == (415, "UnsupportedMediaType")

    async def test_labels_are_validated_for_every_resource(self, emulator: kube.StrictKubernetesEmulator) -> None:
        status, body = await create(emulator, {"metadata": {"name": "c1", "labels": {"url": "https://x"}}},
                                    path=CONFIGMAPS)
        assert (status, body["details"]["causes"][0]["field"]) == (422, "metadata.labels")

    async def test_names_are_validated(self, emulator: kube.StrictKubernetesEmulator) -> None:
        status, body = await create(emulator, widget(name="Not_A_Name"))
        assert (status, body["details"]["causes"][0]["field"]) == (422, "metadata.name")

    async def test_resources_without_a_crd_are_not_validated(self, emulator: kube.StrictKubernetesEmulator) -> None:
        status, body = await create(emulator, {"metadata": {"name": "c1"}, "data": {"k": "v"}, "anything": [1]},
                                    path=CONFIGMAPS)
        assert (status, body["data"], body["anything"]) == (201, {"k": "v"}, [1])


class TestDeletion:
    async def test_finalizers_hold_the_object_until_removed(self, emulator: kube.StrictKubernetesEmulator) -> None:
        _, created = await create(emulator, {**widget(), "metadata": {"name": "w1", "finalizers": ["x/y"]}})
        status, marked = await call(emulator, "DELETE", f"{WIDGETS}/w1")
        assert status == 200
        assert RFC3339.fullmatch(marked["metadata"]["deletionTimestamp"])
        assert int(marked["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
        assert (await call(emulator, "GET", f"{WIDGETS}/w1"))[0] == 200
        status, last = await patch(emulator, f"{WIDGETS}/w1", {"metadata": {"finalizers": []}})
        assert (status, last["metadata"]["finalizers"]) == (200, [])
        status, body = await call(emulator, "GET", f"{WIDGETS}/w1")
        assert (status, body["reason"]) == (404, "NotFound")

    async def test_no_finalizers_deletes_at_once(self, emulator: kube.StrictKubernetesEmulator) -> None:
        await create(emulator, widget())
        status, _ = await call(emulator, "DELETE", f"{WIDGETS}/w1")
        assert status == 200
        assert emulator.objects[f"{GROUP}/v1/widgets", "default", "w1"].deleted

    async def test_no_new_finalizers_while_deleting(self, emulator: kube.StrictKubernetesEmulator) -> None:
        await create(emulator, {**widget(), "metadata": {"name": "w1", "finalizers": ["x/y"]}})
        await call(emulator, "DELETE", f"{WIDGETS}/w1")
        status, body = await patch(emulator, f"{WIDGETS}/w1", {"metadata": {"finalizers": ["x/y", "x/z"]}})
        assert status == 422
        assert body["details"]["causes"] == [{
            "field": "metadata.finalizers", "reason": "FieldValueForbidden",
            "message": 'Forbidden: no new finalizers can be added if the object is being deleted, '
                       'found new finalizers []string{"x/z"}',
        }]

    async def test_missing_object_is_not_found(self, emulator: kube.StrictKubernetesEmulator) -> None:
        status, body = await call(emulator, "DELETE", f"{WIDGETS}/nope")
        assert status == 404
        assert body == {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "code": 404,
            "reason": "NotFound", "message": f'widgets.{GROUP} "nope" not found',
            "details": {"name": "nope", "group": GROUP, "kind": "widgets"},
        }

    async def test_failed_precondition_is_a_conflict(self, emulator: kube.StrictKubernetesEmulator) -> None:
        await create(emulator, widget())
        options = {"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"uid": str(uuid.uuid4())}}
        status, body = await call(emulator, "DELETE", f"{WIDGETS}/w1", options)
        assert (status, body["reason"]) == (409, "Conflict")


class TestReplace:
    async def test_put_replaces_but_keeps_status_and_server_fields(
        self, emulator: kube.StrictKubernetesEmulator,
    ) -> None:
        _, created = await create(emulator, widget(replicas=1))
        await patch(emulator, f"{WIDGETS}/w1/status", {"status": {"phase": "Ready"}})
        status, body = await call(emulator, "PUT", f"{WIDGETS}/w1", widget(repository="other"))
        assert status == 200
        assert body["spec"] == {"repository": "other", "syncDirection": "Push"}
        assert body["status"] == {"phase": "Ready"}
        assert body["metadata"]["uid"] == created["metadata"]["uid"]

    async def test_put_with_a_stale_version_is_a_conflict(self, emulator: kube.StrictKubernetesEmulator) -> None:
        _, created = await create(emulator, widget())
        await patch(emulator, f"{WIDGETS}/w1", {"spec": {"replicas": 1}})
        status, body = await call(emulator, "PUT", f"{WIDGETS}/w1", created)
        assert (status, body["reason"]) == (409, "Conflict")


class TestWatching:
    async def test_watch_from_a_listing_gets_only_later_events(
        self, emulator: kube.StrictKubernetesEmulator,
    ) -> None:
        await create(emulator, widget("w1"))
        _, listing = await call(emulator, "GET", WIDGETS)
        params = {"watch": "true", "resourceVersion": listing["metadata"]["resourceVersion"]}
        async with emulator.get(WIDGETS, params=params) as response:
            _, patched = await patch(emulator, f"{WIDGETS}/w1", {"spec": {"replicas": 1}})
            _, created = await create(emulator, widget("w2"))
            events = await read_events(response, 2)
        assert events == [("MODIFIED", patched["metadata"]["resourceVersion"]),
                          ("ADDED", created["metadata"]["resourceVersion"])]

    async def test_watch_from_nowhere_starts_with_all_objects(self, emulator: kube.StrictKubernetesEmulator) -> None:
        _, first = await create(emulator, widget("w1"))
        async with emulator.get(WIDGETS, params={"watch": "true"}) as response:
            _, deleted = await call(emulator, "DELETE", f"{WIDGETS}/w1")
            events = await read_events(response, 2)
        assert events == [("ADDED", first["metadata"]["resourceVersion"]),
                          ("DELETED", deleted["metadata"]["resourceVersion"])]


class TestRegistration:
    def test_crds_are_declared_for_discovery(self, emulator: kube.StrictKubernetesEmulator) -> None:
        info = emulator.resources[f"{GROUP}/v1/widgets"]
        assert (info.kind, info.singular, info.namespaced) == ("Widget", "widget", True)
        assert (info.shortnames, info.categories, info.subresources) == ({"wg"}, {"chkmate"}, {"status"})
        assert info.verbs >= {"get", "list", "watch", "create", "patch", "update", "delete"}

    def test_documents_other_than_crds_are_skipped(self, emulator: kube.StrictKubernetesEmulator) -> None:
        assert {(r.group, r.plural) for r in emulator.resources if r.group == GROUP} == {
            (GROUP, "widgets"), (GROUP, "gadgets")}

    @pytest.mark.parametrize("resource", [
        "v1/configmaps", "v1/secrets", "v1/events", "events.k8s.io/v1/events", "v1/namespaces",
        "coordination.k8s.io/v1/leases", "batch/v1/jobs", "apiextensions.k8s.io/v1/customresourcedefinitions",
    ])
    def test_builtin_resources_are_declared(self, kmock: kube.StrictKubernetesEmulator, resource: str) -> None:
        assert resource in kmock.resources

    async def test_discovery_lists_the_status_subresource(self, emulator: kube.StrictKubernetesEmulator) -> None:
        _, body = await call(emulator, "GET", f"/apis/{GROUP}/v1")
        assert {resource["name"] for resource in body["resources"]} >= {"widgets", "widgets/status", "gadgets"}

    def test_only_v1_crds_are_accepted(self, kmock: kube.StrictKubernetesEmulator) -> None:
        with pytest.raises(ValueError, match="CustomResourceDefinition"):
            kube.load_crds(kmock, [{**WIDGET_CRD, "apiVersion": "apiextensions.k8s.io/v1beta1"}])


class TestWaitFor:
    async def test_returns_the_first_truthy_value(self) -> None:
        answers = iter([None, 0, "done"])
        assert await kube.wait_for(lambda: next(answers), timeout=1, interval=0) == "done"

    async def test_awaits_async_predicates(self) -> None:
        async def ready() -> bool:
            return True

        assert await kube.wait_for(ready, timeout=1) is True

    async def test_times_out(self) -> None:
        with pytest.raises(TimeoutError):
            await kube.wait_for(lambda: False, timeout=0.05)


@pytest.fixture
def operator_registry() -> kopf.OperatorRegistry:
    """A registry that sets the phase on creation and needs a finalizer (for its deletion handler)."""
    registry = kopf.OperatorRegistry()

    @kopf.on.create(GROUP, "v1", "widgets", registry=registry)
    def set_phase(patch: kopf.Patch, **_: Any) -> None:
        patch.status["phase"] = "Ready"

    @kopf.on.delete(GROUP, "v1", "widgets", registry=registry)
    def forget(**_: Any) -> None:
        pass

    return registry


async def test_kopf_handles_the_whole_lifecycle(
    emulator: kube.StrictKubernetesEmulator, operator_registry: kopf.OperatorRegistry, caplog: pytest.LogCaptureFixture,
) -> None:
    async def phase() -> Any:
        _, body = await call(emulator, "GET", f"{WIDGETS}/w1")
        return body.get("status", {}).get("phase")

    async def gone() -> bool:
        return (await call(emulator, "GET", f"{WIDGETS}/w1"))[0] == 404

    async with kube.run_operator(operator_registry, emulator.url) as task:
        await create(emulator, widget())
        assert await kube.wait_for(phase) == "Ready"
        _, body = await call(emulator, "GET", f"{WIDGETS}/w1")
        assert body["metadata"]["finalizers"] == ["chkmate.dev/finalizer"]
        assert "state.chkmate.dev/last-handled-configuration" in body["metadata"]["annotations"]
        await call(emulator, "DELETE", f"{WIDGETS}/w1")
        await kube.wait_for(gone)
    assert task.done() and task.exception() is None
    assert [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING] == []


async def test_run_operator_applies_the_settings_hook(
    emulator: kube.StrictKubernetesEmulator, operator_registry: kopf.OperatorRegistry,
) -> None:
    seen: list[kopf.OperatorSettings] = []
    async with kube.run_operator(operator_registry, emulator.url, settings_hook=seen.append, memo=kopf.Memo()):
        pass
    [settings] = seen
    assert settings.persistence.finalizer == "chkmate.dev/finalizer"


def test_kmock_fixture_is_the_strict_emulator(kmock: object) -> None:
    assert isinstance(kmock, kube.StrictKubernetesEmulator)


async def test_a_404_does_not_stick_to_later_answers(emulator: kube.StrictKubernetesEmulator) -> None:
    assert (await call(emulator, "GET", f"{WIDGETS}/w1"))[0] == 404
    assert (await call(emulator, "GET", f"/apis/{GROUP}/v1/namespaces/default/nothings"))[0] == 404
    assert (await create(emulator, widget()))[0] == 201
    status, body = await call(emulator, "GET", f"{WIDGETS}/w1")
    assert status == 200 and body["metadata"]["name"] == "w1"
    status, body = await call(emulator, "GET", WIDGETS)
    assert status == 200 and [item["metadata"]["name"] for item in body["items"]] == ["w1"]
