"""aiohttp endpoint receiving audit events from the API server's webhook backend."""

from __future__ import annotations

import inspect
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from falcopy.agent.audit.decode import AuditDecodeError, decode_body
from falcopy.agent.audit.settings import AuditWebhookConfig
from falcopy.agent.audit.stats import WebhookStats

from falcopy.engine.fields.k8s_audit import AuditEvent

log = logging.getLogger(__name__)

OnEvent = Callable[[AuditEvent], Awaitable[None] | None]

_STATS_KEY: web.AppKey[WebhookStats] = web.AppKey("audit_stats", WebhookStats)
_JSON_TYPES = frozenset({"application/json"})


def _error(status: int, reason: str, message: str) -> web.Response:
    return web.json_response({"error": reason, "message": message}, status=status)


def _make_handler(settings: AuditWebhookConfig, on_event: OnEvent,
                  stats: WebhookStats) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    max_body = int(settings.max_body_bytes)
    cluster_name: str | None = getattr(settings, "cluster_name", None)

    async def handle(request: web.Request) -> web.StreamResponse:
        stats.requests += 1
        if request.content_type not in _JSON_TYPES:
            stats.reject("content_type")
            return _error(415, "content_type",
                          f"Content-Type must be application/json, got {request.content_type!r}")
        if request.content_length is not None and request.content_length > max_body:
            stats.reject("too_large")
            return _error(413, "too_large", f"body over the limit of {max_body} bytes")
        body = await _read_limited(request, max_body)
        if body is None:
            stats.reject("too_large")
            return _error(413, "too_large", f"body over the limit of {max_body} bytes")
        try:
            decoded = decode_body(body, cluster_name=cluster_name, received_ns=time.time_ns())
        except AuditDecodeError as exc:
            stats.reject(exc.reason)
            stats.events_rejected += 1
            log.warning("audit webhook: rejected request from %s: %s", request.remote, exc)
            return _error(400, exc.reason, str(exc))

        for event in decoded.events:
            stats.events_accepted += 1
            try:
                result = on_event(event)
                if inspect.isawaitable(result):
                    await result
            except Exception:  # a failing consumer must not take the endpoint down
                stats.callback_errors += 1
                log.exception("audit webhook: event handler failed for %r", event)

        if decoded.errors:
            stats.events_rejected += len(decoded.errors)
            stats.reject("invalid_event")
            log.warning("audit webhook: %d invalid item(s) in EventList from %s: %s",
                        len(decoded.errors), request.remote,
                        "; ".join(f"items[{e.index}]: {e.message}" for e in decoded.errors[:5]))
            return web.json_response(
                {"error": "invalid_event", "accepted": len(decoded.events),
                 "rejected": [{"index": e.index, "message": e.message} for e in decoded.errors]},
                status=400)
        return web.json_response({"accepted": len(decoded.events)})

    return handle


async def _read_limited(request: web.Request, limit: int) -> bytes | None:
    """Read the body, giving up (None) as soon as it exceeds ``limit``.

    Chunked bodies carry no Content-Length, so the limit is enforced while
    reading rather than trusted from the header.
    """
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(settings: AuditWebhookConfig, on_event: OnEvent,
               stats: WebhookStats | None = None) -> web.Application:
    """The aiohttp application serving ``settings.path`` (POST only)."""
    stats = stats if stats is not None else WebhookStats()
    # aiohttp's own limit stays above ours so our handler answers (and counts)
    app = web.Application(client_max_size=int(settings.max_body_bytes) + 1)
    app[_STATS_KEY] = stats
    app.router.add_post(settings.path, _make_handler(settings, on_event, stats))
    return app


def _ssl_context(settings: AuditWebhookConfig) -> ssl.SSLContext | None:
    if not settings.ssl_enabled:
        return None
    if not settings.ssl_certificate:
        raise ValueError("k8s_audit.ssl_enabled needs ssl_certificate")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(settings.ssl_certificate, settings.ssl_key or None)
    client_ca: str = getattr(settings, "ssl_client_ca", "") or ""
    if client_ca:
        ctx.load_verify_locations(client_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


class AuditWebhook:
    """The running endpoint: ``await start()``, ``await stop()``."""

    def __init__(self, config: AuditWebhookConfig, on_event: OnEvent) -> None:
        self.config = config
        self.on_event = on_event
        self.stats = WebhookStats()
        self.app = create_app(config, on_event, self.stats)
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None

    async def start(self) -> None:
        ssl_context = _ssl_context(self.config)
        runner = web.AppRunner(self.app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.config.listen_address, self.config.listen_port,
                           ssl_context=ssl_context)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner, self._site = runner, site
        log.info("k8s audit webhook listening on %s", self.url)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        self._runner = self._site = None

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
