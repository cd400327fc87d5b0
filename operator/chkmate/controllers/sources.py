"""Where an Environment's code lives: repository, branch and path, from a GitHubRepository or a link.

Shared by the Environment and Plan controllers. Also reads the files of a commit, the repository's
``.chkmate.yml``, and the run inputs (variables, credentials) from Secrets and ConfigMaps.
I/O: GitHub (through the connection), git (the mirror), Kubernetes (Secrets, ConfigMaps).
"""

from __future__ import annotations

import base64
import dataclasses
import re
from collections.abc import Mapping
from typing import Any

import pydantic

from chkmate import errors
from chkmate.api import common, environments, kinds, links, repoconfig, repositories
from chkmate.api import conditions as conds
from chkmate.clients import git, kube
from chkmate.controllers import access, indexing, memos, plan_runs
from chkmate.domain import redaction


@dataclasses.dataclass(frozen=True)
class Source:
    owner: str
    name: str
    branch: str
    path: str
    access: access.Access
    remote: git.Remote
    repository: str  # the GitHubRepository object's name

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


# Environments and plans of one repository reconciling together share an ls-remote this recent (seconds).
HEAD_MAX_AGE = 1.0
_SHA = re.compile(r"[0-9a-f]{40}")


class InvalidRepoConfig(errors.ChkmateError):
    reason = conds.Reasons.INVALID_REPO_CONFIG


class CommitNotFound(errors.ChkmateError):
    """The commit is on no branch of the repository, even after a fetch (force-pushed away, or not yet visible)."""

    reason = conds.Reasons.BRANCH_NOT_FOUND


async def resolve(
    memo: memos.Memo, indexes: Mapping[str, Any], namespace: str, spec: environments.EnvironmentSpec
) -> Source:
    """The environment's repository (as a git remote), branch and path."""
    branch, path = spec.branch, spec.path
    repository_name: str
    if spec.link_ref is not None:
        link = indexing.require(indexes, kinds.TEMPLATE_REPO_LINK, namespace, spec.link_ref.name, field="spec.linkRef")
        link_spec = _parse(links.TemplateRepoLinkSpec, link.spec, f"TemplateRepoLink {link.name!r}")
        repository_name = link_spec.repository_ref.name
        branch = branch or link_spec.branch
        path = link_spec.path if spec.path == "." else spec.path
    else:
        assert spec.repository_ref is not None  # the model guarantees exactly one source
        repository_name = spec.repository_ref.name
    summary = indexing.require(
        indexes,
        kinds.GITHUB_REPOSITORY,
        namespace,
        repository_name,
        field="spec.repositoryRef" if spec.link_ref is None else "the link's repositoryRef",
    )
    repo_spec = _parse(repositories.GitHubRepositorySpec, summary.spec, f"GitHubRepository {summary.name!r}")
    reach = await access.github_access_for(
        memo,
        indexes,
        namespace,
        repo_spec.connection_ref.name,
        field=f"GitHubRepository {summary.name!r} spec.connectionRef",
        repository=repo_spec.full_name,
    )
    clone_url, default_branch = summary.status.get("cloneUrl"), summary.status.get("defaultBranch")
    if not clone_url or not default_branch:
        # Wait for the repository's own reconcile (it tells why it is not ready) rather than ask GitHub here:
        # a thousand Environments retrying each second would each ask.
        detail = f" ({summary.ready_reason}: {summary.ready_message})" if summary.ready_reason else ""
        raise errors.DependencyNotReady(f"GitHubRepository {summary.name!r} has not found its repository yet{detail}.")
    return Source(
        owner=repo_spec.owner,
        name=repo_spec.name,
        branch=branch or str(default_branch),
        path=path.rstrip("/") or ".",
        access=reach,
        remote=reach.remote(str(clone_url)),
        repository=summary.name,
    )


def _parse(model: type[pydantic.BaseModel], raw: Mapping[str, Any], what: str) -> Any:
    try:
        return model.model_validate(raw)
    except pydantic.ValidationError as e:
        raise errors.DependencyNotReady(f"{what} has an invalid spec.") from e


async def head(memo: memos.Memo, source: Source, *, expected: str | None = None) -> str:
    """The branch head (fetched into the mirror if it moved); BranchNotFound when there is no such branch.

    ``expected`` is the commit a poll or a webhook saw the branch at: it is the head as far as anyone knows
    (the next move brings the next mark), so it is used without asking the remote again, once the mirror holds
    it. Without it, a listing up to :data:`HEAD_MAX_AGE` old is reused; ``expected=""`` asks the remote now (a
    user's explicit request).
    """
    mirrors = memo.mirrors
    if expected and _SHA.fullmatch(expected) and await _fetched(memo, source, expected):
        return expected
    # No mark, or its commit is gone from the branch (force-pushed away): ask the remote where it is now.
    max_age = 0.0 if expected is not None else HEAD_MAX_AGE
    async with mirrors.lock(source.remote):
        found = await mirrors.refresh(source.remote, source.branch, max_age=max_age)
    if found is None:
        raise errors.ChkmateError(
            f"Branch {source.branch!r} does not exist in {source.full_name}.",
            reason=conds.Reasons.BRANCH_NOT_FOUND,
            retryable=True,
        )
    return found


