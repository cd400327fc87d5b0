"""The Helm chart, rendered by the real helm: lint, schema, objects valid for Kubernetes, and what they promise.

Every scenario is rendered with `helm template` (values from a dict on stdin) and each object is validated
offline: built-in kinds against Kubernetes 1.35's OpenAPI schemas (kubernetes-validate, strict: unknown
fields fail), GitHubConnection against our own CRD. Then the objects are checked against the operator:
security context, probes on kopf's liveness port, CHKMATE_* variables that chkmate.settings accepts, ports,
CRDs from crds/, and RBAC that grants exactly the table below in both install modes.

I/O: runs helm (from .cache/bin or PATH; `bash dev/install-tools.sh` installs it) in subprocesses.
"""

import base64
import dataclasses
import functools
import json
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from chkmate import settings
from chkmate.api import connections
from tests.fixtures import malformed_pem
from tests.harness import schema

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "chkmate-operator"
NAMESPACE = "chkmate"
RELEASE = "cm"
FULLNAME = "cm-chkmate-operator"
KUBERNETES_VERSION = schema.KUBERNETES_VERSION

Object = dict[str, Any]
Values = Mapping[str, Any]

PRIVATE_KEY = malformed_pem("RSA PRIVATE KEY", "not a real key, only its shape")
CONNECTION = {"create": True, "appId": 123456, "installationId": 7890123, "allowedRepositories": ["acme/infra-*"]}

SCENARIOS: dict[str, Values] = {
    "default": {},
    "namespaced": {"watchNamespaces": ["team-a", "team-b"]},
    "webhooks-ingress": {
        "webhooks": {"enabled": True, "ingress": {"enabled": True, "host": "hooks.acme.test", "tlsSecretName": "tls"}},
    },
    "monitoring": {"metrics": {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}}},
    "standby": {"standby": {"enabled": True}},
    "standby-namespaced": {
        "standby": {"enabled": True, "peeringName": "chkmate"},
        "watchNamespaces": ["team-a", "team-b"],
    },
    "created-secret": {
        "webhooks": {"enabled": True},
        "github": {
            "secret": {"create": True, "privateKey": PRIVATE_KEY, "webhookSecret": "s3cr3t"},
            "connection": CONNECTION,
        },
    },
    "existing-secret": {
        "webhooks": {"enabled": True},
        "github": {"secret": {"name": "acme-github-app"}, "connection": CONNECTION},
        "watchNamespaces": [NAMESPACE, "team-a"],
    },
    "metrics-off": {"metrics": {"enabled": False}, "podDisruptionBudget": {"enabled": False}},
    "runner-namespaces": {
        "runner": {
            "namespaces": ["infra"],
            "image": "registry.acme.test/runner:1.2",
            "serviceAccount": {"annotations": {"iam.gke.io/gcp-service-account": "tf@acme.iam.gserviceaccount.com"}},
        },
    },
}


# -- running helm ------------------------------------------------------------------------------------------------


def _helm() -> str:
    local = REPO / ".cache" / "bin" / "helm"
    found = str(local) if local.is_file() else shutil.which("helm")
    if found is None:
        pytest.fail("helm is not installed: run `bash dev/install-tools.sh` (CI does)", pytrace=False)
    return found


def _run_helm(*args: str, values: Values) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_helm(), *args, "-f", "-"],
        input=yaml.safe_dump(dict(values)),
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


@functools.cache
def _render_yaml(values_yaml: str, include_crds: bool) -> tuple[Object, ...]:
    args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE, "--kube-version", KUBERNETES_VERSION]
    result = _run_helm(*args, *(["--include-crds"] if include_crds else []), values=yaml.safe_load(values_yaml))
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def render(values: Values, *, include_crds: bool = False) -> list[Object]:
    return list(_render_yaml(yaml.safe_dump(dict(values), sort_keys=True), include_crds))


def render_error(values: Values) -> str:
    result = _run_helm("template", RELEASE, str(CHART), "--namespace", NAMESPACE, values=values)
    assert result.returncode != 0, "helm template accepted values it should refuse"
    return result.stderr


