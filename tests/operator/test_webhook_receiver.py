"""The webhook receiver served on 127.0.0.1, fed signed deliveries with GitHub's payload shapes.

Two connections share the receiver, each with its own secret and allowed repositories; the operator's
callbacks are recorders. Every delivery must be answered with the right status and counted once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import json
import logging
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from chkmate.domain import access
from chkmate.webhooks import events, receiver

DATA = Path(__file__).parents[1] / "data" / "webhooks"
ACME, OTHER = "default/acme", "default/other"
SECRETS = {ACME: "acme-webhook-s3cr3t", OTHER: "other-webhook-s3cr3t"}
ALLOWED = {ACME: ["acme/*"], OTHER: ["other/infra"]}
HEAD = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


def fixture(name: str) -> bytes:
    return (DATA / f"{name}.json").read_bytes()


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclasses.dataclass
class Hooks:
    """A running receiver with recording callbacks, and a client that posts deliveries to it."""

    receiver: receiver.Receiver
    session: aiohttp.ClientSession
    marked: list[tuple[str, list[events.Mark], str]]
    counted: Counter[tuple[str, str]]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.receiver.port}{receiver.DEFAULT_PATH}"

    async def deliver(
        self,
        event: str,
        body: bytes,
        *,
        secret: str = SECRETS[ACME],
        delivery: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, str]:
        sent = {
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/7c1a2b3",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
            "X-GitHub-Hook-ID": "512345678",
            "X-Hub-Signature-256": sign(body, secret),
            **(headers or {}),
        }
        async with self.session.post(self.url, data=body, headers=sent) as response:
            return response.status, await response.text()


Serve = Callable[..., Coroutine[Any, Any, Hooks]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Starts receivers (options as keywords, plus ``mark=`` to replace the recorder) and stops them after."""
    started: list[receiver.Receiver] = []
    async with aiohttp.ClientSession() as session:

        async def start(mark: receiver.MarkSink | None = None, **options: Any) -> Hooks:
            marked: list[tuple[str, list[events.Mark], str]] = []
            counted: Counter[tuple[str, str]] = Counter()

            async def secrets() -> list[tuple[str, str]]:
                return list(SECRETS.items())

            async def allowed(connection: str, full_name: str) -> bool:
                return access.allows(ALLOWED[connection], full_name)

            async def record(connection: str, marks: list[events.Mark], delivery: str) -> None:
                await asyncio.sleep(0.01)  # a few Kubernetes patches: lets concurrent deliveries overlap
                marked.append((connection, marks, delivery))

            def count(event: str, result: str) -> None:
                counted[event, result] += 1

            hooks = receiver.Receiver(secrets=secrets, allowed=allowed, mark=mark or record, count=count, **options)
            await hooks.start(host="127.0.0.1", port=0)
            started.append(hooks)
            return Hooks(hooks, session, marked, counted)

        yield start
        for hooks in started:
            await hooks.stop()


@pytest.fixture
async def hooks(serve: Serve) -> Hooks:
    return await serve()


@pytest.mark.parametrize(
    ("event", "name", "expected"),
    [
        ("push", "push", events.PushMark("acme/infra", "main", HEAD, deleted=False)),
        (
            "pull_request",
            "pull_request-synchronize",
            events.PullRequestMark("acme/infra", 42, "synchronize", "feature/bigger-web", HEAD, "main", merged=False),
        ),
        (
            "pull_request",
            "pull_request-closed-merged",
            events.PullRequestMark("acme/infra", 42, "closed", "feature/bigger-web", HEAD, "main", merged=True),
        ),
        ("installation", "installation-suspend", events.InstallationMark(48213377, "suspend")),
        (
            "installation_repositories",
            "installation_repositories-added",
            events.InstallationMark(48213377, "added", repositories_added=("acme/networking",)),
        ),
        (
            "issue_comment",
            "issue_comment-created-pull_request",
            events.CommentCommandMark("acme/infra", 42, "plan", "prod", "bob", 1990001),
        ),
    ],
)
async def test_a_signed_delivery_marks_what_changed(hooks: Hooks, event: str, name: str, expected: events.Mark) -> None:
    assert await hooks.deliver(event, fixture(name), delivery="d-1") == (202, "accepted")
    assert hooks.marked == [(ACME, [expected], "d-1")]
    assert hooks.counted == {(event, "accepted"): 1}


async def test_the_connection_whose_secret_verifies_is_the_one_marked_for(hooks: Hooks) -> None:
    body = json.dumps({**json.loads(fixture("push")), "repository": {"full_name": "other/infra"}}).encode()
    assert await hooks.deliver("push", body, secret=SECRETS[OTHER], delivery="d-2") == (202, "accepted")
    assert hooks.marked == [(OTHER, [events.PushMark("other/infra", "main", HEAD, deleted=False)], "d-2")]


