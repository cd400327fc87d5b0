"""Every manifest in examples/ parses through the API models and is valid against the committed CRDs; the Job runner
examples give valid Kubernetes Jobs."""

from pathlib import Path
from typing import Any

import pytest
import yaml

from chkmate import API_VERSION
from chkmate.api import environments, kinds
from chkmate.controllers import reconciling
from chkmate.domain import jobs
from tests.harness import schema

ROOT = Path(__file__).parents[2]
EXAMPLES = ROOT / "examples"
MANIFESTS = sorted(EXAMPLES.glob("*.yaml"))
CRDS = ROOT / "crds"


def documents() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in MANIFESTS:
        for index, document in enumerate(yaml.safe_load_all(path.read_text())):
            if document and document.get("apiVersion") == API_VERSION:
                found.append((f"{path.name}#{index}", document))
    return found


def crd_schemas() -> dict[str, schema.Schema]:
    """The openAPIV3Schema of each kind, from the CRDs in crds/ (what a cluster is given)."""
    found = {}
    for path in sorted(CRDS.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        (version,) = crd["spec"]["versions"]
        found[crd["spec"]["names"]["kind"]] = version["schema"]["openAPIV3Schema"]
    return found


def job_runner_examples() -> list[tuple[str, dict[str, Any]]]:
    return [
        (where, document)
        for where, document in documents()
        if document["kind"] == "Environment" and (document["spec"].get("runner") or {}).get("mode") == "Job"
    ]


def test_there_is_an_example_of_every_kind() -> None:
    assert {document["kind"] for _, document in documents()} == set(kinds.BY_KIND)


def test_there_is_an_example_of_the_job_runner() -> None:
    assert job_runner_examples()


@pytest.mark.parametrize(("where", "document"), documents(), ids=[where for where, _ in documents()])
def test_example_parses(where: str, document: dict[str, Any]) -> None:
    info = kinds.BY_KIND[str(document["kind"])]
    reconciling.parse_spec(info.spec_model, document["spec"])
    metadata = document["metadata"]
    assert isinstance(metadata, dict) and metadata.get("name") and metadata.get("namespace")


@pytest.mark.parametrize(("where", "document"), documents(), ids=[where for where, _ in documents()])
def test_example_is_valid_against_its_crd(where: str, document: dict[str, Any]) -> None:
    found = crd_schemas()[document["kind"]]
    pruned = schema.prune(found, document)
    assert pruned["spec"] == document["spec"], "the API server would drop fields of this example"
    assert [str(error) for error in schema.validate(found, schema.apply_defaults(found, pruned))] == []


@pytest.mark.parametrize(
    ("where", "document"), job_runner_examples(), ids=[where for where, _ in job_runner_examples()]
)
def test_job_runner_example_gives_a_valid_job(where: str, document: dict[str, Any]) -> None:
    runner = environments.EnvironmentSpec.model_validate(document["spec"]).runner
    request = jobs.JobRequest(
        name=jobs.job_name(f"{document['metadata']['name']}-0123456789", "uid", "plan"),
        namespace=document["metadata"]["namespace"],
        owner={"apiVersion": API_VERSION, "kind": "Plan", "name": "p", "uid": "uid", "controller": True},
        labels=jobs.labels(environment=document["metadata"]["name"], phase="plan"),
        image="registry.acme.test/chkmate:0.1.0",
        timeout=60.0,
        pod_template=runner.pod_template,
    )
    manifest = jobs.job_manifest(request)  # refuses a pod template that is not one
    assert schema.kubernetes_errors(manifest) == []
    (container,) = (c for c in manifest["spec"]["template"]["spec"]["containers"] if c["name"] == jobs.CONTAINER)
    assert container["args"] == request.args
