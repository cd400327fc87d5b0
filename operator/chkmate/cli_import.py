"""``chkmate import``: turn an existing Terraform repository into chkmate manifests, with an audit of each root.

:func:`find_roots` finds the root modules: folders holding ``.tf`` files that no other folder calls as a local
module. Each root is planned by the builtin engine (cost estimate and security report, with the variables of its
``.chkmate.yml`` environment when it has one) and becomes a Template (the files a pull of the link would give), a
TemplateRepoLink (``Bidirectional``) and one Environment per ``.chkmate.yml`` environment of that folder (one
named after the root otherwise); ``--connection`` adds the GitHubRepository. :func:`manifests` builds them, each
checked against the API models; :func:`dump` writes them as multi-document YAML with the audit as comments.
:func:`run` reads the repository and writes the file; the rest is pure.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import posixpath
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import lark
import pydantic
import yaml

from chkmate import API_VERSION, cli_render, cli_sources, errors, local
from chkmate.api import common, kinds, repoconfig
from chkmate.domain import hcl, sync, templates

MAX_NAME = 63
_GITHUB_URL = re.compile(r"github\.com[:/](?P<owner>[A-Za-z0-9-]+)/(?P<name>[A-Za-z0-9._-]+?)(?:\.git)?/?$")
Manifest = dict[str, Any]


def register(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser(
        "import",
        help="Write Template, TemplateRepoLink and Environment manifests for the Terraform roots of a repository.",
        description="Find the Terraform root modules of REPO_PATH (folders with .tf files that no other folder "
        "uses as a module), audit each with the builtin engine (cost, security), and write a Template, a "
        "Bidirectional TemplateRepoLink and Environments for each, ready for kubectl apply.",
    )
    parser.add_argument("repo_path", metavar="REPO_PATH", help="The repository's folder (or a git URL).")
    parser.add_argument("--namespace", default="default", help="Namespace of the manifests (default: default).")
    parser.add_argument(
        "--repository",
        metavar="NAME",
        help="Name of the GitHubRepository object the links and environments use (default: the folder's name).",
    )
    parser.add_argument(
        "--connection",
        metavar="NAME",
        help="Also write the GitHubRepository, adopting the repository through this "
        "GitHubConnection; owner/name come from --github or the origin remote.",
    )
    parser.add_argument("--github", metavar="OWNER/NAME", help="The repository on GitHub (with --connection).")
    parser.add_argument("--branch", metavar="BRANCH", help="Branch to read and link (default: the checked-out one).")
    parser.add_argument("-o", "--output", metavar="FILE", help="Write the manifests here instead of stdout.")
    parser.set_defaults(run=run)


@dataclasses.dataclass(frozen=True)
class Root:
    """A root module, its environments from ``.chkmate.yml`` and its audit (a plan, or why there is none)."""

    path: str
    environments: Mapping[str, repoconfig.EnvConfig]
    audit: local.LocalPlan | str
    outside: tuple[str, ...] = ()  # local modules it calls from outside its folder: not in its Template


def run(args: argparse.Namespace) -> int:
    source = cli_sources.read_source(args.repo_path, branch=args.branch)
    paths = find_roots(source.files)
    if not paths:
        raise local.LocalError(f"{args.repo_path}: no Terraform root modules (folders with .tf files) found")
    config = local.load_config(source)
    github = _github(args, source) if args.connection else None
    repository = args.repository or k8s_name(Path(args.repo_path.rstrip("/")).resolve().name)
    branch = args.branch or source.branch or "main"
    calls = module_calls(source.files)
    roots = [_audited(source, path, config, branch, _outside(path, calls)) for path in paths]
    documents = manifests(
        roots,
        source=source,
        namespace=args.namespace,
        repository=repository,
        branch=branch,
        connection=args.connection,
        github=github,
    )
    text = dump(documents, header=_header(source, roots, repository))
    if args.output:
        Path(args.output).write_text(text)
    else:
        print(text, end="")
    for root in roots:
        print(f"chkmate import: {root.path}: {_audit_line(root.audit)}", file=sys.stderr)
    return 0


# ---- roots ----------------------------------------------------------------------------------------------------


def find_roots(files: Mapping[str, bytes]) -> list[str]:
    """Folders with ``.tf`` files that no folder calls as a local module (``source = "./..."``/``"../..."``)."""
    calls = module_calls(files)
    called = {module for modules in calls.values() for module in modules}
    return sorted(set(calls) - called)


def module_calls(files: Mapping[str, bytes]) -> dict[str, set[str]]:
    """Every folder with ``.tf`` files, and the folders of the local modules it calls (normalised paths)."""
    calls: dict[str, set[str]] = {}
    for path, data in files.items():
        if path.endswith(".tf"):
            folder = posixpath.dirname(path) or "."
            found = (posixpath.normpath(posixpath.join(folder, source)) for source in _module_sources(data))
            calls.setdefault(folder, set()).update(found)
    return calls


def _outside(root: str, calls: Mapping[str, set[str]]) -> tuple[str, ...]:
    """The local modules ``root`` uses, directly or not, that live outside its folder."""
    seen: set[str] = set()
    pending = [root]
    while pending:
        for module in calls.get(pending.pop(), set()) - seen:
            seen.add(module)
            pending.append(module)
    inside = "" if root == "." else root + "/"
    return tuple(sorted(module for module in seen if not module.startswith(inside) or module.startswith("..")))


def _module_sources(data: bytes) -> Iterable[str]:
    try:
        parsed = hcl.parse(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, lark.exceptions.LarkError, ValueError):
        return []  # the audit reports the file; a broken file calls nothing we can see
    sources = [body.get("source") for block in parsed.get("module", []) for body in block.values()]
    return [s for s in sources if isinstance(s, str) and s.startswith(("./", "../"))]


def _audited(
    source: cli_sources.Source, path: str, config: repoconfig.RepoConfig | None, branch: str, outside: tuple[str, ...]
) -> Root:
    envs = {name: env for name, env in sorted((config.environments if config else {}).items()) if env.path == path}
    env = next(iter(envs.values()), None) or repoconfig.EnvConfig(branch=branch, path=path)
    run = local.Run(engine=local.EngineChoice("builtin"), vars=dict(env.vars))
    try:
        audit: local.LocalPlan | str = asyncio.run(
            local.plan(source, local.Target(path, env, "import"), run, local.Progress(False))
        )
    except errors.ChkmateError as e:
        audit = e.message
    return Root(path, envs, audit, outside)


def _audit_line(audit: local.LocalPlan | str) -> str:
    if isinstance(audit, str):
        return f"not audited: {audit}"
    assert audit.cost is not None and audit.security is not None  # plans carry both
    count = sum(1 for change in audit.result.changes if change.action != "read")
    resources = cli_render.count(count, "resource")
    return f"{resources}, {cli_render.cost_line(audit.cost)}; security {cli_render.security_line(audit.security)}"


def k8s_name(text: str) -> str:
    """A DNS label from any text: lowercase letters, digits and '-', at most 63 characters."""
    name = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:MAX_NAME].strip("-")
    return name or "repository"


def _github(args: argparse.Namespace, source: cli_sources.Source) -> tuple[str, str]:
    text = args.github or _origin(source) or ""
    match = re.fullmatch(r"(?P<owner>[A-Za-z0-9-]+)/(?P<name>[A-Za-z0-9._-]+)", text) or _GITHUB_URL.search(text)
    if match is None:
        raise local.LocalError("cannot tell the repository's owner/name on GitHub: pass --github OWNER/NAME")
    return match["owner"], match["name"]


def _origin(source: cli_sources.Source) -> str | None:
    if cli_sources.is_url(source.location):
        return source.location
    try:
        return cli_sources.git(Path(source.location), "remote", "get-url", "origin").strip()
    except cli_sources.SourceError:
        return None


# ---- manifests ------------------------------------------------------------------------------------------------


def manifests(
    roots: Sequence[Root],
    *,
    source: cli_sources.Source,
    namespace: str,
    repository: str,
    branch: str,
    connection: str | None = None,
    github: tuple[str, str] | None = None,
) -> list[tuple[str, Manifest]]:
    """(comment, manifest) pairs, each manifest valid for its kind's models; a Blocked root gets only a comment."""
    found: list[tuple[str, Manifest]] = []
    if connection is not None and github is not None:
        spec = {
            "connectionRef": {"name": connection},
            "owner": github[0],
            "name": github[1],
            "create": False,
            "deletionPolicy": "Retain",
        }
        found.append(
            (
                f"The repository {github[0]}/{github[1]}, adopted as it is.",
                _manifest("GitHubRepository", repository, namespace, spec),
            )
        )
    for root in roots:
        found += _root_manifests(root, source, namespace, repository, branch)
    return found