async def test_ping_answers_with_zen(hooks: Hooks) -> None:
    assert await hooks.deliver("ping", fixture("ping")) == (200, "Keep it logically awesome.")
    assert hooks.marked == []
    assert hooks.counted == {("ping", "accepted"): 1}


async def test_known_events_with_nothing_to_do_are_ignored(hooks: Hooks) -> None:
    assert await hooks.deliver("pull_request", fixture("pull_request-labeled")) == (202, "ignored")
    assert await hooks.deliver("issue_comment", fixture("issue_comment-created-issue")) == (202, "ignored")
    assert await hooks.deliver("star", b'{"action": "created", "repository": {"full_name": "acme/infra"}}') == (
        202,
        "ignored",
    )
    assert hooks.marked == []
    assert hooks.counted == {("pull_request", "ignored"): 1, ("issue_comment", "ignored"): 1, ("other", "ignored"): 1}


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"X-Hub-Signature-256": sign(fixture("push"), "not-the-secret")}, id="wrong-secret"),
        pytest.param({"X-Hub-Signature-256": sign(b"{}", SECRETS[ACME])}, id="other-body"),
        pytest.param(
            {
                "X-Hub-Signature-256": "sha1=" + hmac.new(SECRETS[ACME].encode(), fixture("push"), "sha1").hexdigest(),
                "X-Hub-Signature": "sha1=" + hmac.new(SECRETS[ACME].encode(), fixture("push"), "sha1").hexdigest(),
            },
            id="sha1",
        ),
        pytest.param({"X-Hub-Signature-256": sign(fixture("push"), SECRETS[ACME]).removeprefix("sha256=")}, id="bare"),
        pytest.param({"X-Hub-Signature-256": "sha256=é" + "0" * 63}, id="not-ascii"),
        pytest.param({"X-Hub-Signature-256": ""}, id="empty"),
    ],
)
async def test_a_delivery_not_signed_with_a_connection_secret_is_refused(hooks: Hooks, headers: dict[str, str]) -> None:
    status, text = await hooks.deliver("push", fixture("push"), headers=headers)
    assert (status, text) == (401, receiver.INVALID_SIGNATURE.text)
    assert hooks.marked == []
    assert hooks.counted == {("push", "invalid_signature"): 1}


async def test_a_delivery_without_a_signature_is_refused(hooks: Hooks) -> None:
    body = fixture("push")
    headers = {"Content-Type": "application/json", "X-GitHub-Event": "push", "X-GitHub-Delivery": "d-3"}
    async with hooks.session.post(hooks.url, data=body, headers=headers) as response:
        assert response.status == 401
    assert hooks.counted == {("push", "invalid_signature"): 1}


async def test_an_oversized_delivery_is_refused_before_it_is_verified(serve: Serve) -> None:
    hooks = await serve(max_body=4096)
    body = json.dumps({**json.loads(fixture("push")), "padding": "x" * 4096}).encode()
    assert (await hooks.deliver("push", body))[0] == 413

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the cap applies while reading
        for start in range(0, len(body), 1024):
            yield body[start : start + 1024]

    headers = {"Content-Type": "application/json", "X-GitHub-Event": "push", "X-Hub-Signature-256": sign(body, "x")}
    async with hooks.session.post(hooks.url, data=chunks(), headers=headers) as response:
        assert response.status == 413
    assert await hooks.deliver("push", fixture("push")) == (202, "accepted")
    assert hooks.counted == {("push", "too_large"): 2, ("push", "accepted"): 1}


