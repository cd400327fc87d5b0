"""The ``chkmate`` commands end to end: the example repository, git branches and URLs, the real terraform.

Each test runs ``chkmate.cli.main`` in-process on a copy of examples/infra-repo (or a git repository made from
it) and checks the exit status, stdout, and the one-line errors on stderr. Tests that need terraform are skipped
where it is not installed (FACTS.md: terraform 1.11 at /usr/local/bin/terraform).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from chkmate import cli, cli_workflow
from chkmate.api import repoconfig
from chkmate.domain import builtin, comments, sync, templates

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "examples" / "infra-repo"
GOLDEN = ROOT / "tests" / "data" / "cli"
TERRAFORM = shutil.which("terraform")
needs_terraform = pytest.mark.skipif(TERRAFORM is None, reason="terraform is not installed")
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Alice",
    "GIT_AUTHOR_EMAIL": "alice@example.com",
    "GIT_COMMITTER_NAME": "Alice",
    "GIT_COMMITTER_EMAIL": "alice@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}
CACHE_TF = """\
resource "aws_elasticache_cluster" "sessions" {
  cluster_id      = "shop-sessions"
  engine          = "redis"
  node_type       = "cache.t4g.small"
  num_cache_nodes = 1
}
"""


@dataclasses.dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


Chkmate = Callable[..., Result]


@pytest.fixture
def chkmate(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Chkmate:
    """Run ``chkmate ARGS...`` in-process; terraform runs under a work folder of the test."""
    monkeypatch.setenv("CHKMATE_WORK_DIR", str(tmp_path / "work"))
    for name in ("CHKMATE_TERRAFORM_BINARY", "CHKMATE_TOFU_BINARY", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)

    def run(*argv: str) -> Result:
        capsys.readouterr()
        code = cli.main(list(argv))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A copy of the example repository (not a git repository)."""
    return Path(shutil.copytree(EXAMPLE, tmp_path / "infra-repo"))


def git(folder: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(folder), *args], capture_output=True, text=True, check=True, env={**os.environ, **GIT_ENV}
    )
    return done.stdout.strip()


def terraform(folder: Path, *args: str) -> None:
    assert TERRAFORM is not None
    rc = folder / "terraform.rc"
    rc.touch()  # FACTS.md: the machine points TF_CLI_CONFIG_FILE at a missing file
    env = {**os.environ, "TF_CLI_CONFIG_FILE": str(rc), "CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1"}
    subprocess.run(
        [TERRAFORM, *args, "-input=false", "-no-color"], cwd=folder, env=env, check=True, capture_output=True
    )


def one_line_error(result: Result, command: str) -> str:
    assert result.code == 1, result
    assert result.err.startswith(f"chkmate {command}: error: ") and result.err.count("\n") == 1, result.err
    return result.err.removeprefix(f"chkmate {command}: error: ").strip()


# ---- plan -----------------------------------------------------------------------------------------------------


