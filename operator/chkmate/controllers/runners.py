"""Where a Plan's runs happen: a :class:`Runner` per ``spec.runner.mode``, and the Job runner's operator side.

:func:`runner` picks the runner an Environment asks for; callers (the Plan controller, drift checks) go through it
only, so both modes have one path:

* :class:`Local` (``mode: Local``, the default) calls :func:`chkmate.controllers.plan_runs.plan` and
  :func:`~chkmate.controllers.plan_runs.apply` in the operator's process;
* :class:`Job` (``mode: Job``, docs/runners.md) writes the run's bundle (:func:`plan_runs.bundle`) to a Secret,
  starts a Kubernetes Job (or finds the one it started before a restart), waits for it, deletes the bundle and
  reads the result back. The Job's pod (``chkmate run-job``) runs the bundle with :func:`plan_runs.run_bundle`,
  which calls the very functions the Local runner calls, so the engine's own errors are raised here as the Local
  runner would raise them (:class:`terraform.ApplyFailed` with its state, ...). A Job that ends without a result
  raises :class:`RunFailed`, or :class:`RunTimedOut` past its deadline (reasons ``RunFailed`` and ``RunTimedOut``).

Not here: the engine and the run's documents (:mod:`chkmate.controllers.plan_runs`), the Job's values (names,
manifest, what its status means, the codec: :mod:`chkmate.domain.jobs`), Secrets and Jobs on the API
(:mod:`chkmate.clients.jobs`).

I/O: the Local runner's subprocesses (through :mod:`chkmate.controllers.plan_runs`); for Job runs, the Kubernetes
API (Jobs, Secrets, pods) and the clock (a poll every ``CHKMATE_RUNNER_POLL_INTERVAL``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
from collections.abc import Mapping
from typing import Any, Protocol

from chkmate import errors, settings
from chkmate.api import conditions as conds
from chkmate.api import environments
from chkmate.clients import jobs as job_client
from chkmate.clients import kube, storage
from chkmate.controllers import plan_runs
from chkmate.domain import jobs

Logger = logging.Logger | logging.LoggerAdapter[Any]


class RunFailed(errors.ChkmateError):
    """A runner Job ended without a result: it failed, was deleted, or never finished."""

    reason = conds.Reasons.RUN_FAILED


class RunTimedOut(RunFailed):
    """A runner Job passed its deadline (``spec.runner.timeout``)."""

    reason = conds.Reasons.RUN_TIMED_OUT


class Runner(Protocol):
    """Runs plans and applies, here or elsewhere; ``phase`` names the run among its owner's runs."""

    @property
    def detached(self) -> bool:
        """Whether the run goes on when the operator stops (then its state lock must stay held)."""
        ...

    async def plan(
        self,
        *,
        phase: str,
        revision: str,
        files: Mapping[str, bytes],
        state: storage.State,
        inputs: plan_runs.Inputs,
        refresh_only: bool = False,
        lock: bool = True,
    ) -> plan_runs.Planned: ...

    async def apply(
        self, *, phase: str, files: Mapping[str, bytes], state: storage.State, inputs: plan_runs.Inputs, artifact: bytes
    ) -> storage.State: ...


@dataclasses.dataclass(frozen=True)
class Local:
    """A subprocess of the operator (``spec.runner.mode: Local``, the default)."""

    config: settings.Settings

    @property
    def detached(self) -> bool:
        return False

    async def plan(
        self,
        *,
        phase: str,
        revision: str,
        files: Mapping[str, bytes],
        state: storage.State,
        inputs: plan_runs.Inputs,
        refresh_only: bool = False,
        lock: bool = True,
    ) -> plan_runs.Planned:
        return await plan_runs.plan(
            self.config,
            revision=revision,
            files=files,
            state=state,
            inputs=inputs,
            refresh_only=refresh_only,
            lock=lock,
        )

    async def apply(
        self, *, phase: str, files: Mapping[str, bytes], state: storage.State, inputs: plan_runs.Inputs, artifact: bytes
    ) -> storage.State:
        return await plan_runs.apply(self.config, files=files, state=state, inputs=inputs, artifact=artifact)


