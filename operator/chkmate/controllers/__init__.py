"""kopf handlers, one module per kind, thin: parse, ask the domain, do I/O through clients, patch status.

:func:`register_all` puts every handler on a registry (kopf's default one in production, a fresh one in
tests), and :func:`configure` applies our kopf settings. No I/O at import.
"""

from __future__ import annotations

import logging

import kopf

from chkmate import GROUP
from chkmate.controllers import (
    connections,
    dependents,
    environment_drift,
    environments,
    indexing,
    links,
    plans,
    polling,
    registering,
    repositories,
    templates,
)

KIND_MODULES = (
    connections, repositories, templates, links, environments, environment_drift, plans, polling, dependents,
)
FINALIZER = f"{GROUP}/finalizer"


def register_all(registry: kopf.OperatorRegistry) -> None:
    indexing.register(registry)
    for module in KIND_MODULES:
        module.register(registry)


def configure(settings: kopf.OperatorSettings) -> None:
    """Our kopf settings: state and finalizers under chkmate.dev, never in the schema-validated status."""
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=registering.STATE_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=registering.STATE_PREFIX, key="last-handled-configuration"
    )
    settings.posting.level = logging.INFO  # kopf.info/warn from handlers become Events