def the(objects: Iterable[Object], kind: str, name: str | None = None) -> Object:
    found = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def kinds(objects: Iterable[Object]) -> list[str]:
    return sorted(o["kind"] for o in objects)


def container(objects: Iterable[Object]) -> Object:
    [operator] = the(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    return operator  # type: ignore[no-any-return]


def env(objects: Iterable[Object]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container(objects)["env"]}


def container_port(objects: Iterable[Object], name: str) -> int | None:
    ports = {p["name"]: p["containerPort"] for p in container(objects)["ports"]}
    return ports.get(name)


# -- lint, schema and validity -----------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_helm_lint_strict_passes(scenario: str) -> None:
    result = _run_helm("lint", "--strict", str(CHART), "--namespace", NAMESPACE, values=SCENARIOS[scenario])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
        ({"image": {"digest": "sha256:abc"}}, "/image/digest"),
        ({"operator": {"workDir": "/var/lib/chkmate"}}, "/operator/workDir"),
        ({"operator": {"retryDelay": "soon"}}, "/operator/retryDelay"),
        ({"operator": {"planHistory": 0}}, "/operator/planHistory"),
        ({"watchNamespaces": ["Team_A"]}, "/watchNamespaces/0"),
        ({"watchNamespaces": "team-a"}, "/watchNamespaces"),
        ({"metrics": {"port": 70000}}, "/metrics/port"),
        ({"metrics": {"prometheusRule": {"planApprovalThresholdSeconds": 10}}}, "planApprovalThresholdSeconds"),
        ({"standby": {"enabled": "yes"}}, "/standby/enabled"),
        ({"service": {"type": "ExternalName"}}, "/service/type"),
        ({"podSecurityContext": {"runAsUser": 0}}, "/podSecurityContext/runAsUser"),
        ({"webhooks": {"ingress": {"enabled": True}}}, "/webhooks/enabled"),
        ({"metrics": {"enabled": False, "serviceMonitor": {"enabled": True}}}, "/metrics/enabled"),
        ({"github": {"secret": {"create": True}}}, "/github/secret/privateKey"),
        ({"github": {"connection": {"create": True}}}, "/github/connection/appId"),
        ({"networkPolicy": {"egress": "none"}}, "/networkPolicy/egress"),
        ({"imagePullSecret": [{"name": "regcred"}]}, "additional properties 'imagePullSecret' not allowed"),
        ({"operator": {"workdir": "/tmp/x"}}, "additional properties 'workdir' not allowed"),
        ({"runner": {"grace": "a minute"}}, "/runner/grace"),
        ({"runner": {"namespaces": ["Infra"]}}, "/runner/namespaces/0"),
        ({"runner": {"image": "has space:1"}}, "/runner/image"),
    ],
)
def test_schema_rejects_bad_values(values: Values, message: str) -> None:
    assert message in render_error(values)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"github": {"connection": CONNECTION}},
            "github.connection.create needs a Secret",
        ),
        (
            {"github": {"secret": {"name": "app"}, "connection": CONNECTION}, "watchNamespaces": ["team-a"]},
            f'the release namespace "{NAMESPACE}" is not in watchNamespaces',
        ),
    ],
)
def test_templates_refuse_inconsistent_values(values: Values, message: str) -> None:
    assert message in render_error(values)


def _custom_resource_errors(obj: Object) -> list[str]:
    """Our kinds against the CRD the chart ships; kinds of other operators by their required shape only."""
    group = obj["apiVersion"].split("/")[0]
    if group == "chkmate.dev":
        crd = yaml.safe_load((CHART / "crds" / f"{obj['kind'].lower()}s.chkmate.dev.yaml").read_text())
        openapi = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        errors = [str(e) for e in schema.validate(openapi, obj)]
        pruned = schema.prune(openapi, obj)["spec"]  # the API server keeps metadata whatever the schema says
        return errors + ([] if pruned == obj["spec"] else [f"unknown spec fields: {obj['spec']} -> {pruned}"])
    required = {"monitoring.coreos.com": ("spec",), "kopf.dev": ()}.get(group)
    if required is None:
        return [f"no way to validate {obj['apiVersion']} {obj['kind']}"]
    return [f"missing {key}" for key in ("metadata", *required) if key not in obj]