def test_the_readme_command_plans_production_with_cost_and_findings(
    chkmate: Chkmate, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    result = chkmate("plan", "examples/infra-repo", "--env", "production")
    assert result.code == 2 and result.err == ""
    assert "Environment  production (chosen with --env)" in result.out
    assert "Plan: 38 to add, 0 to change, 0 to destroy." in result.out
    assert "Cost (eu-west-1 prices, USD): $593.53 per month (+$593.53); 3 usage-based" in result.out
    assert "Security: 54/100 (1 critical, 2 high, 1 low)" in result.out
    assert "CHK-SG-001  aws_security_group.bastion  stacks/web/compute.tf:58" in result.out


def test_json_and_markdown_forms(chkmate: Chkmate, repo: Path) -> None:
    result = chkmate("plan", str(repo), "--env", "staging", "--json")
    assert result.code == 2
    document = json.loads(result.out)
    assert document["environment"] == "staging" and document["exitCode"] == 2
    assert document["engine"]["name"] == "builtin" and document["source"]["path"] == "stacks/web"
    markdown = chkmate("plan", str(repo), "--env", "staging", "--markdown")
    assert markdown.code == 2
    assert comments.find_marker(markdown.out) == "staging"
    golden = (GOLDEN / "staging.md").read_text().replace("<builtin-version>", builtin.ENGINE_VERSION)
    assert markdown.out == golden


def test_progress_goes_to_stderr(chkmate: Chkmate, repo: Path) -> None:
    result = chkmate("plan", str(repo), "--env", "production", "--progress", "--json")
    assert result.err.startswith("chkmate: planning production (stacks/web) with the builtin engine...\n")
    assert "done in" in result.err
    json.loads(result.out)


def test_a_saved_builtin_configuration_is_a_state_for_the_next_plan(
    chkmate: Chkmate, repo: Path, tmp_path: Path
) -> None:
    saved = tmp_path / "production.json"
    assert chkmate("plan", str(repo), "--env", "production", "--out", str(saved)).code == 2
    same = chkmate("plan", str(repo), "--env", "production", "--state", str(saved))
    assert same.code == 0 and "Plan: No changes." in same.out
    bigger = chkmate("plan", str(repo), "--env", "production", "--state", str(saved), "--var", "instance_count=4")
    assert bigger.code == 2 and "+  aws_instance.web[3]" in bigger.out and "(+$80.43)" in bigger.out


@needs_terraform
def test_sandbox_plans_applies_and_detects_drift_with_the_real_terraform(chkmate: Chkmate, repo: Path) -> None:
    planned = chkmate("plan", str(repo), "--env", "sandbox")
    assert planned.code == 2, planned
    assert "Engine       terraform 1." in planned.out
    assert '+  terraform_data.service["api"]' in planned.out and "stacks/sandbox/main.tf:21" in planned.out
    sandbox = repo / "stacks" / "sandbox"
    terraform(sandbox, "init")
    terraform(sandbox, "apply", "-auto-approve", "-var", "owner=platform-team")
    state = sandbox / "terraform.tfstate"
    unchanged = chkmate("plan", str(repo), "--env", "sandbox", "--state", str(state))
    assert unchanged.code == 0 and "Plan: No changes." in unchanged.out
    assert chkmate("drift", str(repo), "--env", "sandbox").code == 0
    data = json.loads(state.read_text())
    data["outputs"]["release"]["value"] = "0.9.0"  # someone edited the state by hand
    data["serial"] += 1
    state.write_text(json.dumps(data))
    drifted = chkmate("drift", str(repo), "--env", "sandbox")
    assert drifted.code == 2 and "Drift: 1 output differs from the state." in drifted.out
    document = json.loads(chkmate("drift", str(repo), "--state", str(state), "--env", "sandbox", "--json").out)
    assert document["kind"] == "drift" and document["outputs"]["release"] == "update" and document["cost"] is None
    markdown = chkmate("drift", str(repo), "--env", "sandbox", "--markdown")
    assert comments.find_marker(markdown.out) == "sandbox/drift"


def test_a_missing_terraform_falls_back_to_the_builtin_engine_and_says_so(
    chkmate: Chkmate, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHKMATE_TERRAFORM_BINARY", str(repo / "no-terraform-here"))
    result = chkmate("plan", str(repo), "--env", "sandbox")
    assert result.code == 2
    assert "terraform is not installed" in result.err and "builtin engine instead" in result.err
    assert "Engine       builtin engine" in result.out and "Plan: 5 to add" in result.out
    explicit = chkmate("plan", str(repo), "--env", "sandbox", "--engine", "terraform")
    assert "the terraform binary" in one_line_error(explicit, "plan")


# ---- git branches and URLs ------------------------------------------------------------------------------------


@pytest.fixture
def git_repo(repo: Path) -> Path:
    """The example as a git repository: main, and a staging branch that adds a cache cluster."""
    git(repo, "init", "--quiet", "--initial-branch=main")
    git(repo, "add", ".")
    git(repo, "commit", "--quiet", "-m", "Import the example")
    git(repo, "checkout", "--quiet", "-b", "staging")
    (repo / "stacks" / "web" / "cache.tf").write_text(CACHE_TF)
    git(repo, "add", ".")
    git(repo, "commit", "--quiet", "-m", "Add a session cache")
    git(repo, "checkout", "--quiet", "main")
    return repo


def test_branch_reads_that_branch_and_picks_its_environment(chkmate: Chkmate, git_repo: Path) -> None:
    result = chkmate("plan", str(git_repo), "--branch", "staging", "--json")
    assert result.code == 2
    document = json.loads(result.out)
    assert document["environment"] == "staging"
    assert document["source"] == {
        "location": str(git_repo),
        "branch": "staging",
        "commit": git(git_repo, "rev-parse", "staging"),
        "worktree": False,
        "path": "stacks/web",
    }
    assert "aws_elasticache_cluster.sessions" in {r["address"] for r in document["resources"]}
    text = chkmate("plan", str(git_repo), "--branch", "staging").out
    assert f"Source       {git_repo} (branch staging at " in text
    assert "Environment  staging (deploys branch staging)" in text


def test_the_working_tree_of_main_has_two_environments_to_choose_from(chkmate: Chkmate, git_repo: Path) -> None:
    result = chkmate("plan", str(git_repo))
    assert (
        one_line_error(result, "plan") == "2 environments deploy branch main; pick one with --env (production, sandbox)"
    )
    header = chkmate("plan", str(git_repo), "--env", "production").out.splitlines()[1]
    assert header == f"Source       {git_repo} (working tree of main at {git(git_repo, 'rev-parse', 'HEAD')[:7]})"
    missing = chkmate("plan", str(git_repo), "--branch", "nope")
    assert one_line_error(missing, "plan") == f"no branch or commit 'nope' in the git repository at {git_repo}"


def test_a_git_url_is_cloned_shallowly(chkmate: Chkmate, git_repo: Path) -> None:
    url = git_repo.as_uri()
    document = json.loads(chkmate("plan", url, "--branch", "staging", "--json").out)
    assert document["environment"] == "staging"
    assert document["source"]["commit"] == git(git_repo, "rev-parse", "staging")
    default = json.loads(chkmate("plan", url, "--env", "production", "--json").out)
    assert default["source"]["branch"] == "main" and default["summary"]["add"] == 38
    absent = chkmate("plan", url + "-missing", "--env", "production")
    assert one_line_error(absent, "plan").startswith("git clone failed: fatal:")


# ---- invalid inputs -------------------------------------------------------------------------------------------


def test_a_bad_chkmate_yml_names_its_line(chkmate: Chkmate, repo: Path) -> None:
    config = repo / ".chkmate.yml"
    config.write_text(config.read_text().replace("engine: builtin", "engine: bultin", 1))
    message = one_line_error(chkmate("plan", str(repo), "--env", "production"), "plan")
    assert message == (
        f"{repo}/.chkmate.yml:14: environments.production.engine: Input should be 'terraform', 'tofu' or 'builtin'"
    )


def test_bad_hcl_is_one_line_with_file_and_line(chkmate: Chkmate, repo: Path) -> None:
    (repo / "stacks" / "web" / "broken.tf").write_text('resource "aws_s3_bucket" "x" {\n  bucket =\n}\n')
    message = one_line_error(chkmate("plan", str(repo), "--env", "production"), "plan")
    assert message.startswith("stacks/web/broken.tf:")


@needs_terraform
def test_bad_hcl_fails_terraform_with_file_and_line(chkmate: Chkmate, repo: Path) -> None:
    (repo / "stacks" / "sandbox" / "bad.tf").write_text('resource "terraform_data" "bad" {\n  input =\n}\n')
    message = one_line_error(chkmate("plan", str(repo), "--env", "sandbox"), "plan")
    assert "stacks/sandbox/bad.tf:2: Invalid expression" in message


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["plan", "{repo}", "--env", "qa"],
            "no environment 'qa' in .chkmate.yml (known: production, sandbox, staging)",
        ),
        (["plan", "{repo}/missing"], "{repo}/missing: no such file or directory"),
        (["plan", "{repo}/README.md"], "{repo}/README.md: not a folder (give the repository's folder, where "),
        (["plan", "{repo}", "--env", "sandbox", "--var", "owner"], "--var 'owner': expected NAME=VALUE"),
        (["plan", "{repo}", "--branch", "main"], "--branch needs a git repository, and {repo} is not in one"),
        (["plan", "{repo}", "--env", "production", "--state", "{repo}/none.json"], "{repo}/none.json: no such state"),
        (["drift", "{repo}"], "drift needs --state FILE or --env NAME"),
        (["drift", "{repo}", "--env", "production"], "the builtin engine cannot see the real infrastructure"),
    ],
)
def test_invalid_inputs_give_one_line_errors(chkmate: Chkmate, repo: Path, argv: list[str], message: str) -> None:
    command = argv[0]
    result = chkmate(*(arg.format(repo=repo) for arg in argv))
    assert one_line_error(result, command).startswith(message.format(repo=repo))


