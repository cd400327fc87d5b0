"""Which repositories a connection may be used for, and which pull requests may be planned. Pure."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from typing import Any


def allows(globs: Iterable[str], full_name: str) -> bool:
    """True when ``full_name`` (owner/name) matches one of the globs, or when there are none.

    GitHub names are case-insensitive, so the match is too.
    """
    patterns = list(globs)
    return not patterns or any(fnmatch.fnmatchcase(full_name.lower(), p.lower()) for p in patterns)


def from_fork(pull_request: Mapping[str, Any]) -> bool:
    """Whether a pull request (as GitHub's API and webhooks show it) comes from another repository than its base.

    Such pull requests are never planned, as Atlantis does by default: planning runs the head's code (providers,
    external data sources, provisioners) with the Environment's credentials, so anyone able to fork could read
    them. A head repository GitHub no longer shows (a deleted fork) counts as a fork.
    """
    head = (pull_request.get("head") or {}).get("repo") or {}
    base = (pull_request.get("base") or {}).get("repo") or {}
    return bool(base.get("full_name")) and head.get("full_name") != base.get("full_name")
