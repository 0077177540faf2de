"""The endpoint receiving audit events from the API server's webhook backend.

It runs on its own thread and event loop, so no audit traffic can delay the
agent's ``/healthz``; its handler only admits and reads bodies. Decoding and
rule evaluation happen on the :class:`AuditIntake` worker. Bounds, each
answered with a small JSON error and counted:

- ``max_concurrent_requests`` requests at once and ``max_pending_bytes`` of
  bodies being read or waiting: beyond them ``429`` (the API server retries);
- ``max_body_bytes`` per body: ``413``, before reading when announced;
- ``read_timeout_s`` of silence while the headers (aiohttp's keep-alive timer,
  which also runs from the moment a connection opens) or the body are read,
  and ``body_timeout_s`` for the whole body: the connection is closed (``408``
  once the headers are in);
- error answers list at most ``MAX_LISTED_ERRORS`` rejected items.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from falcopy.agent.audit.decode import AuditDecodeError, ItemError, iter_body
from falcopy.agent.audit.intake import AuditIntake, Reservation
from falcopy.agent.audit.settings import AuditWebhookConfig
from falcopy.agent.audit.stats import WebhookStats

from falcopy.common.http_site import start_site
from falcopy.common.malloc import pin_mmap_threshold
from falcopy.engine.fields.k8s_audit import AuditEvent

log = logging.getLogger(__name__)

OnEvent = Callable[[AuditEvent], None]

_JSON_TYPES = frozenset({"application/json"})
#: rejected EventList items named in an answer (the rest are counted)
MAX_LISTED_ERRORS = 10
_MESSAGE_MAX = 200


@dataclass
class Outcome:
    """What the worker made of one body."""

    accepted: int = 0
    callback_errors: int = 0
    rejected_items: int = 0
    listed: list[ItemError] = field(default_factory=list)
    error: AuditDecodeError | None = None


def _error(status: int, reason: str, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": reason, "message": message[:_MESSAGE_MAX], **extra}, status=status)


def evaluate_body(body: bytes | bytearray, on_event: OnEvent, cluster_name: str | None) -> Outcome:
    """Decode ``body`` one event at a time and hand each valid one to ``on_event`` (worker thread)."""
    outcome = Outcome()
    try:
        items = iter_body(body, cluster_name=cluster_name, received_ns=time.time_ns())
    except AuditDecodeError as exc:
        outcome.error = exc
        return outcome
    for item in items:
        if isinstance(item, ItemError):
            outcome.rejected_items += 1
            if len(outcome.listed) < MAX_LISTED_ERRORS:
                outcome.listed.append(item)
            continue
        outcome.accepted += 1
        try:
            on_event(item)
        except Exception:  # a failing consumer must not take the endpoint down
            outcome.callback_errors += 1
            log.exception("audit webhook: event handler failed for %r", item)
    return outcome


class _Handler:
    def __init__(self, settings: AuditWebhookConfig, intake: AuditIntake[Outcome],
                 stats: WebhookStats) -> None:
        self.max_body = int(settings.max_body_bytes)
        self.max_concurrent = int(settings.max_concurrent_requests)
        self.read_timeout = float(settings.read_timeout_s)
        self.body_timeout = float(settings.body_timeout_s)
        self.intake = intake
        self.stats = stats
        self.in_flight = 0

    def _busy(self, reason: str, message: str) -> web.Response:
        self.stats.reject(reason)
        resp = _error(429, reason, message)
        resp.headers["Retry-After"] = "1"
        return resp

    async def handle(self, request: web.Request) -> web.StreamResponse:
        stats = self.stats
        stats.requests += 1
        if request.content_type not in _JSON_TYPES:
            stats.reject("content_type")
            return _error(415, "content_type",
                          f"Content-Type must be application/json, got {request.content_type!r}")
        length = request.content_length
        if length is not None and length > self.max_body:
            stats.reject("too_large")
            return _error(413, "too_large", f"body over the limit of {self.max_body} bytes")
        if self.in_flight >= self.max_concurrent:
            return self._busy("too_many_requests",
                              f"more than {self.max_concurrent} requests at once; retry later")
        reservation = self.intake.reserve(length if length is not None else self.max_body)
        if reservation is None:
            return self._busy("queue_full", "the audit queue is full; retry later")
        self.in_flight += 1
        try:
            return await self._read_and_evaluate(request, reservation)
        finally:
            self.in_flight -= 1
            if not reservation.queued:  # else the worker releases it when done with the body
                reservation.release()

    async def _read_and_evaluate(self, request: web.Request, reservation: Reservation) -> web.StreamResponse:
        stats = self.stats
        try:
            async with asyncio.timeout(self.body_timeout):
                body = await _read_limited(request, self.max_body, self.read_timeout)
        except TimeoutError:
            stats.reject("read_timeout")
            message = (f"body not received: silent for {self.read_timeout:g}s, or not complete "
                       f"within {self.body_timeout:g}s")
            log.warning("audit webhook: %s: %s", request.remote, message)
            resp = _error(408, "read_timeout", message)
            resp.force_close()
            # answer and hang up now: aiohttp would otherwise keep reading (lingering) what is left
            await resp.prepare(request)
            await resp.write_eof()
            if request.transport is not None:
                request.transport.close()
            return resp
        if body is None:
            stats.reject("too_large")
            return _error(413, "too_large", f"body over the limit of {self.max_body} bytes")
        future = asyncio.wrap_future(self.intake.submit(reservation, body))
        del body
        # the stats are applied even if the client goes away before the answer
        future.add_done_callback(self._count)
        outcome = await asyncio.shield(future)
        return self._answer(outcome, request)

    def _count(self, future: asyncio.Future[Outcome]) -> None:
        if future.cancelled() or future.exception() is not None:
            return
        outcome, stats = future.result(), self.stats
        stats.events_accepted += outcome.accepted
        stats.callback_errors += outcome.callback_errors
        if outcome.error is not None:
            stats.reject(outcome.error.reason)
            stats.events_rejected += 1
        elif outcome.rejected_items:
            stats.events_rejected += outcome.rejected_items
            stats.reject("invalid_event")

    def _answer(self, outcome: Outcome, request: web.Request) -> web.Response:
        if outcome.error is not None:
            log.warning("audit webhook: rejected request from %s: %s", request.remote,
                        str(outcome.error)[:_MESSAGE_MAX])
            return _error(400, outcome.error.reason, str(outcome.error))
        if outcome.rejected_items:
            log.warning("audit webhook: %d invalid item(s) in EventList from %s: %s",
                        outcome.rejected_items, request.remote,
                        "; ".join(f"items[{e.index}]: {e.message}" for e in outcome.listed[:3]))
            return web.json_response(
                {"error": "invalid_event", "accepted": outcome.accepted,
                 "rejected_total": outcome.rejected_items,
                 "rejected": [{"index": e.index, "message": e.message[:_MESSAGE_MAX]}
                              for e in outcome.listed]},
                status=400)
        return web.json_response({"accepted": outcome.accepted})


async def _read_limited(request: web.Request, limit: int, idle_timeout: float) -> bytearray | None:
    """The body, or None as soon as it exceeds ``limit``; TimeoutError when the
    client stays silent for ``idle_timeout``.

    A body with a Content-Length is read into one buffer of that size (no
    chunk list and join: one copy of the body at most); chunked bodies carry no
    length, so the limit is enforced while reading rather than trusted.
    """
    length = request.content_length
    buf = bytearray(length) if length is not None else bytearray()
    view = memoryview(buf) if length is not None else None
    pos = 0
    while True:
        async with asyncio.timeout(idle_timeout):
            chunk = await request.content.readany()
        if not chunk:
            break
        if view is not None:
            view[pos:pos + len(chunk)] = chunk
        elif len(buf) + len(chunk) > limit:
            return None
        else:
            buf += chunk
        pos += len(chunk)
    if view is not None:
        view.release()
    return buf


def ssl_context(settings: AuditWebhookConfig) -> ssl.SSLContext | None:
    if not settings.ssl_enabled:
        return None
    if not settings.ssl_certificate:
        raise ValueError("k8s_audit.ssl_enabled needs ssl_certificate")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(settings.ssl_certificate, settings.ssl_key or None)
    client_ca: str = getattr(settings, "ssl_client_ca", "") or ""
    if client_ca:
        # only the API server holds a certificate from this CA: anyone else fails the handshake
        ctx.load_verify_locations(client_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


class AuditWebhook:
    """The running endpoint: ``await start()``, ``await stop()``.

    ``on_event`` is called on the intake's worker thread, one event at a time.
    """

    def __init__(self, config: AuditWebhookConfig, on_event: OnEvent) -> None:
        self.config = config
        self.on_event = on_event
        self.stats = WebhookStats()
        cluster_name: str | None = getattr(config, "cluster_name", None)
        self.intake: AuditIntake[Outcome] = AuditIntake(
            lambda body: evaluate_body(body, on_event, cluster_name), int(config.max_pending_bytes))
        self.handler = _Handler(config, self.intake, self.stats)
        self.app = web.Application()
        self.app.router.add_post(config.path, self.handler.handle)
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    async def start(self) -> None:
        ssl_ctx = ssl_context(self.config)  # bad TLS material fails here, in the caller
        pin_mmap_threshold()
        started: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._serve, args=(ssl_ctx, started),
                                        name="falcopy-audit-http", daemon=True)
        self.intake.start()
        self._thread.start()
        try:
            await asyncio.wrap_future(started)
        except BaseException:
            self.intake.stop()
            raise
        log.info("k8s audit webhook listening on %s", self.url)

    def _serve(self, ssl_ctx: ssl.SSLContext | None, started: concurrent.futures.Future[None]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            try:
                loop.run_until_complete(self._start_site(ssl_ctx))
            except BaseException as exc:
                started.set_exception(exc)
                return
            started.set_result(None)
            loop.run_forever()
            if self._runner is not None:
                loop.run_until_complete(self._runner.cleanup())
        finally:
            loop.close()

    async def _start_site(self, ssl_ctx: ssl.SSLContext | None) -> None:
        # keepalive_timeout also runs from connection start: headers must come within it
        cfg = self.config
        self._runner = await start_site(self.app, cfg.listen_address, cfg.listen_port, ssl_ctx,
                                        keepalive_timeout=float(cfg.read_timeout_s),
                                        handler_cancellation=True)

    async def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            await asyncio.get_running_loop().run_in_executor(None, thread.join, 10.0)
        self.intake.stop()
        self._runner = None
        self._loop = self._thread = None

    @property
    def port(self) -> int:
        """The bound port (useful with ``listen_port: 0``)."""
        if self._runner is None or not self._runner.addresses:
            raise RuntimeError("webhook not started")
        address: Any = self._runner.addresses[0]
        return int(address[1])

    @property
    def url(self) -> str:
        scheme = "https" if self.config.ssl_enabled else "http"
        host = self.config.listen_address
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        return f"{scheme}://{host}:{self.port}{self.config.path}"
