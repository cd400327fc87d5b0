"""The operator-wide values handlers share, kept in kopf's memo: settings and long-lived clients.

Built once at startup (:func:`chkmate.main.configure`); handlers read it through :func:`of`. No I/O.
"""

from __future__ import annotations

import dataclasses

import kopf

from chkmate import settings as settings_


@dataclasses.dataclass
class Memo:
    settings: settings_.Settings


MEMO_KEY = "chkmate"


def install(memo: kopf.Memo, value: Memo) -> None:
    memo[MEMO_KEY] = value


def of(memo: kopf.Memo) -> Memo:
    value = memo.get(MEMO_KEY)
    if not isinstance(value, Memo):
        raise RuntimeError("The operator memo was not set up: chkmate.main.configure() must run at startup.")
    return value
