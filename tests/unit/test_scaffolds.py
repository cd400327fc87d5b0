"""Repository scaffolds: which files each purpose and flag gives, and that they are valid.

Pure tests, except ``test_terraform_scaffold_plans_and_applies_offline``: it runs the real terraform binary
in a temporary folder (subprocesses, files) — the only test of the unit tier that does I/O. It is skipped
where terraform is not installed.
"""

import fnmatch
import json
import os
import pathlib
import re
import shutil
import subprocess

import pytest

from chkmate.api import repoconfig, repositories
from chkmate.domain import hcl, scaffolds

TERRAFORM_CODE = {".chkmate.yml", "main.tf", "variables.tf", "outputs.tf"}


@pytest.mark.parametrize(
    ("purpose", "readme", "gitignore", "paths"),
    [
        ("terraform", True, True, TERRAFORM_CODE | {"README.md", ".gitignore"}),
        ("terraform", False, True, TERRAFORM_CODE | {".gitignore"}),
        ("terraform", True, False, TERRAFORM_CODE | {"README.md"}),
        ("terraform", False, False, TERRAFORM_CODE),
        ("webapp", True, True, {"README.md", ".gitignore"}),
        ("webapp", False, True, {".gitignore"}),
        ("webapp", True, False, {"README.md"}),
        ("webapp", False, False, set()),
    ],
)
def test_files_by_purpose_and_flags(
    purpose: repositories.ScaffoldPurpose, readme: bool, gitignore: bool, paths: set[str]
) -> None:
    files = scaffolds.scaffold_files(purpose, repo_name="r", description="", readme=readme, gitignore=gitignore)
    assert set(files) == paths
    assert all(content.endswith("\n") and "\n\n\n" not in content for content in files.values())


@pytest.mark.parametrize("purpose", ["terraform", "webapp"])
def test_output_is_deterministic(purpose: repositories.ScaffoldPurpose) -> None:
    def make() -> dict[str, str]:
        return scaffolds.scaffold_files(purpose, repo_name="infra", description="Live infrastructure")

    assert make() == make()


@pytest.mark.parametrize("purpose", ["terraform", "webapp"])
def test_readme_names_the_repository_and_its_description(purpose: repositories.ScaffoldPurpose) -> None:
    described = scaffolds.scaffold_files(purpose, repo_name="infra-live", description="  Live infrastructure \n")
    assert described["README.md"].startswith("# infra-live\n\nLive infrastructure\n\n")
    bare = scaffolds.scaffold_files(purpose, repo_name="infra-live", description="")
    assert bare["README.md"].startswith("# infra-live\n\n")
    assert not bare["README.md"].startswith("# infra-live\n\n\n")


@pytest.mark.parametrize("gitignore", [True, False])
@pytest.mark.parametrize("purpose", ["terraform", "webapp"])
def test_readme_mentions_the_gitignore_only_when_written(
    purpose: repositories.ScaffoldPurpose, gitignore: bool
) -> None:
    files = scaffolds.scaffold_files(purpose, repo_name="r", description="", gitignore=gitignore)
    assert ("`.gitignore`" in files["README.md"]) == gitignore


@pytest.mark.parametrize("branch", ["main", "trunk", "on", "1.0", "release/2026.1"])
def test_chkmate_yml_parses_with_one_production_environment_on_the_default_branch(branch: str) -> None:
    files = scaffolds.scaffold_files("terraform", repo_name="r", description="", default_branch=branch)
    config = repoconfig.parse(files[repoconfig.FILENAME])
    assert list(config.environments) == ["production"]
    production = config.environments["production"]
    assert (production.branch, production.path, production.auto_deploy) == (branch, ".", False)
    assert production.vars == {"environment": "production"}
    assert f"`{branch}`" in files["README.md"]


def test_readme_example_environment_extends_the_chkmate_yml() -> None:
    files = scaffolds.scaffold_files("terraform", repo_name="r", description="")
    snippet = re.search(r"```yaml\n(.*?)```", files["README.md"], re.DOTALL)
    assert snippet is not None
    config = repoconfig.parse(files[repoconfig.FILENAME] + snippet.group(1))
    assert sorted(config.environments) == ["production", "staging"]


