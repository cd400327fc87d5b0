"""Every manifest in examples/ parses through the API models."""

from pathlib import Path

import pytest
import yaml

from chkmate import API_VERSION
from chkmate.api import kinds
from chkmate.controllers import reconciling

EXAMPLES = Path(__file__).parents[2] / "examples"
MANIFESTS = sorted(EXAMPLES.glob("*.yaml"))


def documents() -> list[tuple[str, dict[str, object]]]:
    found = []
    for path in MANIFESTS:
        for index, document in enumerate(yaml.safe_load_all(path.read_text())):
            if document and document.get("apiVersion") == API_VERSION:
                found.append((f"{path.name}#{index}", document))
    return found


def test_there_is_an_example_of_every_kind() -> None:
    assert {document["kind"] for _, document in documents()} == set(kinds.BY_KIND)


@pytest.mark.parametrize(("where", "document"), documents(), ids=[where for where, _ in documents()])
def test_example_parses(where: str, document: dict[str, object]) -> None:
    info = kinds.BY_KIND[str(document["kind"])]
    reconciling.parse_spec(info.spec_model, document["spec"])
    metadata = document["metadata"]
    assert isinstance(metadata, dict) and metadata.get("name") and metadata.get("namespace")
