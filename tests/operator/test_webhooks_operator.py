"""GitHub webhooks posted to the running operator: signed deliveries mark the right objects, at once.

The operator runs with ``webhook_port`` set to a free port on 127.0.0.1; deliveries are GitHub's payload shapes
from ``tests/data/webhooks`` with the names and commits of this test's repositories, signed with the webhook
secret of a GitHubConnection. The helpers here (settings, starter, :class:`GitHubHooks`) are shared with
``test_pull_requests``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import kopf
import pytest

from chkmate import main
from chkmate import settings as settings_
from chkmate.clients import kube as kube_client
from chkmate.controllers import memos
from chkmate.webhooks import receiver
from tests.fixtures import TOKEN, App, free_port
from tests.harness import github_api, gitserver, kube
from tests.operator.conftest import NAMESPACE, Cluster, quick_settings

DATA = Path(__file__).parents[1] / "data" / "webhooks"
WEBHOOK_SECRET = "webhook-s3cr3t-for-tests"
ZERO = "0" * 40
Starter = Callable[[], contextlib.AbstractAsyncContextManager[Cluster]]


@pytest.fixture
def operator_settings(tmp_path: Path) -> settings_.Settings:
    return quick_settings(tmp_path, webhook_port=free_port())


@pytest.fixture
def operator_memo() -> kopf.Memo:
    """kopf's memo of the running operator: tests read our memo (metrics) from it."""
    return kopf.Memo()


@pytest.fixture
def start_chkmate(cluster: Cluster, operator_settings: settings_.Settings, operator_memo: kopf.Memo) -> Starter:
    """The conftest starter, with the webhook receiver bound to 127.0.0.1 and the memo kept."""

    @contextlib.asynccontextmanager
    async def start() -> AsyncIterator[Cluster]:
        registry = kopf.OperatorRegistry()
        url = str(cluster.emulator.url)

        def login(logger: Any, settings: kopf.OperatorSettings) -> kopf.ConnectionInfo:
            return kopf.ConnectionInfo(server=url, default_namespace=NAMESPACE)

        main.register(registry, login=login, settings=lambda: operator_settings, webhook_host="127.0.0.1")
        async with kube.run_operator(registry, url, namespaces=(NAMESPACE,), login=False, memo=operator_memo):
            yield cluster

    return start


class GitHubHooks:
    """Posts signed deliveries, shaped like GitHub's, to the operator's receiver."""

    def __init__(self, session: aiohttp.ClientSession, port: int, secret: str = WEBHOOK_SECRET) -> None:
        self.session, self.port, self.secret = session, port, secret

    async def post(
        self, event: str, payload: dict[str, Any], *, delivery: str | None = None, secret: str | None = None
    ) -> tuple[int, str]:
        body = json.dumps(payload).encode()
        digest = hmac.new((secret or self.secret).encode(), body, hashlib.sha256).hexdigest()
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
            "X-Hub-Signature-256": f"sha256={digest}",
        }
        url = f"http://127.0.0.1:{self.port}{receiver.DEFAULT_PATH}"
        async with self.session.post(url, data=body, headers=headers) as response:
            return response.status, await response.text()

    async def accepted(self, event: str, payload: dict[str, Any], **options: Any) -> None:
        status, text = await self.post(event, payload, **options)
        assert status == 202 and text == "accepted", (status, text)

    async def listening(self) -> bool:
        try:
            status, _ = await self.post("ping", {"zen": "Keep it logically awesome."})
        except aiohttp.ClientConnectionError:
            return False
        return status == 200


def payload(name: str, repo: str = "acme/infra", **changes: Any) -> dict[str, Any]:
    """A fixture payload for ``repo``; ``changes`` replace fields, dotted paths as ``pull_request__head__sha``."""
    document: dict[str, Any] = copy.deepcopy(json.loads((DATA / f"{name}.json").read_text()))
    if "repository" in document:
        document["repository"]["full_name"] = repo
        document["repository"]["name"] = repo.split("/")[1]
    for path, value in changes.items():
        *parents, last = path.split("__")
        target = document
        for key in parents:
            target = target[key]
        target[last] = value
    return document


