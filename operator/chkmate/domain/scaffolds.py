"""The files chkmate writes into a repository it creates (and ``chkmate scaffold`` writes locally). Pure.

:func:`scaffold_files` returns file contents keyed by path; it writes nothing. The output is deterministic
(no dates, no randomness), so writing a scaffold twice gives the same commit tree.

* ``terraform``: README.md, .gitignore, .chkmate.yml with one ``production`` environment on the default
  branch, and main.tf / variables.tf / outputs.tf that plan and apply offline: they use only Terraform's
  built-in ``terraform_data`` resource, so the first plan needs no provider and no credentials.
* ``webapp``: README.md and a .gitignore that suits Node and Python alike.
"""

from __future__ import annotations

import json
import re

from chkmate.api import repoconfig, repositories

_TERRAFORM_GITIGNORE = """\
# Terraform, after github/gitignore's Terraform.gitignore.

# Provider plugins and modules downloaded by `terraform init`.
.terraform/

# State: chkmate keeps it in the cluster, and state files can hold secrets.
*.tfstate
*.tfstate.*
.terraform.tfstate.lock.info

# Saved plans can hold secrets too.
*.tfplan

# Crash logs.
crash.log
crash.*.log

# Variable files usually hold secrets: commit only non-secret ones, with `git add -f`.
*.tfvars
*.tfvars.json

# Local overrides.
override.tf
override.tf.json
*_override.tf
*_override.tf.json

# CLI configuration, which may hold tokens.
.terraformrc
terraform.rc

# .terraform.lock.hcl is NOT ignored: commit it so every run uses the same provider versions.
"""

_WEBAPP_GITIGNORE = """\
# Dependencies.
node_modules/
.venv/
venv/
__pycache__/
*.py[cod]

# Build output and packages.
dist/
build/
out/
.next/
*.egg-info/

# Test and tool caches.
coverage/
.coverage
htmlcov/
.pytest_cache/
.mypy_cache/
.ruff_cache/
.cache/

# Logs.
*.log
npm-debug.log*
yarn-error.log*

# Local settings and secrets: commit an .env.example instead.
.env
.env.*
!.env.example

# Editors and operating systems.
.idea/
.vscode/
*.swp
.DS_Store
Thumbs.db
"""

_MAIN_TF = """\
terraform {
  # terraform_data is built into Terraform since 1.4 (and into OpenTofu).
  required_version = ">= 1.4.0"
}

# A placeholder that needs no provider and no credentials, so the first plan works as soon as chkmate
# sees this repository. Replace it with real resources (and add a required_providers block for them).
resource "terraform_data" "example" {
  input = {
    name        = var.name
    environment = var.environment
  }
}
"""

_OUTPUTS_TF = """\
output "name" {
  description = "The stack's name with its environment."
  value       = "${var.name}-${var.environment}"
}

output "example_id" {
  description = "ID of the placeholder resource, known after the first apply."
  value       = terraform_data.example.id
}
"""


def scaffold_files(
    purpose: repositories.ScaffoldPurpose,
    *,
    repo_name: str,
    description: str,
    readme: bool = True,
    gitignore: bool = True,
    default_branch: str = "main",
) -> dict[str, str]:
    """File contents by path for a new repository; raises ValueError for a bad name, branch or purpose."""
    if re.fullmatch(repositories.REPOSITORY_NAME_PATTERN, repo_name) is None:
        raise ValueError(f"{repo_name!r} is not a valid repository name")
    repoconfig.check_branch_name(default_branch)
    description = description.strip()
    if purpose == "terraform":
        return _terraform(repo_name, description, readme, gitignore, default_branch)
    if purpose == "webapp":
        return _webapp(repo_name, description, readme, gitignore)
    raise ValueError(f"unknown scaffold purpose {purpose!r}; expected terraform or webapp")


def _terraform(repo_name: str, description: str, readme: bool, gitignore: bool, default_branch: str) -> dict[str, str]:
    files = {
        repoconfig.FILENAME: _chkmate_yml(default_branch),
        "main.tf": _MAIN_TF,
        "variables.tf": _variables_tf(repo_name),
        "outputs.tf": _OUTPUTS_TF,
    }
    if readme:
        files["README.md"] = _terraform_readme(repo_name, description, gitignore, default_branch)
    if gitignore:
        files[".gitignore"] = _TERRAFORM_GITIGNORE
    return files


