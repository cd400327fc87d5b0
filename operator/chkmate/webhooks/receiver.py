"""The GitHub webhook receiver: an aiohttp server that verifies deliveries and marks (on the loop it is started
on; the operator gives it a lane of its own, :mod:`chkmate.controllers.webhook_marks`).

A delivery is checked in this order, each failure answered at once and counted: body size (413), the
``X-Hub-Signature-256`` HMAC against every connection's webhook secret in constant time, before anything is
parsed (401; ``sha1=`` signatures are refused), ``Content-Type: application/json`` (415; GitHub's
form-encoded deliveries are not supported), the event and delivery headers and JSON (400), a repeated
delivery id (200 ``duplicate``, so GitHub does not retry), and the repository against the connection whose
secret verified it (403). Then :func:`chkmate.webhooks.events.route` says what changed and the operator's
``mark`` callback marks the affected objects for reconcile; nothing heavier happens here.

I/O: serves HTTP and awaits the three callbacks the operator supplies (secrets, allowed, mark). It never logs
or stores a secret or a signature.
"""

from __future__ import annotations

import collections
import enum
import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NamedTuple

from aiohttp import web

from chkmate import errors
from chkmate.api.conditions import Reasons
from chkmate.webhooks import events

ConnectionKey = str  # the GitHubConnection a secret belongs to, as the operator names it ("namespace/name")
Secrets = Callable[[], Awaitable[list[tuple[ConnectionKey, str]]]]
Allowed = Callable[[ConnectionKey, str], Awaitable[bool]]
MarkSink = Callable[[ConnectionKey, list[events.Mark], str], Awaitable[None]]
Count = Callable[[str, str], None]

DEFAULT_PATH = "/webhooks/github"
DEFAULT_MAX_BODY = 25 * 1024 * 1024  # GitHub caps webhook payloads at 25 MB and does not send larger ones
DEFAULT_REMEMBERED = 10_000  # delivery ids kept for duplicate detection: hours of traffic at 1 delivery/s
SIGNATURE_HEADER = "X-Hub-Signature-256"
SIGNATURE_PREFIX = "sha256="
EVENT_HEADER = "X-GitHub-Event"
DELIVERY_HEADER = "X-GitHub-Delivery"
JSON = "application/json"

logger = logging.getLogger(__name__)


class Result(enum.StrEnum):
    """The outcome of one delivery: the ``result`` label of the deliveries metric."""

    ACCEPTED = "accepted"
    INVALID_SIGNATURE = "invalid_signature"
    UNSUPPORTED = "unsupported"
    DUPLICATE = "duplicate"
    TOO_LARGE = "too_large"
    BAD_REQUEST = "bad_request"
    FORBIDDEN = "forbidden"
    IGNORED = "ignored"
    ERROR = "error"  # a callback failed: answered 500, and a redelivery is not taken for a duplicate


class MissingWebhookSecret(errors.ChkmateError):
    """No GitHubConnection has a webhook secret: the receiver would accept nothing it could verify."""

    reason = Reasons.SECRET_NOT_FOUND


class Answer(NamedTuple):
    status: int
    result: Result
    text: str


TOO_LARGE = Answer(413, Result.TOO_LARGE, "The delivery is larger than this receiver accepts.")
INVALID_SIGNATURE = Answer(
    401, Result.INVALID_SIGNATURE, f"The {SIGNATURE_HEADER} header is missing or does not match any webhook secret."
)
UNSUPPORTED = Answer(
    415,
    Result.UNSUPPORTED,
    "Only application/json deliveries are supported: set the webhook's content type to application/json "
    "(form-encoded payloads are not).",
)
DUPLICATE = Answer(200, Result.DUPLICATE, "duplicate")
IGNORED = Answer(202, Result.IGNORED, "ignored")
ACCEPTED = Answer(202, Result.ACCEPTED, "accepted")
ERROR = Answer(500, Result.ERROR, "The delivery could not be recorded; redeliver it.")
REMEMBERED = frozenset({Result.ACCEPTED, Result.IGNORED})  # fully handled: a repeat of these is a duplicate