@dataclasses.dataclass(frozen=True)
class Job:
    """A Kubernetes Job per run (``spec.runner.mode: Job``), owned by ``owner`` (a Plan, or the Environment for
    drift checks). ``salt`` tells apart runs of one owner and phase (drift checks); ``keep`` False deletes the
    finished Job and its result once read (the owner would otherwise keep them)."""

    config: settings.Settings
    client: kube.KubeClient
    namespace: str
    owner: Mapping[str, Any]
    environment: str
    spec: environments.Runner
    plan_name: str | None = None
    salt: str = ""
    keep: bool = True
    logger: Logger | None = dataclasses.field(default=None, compare=False)

    @property
    def detached(self) -> bool:
        return True

    async def plan(
        self,
        *,
        phase: str,
        revision: str,
        files: Mapping[str, bytes],
        state: storage.State,
        inputs: plan_runs.Inputs,
        refresh_only: bool = False,
        lock: bool = True,
    ) -> plan_runs.Planned:
        document = plan_runs.bundle(
            "plan", revision=revision, files=files, state=state, inputs=inputs, refresh_only=refresh_only, lock=lock
        )
        result = await self._run(phase, document, inputs)
        return plan_runs.planned_from(result, revision=revision, inputs=inputs)

    async def apply(
        self, *, phase: str, files: Mapping[str, bytes], state: storage.State, inputs: plan_runs.Inputs, artifact: bytes
    ) -> storage.State:
        document = plan_runs.bundle("apply", files=files, state=state, inputs=inputs, artifact=artifact)
        result = await self._run(phase, document, inputs)
        return plan_runs.applied_from(result)

    def job_request(self, phase: str, timeout: float) -> jobs.JobRequest:
        """The Job this runner starts for ``phase`` (its name is the same on every call)."""
        metadata = self.owner["metadata"]
        name = jobs.job_name(metadata["name"], metadata["uid"], phase, self.salt)
        if not self.config.runner_image:  # not the run's failure: the run waits for an operator configured
            raise errors.ChkmateError(
                "Job runs need the runner's image: set CHKMATE_RUNNER_IMAGE (the Helm chart sets the operator's own).",
                reason=conds.Reasons.RUN_FAILED,
            )
        return jobs.JobRequest(
            name=name,
            namespace=self.namespace,
            owner=storage.owner_reference(self.owner),
            labels=jobs.labels(environment=self.environment, phase=phase, plan=self.plan_name),
            image=self.config.runner_image,
            timeout=timeout,
            grace=self.config.runner_grace,
            ttl=self.config.runner_ttl,
            service_account=self.config.runner_service_account,
            env={
                "CHKMATE_TERRAFORM_BINARY": self.config.terraform_binary,
                "CHKMATE_TOFU_BINARY": self.config.tofu_binary,
            },
            pod_template=self.spec.pod_template,
        )

    async def _run(self, phase: str, document: dict[str, Any], inputs: plan_runs.Inputs) -> dict[str, Any]:
        """Start the Job (or find it), wait for it, and return its successful result; raise what it reported."""
        client, namespace = self.client, self.namespace
        request = self.job_request(phase, inputs.timeout)
        try:
            manifest = jobs.job_manifest(request)  # refuses a bad podTemplate before anything is written
        except errors.InvalidSpec as e:
            raise errors.InvalidSpec(f"Environment {self.environment!r}: {e.message}") from e
        data = await job_client.read_blob(client, namespace, request.result)
        state = jobs.JobState("Succeeded")
        if data is None:  # not finished before (a retry, or an operator restarted after the Job reported)
            job = await job_client.get_job(client, namespace, request.name)
            if job is None:
                owners = [storage.owner_reference(self.owner)]
                document["result"] = {
                    # The pod may not set blockOwnerDeletion (it would need update on the owner's finalizers).
                    "ownerReferences": [{**owners[0], "blockOwnerDeletion": False}],
                    "labels": dict(request.labels),
                }
                await job_client.write_blob(
                    client, namespace, request.bundle, jobs.encode(document), owners=owners, labels=request.labels
                )
                job = await job_client.create_job(client, namespace, manifest)
                self._log(f"Started the runner Job {request.name} ({phase}).")
            else:
                self._log(f"Waiting for the runner Job {request.name} ({phase}), started before.")
            state = await self._wait(job, inputs.timeout)
            data = await job_client.read_blob(client, namespace, request.result)
        # The bundle holds the run's credentials and state: it does not outlive the run.
        await job_client.delete_blob(client, namespace, request.bundle)
        if data is None:
            raise await self._failure(request, state, inputs.timeout)
        if not self.keep:
            await job_client.delete_job(client, namespace, request.name)
            await job_client.delete_blob(client, namespace, request.result)
        try:
            result = jobs.decode(data)
        except ValueError as e:
            raise RunFailed(f"The runner Job {request.name} wrote a result that cannot be read: {e}") from e
        if not result.get("ok"):
            plan_runs.raise_error(result.get("error") or {})
        return result

    async def _wait(self, job: kube.Object, timeout: float) -> jobs.JobState:
        """Poll the Job until it finishes or is deleted; give up (and delete it) when no controller ends it."""
        name = job["metadata"]["name"]
        now = datetime.datetime.now(datetime.UTC)
        give_up = jobs.give_up_at(job, self.config.runner_grace) or now + datetime.timedelta(
            seconds=jobs.active_deadline(timeout, self.config.runner_grace) + self.config.runner_grace
        )
        found: kube.Object | None = job
        while True:
            state = jobs.job_state(found)
            if state.finished:
                return state
            left = (give_up - datetime.datetime.now(datetime.UTC)).total_seconds()
            if left <= 0:
                await job_client.delete_job(self.client, self.namespace, name)
                return jobs.JobState(
                    "Failed",
                    jobs.DEADLINE_EXCEEDED,
                    f"it was still running {self.config.runner_grace:g}s past its activeDeadlineSeconds, "
                    "so the operator deleted it",
                )
            await asyncio.sleep(min(self.config.runner_poll_interval, left))
            found = await job_client.get_job(self.client, self.namespace, name)

    async def _failure(self, request: jobs.JobRequest, state: jobs.JobState, timeout: float) -> RunFailed:
        name = request.name
        if state.phase == "Deleted":
            return RunFailed(f"The runner Job {name} was deleted before it reported a result.")
        if state.phase == "Succeeded":
            return RunFailed(f"The runner Job {name} finished without writing its result (Secret {request.result}).")
        detail = f"{state.reason}: {state.message}" if state.message else state.reason
        if jobs.failure_reason(state) == conds.Reasons.RUN_TIMED_OUT:
            return RunTimedOut(
                f"The runner Job {name} did not finish within the run's timeout of {timeout:g}s ({detail})."
            )
        ended = await job_client.pod_failure(self.client, self.namespace, name)
        return RunFailed(f"The runner Job {name} failed ({detail})" + (f"; its pod ended {ended}." if ended else "."))

    def _log(self, message: str) -> None:
        if self.logger is not None:
            self.logger.info(message)


def runner(
    config: settings.Settings,
    client: kube.KubeClient,
    namespace: str,
    *,
    spec: environments.Runner,
    owner: Mapping[str, Any],
    environment: str,
    plan_name: str | None = None,
    salt: str = "",
    keep: bool = True,
    logger: Logger | None = None,
) -> Runner:
    """The runner ``spec.runner`` asks for; ``owner`` owns a Job runner's Jobs and Secrets."""
    if spec.mode == "Job":
        return Job(config, client, namespace, owner, environment, spec, plan_name, salt, keep, logger)
    return Local(config)