def _webapp(repo_name: str, description: str, readme: bool, gitignore: bool) -> dict[str, str]:
    files = {}
    if readme:
        files["README.md"] = _webapp_readme(repo_name, description, gitignore)
    if gitignore:
        files[".gitignore"] = _WEBAPP_GITIGNORE
    return files


def _chkmate_yml(default_branch: str) -> str:
    # JSON strings are YAML double-quoted strings: the branch stays text even when it reads like a
    # boolean or a number ("on", "1.0").
    return f"""\
# The environments chkmate deploys from this repository. Each plans the Terraform in `path` from
# `branch`; an Environment object in Kubernetes may override any value set here.
version: 1
environments:
  production:
    branch: {json.dumps(default_branch)}
    path: "."
    engine: terraform
    autoDeploy: false        # wait for an approval before applying
    planOnPullRequest: true  # plan every pull request into the branch and comment the result
    vars:
      environment: production
"""


def _variables_tf(repo_name: str) -> str:
    return f"""\
variable "name" {{
  description = "A name for the resources of this stack."
  type        = string
  default     = {_hcl_string(repo_name)}
}}

variable "environment" {{
  description = "The environment being deployed; .chkmate.yml sets it for each environment."
  type        = string
  default     = "development"
}}
"""


def _hcl_string(value: str) -> str:
    """A quoted HCL string: JSON escapes, with template sequences escaped so nothing is interpolated."""
    return json.dumps(value).replace("${", "$${").replace("%{", "%%{")


def _title(repo_name: str, description: str) -> str:
    return f"# {repo_name}\n\n" + (f"{description}\n\n" if description else "")


def _terraform_readme(repo_name: str, description: str, gitignore: bool, default_branch: str) -> str:
    gitignore_row = "| `.gitignore` | Keeps state, saved plans, secrets and provider downloads out of git. |\n"
    return f"""\
{_title(repo_name, description)}Infrastructure as code, planned and applied by chkmate, a Kubernetes operator.

## Layout

| File | What it holds |
|---|---|
| `main.tf` | The resources. It starts with a `terraform_data` placeholder that needs no provider or credentials. |
| `variables.tf` | Input variables. Environments set them with `vars` in `.chkmate.yml` or on their Environment. |
| `outputs.tf` | Values shown after each apply. |
| `.chkmate.yml` | The environments chkmate deploys from this repository. |
{gitignore_row if gitignore else ""}
## How chkmate uses this repository

- `.chkmate.yml` maps each environment to a branch and a folder. Here `production` deploys the root
  folder (`.`) of `{default_branch}`.
- A push to `{default_branch}` makes chkmate plan `production`.
- A pull request into `{default_branch}` gets a plan too: chkmate posts its summary (resources to add,
  change and destroy) as a comment and a check run, and updates both on every push.
- With `autoDeploy: false` a plan is applied only once approved: approve its Plan object in Kubernetes,
  or comment `/chkmate apply` on the pull request. `autoDeploy: true` applies at once.
- chkmate keeps each environment's Terraform state in the cluster, so no backend block is needed and
  state files never belong in git.
- chkmate also plans on a schedule to detect drift: changes made outside this repository.
- An Environment object in Kubernetes may override any value of `.chkmate.yml`, such as the credentials
  or the region.

## Adding an environment

Add an entry under `environments` in `.chkmate.yml`, with its own branch or folder:

```yaml
  staging:
    branch: staging
    path: "."
    autoDeploy: true
    vars:
      environment: staging
```

## Working locally

```sh
terraform init
terraform plan
```

No credentials are needed until you add a provider. Commit the `.terraform.lock.hcl` that `terraform init`
writes, so every run uses the same provider versions.
"""


def _webapp_readme(repo_name: str, description: str, gitignore: bool) -> str:
    gitignore_note = (
        "\nThe `.gitignore` keeps dependencies (`node_modules/`, virtual environments), build output, caches\n"
        "and local `.env` files out of git; commit an `.env.example` to document settings.\n"
    )
    return f"""\
{_title(repo_name, description)}An application repository, created by chkmate, a Kubernetes operator.

## Getting started

Add the application's code and a short note here on how to build, test and run it.
{gitignore_note if gitignore else ""}"""