@needs_terraform
def test_drift_without_a_state_says_where_it_looked(chkmate: Chkmate, repo: Path) -> None:
    message = one_line_error(chkmate("drift", str(repo), "--env", "sandbox"), "drift")
    assert (
        message
        == "no state for environment sandbox: stacks/sandbox/terraform.tfstate does not exist; pass --state FILE"
    )


# ---- validate -------------------------------------------------------------------------------------------------


def test_validate_accepts_the_example(chkmate: Chkmate) -> None:
    result = chkmate("validate", str(EXAMPLE))
    assert result.code == 0
    assert result.out == f"{EXAMPLE}: valid (3 environments, 12 Terraform files)\n"


def test_validate_lists_every_problem_as_file_line_message(chkmate: Chkmate, repo: Path) -> None:
    (repo / "stacks" / "web" / "broken.tf").write_text('resource "aws_s3_bucket" "x" {\n  bucket = "a"\n')
    config = repo / ".chkmate.yml"
    config.write_text(config.read_text().replace("autoDeploy: true", 'autoDeploy: "yes"', 1))
    result = chkmate("validate", str(repo))
    assert result.code == 1 and result.err == "chkmate validate: 2 problems\n"
    lines = result.out.splitlines()
    assert lines[0] == f"{repo}/.chkmate.yml:31: environments.staging.autoDeploy: Input should be a valid boolean"
    assert lines[1].startswith(f"{repo}/stacks/web/broken.tf:3:1: Unexpected")