def test_terraform_files_parse_and_variables_default_to_the_repository_name() -> None:
    files = scaffolds.scaffold_files("terraform", repo_name="infra.live_2", description="")
    assert hcl.check_files(files) == []
    variables = {name: body for block in hcl.parse(files["variables.tf"])["variable"] for name, body in block.items()}
    assert variables["name"]["default"] == "infra.live_2"
    resources = hcl.parse(files["main.tf"])["resource"]
    assert [list(resource) for resource in resources] == [["terraform_data"]]  # built-in only: no provider


def gitignored(gitignore: str, path: str) -> bool:
    """Whether a top-level file matches a pattern of the .gitignore (negations and folders are enough here)."""
    ignored = False
    for line in gitignore.splitlines():
        if not line or line.startswith("#"):
            continue
        pattern = line.removeprefix("!").rstrip("/")
        if fnmatch.fnmatch(path, pattern):
            ignored = not line.startswith("!")
    return ignored


@pytest.mark.parametrize(
    ("path", "ignored"),
    [
        (".terraform", True),
        ("terraform.tfstate", True),
        ("terraform.tfstate.backup", True),
        ("crash.log", True),
        ("secrets.tfvars", True),
        ("prod.tfvars.json", True),
        ("override.tf", True),
        ("plan.tfplan", True),
        (".terraformrc", True),
        (".terraform.lock.hcl", False),
        ("main.tf", False),
        (".chkmate.yml", False),
    ],
)
def test_terraform_gitignore(path: str, ignored: bool) -> None:
    files = scaffolds.scaffold_files("terraform", repo_name="r", description="")
    assert gitignored(files[".gitignore"], path) == ignored


@pytest.mark.parametrize(
    ("path", "ignored"),
    [
        ("node_modules", True),
        (".venv", True),
        ("__pycache__", True),
        ("module.pyc", True),
        ("dist", True),
        (".env", True),
        (".env.local", True),
        (".env.example", False),
        ("package-lock.json", False),
        ("poetry.lock", False),
        ("src", False),
    ],
)
def test_webapp_gitignore(path: str, ignored: bool) -> None:
    files = scaffolds.scaffold_files("webapp", repo_name="r", description="")
    assert gitignored(files[".gitignore"], path) == ignored


@pytest.mark.parametrize(
    ("purpose", "repo_name", "branch", "message"),
    [
        ("terraform", "bad name", "main", "not a valid repository name"),
        ("terraform", "", "main", "not a valid repository name"),
        ("terraform", "r", "bad..branch", "not a valid branch name"),
        ("website", "r", "main", "unknown scaffold purpose 'website'"),
    ],
)
def test_invalid_arguments(purpose: str, repo_name: str, branch: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        scaffolds.scaffold_files(purpose, repo_name=repo_name, description="", default_branch=branch)  # type: ignore[arg-type]


def terraform(folder: pathlib.Path, *args: str) -> subprocess.CompletedProcess[str]:
    cli_config = folder.parent / "terraform.rc"  # an empty CLI config: the machine's default is missing
    cli_config.touch()
    env = {**os.environ, "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1", "TF_CLI_CONFIG_FILE": str(cli_config)}
    return subprocess.run(
        ["terraform", *args], cwd=folder, env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.skipif(shutil.which("terraform") is None, reason="needs the terraform binary")
def test_terraform_scaffold_plans_and_applies_offline(tmp_path: pathlib.Path) -> None:
    folder = tmp_path / "repo"
    folder.mkdir()
    for path, content in scaffolds.scaffold_files("terraform", repo_name="infra", description="").items():
        (folder / path).write_text(content)

    steps = [
        (("fmt", "-check", "-diff", "-no-color"), 0),
        (("init", "-input=false", "-no-color"), 0),
        (("validate", "-no-color"), 0),
        (("plan", "-input=false", "-no-color", "-detailed-exitcode", "-out=plan.tfplan"), 2),  # 2: changes
        (("apply", "-input=false", "-no-color", "plan.tfplan"), 0),
    ]
    for args, expected in steps:
        run = terraform(folder, *args)
        assert run.returncode == expected, f"terraform {' '.join(args)}:\n{run.stdout}\n{run.stderr}"
        assert run.stderr == ""

    outputs = json.loads(terraform(folder, "output", "-json").stdout)
    assert outputs["name"]["value"] == "infra-development"
    assert terraform(folder, "plan", "-input=false", "-no-color", "-detailed-exitcode").returncode == 0
