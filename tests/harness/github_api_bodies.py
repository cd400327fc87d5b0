"""JSON bodies of the GitHub API double, shaped like GitHub's REST API (version 2022-11-28 and later).

Accounts, apps, repositories and git data (`github_api_bodies_pulls` has pull requests, comments,
checks and statuses). Pure functions from state records to dicts: no I/O, no access checks. Every
body carries at least the fields githubkit's response models require, so `response.parsed_data`
validates; URL fields point at the double (`Urls.api`) and at the web/git host (`Urls.web`).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import urllib.parse
from typing import Any

from tests.harness import github_api_git, github_api_state

Json = dict[str, Any]

_REPO_URL_SUFFIXES = {
    "archive_url": "/{archive_format}{/ref}",
    "assignees_url": "/assignees{/user}",
    "blobs_url": "/git/blobs{/sha}",
    "branches_url": "/branches{/branch}",
    "collaborators_url": "/collaborators{/collaborator}",
    "comments_url": "/comments{/number}",
    "commits_url": "/commits{/sha}",
    "compare_url": "/compare/{base}...{head}",
    "contents_url": "/contents/{+path}",
    "contributors_url": "/contributors",
    "deployments_url": "/deployments",
    "downloads_url": "/downloads",
    "events_url": "/events",
    "forks_url": "/forks",
    "git_commits_url": "/git/commits{/sha}",
    "git_refs_url": "/git/refs{/sha}",
    "git_tags_url": "/git/tags{/sha}",
    "hooks_url": "/hooks",
    "issue_comment_url": "/issues/comments{/number}",
    "issue_events_url": "/issues/events{/number}",
    "issues_url": "/issues{/number}",
    "keys_url": "/keys{/key_id}",
    "labels_url": "/labels{/name}",
    "languages_url": "/languages",
    "merges_url": "/merges",
    "milestones_url": "/milestones{/number}",
    "notifications_url": "/notifications{?since,all,participating}",
    "pulls_url": "/pulls{/number}",
    "releases_url": "/releases{/id}",
    "stargazers_url": "/stargazers",
    "statuses_url": "/statuses/{sha}",
    "subscribers_url": "/subscribers",
    "subscription_url": "/subscription",
    "tags_url": "/tags",
    "teams_url": "/teams",
    "trees_url": "/git/trees{/sha}",
}
_UNVERIFIED = {"verified": False, "reason": "unsigned", "signature": None, "payload": None, "verified_at": None}


@dataclasses.dataclass(frozen=True)
class Urls:
    """Where the double's API answers (`api`) and where web pages and git remotes live (`web`)."""

    api: str
    web: str

    def repo_api(self, repo: github_api_state.Repo) -> str:
        return f"{self.api}/repos/{repo.full_name}"

    def repo_web(self, repo: github_api_state.Repo) -> str:
        return f"{self.web}/{repo.full_name}"


def iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.datetime.fromtimestamp(int(timestamp), datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def node_id(kind: str, number: int) -> str:
    return base64.b64encode(f"0:{kind}{number}".encode()).decode().rstrip("=")


# Accounts and apps


def user(urls: Urls, account: github_api_state.Account) -> Json:
    """GitHub's `simple-user`."""
    api = f"{urls.api}/users/{urllib.parse.quote(account.login)}"
    return {
        "login": account.login,
        "id": account.id,
        "node_id": node_id(account.type, account.id),
        "avatar_url": f"{urls.web}/avatars/u/{account.id}",
        "gravatar_id": "",
        "url": api,
        "html_url": f"{urls.web}/{account.login}",
        "followers_url": f"{api}/followers",
        "following_url": f"{api}/following{{/other_user}}",
        "gists_url": f"{api}/gists{{/gist_id}}",
        "starred_url": f"{api}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{api}/subscriptions",
        "organizations_url": f"{api}/orgs",
        "repos_url": f"{api}/repos",
        "events_url": f"{api}/events{{/privacy}}",
        "received_events_url": f"{api}/received_events",
        "type": account.type,
        "user_view_type": "public",
        "site_admin": False,
    }


def public_user(urls: Urls, account: github_api_state.Account, public_repos: int) -> Json:
    return {
        **user(urls, account),
        "name": None,
        "company": None,
        "blog": "",
        "location": None,
        "email": None,
        "hireable": None,
        "bio": None,
        "twitter_username": None,
        "public_repos": public_repos,
        "public_gists": 0,
        "followers": 0,
        "following": 0,
        "created_at": iso(account.created_at),
        "updated_at": iso(account.created_at),
    }


def private_user(urls: Urls, account: github_api_state.Account, public_repos: int, private_repos: int) -> Json:
    return {
        **public_user(urls, account, public_repos),
        "private_gists": 0,
        "total_private_repos": private_repos,
        "owned_private_repos": private_repos,
        "disk_usage": 0,
        "collaborators": 0,
        "two_factor_authentication": True,
    }


def organization(urls: Urls, org: github_api_state.Account, public_repos: int) -> Json:
    api = f"{urls.api}/orgs/{org.login}"
    return {
        "login": org.login,
        "id": org.id,
        "node_id": node_id("Organization", org.id),
        "url": api,
        "repos_url": f"{api}/repos",
        "events_url": f"{api}/events",
        "hooks_url": f"{api}/hooks",
        "issues_url": f"{api}/issues",
        "members_url": f"{api}/members{{/member}}",
        "public_members_url": f"{api}/public_members{{/member}}",
        "avatar_url": f"{urls.web}/avatars/u/{org.id}",
        "description": None,
        "name": org.login,
        "company": None,
        "blog": "",
        "location": None,
        "email": None,
        "is_verified": False,
        "has_organization_projects": True,
        "has_repository_projects": True,
        "public_repos": public_repos,
        "public_gists": 0,
        "followers": 0,
        "following": 0,
        "html_url": f"{urls.web}/{org.login}",
        "type": "Organization",
        "created_at": iso(org.created_at),
        "updated_at": iso(org.created_at),
        "archived_at": None,
    }


def app(urls: Urls, record: github_api_state.App, owner: github_api_state.Account, installations: int) -> Json:
    """GitHub's `integration`."""
    return {
        "id": record.id,
        "slug": record.slug,
        "client_id": record.client_id,
        "node_id": node_id("Integration", record.id),
        "owner": user(urls, owner),
        "name": record.name,
        "description": "",
        "external_url": urls.web,
        "html_url": f"{urls.web}/apps/{record.slug}",
        "created_at": iso(record.created_at),
        "updated_at": iso(record.created_at),
        "permissions": dict(github_api_state.DEFAULT_INSTALLATION_PERMISSIONS),
        "events": [],
        "installations_count": installations,
    }


def installation(
    urls: Urls,
    record: github_api_state.Installation,
    account: github_api_state.Account,
    slug: str,
    suspended_by: github_api_state.Account | None,
) -> Json:
    settings = f"organizations/{account.login}/settings" if account.type == "Organization" else "settings"
    return {
        "id": record.id,
        "account": user(urls, account),
        "repository_selection": record.repository_selection,
        "access_tokens_url": f"{urls.api}/app/installations/{record.id}/access_tokens",
        "repositories_url": f"{urls.api}/installation/repositories",
        "html_url": f"{urls.web}/{settings}/installations/{record.id}",
        "app_id": record.app_id,
        "app_slug": slug,
        "target_id": account.id,
        "target_type": account.type,
        "permissions": dict(record.permissions),
        "events": [],
        "created_at": iso(record.created_at),
        "updated_at": iso(record.created_at),
        "single_file_name": None,
        "has_multiple_single_files": False,
        "single_file_paths": [],
        "suspended_by": user(urls, suspended_by) if record.suspended and suspended_by else None,
        "suspended_at": iso(record.created_at) if record.suspended else None,
    }


def installation_token(token: github_api_state.Token, selection: str, repositories: list[Json] | None) -> Json:
    body: Json = {
        "token": token.value,
        "expires_at": iso(token.expires_at),
        "permissions": dict(token.permissions),
        "repository_selection": selection,
    }
    if repositories is not None:
        body["repositories"] = repositories
    return body


def rate_limit(limit: int, remaining: int, used: int, reset: int) -> Json:
    core = {"limit": limit, "remaining": remaining, "reset": reset, "used": used, "resource": "core"}
    other = {"limit": 30, "remaining": 30, "reset": reset, "used": 0}
    return {
        "resources": {
            "core": core,
            "search": {**other, "resource": "search"},
            "graphql": {**core, "resource": "graphql", "remaining": limit, "used": 0},
            "code_search": {**other, "limit": 10, "remaining": 10, "resource": "code_search"},
        },
        "rate": core,
    }


# Repositories


def repository(
    urls: Urls,
    repo: github_api_state.Repo,
    owner: github_api_state.Account,
    permissions: dict[str, bool] | None,
    open_issues: int,
) -> Json:
    """GitHub's `full-repository` (a superset of `repository` and `minimal-repository`)."""
    api, web = urls.repo_api(repo), urls.repo_web(repo)
    host = urllib.parse.urlsplit(urls.web).netloc
    body: Json = {
        "id": repo.id,
        "node_id": node_id("Repository", repo.id),
        "name": repo.name,
        "full_name": repo.full_name,
        "owner": user(urls, owner),
        "private": repo.private,
        "visibility": "private" if repo.private else "public",
        "html_url": web,
        "description": repo.description,
        "fork": False,
        "url": api,
        **{name: api + suffix for name, suffix in _REPO_URL_SUFFIXES.items()},
        "git_url": f"git://{host}/{repo.full_name}.git",
        "ssh_url": f"git@{host}:{repo.full_name}.git",
        "clone_url": f"{web}.git",
        "svn_url": web,
        "mirror_url": None,
        "homepage": repo.homepage,
        "language": None,
        "forks_count": 0,
        "forks": 0,
        "stargazers_count": 0,
        "watchers_count": 0,
        "watchers": 0,
        "subscribers_count": 0,
        "network_count": 0,
        "size": 0,
        "default_branch": repo.default_branch,
        "open_issues_count": open_issues,
        "open_issues": open_issues,
        "topics": [],
        "has_pages": False,
        "disabled": False,
        "license": None,
        "web_commit_signoff_required": False,
        "pushed_at": iso(repo.pushed_at),
        "created_at": iso(repo.created_at),
        "updated_at": iso(repo.updated_at),
        **repo.settings,
    }
    if permissions is not None:
        body["permissions"] = permissions
    return body


def repo_permissions(level: str) -> dict[str, bool]:
    rank = github_api_state.LEVELS[level]
    return {"admin": rank >= 3, "maintain": rank >= 3, "push": rank >= 2, "triage": rank >= 2, "pull": rank >= 1}


def collaborator_permission(urls: Urls, account: github_api_state.Account, level: str) -> Json:
    role = {"admin": "admin", "write": "write", "read": "read"}.get(level, "none")
    collaborator = {**user(urls, account), "permissions": repo_permissions(level), "role_name": role}
    return {"permission": level, "role_name": role, "user": collaborator}


# Git data


def _git_person(signature: github_api_git.Signature) -> Json:
    return {"name": signature.name, "email": signature.email, "date": iso(signature.timestamp)}


def _parents(urls: Urls, repo: github_api_state.Repo, commit: github_api_git.CommitData) -> list[Json]:
    api, web = urls.repo_api(repo), urls.repo_web(repo)
    return [{"sha": p, "url": f"{api}/commits/{p}", "html_url": f"{web}/commit/{p}"} for p in commit.parents]


def commit(
    urls: Urls,
    repo: github_api_state.Repo,
    data: github_api_git.CommitData,
    author: Json | None,
    committer: Json | None,
) -> Json:
    """GitHub's `commit` (the REST commits API view of a git commit)."""
    api = urls.repo_api(repo)
    return {
        "sha": data.sha,
        "node_id": node_id("Commit", int(data.sha[:8], 16)),
        "url": f"{api}/commits/{data.sha}",
        "html_url": f"{urls.repo_web(repo)}/commit/{data.sha}",
        "comments_url": f"{api}/commits/{data.sha}/comments",
        "commit": {
            "url": f"{api}/git/commits/{data.sha}",
            "author": _git_person(data.author),
            "committer": _git_person(data.committer),
            "message": data.message.rstrip("\n"),
            "comment_count": 0,
            "tree": {"sha": data.tree, "url": f"{api}/git/trees/{data.tree}"},
            "verification": _UNVERIFIED,
        },
        "author": author,
        "committer": committer,
        "parents": _parents(urls, repo, data),
    }


def git_commit(urls: Urls, repo: github_api_state.Repo, data: github_api_git.CommitData) -> Json:
    """The `commit` half of a contents API reply (GitHub's `file-commit`)."""
    api = urls.repo_api(repo)
    return {
        "sha": data.sha,
        "node_id": node_id("Commit", int(data.sha[:8], 16)),
        "url": f"{api}/git/commits/{data.sha}",
        "html_url": f"{urls.repo_web(repo)}/commit/{data.sha}",
        "author": _git_person(data.author),
        "committer": _git_person(data.committer),
        "message": data.message.rstrip("\n"),
        "tree": {"sha": data.tree, "url": f"{api}/git/trees/{data.tree}"},
        "parents": _parents(urls, repo, data),
        "verification": _UNVERIFIED,
    }


def git_ref(urls: Urls, repo: github_api_state.Repo, ref: str, sha: str, kind: str) -> Json:
    api = urls.repo_api(repo)
    plural = "tags" if kind == "tag" else f"{kind}s"
    return {
        "ref": ref,
        "node_id": node_id("Ref", int(sha[:8], 16)),
        "url": f"{api}/git/{ref}",
        "object": {"type": kind, "sha": sha, "url": f"{api}/git/{plural}/{sha}"},
    }


def short_branch(urls: Urls, repo: github_api_state.Repo, name: str, sha: str) -> Json:
    api = urls.repo_api(repo)
    return {
        "name": name,
        "commit": {"sha": sha, "url": f"{api}/commits/{sha}"},
        "protected": False,
        "protection_url": f"{api}/branches/{urllib.parse.quote(name)}/protection",
    }


def branch(urls: Urls, repo: github_api_state.Repo, name: str, commit_body: Json) -> Json:
    api = urls.repo_api(repo)
    return {
        "name": name,
        "commit": commit_body,
        "_links": {"self": f"{api}/branches/{name}", "html": f"{urls.repo_web(repo)}/tree/{name}"},
        "protected": False,
        "protection": {
            "enabled": False,
            "required_status_checks": {"enforcement_level": "off", "contexts": [], "checks": []},
        },
        "protection_url": f"{api}/branches/{urllib.parse.quote(name)}/protection",
    }


def content_item(urls: Urls, repo: github_api_state.Repo, path: str, entry: github_api_git.TreeEntry, ref: str) -> Json:
    """One entry of a contents API reply (a directory listing item; files add `content`)."""
    api, web = urls.repo_api(repo), urls.repo_web(repo)
    kind = {"tree": "dir", "commit": "submodule"}.get(entry.kind, "symlink" if entry.mode == "120000" else "file")
    quoted = urllib.parse.quote(path)
    self_url = f"{api}/contents/{quoted}?ref={urllib.parse.quote(ref)}"
    git_url = f"{api}/git/{'trees' if kind == 'dir' else 'blobs'}/{entry.sha}"
    html_url = f"{web}/{'tree' if kind == 'dir' else 'blob'}/{ref}/{quoted}"
    return {
        "type": kind,
        "size": entry.size or 0,
        "name": entry.name,
        "path": path,
        "sha": entry.sha,
        "url": self_url,
        "git_url": git_url,
        "html_url": html_url,
        "download_url": f"{web}/raw/{ref}/{quoted}" if kind == "file" else None,
        "_links": {"self": self_url, "git": git_url, "html": html_url},
    }


def content_file(item: Json, data: bytes) -> Json:
    """A file reply of the contents API: base64 content wrapped at 60 characters, as GitHub does."""
    encoded = base64.b64encode(data).decode()
    wrapped = "".join(encoded[i : i + 60] + "\n" for i in range(0, len(encoded), 60))
    return {**item, "encoding": "base64", "content": wrapped}


def file_commit(content: Json | None, commit_body: Json) -> Json:
    return {"content": content, "commit": commit_body}