def test_validate_evaluates_environments(chkmate: Chkmate, repo: Path) -> None:
    (repo / "stacks" / "sandbox" / "region.tf").write_text('variable "region" {}\n')
    shutil.rmtree(repo / "stacks" / "web")
    (repo / "stacks" / "web").mkdir()
    result = chkmate("validate", str(repo))
    assert result.code == 1
    assert result.out.splitlines() == [
        f"{repo}/.chkmate.yml:13: environments.production.path: no .tf files in stacks/web",
        f"{repo}/stacks/sandbox/region.tf:1: no value for required variable 'region' (environment sandbox)",
        f"{repo}/.chkmate.yml:27: environments.staging.path: no .tf files in stacks/web",
    ]


# ---- workflow -------------------------------------------------------------------------------------------------


def test_workflow_writes_the_golden_file_and_badges_once(chkmate: Chkmate, repo: Path) -> None:
    result = chkmate("workflow", str(repo))
    assert result.code == 0, result
    written = repo / cli_workflow.WORKFLOW_PATH
    assert written.read_text() == (GOLDEN / "workflow.yml").read_text()
    readme = (repo / "README.md").read_text()
    assert readme.startswith("# infra-repo: an example infrastructure repository\n\n<!-- chkmate:badges -->\n")
    assert "production%20security-54%2F100-orange" in readme and "sandbox%20cost-%240.00%2Fmonth-blue" in readme
    assert chkmate("workflow", str(repo)).code == 0
    assert (repo / "README.md").read_text() == readme


