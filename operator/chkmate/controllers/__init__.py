"""kopf handlers, one module per kind, thin: parse, ask the domain, do I/O through clients, patch status.

:func:`register_all` puts every handler on a registry (kopf's default one in production, a fresh one in
tests), and :func:`configure` applies our kopf settings. No I/O at import.
"""

from __future__ import annotations

import kopf

from chkmate import GROUP
from chkmate.controllers import (
    connections,
    environments,
    indexing,
    links,
    plans,
    repositories,
    templates,
)

KIND_MODULES = (connections, repositories, templates, links, environments, plans)
FINALIZER = f"{GROUP}/finalizer"


def register_all(registry: kopf.OperatorRegistry) -> None:
    indexing.register(registry)
    for module in KIND_MODULES:
        module.register(registry)


def configure(settings: kopf.OperatorSettings) -> None:
    """Our kopf settings: state and finalizers under chkmate.dev, never in the schema-validated status."""
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.posting.level = 20  # logging.INFO: Events for info and above
    settings.watching.server_timeout = 300
    settings.networking.request_timeout = 60