def polled_commit(polled: str | None, branch: str) -> str | None:
    """The commit of a ``chkmate.dev/polledRevision`` mark (``<branch>@sha1:<commit>``) for ``branch``, if any."""
    prefix = f"{branch}@sha1:"
    if polled and polled.startswith(prefix) and _SHA.fullmatch(polled[len(prefix) :]):
        return polled[len(prefix) :]
    return None


async def files_at(memo: memos.Memo, source: Source, commit: str) -> dict[str, bytes]:
    """Every file of the commit (modules outside the root path are reachable by relative paths)."""
    if not await _fetched(memo, source, commit):
        raise CommitNotFound(f"Commit {commit} is not on {source.full_name}@{source.branch}.", retryable=True)
    # Outside the mirror's lock: objects never change and refs move atomically, so reads need not wait for fetches.
    return await memo.mirrors.read_tree(source.remote, commit) or {}


async def _fetched(memo: memos.Memo, source: Source, commit: str) -> bool:
    """Whether the mirror holds ``commit``, fetching once if it does not.

    Only fetches hold the mirror's lock, and a fetch brings every branch: when pushes to several branches of one
    repository arrive together, the objects waiting in line behind the first fetch find their commits already
    there (one fetch for them all, not one per branch in turn).
    """
    mirrors = memo.mirrors
    if await mirrors.has_commit(source.remote, commit):
        return True
    async with mirrors.lock(source.remote):
        if not await mirrors.has_commit(source.remote, commit):  # the fetch of whoever held the lock may have it
            await mirrors.fetch(source.remote)
    return await mirrors.has_commit(source.remote, commit)


def repo_config(files: Mapping[str, bytes]) -> repoconfig.RepoConfig | None:
    """The repository's ``.chkmate.yml`` (None when absent); InvalidRepoConfig naming the key and line."""
    raw = files.get(repoconfig.FILENAME)
    if raw is None:
        return None
    try:
        return repoconfig.parse(raw.decode("utf-8-sig", errors="replace"))
    except repoconfig.RepoConfigError as e:
        raise InvalidRepoConfig(str(e)) from e


async def inputs(
    memo: memos.Memo,
    namespace: str,
    name: str,
    spec: environments.EnvironmentSpec,
    source: Source,
    config: repoconfig.RepoConfig | None,
    *,
    destroy: bool = False,
) -> plan_runs.Inputs:
    """The run's inputs: ``.chkmate.yml`` defaults for this environment, overridden by the Environment."""
    defaults = config.environments.get(name) if config is not None else None
    given = spec.model_fields_set
    engine = spec.engine if "engine" in given or defaults is None else defaults.engine
    region = spec.region or (defaults.region if defaults is not None else None)
    variables: dict[str, str] = dict(defaults.vars) if defaults is not None else {}
    sensitive: set[str] = set()
    for origin in spec.vars_from:
        values = await _read_all(memo.kube, namespace, origin.kind, origin.name, optional=origin.optional)
        variables.update(values)
        if origin.kind == "Secret":
            sensitive.update(values)
    variables.update(spec.vars)
    env: dict[str, str] = {}
    credential = (
        spec.credentials_secret_ref.name
        if spec.credentials_secret_ref is not None
        else (defaults.credential if defaults is not None else None)
    )
    if credential:
        env.update(await _read_all(memo.kube, namespace, "Secret", credential, optional=False))
    if region:
        env.setdefault("AWS_REGION", region)
        env.setdefault("AWS_DEFAULT_REGION", region)
    sensitive.update(redaction.sensitive_keys(variables))
    return plan_runs.Inputs(
        engine=engine,
        path=source.path if defaults is None or "path" in given else defaults.path,
        vars=variables,
        env=env,
        sensitive_vars=frozenset(sensitive),
        destroy=destroy,
        timeout=common.parse_duration(spec.runner.timeout),
        init_key=init_key(namespace, name),
    )


def init_key(namespace: str, environment: str) -> str:
    """What an Environment's runs share their kept ``init`` under."""
    return f"{namespace}/{environment}"


async def _read_all(client: kube.KubeClient, namespace: str, kind: str, name: str, *, optional: bool) -> dict[str, str]:
    resource = kube.SECRETS if kind == "Secret" else kube.CONFIGMAPS
    found = await client.get(resource, namespace, name)
    if found is None:
        if optional:
            return {}
        raise errors.ChkmateError(
            f"{kind} {name!r} does not exist in {namespace!r}.", reason=conds.Reasons.SECRET_NOT_FOUND, retryable=True
        )
    data = found.get("data") or {}
    if kind == "Secret":
        return {key: base64.b64decode(value).decode(errors="replace") for key, value in data.items()}
    return {key: str(value) for key, value in data.items()}