def test_workflow_leaves_foreign_files_and_readme_alone_when_asked(chkmate: Chkmate, repo: Path) -> None:
    written = repo / cli_workflow.WORKFLOW_PATH
    written.parent.mkdir(parents=True)
    written.write_text("name: ours\n")
    refused = chkmate("workflow", str(repo))
    assert (
        one_line_error(refused, "workflow") == f"{written} exists and was not written by chkmate; --force overwrites it"
    )
    readme = (repo / "README.md").read_text()
    assert chkmate("workflow", str(repo), "--force", "--no-badges", "--deploy-branch", "staging").code == 0
    assert (repo / "README.md").read_text() == readme
    jobs = yaml.safe_load(written.read_text())["jobs"]
    assert "apply-sandbox" not in jobs  # sandbox deploys main, and staging's environments use the builtin engine


@pytest.mark.parametrize("environment", ["sandbox", "production"])
def test_the_workflow_plan_step_runs(repo: Path, tmp_path: Path, environment: str) -> None:
    """The Plan step of the generated workflow, run by bash as the runner would, writes the comment body."""
    bin_folder = Path(sys.executable).parent
    if not (bin_folder / "chkmate").exists():
        pytest.skip("the chkmate console script is not installed next to this Python")
    if environment == "sandbox" and TERRAFORM is None:
        pytest.skip("the sandbox's Plan step runs terraform, which is not installed")
    steps = yaml.safe_load(cli_workflow.workflow(_config(repo), deploy_branch="main"))["jobs"][f"plan-{environment}"]
    script = next(step["run"] for step in steps["steps"] if step.get("name") == "Plan")
    (tmp_path / "terraform.rc").touch()
    env = {
        "PATH": os.pathsep.join(
            [str(bin_folder), *([str(Path(TERRAFORM).parent)] if TERRAFORM else []), "/usr/bin:/bin"]
        ),
        "RUNNER_TEMP": str(tmp_path),
        "HOME": str(tmp_path),
        "CHKMATE_WORK_DIR": str(tmp_path / "work"),
        "TF_CLI_CONFIG_FILE": str(tmp_path / "terraform.rc"),
        "CHECKPOINT_DISABLE": "1",
    }
    subprocess.run(["bash", "-e", "-c", script], cwd=repo, env=env, check=True, capture_output=True, timeout=60)
    assert comments.find_marker((tmp_path / "plan.md").read_text()) == environment


def _config(repo: Path) -> repoconfig.RepoConfig:
    return repoconfig.parse((repo / ".chkmate.yml").read_text())


# ---- scaffold -------------------------------------------------------------------------------------------------


def test_scaffold_writes_refuses_to_overwrite_and_plans(chkmate: Chkmate, tmp_path: Path) -> None:
    target = tmp_path / "new-infra"
    written = chkmate("scaffold", str(target), "--purpose", "terraform")
    assert written.code == 0
    assert sorted(p.name for p in target.iterdir()) == [
        ".chkmate.yml",
        ".gitignore",
        "README.md",
        "main.tf",
        "outputs.tf",
        "variables.tf",
    ]
    assert '"new-infra"' in (target / "variables.tf").read_text()
    (target / "main.tf").write_text("# mine\n")
    refused = chkmate("scaffold", str(target), "--purpose", "terraform")
    assert one_line_error(refused, "scaffold") == (
        f"{target}/.chkmate.yml already exists (and 5 more); nothing written (--force overwrites)"
    )
    assert (target / "main.tf").read_text() == "# mine\n"
    assert chkmate("scaffold", str(target), "--purpose", "terraform", "--force").code == 0
    assert chkmate("plan", str(target)).code == 2  # terraform when installed, else the builtin engine
    assert chkmate("scaffold", str(tmp_path / "web"), "--purpose", "webapp", "--name", "shop").code == 0
    assert (tmp_path / "web" / "README.md").read_text().startswith("# shop\n")
    bad = chkmate("scaffold", str(tmp_path / "bad name"), "--purpose", "terraform")
    assert one_line_error(bad, "scaffold") == "'bad name' is not a valid repository name (pass --name)"