class Deliveries:
    """Delivery ids being handled and the last ``capacity`` ones handled (least recently seen dropped first)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._seen: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._in_flight: set[str] = set()

    def begin(self, delivery: str) -> bool:
        """True when the id is new; False for a repeat of one handled or being handled."""
        if delivery in self._seen:
            self._seen.move_to_end(delivery)
            return False
        if delivery in self._in_flight:
            return False
        self._in_flight.add(delivery)
        return True

    def finish(self, delivery: str, *, remember: bool) -> None:
        """Done with the id; remember it only when it was fully handled, so a redelivery after a failure runs."""
        self._in_flight.discard(delivery)
        if remember:
            self._seen[delivery] = None
            while len(self._seen) > self.capacity:
                self._seen.popitem(last=False)


class Receiver:
    """One receiver for every GitHubConnection: a delivery belongs to the connection whose secret verifies it.

    ``secrets()`` lists ``(connection, secret)`` pairs and is awaited once per delivery (cache it);
    ``allowed(connection, "owner/name")`` applies the connection's ``allowedRepositories``;
    ``mark(connection, marks, delivery_id)`` marks objects for reconcile; ``count(event, result)`` records the
    metric. ``port`` 0 binds a free port (read it back from :attr:`port`).
    """

    def __init__(
        self,
        *,
        secrets: Secrets,
        allowed: Allowed,
        mark: MarkSink,
        count: Count | None = None,
        path: str = DEFAULT_PATH,
        max_body: int = DEFAULT_MAX_BODY,
        remembered: int = DEFAULT_REMEMBERED,
    ) -> None:
        self._secrets = secrets
        self._allowed = allowed
        self._mark = mark
        self._count = count or _not_counted
        self.path = path
        self.max_body = max_body
        self.deliveries = Deliveries(remembered)
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        """The aiohttp application (one POST route); :meth:`start` serves it."""
        app = web.Application(client_max_size=self.max_body)
        app.router.add_post(self.path, self.handle)
        return app

    async def start(self, *, port: int, host: str = "0.0.0.0") -> None:
        """Serve on ``host:port``; raises :class:`MissingWebhookSecret` when no connection has a secret."""
        if not await self._secrets():
            raise MissingWebhookSecret(
                "The webhook receiver needs a secret: set webhookSecretRef on a GitHubConnection "
                "(or turn webhooks off)."
            )
        runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        logger.info("The GitHub webhook receiver listens on port %d at %s.", self.port, self.path)

    @property
    def port(self) -> int:
        """The port actually bound (useful after starting on port 0)."""
        if self._runner is None:
            raise RuntimeError("the webhook receiver is not started")
        address: tuple[str, int] = self._runner.addresses[0]
        return address[1]

    async def stop(self) -> None:
        """Stop serving and close open connections; does nothing when not started."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def handle(self, request: web.Request) -> web.Response:
        """Answer one delivery, count it and log one debug line."""
        started = time.monotonic()
        event = request.headers.get(EVENT_HEADER, "")
        delivery = request.headers.get(DELIVERY_HEADER, "")
        answer = await self._answer(request, event, delivery)
        self._count(events.label(event), answer.result)
        logger.debug(
            "Webhook delivery %s (event %s) was %s in %.1f ms.",
            _printable(delivery),
            _printable(event),
            answer.result,
            (time.monotonic() - started) * 1000,
        )
        return web.Response(status=answer.status, text=answer.text)

    async def _answer(self, request: web.Request, event: str, delivery: str) -> Answer:
        body = await self._read(request)
        if body is None:
            return TOO_LARGE
        connection = await self._verify(body, request.headers.get(SIGNATURE_HEADER, ""))
        if connection is None:
            return INVALID_SIGNATURE
        if request.content_type != JSON:
            return UNSUPPORTED
        if not event or not delivery:
            return _bad_request(f"The {EVENT_HEADER} and {DELIVERY_HEADER} headers are required.")
        if not self.deliveries.begin(delivery):
            return DUPLICATE
        answer = ERROR
        try:
            answer = await self._dispatch(connection, event, delivery, body)
        except Exception:  # a failing callback (Kubernetes API down): answer 500 and let the delivery be redelivered
            logger.exception("Handling webhook delivery %s failed.", _printable(delivery))
        finally:
            self.deliveries.finish(delivery, remember=answer.result in REMEMBERED)
        return answer

    async def _read(self, request: web.Request) -> bytes | None:
        """The body, or None when it is over the cap (declared up front or found while reading)."""
        if request.content_length is not None and request.content_length > self.max_body:
            return None
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge:
            return None

    async def _verify(self, body: bytes, signature: str) -> ConnectionKey | None:
        """The connection whose secret signed ``body``, or None (``sha1=`` and missing signatures included)."""
        given = signature.removeprefix(SIGNATURE_PREFIX)
        if given == signature or not given.isascii():
            return None
        for connection, secret in await self._secrets():
            expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            if hmac.compare_digest(expected, given):
                return connection
        return None

    async def _dispatch(self, connection: ConnectionKey, event: str, delivery: str, body: bytes) -> Answer:
        """Decode, route, check the repository and mark: the delivery is authentic from here on."""
        try:
            payload = _decode(body)
        except ValueError as e:
            return _bad_request(f"The body is not a JSON object: {e}")
        if event == events.PING:
            zen = payload.get("zen")
            return Answer(200, Result.ACCEPTED, zen if isinstance(zen, str) else "pong")
        if event not in events.KNOWN:
            return IGNORED
        try:
            repository = events.repository(payload)
            marks = events.route(event, payload)
        except events.MalformedPayload as e:
            return _bad_request(f"The {event} payload is malformed: {e}")
        if repository is not None and not await self._allowed(connection, repository):
            return Answer(403, Result.FORBIDDEN, f"The repository {repository} is not allowed for this connection.")
        if not marks:
            return IGNORED
        await self._mark(connection, marks, delivery)
        return ACCEPTED


def _decode(body: bytes) -> Mapping[str, Any]:
    try:
        payload = json.loads(body)
    except RecursionError as e:
        raise ValueError("nested too deeply") from e
    if not isinstance(payload, dict):
        raise ValueError(f"found {type(payload).__name__}")
    return payload


def _bad_request(text: str) -> Answer:
    return Answer(400, Result.BAD_REQUEST, text)


def _printable(value: str) -> str:
    """A header value safe for one log line: GitHub's ids and event names pass unchanged, anything else is masked."""
    return re.sub(r"[^A-Za-z0-9._-]", "?", value[:64]) or "-"


def _not_counted(event: str, result: str) -> None:
    """The default counter: the operator passes its metric instead."""