async def test_form_encoded_deliveries_are_not_supported(hooks: Hooks) -> None:
    body = b"payload=" + fixture("push")
    status, text = await hooks.deliver("push", body, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert (status, text) == (415, receiver.UNSUPPORTED.text)
    assert "form-encoded" in text
    assert hooks.counted == {("push", "unsupported"): 1}


async def test_a_replayed_delivery_is_dropped_as_a_duplicate(hooks: Hooks) -> None:
    assert await hooks.deliver("push", fixture("push"), delivery="d-4") == (202, "accepted")
    assert await hooks.deliver("push", fixture("push"), delivery="d-4") == (200, "duplicate")
    assert len(hooks.marked) == 1
    assert hooks.counted == {("push", "accepted"): 1, ("push", "duplicate"): 1}


async def test_only_the_last_delivery_ids_are_remembered(serve: Serve) -> None:
    hooks = await serve(remembered=2)
    results = [(await hooks.deliver("push", fixture("push"), delivery=d))[1] for d in ["a", "b", "c", "b", "a"]]
    assert results == ["accepted", "accepted", "accepted", "duplicate", "accepted"]


async def test_a_repository_the_connection_does_not_allow_is_forbidden(hooks: Hooks) -> None:
    body = json.dumps({**json.loads(fixture("push")), "repository": {"full_name": "other/infra"}}).encode()
    status, text = await hooks.deliver("push", body)
    assert (status, text) == (403, "The repository other/infra is not allowed for this connection.")
    status, _ = await hooks.deliver("pull_request", fixture("pull_request-opened"), secret=SECRETS[OTHER])
    assert status == 403
    assert hooks.marked == []
    assert hooks.counted == {("push", "forbidden"): 1, ("pull_request", "forbidden"): 1}


@pytest.mark.parametrize(
    ("event", "body", "headers"),
    [
        pytest.param("push", b'{"ref": ', {}, id="truncated-json"),
        pytest.param("push", b"[1, 2]", {}, id="not-an-object"),
        pytest.param("push", b"\xff\xfe", {}, id="not-utf8"),
        pytest.param("push", b"[" * 100_000 + b"]" * 100_000, {}, id="nested-too-deeply"),
        pytest.param("push", b'{"ref": "refs/heads/main"}', {}, id="missing-fields"),
        pytest.param("push", fixture("push"), {"X-GitHub-Delivery": ""}, id="no-delivery-id"),
        pytest.param("", fixture("push"), {}, id="no-event"),
    ],
)
async def test_a_malformed_delivery_is_a_bad_request(
    hooks: Hooks, event: str, body: bytes, headers: dict[str, str]
) -> None:
    status, _ = await hooks.deliver(event, body, headers=headers)
    assert status == 400
    assert hooks.counted == {(event or "other", "bad_request"): 1}


async def test_a_failed_mark_is_an_error_and_the_redelivery_runs(serve: Serve) -> None:
    failures = [RuntimeError("the Kubernetes API is down")]
    marked: list[str] = []

    async def mark(connection: str, marks: list[events.Mark], delivery: str) -> None:
        if failures:
            raise failures.pop()
        marked.append(delivery)

    hooks = await serve(mark=mark)
    assert (await hooks.deliver("push", fixture("push"), delivery="d-5"))[0] == 500
    assert await hooks.deliver("push", fixture("push"), delivery="d-5") == (202, "accepted")
    assert marked == ["d-5"]
    assert hooks.counted == {("push", "error"): 1, ("push", "accepted"): 1}


async def test_fifty_deliveries_at_once_are_all_accounted_for(hooks: Hooks) -> None:
    ids = [f"d-{i}" for i in range(50)]
    answers = await asyncio.gather(*(hooks.deliver("push", fixture("push"), delivery=d) for d in ids))
    assert answers == [(202, "accepted")] * 50
    assert sorted(delivery for _, _, delivery in hooks.marked) == sorted(ids)
    assert hooks.counted == {("push", "accepted"): 50}


async def test_the_same_delivery_arriving_twice_at_once_marks_once(hooks: Hooks) -> None:
    answers = await asyncio.gather(*(hooks.deliver("push", fixture("push"), delivery="d-6") for _ in range(10)))
    assert sorted(answers) == [(200, "duplicate")] * 9 + [(202, "accepted")]
    assert len(hooks.marked) == 1


async def test_it_refuses_to_start_without_a_webhook_secret() -> None:
    async def no_secrets() -> list[tuple[str, str]]:
        return []

    async def unused(*_: Any) -> Any:
        raise AssertionError("not called")

    hooks = receiver.Receiver(secrets=no_secrets, allowed=unused, mark=unused)
    with pytest.raises(receiver.MissingWebhookSecret, match="webhookSecretRef"):
        await hooks.start(host="127.0.0.1", port=0)
    await hooks.stop()


async def test_each_delivery_logs_one_debug_line_without_secrets(
    hooks: Hooks, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="chkmate.webhooks")
    body = fixture("push")
    await hooks.deliver("push", body, delivery="d-7")
    await hooks.deliver("push", body, delivery="d-8", secret="not-the-secret")
    lines = [record.getMessage() for record in caplog.records]
    assert [line.split(" in ")[0] for line in lines] == [
        "Webhook delivery d-7 (event push) was accepted",
        "Webhook delivery d-8 (event push) was invalid_signature",
    ]
    logged = caplog.text
    for secret in [*SECRETS.values(), "not-the-secret"]:
        assert secret not in logged
        assert sign(body, secret).removeprefix("sha256=") not in logged