def push(branch: str, after: str, *, before: str = ZERO, repo: str = "acme/infra") -> dict[str, Any]:
    return payload("push", repo, ref=f"refs/heads/{branch}", after=after, before=before)


@pytest.fixture
async def hooks(operator_settings: settings_.Settings) -> AsyncIterator[GitHubHooks]:
    async with aiohttp.ClientSession() as session:
        yield GitHubHooks(session, operator_settings.webhook_port)


async def connect(
    cluster: Cluster, github: github_api.GitHubDouble, *, app: App | None = None, name: str = "gh", **spec: Any
) -> None:
    """A GitHubConnection (a token, or the App) with the webhook secret, and the GitHubRepository acme/infra."""
    await cluster.secret(
        "gh-auth", {"token": TOKEN, "private-key.pem": app.private_key if app else "", "webhook": WEBHOOK_SECRET + "\n"}
    )
    auth: dict[str, Any] = {"tokenSecretRef": {"name": "gh-auth", "key": "token"}}
    if app is not None:
        auth = {
            "appId": app.app_id,
            "installationId": app.installation_id,
            "privateKeySecretRef": {"name": "gh-auth", "key": "private-key.pem"},
        }
    await cluster.apply(
        {
            "apiVersion": "chkmate.dev/v1alpha1",
            "kind": "GitHubConnection",
            "metadata": {"name": name},
            "spec": {"apiUrl": github.url, "webhookSecretRef": {"name": "gh-auth", "key": "webhook"}, **auth, **spec},
        }
    )
    await cluster.apply(
        {
            "apiVersion": "chkmate.dev/v1alpha1",
            "kind": "GitHubRepository",
            "metadata": {"name": "infra"},
            "spec": {"connectionRef": {"name": name}, "owner": "acme", "name": "infra"},
        }
    )
    await cluster.wait_condition("GitHubRepository", "infra", "Ready", "True")


def environment(name: str, branch: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "chkmate.dev/v1alpha1",
        "kind": "Environment",
        "metadata": {"name": name},
        "spec": {
            "repositoryRef": {"name": "infra"},
            "branch": branch,
            "engine": "builtin",
            "approval": {"mode": "manual"},
            **spec,
        },
    }


async def annotation(cluster: Cluster, kind: str, name: str, key: str, value: str, timeout: float = 5) -> None:
    async def marked() -> bool:
        obj = await cluster.get(kind, name) or {}
        return bool(obj.get("metadata", {}).get("annotations", {}).get(key) == value)

    try:
        await kube.wait_for(marked, timeout=timeout)
    except TimeoutError:
        raise AssertionError(f"{kind}/{name} never got {key}={value}: {await cluster.get(kind, name)}") from None


@pytest.fixture
async def infra(chkmate: Cluster, github: github_api.GitHubDouble, git_server: gitserver.GitServer) -> Cluster:
    github.create_repo("acme", "infra")
    main_tf = 'resource "terraform_data" "app" {\n  input = "v1"\n}\n'
    head = git_server.commit_files("acme", "infra", "main", {"main.tf": main_tf}, "init")
    git_server.commit_files("acme", "infra", "staging", {"main.tf": main_tf}, "staging", parent=head)
    await connect(chkmate, github, allowedRepositories=["acme/*"])
    return chkmate