def _root_manifests(
    root: Root, source: cli_sources.Source, namespace: str, repository: str, branch: str
) -> list[tuple[str, Manifest]]:
    name = k8s_name(repository if root.path == "." else f"{repository}-{root.path}")
    prefix = "" if root.path == "." else root.path + "/"
    under = {path[len(prefix) :]: data for path, data in source.files.items() if path.startswith(prefix)}
    files = sync.from_repo(under, root.path)
    audit = _audit_comment(root)
    if isinstance(files, sync.Blocked):
        return [(f"{audit}\nSkipped: {files.message}", {})]
    problem = templates.problems(files)
    note = f"\nWarning: {problem[1]}" if problem else ""
    description = f"Imported from {repository}, {root.path} on {branch}, by chkmate import."
    template = _manifest("Template", name, namespace, {"description": description, "files": files})
    link = _manifest(
        "TemplateRepoLink",
        name,
        namespace,
        {
            "templateRef": {"name": name},
            "repositoryRef": {"name": repository},
            "branch": branch,
            "path": root.path,
            "syncDirection": "Bidirectional",
            "autoSync": False,
        },
    )
    found = [(audit + note, template), (f"Keeps the Template and {root.path} on {branch} in sync, both ways.", link)]
    environments = root.environments or {name: repoconfig.EnvConfig(branch=branch, path=root.path)}
    for env_name, env in environments.items():
        env_manifest = _manifest(
            "Environment",
            k8s_name(f"{repository}-{env_name}") if root.environments else name,
            namespace,
            _environment_spec(env, repository),
        )
        found.append((f"Environment {env_name}: {env.path} of branch {env.branch}, engine {env.engine}.", env_manifest))
    return found