def validation_errors(obj: Object) -> list[str]:
    try:
        return schema.kubernetes_errors(obj)
    except schema.kubernetes_validate().SchemaNotFoundError:
        return _custom_resource_errors(obj)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_rendered_object_is_valid(scenario: str) -> None:
    objects = render(SCENARIOS[scenario])
    errors = {f"{o['kind']}/{o['metadata']['name']}": validation_errors(o) for o in objects}
    assert {name: e for name, e in errors.items() if e} == {}


def test_the_validator_rejects_unknown_fields_and_wrong_types() -> None:
    deployment = the(render({}), "Deployment")
    unknown_field = yaml.safe_load(yaml.safe_dump(deployment))
    unknown_field["spec"]["replica"] = 1
    wrong_type = yaml.safe_load(yaml.safe_dump(deployment))
    wrong_type["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "8080"
    assert validation_errors(deployment) == []
    assert validation_errors(unknown_field) != [] and validation_errors(wrong_type) != []


def test_objects_are_named_for_the_release_and_labelled() -> None:
    for obj in render(SCENARIOS["created-secret"]):
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == RELEASE, obj["kind"]
        assert labels["app.kubernetes.io/version"] == "0.1.0"
        if obj["kind"] != "GitHubConnection":
            assert obj["metadata"]["name"].startswith(FULLNAME), obj["kind"]


def test_crds_come_from_the_crds_folder_only() -> None:
    shipped = [yaml.safe_load(p.read_text()) for p in sorted((CHART / "crds").glob("*.yaml"))]
    rendered = [o for o in render({}, include_crds=True) if o["kind"] == "CustomResourceDefinition"]
    assert len(shipped) == 6
    assert {c["metadata"]["name"]: validation_errors(c) for c in rendered} == {
        c["metadata"]["name"]: [] for c in shipped
    }
    assert sorted(rendered, key=lambda c: c["metadata"]["name"]) == sorted(shipped, key=lambda c: c["metadata"]["name"])
    assert "CustomResourceDefinition" not in kinds(render({}))


def test_default_install_objects() -> None:
    assert kinds(render({})) == [
        "ClusterRole",
        "ClusterRole",
        "ClusterRole",
        "ClusterRoleBinding",
        "ClusterRoleBinding",
        "Deployment",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "Service",
        "ServiceAccount",
    ]


# -- the Deployment ----------------------------------------------------------------------------------------------


def test_pod_runs_non_root_read_only_without_capabilities() -> None:
    objects = render({})
    pod = the(objects, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532 and pod["securityContext"]["runAsGroup"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container(objects)["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False and security["privileged"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}


def test_the_work_dir_is_on_a_writable_empty_dir() -> None:
    objects = render({"operator": {"workDir": "/tmp/work"}})
    pod = the(objects, "Deployment")["spec"]["template"]["spec"]
    [mount] = container(objects)["volumeMounts"]
    [volume] = pod["volumes"]
    assert (mount["name"], mount["mountPath"]) == (volume["name"], "/tmp")
    assert volume["emptyDir"] == {"sizeLimit": "4Gi"}
    assert settings.Settings.from_env(env(objects)).work_dir == Path("/tmp/work")
    assert env(objects)["HOME"] == "/tmp"


def test_probes_use_kopfs_liveness_endpoint() -> None:
    objects = render({"operator": {"livenessPort": 8181}})
    for probe in ("livenessProbe", "readinessProbe"):
        assert container(objects)[probe]["httpGet"] == {"path": "/healthz", "port": "healthz"}
    assert container_port(objects, "healthz") == 8181
    assert settings.Settings.from_env(env(objects)).liveness_port == 8181


def test_resources_are_set() -> None:
    resources = container(render({}))["resources"]
    assert resources["requests"] == {"cpu": "100m", "memory": "256Mi"}
    assert resources["limits"] == {"memory": "1Gi"}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_environment_is_accepted_by_the_operator_settings(scenario: str) -> None:
    objects = render(SCENARIOS[scenario])
    variables = env(objects)
    parsed = settings.Settings.from_env(variables)  # raises on any unknown CHKMATE_* variable
    assert parsed.namespaces == tuple(SCENARIOS[scenario].get("watchNamespaces", ()))
    assert parsed.metrics_port == (container_port(objects, "metrics") or 0)
    assert parsed.webhook_port == (container_port(objects, "webhooks") or 0)
    assert parsed.liveness_port == container_port(objects, "healthz")
    assert "CHKMATE_TERRAFORM_BINARY" not in variables  # the image's default (OpenTofu) unless set


def test_operator_settings_values_reach_the_environment() -> None:
    values = {
        "operator": {
            "retryDelay": "45s",
            "resyncInterval": "1h",
            "planHistory": 3,
            "debug": True,
            "terraformBinary": "/opt/terraform/terraform",
            "tofuBinary": "/usr/local/bin/tofu",
            "extraEnv": [{"name": "HTTPS_PROXY", "value": "http://proxy.acme.test:3128"}],
        }
    }
    variables = env(render(values))
    parsed = settings.Settings.from_env(variables)
    assert (parsed.retry_delay, parsed.resync_interval, parsed.plan_history, parsed.debug) == (45.0, 3600.0, 3, True)
    assert (parsed.terraform_binary, parsed.tofu_binary) == ("/opt/terraform/terraform", "/usr/local/bin/tofu")
    assert variables["HTTPS_PROXY"] == "http://proxy.acme.test:3128"


def test_image_defaults_to_the_app_version_and_a_digest_pins_it() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert (chart["apiVersion"], chart["version"], chart["appVersion"]) == ("v2", "0.1.0", "0.1.0")
    assert container(render({}))["image"] == "chkmate-operator:0.1.0"
    assert container(render({"image": {"repository": "registry.acme.test/chkmate", "tag": "0.2.0"}}))["image"] == (
        "registry.acme.test/chkmate:0.2.0"
    )
    digest = "sha256:" + "a" * 64
    assert container(render({"image": {"digest": digest}}))["image"] == f"chkmate-operator@{digest}"


def test_single_replica_never_overlaps_during_updates() -> None:
    deployment = the(render({}), "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert "CHKMATE_PEERING" not in env(render({}))
    assert [o for o in render({}) if o["apiVersion"].startswith("kopf.dev/")] == []


def test_standby_replica_uses_kopf_peering_cluster_wide() -> None:
    objects = render(SCENARIOS["standby"])
    deployment = the(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": 1}
    assert settings.Settings.from_env(env(objects)).peering == FULLNAME
    peering = the(objects, "ClusterKopfPeering")
    assert (peering["apiVersion"], peering["metadata"]["name"]) == ("kopf.dev/v1", FULLNAME)
    affinity = deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    assert affinity["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]["topologyKey"] == (
        "kubernetes.io/hostname"
    )


def test_standby_replica_of_a_namespaced_install_peers_in_each_namespace() -> None:
    objects = render(SCENARIOS["standby-namespaced"])
    assert settings.Settings.from_env(env(objects)).peering == "chkmate"
    peerings = [o for o in objects if o["kind"] == "KopfPeering"]
    assert sorted((p["metadata"]["namespace"], p["metadata"]["name"]) for p in peerings) == [
        ("team-a", "chkmate"),
        ("team-b", "chkmate"),
    ]


# -- Service, Ingress, NetworkPolicy, PDB ------------------------------------------------------------------------


def test_service_exposes_metrics_and_webhooks_by_port_name() -> None:
    objects = render(SCENARIOS["webhooks-ingress"])
    service = the(objects, "Service")
    ports = {p["name"]: (p["port"], p["targetPort"]) for p in service["spec"]["ports"]}
    assert ports == {"metrics": (9090, "metrics"), "webhooks": (8000, "webhooks")}
    assert container_port(objects, "metrics") == 9090 and container_port(objects, "webhooks") == 8000
    selector = service["spec"]["selector"]
    assert selector.items() <= the(objects, "Deployment")["spec"]["template"]["metadata"]["labels"].items()


def test_no_service_when_metrics_and_webhooks_are_off() -> None:
    objects = render(SCENARIOS["metrics-off"])
    assert "Service" not in kinds(objects)
    assert the(objects, "NetworkPolicy")["spec"]["ingress"] == []
    assert settings.Settings.from_env(env(objects)).metrics_port == 0


def test_ingress_routes_only_the_webhook_path() -> None:
    ingress = the(render(SCENARIOS["webhooks-ingress"]), "Ingress")
    [rule] = ingress["spec"]["rules"]
    [path] = rule["http"]["paths"]
    assert rule["host"] == "hooks.acme.test"
    assert (path["path"], path["pathType"]) == ("/webhooks/github", "Exact")
    assert path["backend"]["service"] == {"name": FULLNAME, "port": {"name": "webhooks"}}
    assert ingress["spec"]["tls"] == [{"hosts": ["hooks.acme.test"], "secretName": "tls"}]
    assert "Ingress" not in kinds(render({"webhooks": {"enabled": True}}))


def test_network_policy_admits_only_the_webhook_and_metrics_ports() -> None:
    monitoring = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
    policy = the(
        render({**SCENARIOS["webhooks-ingress"], "networkPolicy": {"metricsFrom": monitoring}}), "NetworkPolicy"
    )
    ingress = policy["spec"]["ingress"]
    assert [rule["ports"] for rule in ingress] == [
        [{"port": "webhooks", "protocol": "TCP"}],
        [{"port": "metrics", "protocol": "TCP"}],
    ]
    assert "from" not in ingress[0] and ingress[1]["from"] == monitoring
    assert policy["spec"]["policyTypes"] == ["Ingress"]


def test_network_policy_restricts_egress_only_when_asked() -> None:
    egress = [{"ports": [{"port": 443, "protocol": "TCP"}]}]
    policy = the(render({"networkPolicy": {"egress": egress}}), "NetworkPolicy")
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"] and policy["spec"]["egress"] == egress


def test_pod_disruption_budget_never_blocks_a_single_replica_drain() -> None:
    pdb = the(render({}), "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1
    assert "PodDisruptionBudget" not in kinds(render(SCENARIOS["metrics-off"]))


# -- monitoring --------------------------------------------------------------------------------------------------


def test_service_monitor_scrapes_the_metrics_port_as_the_configured_job() -> None:
    objects = render({"metrics": {"jobName": "chkmate", "serviceMonitor": {"enabled": True, "labels": {"r": "kps"}}}})
    monitor, service = the(objects, "ServiceMonitor"), the(objects, "Service")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1" and monitor["metadata"]["labels"]["r"] == "kps"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    assert service["metadata"]["labels"][monitor["spec"]["jobLabel"]] == "chkmate"
    [endpoint] = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"], endpoint["interval"]) == ("metrics", "/metrics", "30s")


def test_monitoring_objects_are_behind_flags() -> None:
    assert {"ServiceMonitor", "PrometheusRule"} & set(kinds(render({}))) == set()
    assert {"ServiceMonitor", "PrometheusRule"} <= set(kinds(render(SCENARIOS["monitoring"])))


# -- GitHub Secrets ----------------------------------------------------------------------------------------------


def test_created_secret_holds_the_key_and_webhook_secret_the_connection_refers_to() -> None:
    objects = render(SCENARIOS["created-secret"])
    secret = the(objects, "Secret")
    decoded = {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}
    assert decoded == {"private-key.pem": PRIVATE_KEY, "webhook-secret": "s3cr3t"}
    connection = the(objects, "GitHubConnection")
    assert connection["metadata"]["namespace"] == NAMESPACE
    spec = connections.GitHubConnectionSpec.model_validate(connection["spec"])
    assert (spec.app_id, spec.installation_id, spec.auth_method) == (123456, 7890123, "app")
    assert spec.private_key_secret_ref is not None and spec.webhook_secret_ref is not None
    assert (spec.private_key_secret_ref.name, spec.private_key_secret_ref.key) == (
        f"{FULLNAME}-github",
        "private-key.pem",
    )
    assert (spec.webhook_secret_ref.name, spec.webhook_secret_ref.key) == (f"{FULLNAME}-github", "webhook-secret")
    assert spec.allowed_repositories == ("acme/infra-*",)


def test_existing_secret_is_referred_to_not_created() -> None:
    objects = render(SCENARIOS["existing-secret"])
    assert "Secret" not in kinds(objects)
    spec = connections.GitHubConnectionSpec.model_validate(the(objects, "GitHubConnection")["spec"])
    assert spec.private_key_secret_ref is not None and spec.private_key_secret_ref.name == "acme-github-app"
    assert spec.webhook_secret_ref is not None and spec.webhook_secret_ref.name == "acme-github-app"


def test_connection_without_webhooks_has_no_webhook_secret_ref() -> None:
    values = {"github": {"secret": {"create": True, "privateKey": PRIVATE_KEY}, "connection": CONNECTION}}
    objects = render(values)
    assert list(the(objects, "Secret")["data"]) == ["private-key.pem"]
    assert "webhookSecretRef" not in the(objects, "GitHubConnection")["spec"]


# -- RBAC --------------------------------------------------------------------------------------------------------

# What the operator does with each resource (issue 8), namespaced: (apiGroup, resource, verbs).
KINDS = ("githubconnections", "githubrepositories", "templates", "templaterepolinks", "environments", "plans")
NAMESPACED_GRANTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    # application: watch and patch our kinds (kopf), their status, finalizers for blockOwnerDeletion
    *(("chkmate.dev", kind, ("get", "list", "watch", "patch")) for kind in KINDS),
    *(("chkmate.dev", f"{kind}/status", ("get", "patch")) for kind in KINDS),
    *(("chkmate.dev", f"{kind}/finalizers", ("update",)) for kind in KINDS),
    ("chkmate.dev", "plans", ("create", "delete")),
    # application: credentials read and watched (key rotation); plan files, state and plan output written
    ("", "secrets", ("get", "list", "watch", "create", "update", "patch", "delete")),
    ("", "configmaps", ("get", "list", "create", "update", "patch", "delete")),
    # application: the Job runner (chkmate.clients.jobs): Jobs created, polled, deleted past their deadline; pods
    # listed to say why one failed
    ("batch", "jobs", ("get", "create", "delete")),
    ("", "pods", ("list",)),
    # framework and application: Events
    ("", "events", ("create",)),
    ("events.k8s.io", "events", ("create",)),
)
# runner pods (chkmate run-job): read the bundle Secret, write the result Secret (chkmate.clients.jobs).
RUNNER_GRANTS = (("", "secrets", ("get", "create", "patch")),)
RUNNER = f"{FULLNAME}-runner"
# framework: kopf watches CRDs always; namespaces only when it serves a list of namespaces.
CLUSTER_GRANTS = (("apiextensions.k8s.io", "customresourcedefinitions", ("list", "watch")),)
NAMESPACE_OBSERVATION = (("", "namespaces", ("list", "watch")),)
PEERING = ("get", "list", "watch", "patch")

CLUSTER = "*"  # scope of a ClusterRoleBinding: every namespace and the cluster-scoped resources


@dataclasses.dataclass(frozen=True)
class Grant:
    scope: str
    group: str
    resource: str
    verb: str


def _grants(scope: str, table: Iterable[tuple[str, str, tuple[str, ...]]]) -> set[Grant]:
    return {Grant(scope, group, resource, verb) for group, resource, verbs in table for verb in verbs}


def effective_grants(objects: list[Object], service_account: str) -> set[Grant]:
    """What the ServiceAccount may do, through the rendered roles and bindings only."""
    roles = {
        (o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o["rules"]
        for o in objects
        if o["kind"] in ("ClusterRole", "Role")
    }
    granted: set[Grant] = set()
    for binding in (o for o in objects if o["kind"] in ("ClusterRoleBinding", "RoleBinding")):
        subject = {"kind": "ServiceAccount", "name": service_account, "namespace": NAMESPACE}
        if subject not in binding["subjects"]:
            continue
        scope = binding["metadata"].get("namespace", CLUSTER)
        ref = binding["roleRef"]
        rules = roles[(ref["kind"], None if ref["kind"] == "ClusterRole" else scope, ref["name"])]
        for rule in rules:
            for group in rule["apiGroups"]:
                granted |= _grants(scope, [(group, resource, tuple(rule["verbs"])) for resource in rule["resources"]])
    return granted


def test_cluster_wide_install_grants_exactly_what_the_operator_uses() -> None:
    objects = render({})
    assert {o["kind"] for o in objects if o["kind"].endswith("Role") or o["kind"].endswith("Binding")} == {
        "ClusterRole",
        "ClusterRoleBinding",
    }
    expected = _grants(CLUSTER, NAMESPACED_GRANTS) | _grants(CLUSTER, CLUSTER_GRANTS)
    assert effective_grants(objects, FULLNAME) == expected


def test_namespaced_install_grants_exactly_what_the_operator_uses_in_each_namespace() -> None:
    objects = render(SCENARIOS["namespaced"])
    expected = _grants(CLUSTER, CLUSTER_GRANTS) | _grants(CLUSTER, NAMESPACE_OBSERVATION)
    for namespace in ("team-a", "team-b"):
        expected |= _grants(namespace, NAMESPACED_GRANTS)
    assert effective_grants(objects, FULLNAME) == expected


def test_standby_adds_only_the_peering_grants() -> None:
    cluster_wide = effective_grants(render(SCENARIOS["standby"]), FULLNAME) - effective_grants(render({}), FULLNAME)
    assert cluster_wide == _grants(CLUSTER, [("kopf.dev", "clusterkopfpeerings", PEERING)])
    namespaced = effective_grants(render(SCENARIOS["standby-namespaced"]), FULLNAME) - effective_grants(
        render(SCENARIOS["namespaced"]), FULLNAME
    )
    assert namespaced == _grants("team-a", [("kopf.dev", "kopfpeerings", PEERING)]) | _grants(
        "team-b", [("kopf.dev", "kopfpeerings", PEERING)]
    )


def test_rbac_follows_the_service_account_name() -> None:
    objects = render({"serviceAccount": {"create": False, "name": "platform-ops"}})
    assert "ServiceAccount" not in kinds(objects)
    assert the(objects, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "platform-ops"
    assert effective_grants(objects, "platform-ops") == effective_grants(render({}), FULLNAME)


def test_rbac_can_be_left_to_the_cluster_admin() -> None:
    assert [k for k in kinds(render({"rbac": {"create": False}})) if "Role" in k] == []


def effective_grants_in(objects: list[Object], service_account: str, namespace: str) -> set[Grant]:
    """What a ServiceAccount of ``namespace`` may do through RoleBindings (which may refer to ClusterRoles)."""
    roles = {
        (o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o["rules"]
        for o in objects
        if o["kind"] in ("ClusterRole", "Role")
    }
    granted: set[Grant] = set()
    subject = {"kind": "ServiceAccount", "name": service_account, "namespace": namespace}
    for binding in (o for o in objects if o["kind"] in ("ClusterRoleBinding", "RoleBinding")):
        if subject not in binding["subjects"]:
            continue
        scope = binding["metadata"].get("namespace", CLUSTER)
        ref = binding["roleRef"]
        for rule in roles[(ref["kind"], None if ref["kind"] == "ClusterRole" else scope, ref["name"])]:
            for group in rule["apiGroups"]:
                granted |= _grants(scope, [(group, resource, tuple(rule["verbs"])) for resource in rule["resources"]])
    return granted


def test_runner_pods_may_only_read_bundles_and_write_results_in_the_watched_namespaces() -> None:
    objects = render(SCENARIOS["namespaced"])
    for namespace in ("team-a", "team-b"):
        assert effective_grants_in(objects, RUNNER, namespace) == _grants(namespace, RUNNER_GRANTS)
        account = the([o for o in objects if o["metadata"].get("namespace") == namespace], "ServiceAccount")
        assert account["metadata"]["name"] == RUNNER
    assert effective_grants_in(objects, RUNNER, NAMESPACE) == set()  # the release namespace runs no Jobs
    assert settings.Settings.from_env(env(objects)).runner_service_account == RUNNER


def test_runner_namespaces_of_a_cluster_wide_install_are_listed() -> None:
    assert "ServiceAccount" not in [o["kind"] for o in render({}) if o["metadata"]["name"] == RUNNER]
    objects = render({"runner": {"namespaces": ["infra"], "serviceAccount": {"name": "tf-runner"}}})
    assert effective_grants_in(objects, "tf-runner", "infra") == _grants("infra", RUNNER_GRANTS)
    assert the(objects, "ServiceAccount", "tf-runner")["metadata"]["namespace"] == "infra"
    assert effective_grants(objects, "tf-runner") == set()  # nothing cluster-wide
    assert settings.Settings.from_env(env(objects)).runner_service_account == "tf-runner"
    created_elsewhere = render({"runner": {"namespaces": ["infra"], "serviceAccount": {"create": False}}})
    assert [o for o in created_elsewhere if o["kind"] == "ServiceAccount" and o["metadata"]["name"] == RUNNER] == []


def test_runner_settings_reach_the_operator() -> None:
    parsed = settings.Settings.from_env(env(render({})))
    assert parsed.runner_image == "chkmate-operator:0.1.0"  # the operator's own image by default
    assert (parsed.runner_grace, parsed.runner_ttl) == (60.0, 3600.0)
    values = {"runner": {"image": "registry.acme.test/runner:1.2", "grace": "2m", "ttl": "10m"}}
    parsed = settings.Settings.from_env(env(render(values)))
    assert (parsed.runner_image, parsed.runner_grace, parsed.runner_ttl) == ("registry.acme.test/runner:1.2", 120, 600)


# -- values.yaml -------------------------------------------------------------------------------------------------

KEY_LINE = re.compile(r"^(?P<indent>\s*)(?P<key>[A-Za-z][\w.-]*):")


def uncommented_keys(text: str) -> list[str]:
    """Keys with neither a comment line right above (same indentation) nor a comment at the end of the line."""
    lines = text.splitlines()
    missing = []
    for number, line in enumerate(lines):
        match = KEY_LINE.match(line)
        if match is None or " # " in line:
            continue
        previous = next((p for p in reversed(lines[:number]) if p.strip()), "")
        if not previous.startswith(match["indent"] + "#"):
            missing.append(f"line {number + 1}: {match['key']}")
    return missing


def test_every_values_key_has_a_comment() -> None:
    assert uncommented_keys((CHART / "values.yaml").read_text()) == []
    assert uncommented_keys("a: 1\n# about b\nb:\n  c: 2\n") == ["line 1: a", "line 4: c"]


def test_the_schema_covers_every_values_key() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    values_schema = json.loads((CHART / "values.schema.json").read_text())

    def walk(value: Any, node: Mapping[str, Any], path: str) -> list[str]:
        if not isinstance(value, dict) or "properties" not in node:
            return []
        missing = [f"{path}.{key}" for key in value if key not in node["properties"]]
        return missing + [
            e
            for key in value
            if key in node["properties"]
            for e in walk(value[key], node["properties"][key], f"{path}.{key}")
        ]

    assert walk(values, values_schema, "") == []
    assert sorted(values_schema["required"]) == sorted(values)