# ---- import ---------------------------------------------------------------------------------------------------


def test_import_writes_manifests_and_audits(chkmate: Chkmate, git_repo: Path, tmp_path: Path) -> None:
    git(git_repo, "remote", "add", "origin", "https://github.com/acme/infra-repo.git")
    output = tmp_path / "manifests.yaml"
    result = chkmate("import", str(git_repo), "--namespace", "infra", "--connection", "acme", "-o", str(output))
    assert result.code == 0 and result.out == ""
    assert result.err.splitlines() == [
        "chkmate import: stacks/sandbox: 5 resources, $0.00 per month ($0.00); security 100/100, no findings",
        "chkmate import: stacks/web: 38 resources, $593.53 per month (+$593.53); 3 usage-based; security 54/100 "
        "(1 critical, 2 high, 1 low)",
    ]
    documents = list(yaml.safe_load_all(output.read_text()))
    repository = documents[0]
    assert repository["kind"] == "GitHubRepository"
    assert repository["spec"] == {
        "connectionRef": {"name": "acme"},
        "owner": "acme",
        "name": "infra-repo",
        "create": False,
        "deletionPolicy": "Retain",
    }
    assert [d["kind"] for d in documents[1:]] == [
        "Template",
        "TemplateRepoLink",
        "Environment",
        "Template",
        "TemplateRepoLink",
        "Environment",
        "Environment",
    ]
    assert "#   critical CHK-SG-001 aws_security_group.bastion (stacks/web/compute.tf:58)" in output.read_text()


def test_import_needs_to_know_the_github_repository_for_a_connection(chkmate: Chkmate, repo: Path) -> None:
    result = chkmate("import", str(repo), "--connection", "acme")
    assert one_line_error(result, "import") == (
        "cannot tell the repository's owner/name on GitHub: pass --github OWNER/NAME"
    )
    assert chkmate("import", str(repo), "--connection", "acme", "--github", "acme/infra").code == 0