async def test_a_push_marks_the_environments_of_that_branch_at_once(
    infra: Cluster, hooks: GitHubHooks, git_server: gitserver.GitServer
) -> None:
    await infra.apply(environment("production", "main"))
    await infra.apply(environment("staging", "staging"))
    await infra.apply(environment("paused", "main", suspend=True))
    first = git_server.head("acme", "infra", "main") or ""
    await kube.wait_for(lambda: infra.get("Plan", f"production-{first[:10]}"), timeout=10)
    await kube.wait_for(hooks.listening, timeout=10)

    moved = git_server.commit_files("acme", "infra", "main", {"README.md": "moved\n"}, "move main")
    await hooks.accepted("push", push("main", moved, before=first))
    # The delivery itself created the Plan of the pushed commit, owned by its Environment: it is there when the
    # answer arrives (no poll interval, no reconcile to wait for).
    plan = await infra.get("Plan", f"production-{moved[:10]}")
    production = await infra.get("Environment", "production") or {}
    assert plan is not None, "the push's Plan exists once the delivery is answered"
    assert plan["spec"]["revision"] == f"main@sha1:{moved}" and plan["spec"]["environmentRef"]["name"] == "production"
    assert [o["uid"] for o in plan["metadata"]["ownerReferences"]] == [production["metadata"]["uid"]]
    await annotation(infra, "Environment", "production", "chkmate.dev/polledRevision", f"main@sha1:{moved}")
    staging = await infra.get("Environment", "staging") or {}
    assert "chkmate.dev/polledRevision" not in staging["metadata"].get("annotations", {})
    assert await infra.get("Plan", f"paused-{moved[:10]}") is None  # suspended: neither marked nor planned

    await hooks.accepted("push", push("staging", ZERO, before=moved) | {"deleted": True})
    await annotation(infra, "Environment", "staging", "chkmate.dev/polledRevision", "staging@missing")


async def test_a_pushed_commit_that_is_gone_by_the_time_git_looks_is_not_planned(
    infra: Cluster, hooks: GitHubHooks, git_server: gitserver.GitServer
) -> None:
    """The Plan of a pushed commit is created with the delivery; when the commit turns out not to be on the branch
    (force-pushed away) before anything ran, that Plan is deleted and the branch's real head is planned."""
    await infra.apply(environment("production", "main"))
    first = git_server.head("acme", "infra", "main") or ""
    await kube.wait_for(lambda: infra.get("Plan", f"production-{first[:10]}"), timeout=10)
    await kube.wait_for(hooks.listening, timeout=10)
    vanished = "5" * 40  # announced, but never reachable on the server
    real = git_server.commit_files("acme", "infra", "main", {"README.md": "real\n"}, "the real head")
    await hooks.accepted("push", push("main", vanished, before=first))
    await kube.wait_for(lambda: infra.get("Plan", f"production-{real[:10]}"), timeout=10)

    async def vanished_plan_gone() -> bool:
        return await infra.get("Plan", f"production-{vanished[:10]}") is None

    await kube.wait_for(vanished_plan_gone, timeout=10)
    deleted = [r for r in infra.emulator if r.method == "DELETE" and r.name == f"production-{vanished[:10]}"]
    assert deleted, "the vanished commit's Plan was created with the delivery, then deleted"


async def test_a_pushed_commit_overtaken_before_anyone_looked_never_runs(
    infra: Cluster, hooks: GitHubHooks, git_server: gitserver.GitServer, operator_memo: kopf.Memo
) -> None:
    """Two pushes, the first force-pushed away, both delivered while git is busy: the Environment's reconcile sees
    only the second mark. The first commit's Plan (created by its delivery) finds its commit gone and the branch
    marked elsewhere: it ends superseded instead of retrying forever."""
    await infra.apply(environment("production", "main"))
    first = git_server.head("acme", "infra", "main") or ""
    await kube.wait_for(lambda: infra.get("Plan", f"production-{first[:10]}"), timeout=10)
    await kube.wait_for(hooks.listening, timeout=10)
    env = await infra.get("Environment", "production") or {}
    vanished = "5" * 40
    real = git_server.commit_files("acme", "infra", "main", {"README.md": "real\n"}, "the real head")
    async with memos.of(operator_memo).lock(env["metadata"]["uid"]):  # the Environment's reconcile is busy...
        poke = {"metadata": {"annotations": {"example.com/poke": "1"}}}
        await infra.client.patch(kube_client.ours("environments"), NAMESPACE, "production", poke)
        await asyncio.sleep(0.3)  # ...with that change, while both pushes arrive: kopf hands it the last mark only
        await hooks.accepted("push", push("main", vanished, before=first))
        await hooks.accepted("push", push("main", real, before=vanished) | {"forced": True})
        await annotation(infra, "Environment", "production", "chkmate.dev/polledRevision", f"main@sha1:{real}")
    gone = await infra.wait_condition("Plan", f"production-{vanished[:10]}", "Planned", "True", "Superseded")
    assert gone["status"]["phase"] == "Superseded" and not gone["status"].get("planId")  # never ran
    await infra.wait_condition("Plan", f"production-{vanished[:10]}", "Ready", "True")  # nothing wrong: no alert
    await infra.wait_condition("Plan", f"production-{real[:10]}", "Planned", "True")


