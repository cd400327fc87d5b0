"""Authentication of the GitHub API double: app JWTs, installation tokens and personal tokens.

Turns an `Authorization` header into a `Principal` or raises the 401/403 `ApiError` GitHub would
answer, with GitHub's messages. App JWTs must be RS256-signed by the app's registered key, with
`iss` the app id (string or integer) and `iat`/`exp` at most ten minutes apart, allowing 60 seconds
of clock skew. No I/O; callers hold the store lock.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import jwt

from tests.harness import github_api_http, github_api_state

CLOCK_SKEW = 60
JWT_MAX_LIFETIME = 600
_UNDECODABLE = "A JSON web token could not be decoded"
_BAD_ISSUED_AT = "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued"
_BAD_EXPIRY = (
    "'Expiration time' claim ('exp') must be a numeric value representing the future time at which "
    "the assertion expires"
)
_FAR_EXPIRY = "'Expiration time' claim ('exp') is too far in the future"


def unauthorized(message: str) -> github_api_http.ApiError:
    return github_api_http.ApiError(401, message)


def authenticate(store: github_api_state.Store, authorization: str | None, now: float) -> github_api_state.Principal:
    """The principal an `Authorization` header (`token X`, `Bearer X|JWT`, `Basic`) stands for."""
    if not authorization:
        return github_api_state.ANONYMOUS
    scheme, _, credential = authorization.strip().partition(" ")
    credential = credential.strip()
    match scheme.lower():
        case "bearer" if credential.count(".") == 2:
            app = verify_app_jwt(store, credential, now)
            return github_api_state.Principal(kind="app", label=f"app:{app.id}", app=app)
        case "bearer" | "token":
            return token_principal(store, credential, now)
        case "basic":
            return token_principal(store, _basic_password(credential), now)
    raise unauthorized("Bad credentials")


def _basic_password(credential: str) -> str:
    try:
        return base64.b64decode(credential, validate=True).decode().partition(":")[2]
    except (binascii.Error, UnicodeDecodeError):
        raise unauthorized("Bad credentials") from None


def token_principal(store: github_api_state.Store, value: str, now: float) -> github_api_state.Principal:
    token = store.tokens.get(value)
    if token is None or token.expired(now):
        raise unauthorized("Bad credentials")
    if token.installation_id is not None:
        installation = store.installations.get(token.installation_id)
        if installation is None:
            raise unauthorized("Bad credentials")
        if installation.suspended:
            raise github_api_http.ApiError(403, "This installation has been suspended")
        return github_api_state.Principal(
            kind="installation",
            label=f"installation:{installation.id}",
            app=store.apps[installation.app_id],
            installation=installation,
            token=token,
        )
    account = store.account(token.login or "")
    if account is None:
        raise unauthorized("Bad credentials")
    return github_api_state.Principal(kind="user", label=f"user:{account.login}", user=account, token=token)


def verify_app_jwt(store: github_api_state.Store, credential: str, now: float) -> github_api_state.App:
    """The app whose key signed this JWT, after GitHub's claim checks."""
    try:
        header = jwt.get_unverified_header(credential)
        claims: dict[str, Any] = jwt.decode(credential, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise unauthorized(_UNDECODABLE) from None
    app = _issuer_app(store, claims)
    if header.get("alg") != "RS256" or app is None:
        raise unauthorized(_UNDECODABLE)
    try:
        jwt.decode(
            credential,
            app.public_key,
            algorithms=["RS256"],
            options={"verify_exp": False, "verify_iat": False, "verify_nbf": False, "verify_iss": False},
        )
    except jwt.PyJWTError:
        raise unauthorized(_UNDECODABLE) from None
    _check_times(claims, now)
    return app


def _issuer_app(store: github_api_state.Store, claims: dict[str, Any]) -> github_api_state.App | None:
    issuer = claims.get("iss")
    if issuer is None:
        raise unauthorized("Missing 'issuer' claim ('iss') in assertion")
    if isinstance(issuer, str) and not issuer.isdigit():
        return next((app for app in store.apps.values() if app.client_id == issuer), None)
    if isinstance(issuer, bool) or not isinstance(issuer, int | str):
        raise unauthorized("'Issuer' claim ('iss') must be an Integer")
    return store.apps.get(int(issuer))


def _check_times(claims: dict[str, Any], now: float) -> None:
    issued_at, expires_at = claims.get("iat"), claims.get("exp")
    if not isinstance(issued_at, int | float) or isinstance(issued_at, bool) or issued_at > now + CLOCK_SKEW:
        raise unauthorized(_BAD_ISSUED_AT)
    if not isinstance(expires_at, int | float) or isinstance(expires_at, bool) or expires_at < now - CLOCK_SKEW:
        raise unauthorized(_BAD_EXPIRY)
    if expires_at - issued_at > JWT_MAX_LIFETIME or expires_at > now + JWT_MAX_LIFETIME + CLOCK_SKEW:
        raise unauthorized(_FAR_EXPIRY)