def test_import_of_a_folder_without_terraform_is_refused(chkmate: Chkmate, tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("# nothing\n")
    message = one_line_error(chkmate("import", str(tmp_path)), "import")
    assert message == f"{tmp_path}: no Terraform root modules (folders with .tf files) found"


# ---- history --------------------------------------------------------------------------------------------------


@pytest.fixture
def synced_repo(tmp_path: Path) -> tuple[Path, str]:
    """A repository with a user commit, then a chkmate push whose trailer names the template revision."""
    repo = tmp_path / "synced"
    (repo / "stacks" / "net").mkdir(parents=True)
    git(repo, "init", "--quiet", "--initial-branch=main")
    (repo / "stacks" / "net" / "main.tf").write_text('resource "terraform_data" "a" {}\n')
    git(repo, "add", ".")
    git(repo, "commit", "--quiet", "-m", "Start the network stack")
    files = {"main.tf": 'resource "terraform_data" "a" {}\nresource "terraform_data" "b" {}\n'}
    (repo / "stacks" / "net" / "main.tf").write_text(files["main.tf"])
    revision = templates.revision(files)
    git(repo, "add", ".")
    git(
        repo, "commit", "--quiet", "-m", f"chkmate: sync template net (1 file)\n\n{sync.trailer(revision, 'infra/net')}"
    )
    return repo, revision


def test_history_shows_commits_beside_template_revisions(chkmate: Chkmate, synced_repo: tuple[Path, str]) -> None:
    repo, revision = synced_repo
    result = chkmate("history", str(repo / "stacks" / "net"))
    assert result.code == 0
    lines = result.out.splitlines()
    assert lines[0] == f"History of stacks/net in {repo} (newest first, 2 commits)"
    assert lines[1].split() == ["COMMIT", "DATE", "AUTHOR", "CONTENT", "TEMPLATE", "SUBJECT"]
    short = revision[: len("sha256:") + 12]
    assert lines[2].split()[3:5] == [short, short]  # the push wrote exactly the template's files
    assert lines[2].endswith("chkmate: sync template net (1 file)")
    assert lines[3].split()[4] == "-" and lines[3].endswith("Start the network stack")


def test_history_marks_commits_that_delete_the_path(chkmate: Chkmate, synced_repo: tuple[Path, str]) -> None:
    repo, _ = synced_repo
    git(repo, "rm", "--quiet", "-r", "stacks/net")
    git(repo, "commit", "--quiet", "-m", "Retire the network stack")
    (repo / "stacks" / "net").mkdir(parents=True)
    (repo / "stacks" / "net" / "main.tf").write_text('resource "terraform_data" "c" {}\n')
    git(repo, "add", ".")
    git(repo, "commit", "--quiet", "-m", "Bring it back")
    lines = chkmate("history", str(repo / "stacks" / "net")).out.splitlines()
    assert lines[3].split()[3:5] == ["(deleted)", "-"] and lines[3].endswith("Retire the network stack")


def test_history_diffs_two_commits_or_revisions(chkmate: Chkmate, synced_repo: tuple[Path, str]) -> None:
    repo, revision = synced_repo
    by_commit = chkmate("history", str(repo / "stacks" / "net"), "--diff", "HEAD~1", "HEAD")
    assert by_commit.code == 0 and '+resource "terraform_data" "b" {}' in by_commit.out
    by_revision = chkmate("history", str(repo / "stacks" / "net"), "--diff", "HEAD~1", revision[:20])
    assert by_revision.out == by_commit.out
    same = chkmate("history", str(repo / "stacks" / "net"), "--diff", "HEAD", revision)
    assert same.out.startswith("No differences in stacks/net between")
    unknown = chkmate("history", str(repo / "stacks" / "net"), "--diff", "HEAD", "sha256:ffff")
    assert one_line_error(unknown, "history") == "no commit of stacks/net carries or holds revision sha256:ffff"


def test_history_of_a_template_manifest_lists_its_versions(chkmate: Chkmate, tmp_path: Path) -> None:
    files = {"main.tf": 'resource "terraform_data" "a" {}\n'}
    revision = templates.revision(files)
    manifest = {
        "apiVersion": "chkmate.dev/v1alpha1",
        "kind": "Template",
        "metadata": {"name": "net", "namespace": "infra"},
        "spec": {"files": files},
        "status": {
            "revision": revision,
            "versions": [
                {
                    "revision": revision,
                    "source": "github-sync",
                    "commit": "a" * 40,
                    "at": "2026-01-02T03:04:05Z",
                    "message": "Pull the network stack",
                },
                {"revision": "sha256:" + "0" * 64, "source": "user", "at": "2026-01-01T00:00:00Z"},
            ],
        },
    }
    path = tmp_path / "net.yaml"
    path.write_text(yaml.safe_dump(manifest))
    result = chkmate("history", str(path))
    assert result.code == 0
    lines = result.out.splitlines()
    assert lines[0] == f"Template infra/net: revision {revision[:19]}, 1 file"
    assert lines[2].split()[:4] == [revision[:19], "github-sync", "aaaaaaa", "2026-01-02T03:04:05Z"]
    assert lines[3].split()[:3] == ["sha256:000000000000", "user", "-"]
    diff = chkmate("history", str(path), "--diff", revision[:12], "a" * 7)
    assert one_line_error(diff, "history").endswith(f"--diff {'a' * 40} {'a' * 40}")


def test_history_outside_git_is_refused(chkmate: Chkmate, tmp_path: Path) -> None:
    message = one_line_error(chkmate("history", str(tmp_path)), "history")
    assert message == f"{tmp_path} is neither in a git repository nor a Template manifest"


def test_crds_are_written_and_checked(chkmate: Chkmate, tmp_path: Path) -> None:
    out = str(tmp_path / "crds")
    assert chkmate("crds", "--check", "--out", out).code == 1  # nothing there yet: stale
    written = chkmate("crds", "--out", out)
    assert written.code == 0 and len(written.out.splitlines()) == len(list((tmp_path / "crds").iterdir())) > 0
    assert chkmate("crds", "--check", "--out", out).code == 0
