"""GitHubRepository controller: validates the spec and resolves its connection.

Adopting and creating repositories on GitHub arrives with the GitHub client layer. I/O: none beyond the
status patch (references are resolved from kopf's in-memory indexes).
"""

from __future__ import annotations

import kopf

from chkmate.api import conditions as conds
from chkmate.api import kinds, repositories
from chkmate.controllers import indexing, reconciling, registering

Request = reconciling.Request[repositories.GitHubRepositorySpec, repositories.GitHubRepositoryStatus]
Outcome = reconciling.Outcome[repositories.GitHubRepositoryStatus]


async def reconcile_github_repository(request: Request) -> Outcome:
    indexing.require(
        request.indexes, kinds.GITHUB_CONNECTION, request.namespace, request.spec.connection_ref.name,
        field="spec.connectionRef",
    )
    return Outcome(
        status=request.status.model_copy(update={"full_name": request.spec.full_name}),
        conditions=(
            reconciling.Set(
                conds.Types.AVAILABLE, conds.UNKNOWN, conds.Reasons.PROGRESSING,
                f"Connection {request.spec.connection_ref.name!r} found; this operator version does not "
                "contact GitHub yet.",
            ),
        ),
    )


RECONCILER = reconciling.Reconciler(
    info=kinds.GITHUB_REPOSITORY,
    spec_model=repositories.GitHubRepositorySpec,
    status_model=repositories.GitHubRepositoryStatus,
    depends_on=(conds.Types.AVAILABLE,),
    step=reconcile_github_repository,
)


def register(registry: kopf.OperatorRegistry) -> None:
    registering.reconcile_on_changes(registry, RECONCILER, handler_id="reconcile_github_repository")
