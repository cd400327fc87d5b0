"""In-memory state of the GitHub API double: accounts, apps, tokens, repositories and their records.

Plain mutable dataclasses plus a `Store` that owns id sequences and lookups, and the access rules
(who can see and do what in a repository). No I/O except `Store.git`, which only builds a
`BareRepo` handle for `{root}/{owner}/{name}.git`. Not thread-safe by itself: callers hold
`Store.lock` (the API double takes it around every request and every setup call).
"""

from __future__ import annotations

import dataclasses
import secrets
import string
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from tests.harness import github_api_git

LEVELS: dict[str, int] = {"none": 0, "read": 1, "write": 2, "admin": 3}
PERMISSION_NAMES = ("metadata", "contents", "pull_requests", "issues", "checks", "statuses", "administration")
DEFAULT_INSTALLATION_PERMISSIONS: dict[str, str] = {
    "metadata": "read",
    "contents": "write",
    "pull_requests": "write",
    "issues": "write",
    "checks": "write",
    "statuses": "write",
    "administration": "write",
}
DEFAULT_TOKEN_SCOPES = ("repo", "delete_repo", "read:org")


@dataclasses.dataclass
class Account:
    """A user, organization or app bot; `owners`/`members` are logins, for organizations only."""

    login: str
    id: int
    type: Literal["User", "Organization", "Bot"]
    created_at: float
    owners: set[str] = dataclasses.field(default_factory=set)
    members: set[str] = dataclasses.field(default_factory=set)


@dataclasses.dataclass
class App:
    id: int
    slug: str
    name: str
    client_id: str
    owner: str
    public_key: RSAPublicKey
    bot: Account
    created_at: float


@dataclasses.dataclass
class Installation:
    """`repositories` holds lower-cased repository names under `account` (for "selected")."""

    id: int
    app_id: int
    account: str
    repository_selection: Literal["all", "selected"]
    repositories: set[str]
    suspended: bool
    permissions: dict[str, str]
    created_at: float


@dataclasses.dataclass
class Token:
    """An installation token (narrowed by `repositories`/`permissions`) or a personal token."""

    value: str
    installation_id: int | None
    login: str | None
    expires_at: float | None
    scopes: tuple[str, ...] = ()
    permissions: dict[str, str] = dataclasses.field(default_factory=dict)
    repositories: frozenset[str] | None = None

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and self.expires_at <= now


@dataclasses.dataclass
class Repo:
    id: int
    owner: str
    name: str
    private: bool
    description: str | None
    homepage: str | None
    default_branch: str
    created_at: float
    updated_at: float
    pushed_at: float
    collaborators: dict[str, str] = dataclasses.field(default_factory=dict)
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)
    next_number: int = 1

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    @property
    def key(self) -> tuple[str, str]:
        return (self.owner.lower(), self.name.lower())


REPO_SETTINGS_DEFAULTS: dict[str, Any] = {
    "archived": False,
    "has_issues": True,
    "has_projects": True,
    "has_wiki": True,
    "has_discussions": False,
    "is_template": False,
    "allow_merge_commit": True,
    "allow_squash_merge": True,
    "allow_rebase_merge": True,
    "allow_auto_merge": False,
    "delete_branch_on_merge": False,
}


@dataclasses.dataclass
class Pull:
    id: int
    repo_id: int
    number: int
    title: str
    body: str | None
    user: str
    head_ref: str
    base_ref: str
    draft: bool
    created_at: float
    updated_at: float
    last_head_sha: str
    last_base_sha: str
    state: Literal["open", "closed"] = "open"
    closed_at: float | None = None
    merged_at: float | None = None
    merged_by: str | None = None
    merge_commit_sha: str | None = None


@dataclasses.dataclass
class Review:
    id: int
    repo_id: int
    number: int
    user: str
    state: str
    body: str
    commit_id: str
    submitted_at: float


@dataclasses.dataclass
class Comment:
    id: int
    repo_id: int
    number: int
    user: str
    body: str
    created_at: float
    updated_at: float


@dataclasses.dataclass
class CheckRun:
    id: int
    repo_id: int
    app_id: int
    name: str
    head_sha: str
    status: str
    conclusion: str | None
    details_url: str | None
    external_id: str
    started_at: float | None
    completed_at: float | None
    output: dict[str, Any]


@dataclasses.dataclass
class CommitStatus:
    id: int
    repo_id: int
    sha: str
    state: str
    target_url: str | None
    description: str | None
    context: str
    creator: str
    created_at: float


