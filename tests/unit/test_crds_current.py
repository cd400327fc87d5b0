"""The committed CRDs are exactly what the models generate; a model change without regenerating fails."""

import dataclasses
import shutil
from pathlib import Path

import pydantic
import yaml

from chkmate.api import crdgen, kinds, links


def test_committed_crds_are_current() -> None:
    assert crdgen.check_crds(kinds.KINDS, crdgen.DEFAULT_OUT_DIRS) == [], (
        "CRDs are stale: run `python -m chkmate.api.crdgen`"
    )


def test_chart_carries_the_same_crds() -> None:
    top, chart = (Path(d) for d in crdgen.DEFAULT_OUT_DIRS)
    assert sorted(p.name for p in top.glob("*.yaml")) == sorted(p.name for p in chart.glob("*.yaml"))
    for path in top.glob("*.yaml"):
        assert path.read_text() == (chart / path.name).read_text()


def test_a_changed_model_makes_the_committed_copy_stale(tmp_path: Path) -> None:
    copy = tmp_path / "crds"
    shutil.copytree(crdgen.DEFAULT_OUT_DIRS[0], copy)
    assert crdgen.check_crds(kinds.KINDS, [copy]) == []

    changed_spec = pydantic.create_model(
        "TemplateRepoLinkSpec",
        __base__=links.TemplateRepoLinkSpec,
        commitMessagePrefix=(str, pydantic.Field(default="", description="A field added without regenerating.")),
    )
    changed = tuple(
        dataclasses.replace(info, spec_model=changed_spec) if info is kinds.TEMPLATE_REPO_LINK else info
        for info in kinds.KINDS
    )
    assert crdgen.check_crds(changed, [copy]) == [f"{copy / 'templaterepolinks.chkmate.dev.yaml'}: stale"]

    crdgen.write_crds(changed, [copy])
    assert crdgen.check_crds(changed, [copy]) == []
    assert crdgen.check_crds(kinds.KINDS, [copy]) != []


def test_every_crd_is_structural_with_status_subresource_and_category() -> None:
    for info in kinds.KINDS:
        crd = yaml.safe_load((Path(crdgen.DEFAULT_OUT_DIRS[0]) / crdgen.crd_filename(info)).read_text())
        version = crd["spec"]["versions"][0]
        assert version["subresources"] == {"status": {}}
        assert "chkmate" in crd["spec"]["names"]["categories"]
        assert [c["name"] for c in version["additionalPrinterColumns"]][-1] == "Age"
        crdgen.check_structural(version["schema"]["openAPIV3Schema"])
        assert "$ref" not in yaml.safe_dump(crd)