def _environment_spec(env: repoconfig.EnvConfig, repository: str) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "repositoryRef": {"name": repository},
        "branch": env.branch,
        "path": env.path,
        "engine": env.engine,
    }
    if env.region:
        spec["region"] = env.region
    if env.credential:
        spec["credentialsSecretRef"] = {"name": env.credential}
    if env.vars:
        spec["vars"] = dict(sorted(env.vars.items()))
    spec["approval"] = {"mode": "auto" if env.auto_deploy else "manual"}
    spec["planOnPullRequest"] = env.plan_on_pull_request
    spec["applyOnMerge"] = env.apply_on_merge
    return spec


def _manifest(kind: str, name: str, namespace: str, spec: dict[str, Any]) -> Manifest:
    """The manifest, after checking ``spec`` and the name against the API (an error here is chkmate's bug)."""
    try:
        kinds.BY_KIND[kind].spec_model.model_validate(spec)
    except pydantic.ValidationError as e:
        raise errors.ChkmateError(f"the {kind} {name} would be invalid: {e.errors()[0]['msg']}") from e
    if re.fullmatch(common.K8S_NAME_PATTERN, name) is None:
        raise errors.ChkmateError(f"{name!r} is not a valid object name")
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def _audit_comment(root: Root) -> str:
    lines = [f"{root.path}: {_audit_line(root.audit)}"]
    if root.outside:
        lines.append(f"  Uses modules outside its folder, left out of the Template: {', '.join(root.outside)}")
    if not isinstance(root.audit, str) and root.audit.security is not None:
        for finding in root.audit.security.findings:
            where = f"{finding.file}:{finding.line}" if finding.file and finding.line else finding.file or "-"
            lines.append(
                f"  {finding.severity} {finding.rule_id} {finding.address or '-'} ({where}): {finding.message}"
            )
    return "\n".join(lines)


def _header(source: cli_sources.Source, roots: Sequence[Root], repository: str) -> str:
    return (
        f"chkmate import of {source.describe()}: {cli_render.count(len(roots), 'Terraform root module')}.\n"
        f"Apply with kubectl apply -f; the links and environments use the GitHubRepository {repository}."
    )


# ---- YAML -----------------------------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (file contents) as literal blocks, so the files read as they are."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def dump(documents: Sequence[tuple[str, Manifest]], *, header: str = "") -> str:
    """Multi-document YAML: each manifest under its comment; a comment alone for a skipped root."""
    parts = [_comment(header)] if header else []
    for comment, manifest in documents:
        body = yaml.dump(manifest, Dumper=_Dumper, sort_keys=False, width=120) if manifest else ""
        parts.append("---\n" + _comment(comment) + body)
    return "".join(parts)


def _comment(text: str) -> str:
    return "".join(f"# {line}".rstrip() + "\n" for line in text.splitlines())
