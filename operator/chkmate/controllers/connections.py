"""GitHubConnection controller: validates the connection spec and reports its conditions.

The GitHub checks themselves (token, installation, rate limit) arrive with the GitHub client layer; until
then a valid connection reports ``Connected=Unknown`` and says so. I/O: none beyond the status patch.
"""

from __future__ import annotations

import kopf

from chkmate.api import conditions as conds
from chkmate.api import connections, kinds
from chkmate.controllers import reconciling, registering

Request = reconciling.Request[connections.GitHubConnectionSpec, connections.GitHubConnectionStatus]
Outcome = reconciling.Outcome[connections.GitHubConnectionStatus]


async def reconcile_github_connection(request: Request) -> Outcome:
    method = "GitHub App" if request.spec.auth_method == "app" else "token"
    return Outcome(
        status=request.status,
        conditions=(
            reconciling.Set(
                conds.Types.CONNECTED, conds.UNKNOWN, conds.Reasons.PROGRESSING,
                f"The spec is valid ({method} auth); this operator version does not contact GitHub yet.",
            ),
        ),
    )


RECONCILER = reconciling.Reconciler(
    info=kinds.GITHUB_CONNECTION,
    spec_model=connections.GitHubConnectionSpec,
    status_model=connections.GitHubConnectionStatus,
    depends_on=(conds.Types.CONNECTED,),
    step=reconcile_github_connection,
)


def register(registry: kopf.OperatorRegistry) -> None:
    registering.reconcile_on_changes(registry, RECONCILER, handler_id="reconcile_github_connection")
