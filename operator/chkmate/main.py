"""The operator's entry point: ``kopf run -m chkmate.main`` or the ``chkmate-operator`` script.

Importing this module registers every handler on kopf's default registry and a startup handler that
reads the settings once into the memo. I/O: reads the environment at startup, not at import.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from typing import Any

import kopf

from chkmate import controllers
from chkmate import settings as settings_
from chkmate.controllers import memos


def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, env: dict[str, str] | None = None) -> None:
    """Apply our kopf settings and put our own settings into the memo (once, at startup)."""
    ours = settings_.Settings.from_env(os.environ if env is None else env)
    controllers.configure(settings)
    memos.install(memo, memos.Memo(settings=ours))


@kopf.on.startup(id="configure_chkmate")
async def _startup(
    *, settings: kopf.OperatorSettings, memo: Any, logger: logging.Logger | logging.LoggerAdapter[Any], **_: Any
) -> None:
    configure(settings, memo)
    logger.info("chkmate operator configured.")


controllers.register_all(kopf.get_default_registry())


def run() -> None:
    """Console script: run the operator in the namespaces from CHKMATE_NAMESPACES (else cluster-wide)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        ours = settings_.Settings.from_env(os.environ)
    except settings_.SettingsError as e:
        sys.exit(f"chkmate-operator: {e}")
    namespaces = list(ours.namespaces)
    asyncio.run(
        kopf.operator(
            clusterwide=not namespaces,
            namespaces=namespaces,
            standalone=ours.peering is None,
            peering_name=ours.peering,
            liveness_endpoint=f"http://0.0.0.0:{ours.liveness_port}/healthz" if ours.liveness_port else None,
        )
    )
