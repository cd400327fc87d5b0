"""The operator's entry point: ``kopf run -m chkmate.main`` or the ``chkmate-operator`` script.

Importing this module registers everything on kopf's default registry: a startup handler that reads the
settings once into the memo, a login handler that shares kopf's credentials with our own Kubernetes
client, and every kind's handlers. Tests call :func:`register` on a fresh registry with their own login
and settings. I/O: reads the environment at startup, not at import.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import sys
from collections.abc import Callable
from typing import Any

import kopf

from chkmate import controllers
from chkmate import settings as settings_
from chkmate.clients import kube
from chkmate.controllers import collector, memos, webhook_marks

Logger = logging.Logger | logging.LoggerAdapter[Any]
Login = Callable[[Logger, kopf.OperatorSettings], kopf.ConnectionInfo | None]
SettingsFactory = Callable[[], settings_.Settings]


def default_login(logger: Logger, settings: kopf.OperatorSettings) -> kopf.ConnectionInfo | None:
    """In-cluster service account first, then the kubeconfig (like kopf's own default)."""
    return kopf.login_with_service_account(logger=logger, settings=settings) or kopf.login_with_kubeconfig(
        logger=logger, settings=settings
    )


def settings_from_env() -> settings_.Settings:
    return settings_.Settings.from_env(os.environ)


def register(
    registry: kopf.OperatorRegistry,
    *,
    login: Login = default_login,
    settings: SettingsFactory = settings_from_env,
    webhook_host: str = "0.0.0.0",
) -> None:
    """Put the whole operator on ``registry``; with ``webhook_port`` set, the GitHub webhook receiver serves on
    ``webhook_host`` (tests: 127.0.0.1) and counts every delivery in the metrics."""

    async def configure_chkmate(*, settings: kopf.OperatorSettings, memo: Any, logger: Logger, **indexes: Any) -> None:
        controllers.configure(settings)
        ours = memos.ensure(memo, settings_factory)
        ours.metrics_server = await ours.metrics.serve(ours.settings.metrics_port)
        if ours.settings.gc_refreeze > 0:
            ours.run_later(collector.keep_collections_short(ours.settings.gc_refreeze))
        if ours.settings.webhook_port and ours.webhooks is None:
            ours.webhooks = webhook_marks.serve(ours, indexes, host=webhook_host, count=ours.metrics.webhook_delivery)
        logger.info("The chkmate operator is configured.")

    async def login_chkmate(
        *, settings: kopf.OperatorSettings, memo: Any, logger: Logger, **_: Any
    ) -> kopf.ConnectionInfo | None:
        info = login(logger, settings)
        if info is not None:
            await memos.ensure(memo, settings_factory).connect(kube.KubeClient(info))
        return info

    async def close_chkmate(*, memo: Any, **_: Any) -> None:
        await memos.ensure(memo, settings_factory).close()

    settings_factory = settings
    kopf.on.startup(id="configure_chkmate", registry=registry)(configure_chkmate)
    kopf.on.login(id="login_chkmate", registry=registry)(login_chkmate)
    kopf.on.cleanup(id="close_chkmate", registry=registry)(close_chkmate)
    controllers.register_all(registry)


register(kopf.get_default_registry())


def configure_logging(debug: bool) -> None:
    """INFO everywhere; with ``CHKMATE_DEBUG``, DEBUG for the operator and kopf (each webhook delivery, each
    handler run and kopf's patches), while the HTTP and git libraries below stay at INFO."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if debug else logging.INFO)


LOGGERS = ("chkmate", "kopf")


def run() -> None:
    """Console script: run the operator in the namespaces from CHKMATE_NAMESPACES (else cluster-wide)."""
    try:
        ours = settings_from_env()
    except settings_.SettingsError as e:
        logging.basicConfig(level=logging.INFO)
        sys.exit(f"chkmate-operator: {e}")
    configure_logging(ours.debug)
    namespaces = list(ours.namespaces)
    asyncio.run(
        kopf.operator(
            clusterwide=not namespaces,
            namespaces=namespaces,
            standalone=ours.peering is None,
            peering_name=ours.peering,
            # kopf pauses every peer when priorities tie: a random one makes one replica active, the rest standby.
            priority=random.SystemRandom().randint(1, 2**31 - 1) if ours.peering else 0,
            liveness_endpoint=f"http://0.0.0.0:{ours.liveness_port}/healthz" if ours.liveness_port else None,
        )
    )
