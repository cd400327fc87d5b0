"""``chkmate run-job``: what the pod of a runner Job runs (``spec.runner.mode: Job``; docs/runners.md).

Reads the bundle Secret the operator wrote (the command, files, state, variables, credentials) through the
Kubernetes API, as the pod's ServiceAccount (or a kubeconfig, outside a cluster), runs it with the very functions
the operator's Local runner calls (:func:`chkmate.controllers.plan_runs.run_bundle`), and writes the result Secret
the operator waits for: the plan result and plan file, the new state, or the engine's error (redacted, with the
state a failed apply left). Exits 0 once a result is written, whatever the engine said (the operator reports it);
1 when no result can be written (no bundle, no API). Prints one line, never a secret value.

Engine binaries and the work folder come from ``CHKMATE_*`` settings, as for the operator. I/O: the Kubernetes
API, the engine's subprocesses and files under the work folder.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Mapping
from typing import Any

import kopf

from chkmate import errors, settings
from chkmate.clients import jobs as job_client
from chkmate.clients import kube
from chkmate.controllers import plan_runs
from chkmate.domain import jobs


def register(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser(
        "run-job",
        help="Run one plan or apply of a runner Job (the command of the Job's pod).",
        description="Read a run's bundle Secret, run it with the engine as the operator's Local runner would, and "
        "write the result Secret the operator waits for. Started by the operator in runner Jobs; it reaches the "
        "API as the pod's ServiceAccount (or with $KUBECONFIG).",
    )
    parser.add_argument("--namespace", required=True, help="Namespace of the bundle and result Secrets.")
    parser.add_argument("--bundle", required=True, metavar="SECRET", help="Name of the bundle Secret to run.")
    parser.add_argument("--result", required=True, metavar="SECRET", help="Name of the result Secret to write.")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        config = settings.Settings.from_env(os.environ)
    except settings.SettingsError as e:
        raise errors.ChkmateError(str(e)) from e
    info = login()
    if info is None:
        raise errors.ChkmateError("no Kubernetes credentials: neither a ServiceAccount token nor $KUBECONFIG")
    line = asyncio.run(execute(config, info, namespace=args.namespace, bundle=args.bundle, result=args.result))
    print(line)
    return 0


def login() -> kopf.ConnectionInfo | None:
    """The pod's ServiceAccount, else the kubeconfig (tests, or a run by hand)."""
    options = kopf.OperatorSettings()
    return kopf.login_with_service_account(settings=options) or kopf.login_with_kubeconfig(settings=options)


async def execute(
    config: settings.Settings, info: kopf.ConnectionInfo, *, namespace: str, bundle: str, result: str
) -> str:
    """Run the bundle and write the result; one line saying what happened."""
    async with kube.KubeClient(info) as client:
        data = await job_client.read_blob(client, namespace, bundle)
        if data is None:
            raise errors.ChkmateError(f"the bundle Secret {bundle!r} does not exist in namespace {namespace!r}")
        try:
            document = jobs.decode(data)
        except ValueError as e:
            raise errors.ChkmateError(f"Secret {bundle!r}: {e}") from e
        outcome = await plan_runs.run_bundle(config, document)
        target: Mapping[str, Any] = document.get("result") or {}
        await job_client.write_blob(
            client,
            namespace,
            result,
            jobs.encode(outcome),
            owners=list(target.get("ownerReferences") or ()),
            labels=dict(target.get("labels") or {}),
        )
    return summary(document, outcome)


def summary(document: Mapping[str, Any], outcome: Mapping[str, Any]) -> str:
    """The line printed in the pod's log: the command and how it ended (messages are redacted already)."""
    command = document.get("command")
    if not outcome.get("ok"):
        error = outcome.get("error") or {}
        return f"chkmate run-job: {command} failed ({error.get('reason')}): {error.get('message')}"
    if command == "plan":
        planned = jobs.plan_result_from_wire(outcome.get("result") or {})
        return f"chkmate run-job: planned: {planned.summary.line()}"
    return f"chkmate run-job: {command} succeeded."