async def test_a_push_waiting_to_run_is_superseded_by_a_newer_one(
    infra: Cluster, hooks: GitHubHooks, git_server: gitserver.GitServer, operator_memo: kopf.Memo
) -> None:
    """Each push gets its Plan at once; one still waiting in line when a newer commit of the branch arrives never
    runs (the newer one is planned in its place), as when the Environment planned only the last of its marks."""
    await infra.apply(environment("production", "main"))
    first = git_server.head("acme", "infra", "main") or ""
    await infra.wait_condition("Plan", f"production-{first[:10]}", "Planned", "True")
    await kube.wait_for(hooks.listening, timeout=10)
    ours = memos.of(operator_memo)
    for _ in range(ours.settings.run_concurrency):  # every run slot taken: new runs wait in line
        await ours.run_gate.acquire()
    older = git_server.commit_files("acme", "infra", "main", {"a.tf": "# a\n"}, "older")
    newer = git_server.commit_files("acme", "infra", "main", {"b.tf": "# b\n"}, "newer")
    await hooks.accepted("push", push("main", older, before=first))
    await hooks.accepted("push", push("main", newer, before=older))
    await annotation(infra, "Plan", f"production-{older[:10]}", "chkmate.dev/supersededBy", f"production-{newer[:10]}")
    for _ in range(ours.settings.run_concurrency):
        ours.run_gate.release()
    skipped = await infra.wait_condition("Plan", f"production-{older[:10]}", "Planned", "True", "Superseded")
    assert skipped["status"]["phase"] == "Superseded" and not skipped["status"].get("planId")  # never ran
    planned = next(c for c in skipped["status"]["conditions"] if c["type"] == "Planned")
    assert planned["message"] == f"Superseded by production-{newer[:10]} before it ran."
    await infra.wait_condition("Plan", f"production-{newer[:10]}", "Planned", "True")


async def test_deliveries_for_other_repositories_or_badly_signed_are_refused_and_counted(
    infra: Cluster, hooks: GitHubHooks, operator_memo: kopf.Memo
) -> None:
    await kube.wait_for(hooks.listening, timeout=10)
    assert (await hooks.post("push", push("main", "1" * 40, repo="other/infra")))[0] == 403
    assert (await hooks.post("push", push("main", "1" * 40), secret="not-the-secret"))[0] == 401
    delivery = str(uuid.uuid4())
    await hooks.accepted("push", push("main", "2" * 40), delivery=delivery)
    assert await hooks.post("push", push("main", "2" * 40), delivery=delivery) == (200, "duplicate")
    metric = memos.of(operator_memo).metrics.webhook_deliveries_total
    samples = [sample for family in metric.collect() for sample in family.samples if sample.name.endswith("_total")]
    counted = {(sample.labels["event"], sample.labels["result"]): sample.value for sample in samples}
    assert counted[("push", "forbidden")] == counted[("push", "invalid_signature")] == 1
    assert counted[("push", "accepted")] == counted[("push", "duplicate")] == 1


