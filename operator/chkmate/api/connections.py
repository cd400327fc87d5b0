"""GitHubConnection: the GitHub App installation (or token) the operator acts as. Pure models."""

from __future__ import annotations

from typing import Annotated, Literal, Self

import pydantic

from chkmate.api import base, common

# owner/name with shell-style wildcards, e.g. "acme/infra-*" or "acme/*".
REPOSITORY_GLOB_PATTERN = r"^[A-Za-z0-9*?_.-]+/[A-Za-z0-9*?_.\[\]-]+$"
RepositoryGlob = Annotated[str, pydantic.StringConstraints(pattern=REPOSITORY_GLOB_PATTERN)]


class GitHubConnectionSpec(base.Model):
    """How to authenticate to GitHub: a GitHub App installation (preferred) or a token."""

    app_id: int | None = pydantic.Field(default=None, ge=1, description="GitHub App id (App auth).")
    installation_id: int | None = pydantic.Field(
        default=None, ge=1, description="Installation id of the App on the account (App auth)."
    )
    private_key_secret_ref: common.SecretKeyReference | None = pydantic.Field(
        default=None, description="Secret key holding the App's PEM private key (App auth)."
    )
    token_secret_ref: common.SecretKeyReference | None = pydantic.Field(
        default=None, description="Secret key holding a personal or fine-grained access token (token auth)."
    )
    api_url: str = pydantic.Field(
        default="https://api.github.com",
        pattern=r"^https?://[^\s/]+(/[^\s]*)?$",
        description="REST API root; https://HOST/api/v3 for GitHub Enterprise Server.",
    )
    webhook_secret_ref: common.SecretKeyReference | None = pydantic.Field(
        default=None, description="Secret key holding the webhook secret used to verify deliveries."
    )
    allowed_repositories: tuple[RepositoryGlob, ...] = pydantic.Field(
        default=(),
        description="owner/name globs this connection may be used for; empty allows every repository "
        "the installation can see.",
    )

    @pydantic.model_validator(mode="after")
    def _one_auth_method(self) -> Self:
        if (self.private_key_secret_ref is None) == (self.token_secret_ref is None):
            raise ValueError("set exactly one of privateKeySecretRef (GitHub App) or tokenSecretRef (token)")
        if self.private_key_secret_ref is not None and (self.app_id is None or self.installation_id is None):
            raise ValueError("GitHub App auth (privateKeySecretRef) needs appId and installationId")
        if self.token_secret_ref is not None and (self.app_id is not None or self.installation_id is not None):
            raise ValueError("appId and installationId apply to GitHub App auth only, not with tokenSecretRef")
        return self

    @property
    def auth_method(self) -> Literal["app", "token"]:
        return "app" if self.private_key_secret_ref is not None else "token"


class Account(base.Status):
    login: str = pydantic.Field(description="Login of the account the connection acts for.")
    type: str = pydantic.Field(default="", description="User or Organization.")
    avatar_url: str = pydantic.Field(default="", description="Avatar image URL.")


class Installation(base.Status):
    id: int = pydantic.Field(description="Installation id.")
    suspended: bool = pydantic.Field(default=False, description="Whether the installation is suspended.")
    repository_selection: str = pydantic.Field(default="", description="all or selected.")


class RateLimit(base.Status):
    limit: int | None = pydantic.Field(default=None, description="Requests allowed per hour.")
    remaining: int | None = pydantic.Field(default=None, description="Requests left in this window.")
    reset_at: str | None = pydantic.Field(default=None, description="When the window resets (RFC 3339).")


class GitHubConnectionStatus(common.CommonStatus):
    account: Account | None = pydantic.Field(default=None, description="The account acted for.")
    installation: Installation | None = pydantic.Field(default=None, description="The App installation.")
    token_expires_at: str | None = pydantic.Field(
        default=None, description="When the current installation token expires (never the token itself)."
    )
    rate_limit: RateLimit | None = pydantic.Field(default=None, description="The REST API rate limit.")