@dataclasses.dataclass(frozen=True)
class Principal:
    """Who a request is authenticated as; `label` names it in request records and rate buckets."""

    kind: Literal["anonymous", "app", "installation", "user"]
    label: str
    app: App | None = None
    installation: Installation | None = None
    token: Token | None = None
    user: Account | None = None


ANONYMOUS = Principal(kind="anonymous", label="anonymous")


@dataclasses.dataclass(frozen=True)
class Access:
    """What a principal may do in one repository: a level per permission name."""

    grants: Mapping[str, str]

    def allows(self, permission: str, level: str) -> bool:
        return LEVELS[self.grants.get(permission, "none")] >= LEVELS[level]


def new_token_value(prefix: str) -> str:
    alphabet = string.ascii_letters + string.digits
    return prefix + "".join(secrets.choice(alphabet) for _ in range(36))


class Store:
    """Every record of the double, with id sequences, lookups and access rules."""

    def __init__(self, root: Path, token_ttl: float) -> None:
        self.root = root
        self.token_ttl = token_ttl
        self.lock = threading.RLock()
        self.accounts: dict[str, Account] = {}
        self.apps: dict[int, App] = {}
        self.installations: dict[int, Installation] = {}
        self.tokens: dict[str, Token] = {}
        self.repos: dict[tuple[str, str], Repo] = {}
        self.pulls: dict[tuple[int, int], Pull] = {}
        self.reviews: list[Review] = []
        self.comments: dict[int, Comment] = {}
        self.check_runs: dict[int, CheckRun] = {}
        self.statuses: list[CommitStatus] = []
        self._ids: dict[str, int] = {}

    def next_id(self, sequence: str) -> int:
        self._ids[sequence] = self._ids.get(sequence, 0) + 1
        return self._ids[sequence]

    # Lookups

    def account(self, login: str) -> Account | None:
        return self.accounts.get(login.lower())

    def repo(self, owner: str, name: str) -> Repo | None:
        return self.repos.get((owner.lower(), name.lower()))

    def repo_by_id(self, repo_id: int) -> Repo | None:
        return next((repo for repo in self.repos.values() if repo.id == repo_id), None)

    def repo_by_full_name(self, full_name: str) -> Repo | None:
        owner, _, name = full_name.partition("/")
        return self.repo(owner, name.removesuffix(".git"))

    def git(self, repo: Repo) -> github_api_git.BareRepo:
        return github_api_git.BareRepo(self.git_path(repo.owner, repo.name))

    def git_path(self, owner: str, name: str) -> Path:
        return self.root / owner / f"{name}.git"

    def pulls_of(self, repo: Repo) -> list[Pull]:
        return sorted((p for p in self.pulls.values() if p.repo_id == repo.id), key=lambda p: p.number)

    # Access rules

    def installation_sees(self, installation: Installation, repo: Repo) -> bool:
        if installation.account.lower() != repo.owner.lower():
            return False
        return installation.repository_selection == "all" or repo.name.lower() in installation.repositories

    def user_level(self, user: Account, repo: Repo) -> str:
        """A user's role in a repository: owner or org owner is admin, then collaborators, members."""
        login = user.login.lower()
        owner = self.account(repo.owner)
        if repo.owner.lower() == login or (owner is not None and login in owner.owners):
            return "admin"
        level = repo.collaborators.get(login, "none")
        if owner is not None and login in owner.members:
            level = max(level, "read", key=LEVELS.__getitem__)
        if not repo.private:
            level = max(level, "read", key=LEVELS.__getitem__)
        return level

    def access(self, principal: Principal, repo: Repo) -> Access | None:
        """What `principal` may do in `repo`; None when it may not even know the repository exists."""
        if principal.installation is not None and principal.token is not None:
            return self._installation_access(principal.installation, principal.token, repo)
        if principal.user is not None and principal.token is not None:
            return self._personal_access(principal.user, principal.token, repo)
        return None if repo.private else Access({"metadata": "read", "contents": "read"})

    def _installation_access(self, installation: Installation, token: Token, repo: Repo) -> Access | None:
        if not self.installation_sees(installation, repo):
            return None
        if token.repositories is not None and repo.name.lower() not in token.repositories:
            return None
        return Access(token.permissions)

    def _personal_access(self, user: Account, token: Token, repo: Repo) -> Access | None:
        level = self.user_level(user, repo)
        if level == "none" or (repo.private and "repo" not in token.scopes):
            return None
        if not {"repo", "public_repo"} & set(token.scopes):
            level = "read"
        content_level = "write" if level == "admin" else level
        grants = {name: content_level for name in PERMISSION_NAMES}
        grants["metadata"] = "read"
        grants["administration"] = "write" if level == "admin" else "none"
        return Access(grants)


def now() -> float:
    return time.time()