async def test_pull_requests_get_plans_and_closing_deletes_them(
    infra: Cluster, hooks: GitHubHooks, git_server: gitserver.GitServer
) -> None:
    await infra.apply(environment("production", "main"))
    await infra.apply(environment("quiet", "main", planOnPullRequest=False))
    await kube.wait_for(hooks.listening, timeout=10)
    base = git_server.head("acme", "infra", "main") or ""
    head = git_server.commit_files("acme", "infra", "feature/x", {"extra.tf": "# more\n"}, "x", parent=base)
    opened = payload(
        "pull_request-opened",
        number=7,
        pull_request__number=7,
        pull_request__head__ref="feature/x",
        pull_request__head__sha=head,
        pull_request__base__ref="main",
    )
    await hooks.accepted("pull_request", opened)
    plan = await kube.wait_for(lambda: infra.get("Plan", f"production-pr7-{head[:10]}"), timeout=5)
    assert plan["spec"] == {
        "environmentRef": {"name": "production"},
        "revision": f"feature/x@sha1:{head}",
        "branch": "feature/x",
        "pullRequest": 7,
        "destroy": False,
        "kind": "plan",
    }
    assert await infra.get("Plan", f"quiet-pr7-{head[:10]}") is None

    closed = payload(
        "pull_request-closed-unmerged",
        number=7,
        pull_request__number=7,
        pull_request__head__ref="feature/x",
        pull_request__head__sha=head,
        pull_request__base__ref="main",
    )
    await kube.wait_for(lambda: _phase(infra, f"production-pr7-{head[:10]}"), timeout=10)
    await hooks.accepted("pull_request", closed)

    async def gone() -> bool:
        return await infra.get("Plan", f"production-pr7-{head[:10]}") is None

    await kube.wait_for(gone, timeout=5)


async def _phase(cluster: Cluster, name: str) -> str | None:
    obj = await cluster.get("Plan", name) or {}
    phase: str | None = obj.get("status", {}).get("phase")
    return phase


async def test_an_installation_event_reconciles_the_connection_using_it(
    chkmate: Cluster, hooks: GitHubHooks, github: github_api.GitHubDouble, github_app: App
) -> None:
    github.create_repo("acme", "infra")
    await connect(chkmate, github, app=github_app)
    await kube.wait_for(hooks.listening, timeout=10)
    delivery = str(uuid.uuid4())
    event = payload("installation-created", installation__id=github_app.installation_id)
    await hooks.accepted("installation", event, delivery=delivery)
    await annotation(chkmate, "GitHubConnection", "gh", "chkmate.dev/requestedAt", f"webhook-{delivery}")

    async def handled() -> bool:
        obj = await chkmate.get("GitHubConnection", "gh") or {}
        return bool(obj.get("status", {}).get("lastHandledReconcileAt") == f"webhook-{delivery}")

    await kube.wait_for(handled, timeout=10)
    other = payload("installation-created", installation__id=github_app.installation_id + 1)
    assert (await hooks.post("installation", other))[0] == 202  # accepted, but no connection uses it


async def test_the_receiver_listens_only_once_a_connection_has_a_webhook_secret(
    chkmate: Cluster, hooks: GitHubHooks, github: github_api.GitHubDouble
) -> None:
    await chkmate.secret("gh-token", {"token": TOKEN})
    await chkmate.apply(
        {
            "apiVersion": "chkmate.dev/v1alpha1",
            "kind": "GitHubConnection",
            "metadata": {"name": "plain"},
            "spec": {"apiUrl": github.url, "tokenSecretRef": {"name": "gh-token", "key": "token"}},
        }
    )
    await chkmate.wait_condition("GitHubConnection", "plain", "Ready", "True")
    assert not await hooks.listening()  # no secret to verify deliveries with: the port stays closed
    await chkmate.secret("gh-hook", {"secret": WEBHOOK_SECRET})
    await chkmate.patch(
        "GitHubConnection", "plain", {"spec": {"webhookSecretRef": {"name": "gh-hook", "key": "secret"}}}
    )
    await kube.wait_for(hooks.listening, timeout=10)
