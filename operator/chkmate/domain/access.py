"""Which repositories a connection may be used for. Pure."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable


def allows(globs: Iterable[str], full_name: str) -> bool:
    """True when ``full_name`` (owner/name) matches one of the globs, or when there are none.

    GitHub names are case-insensitive, so the match is too.
    """
    patterns = list(globs)
    return not patterns or any(fnmatch.fnmatchcase(full_name.lower(), p.lower()) for p in patterns)
