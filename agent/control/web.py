"""The agent's web server: ``/healthz``, ``/metrics`` (Prometheus), ``/versions``.

Same endpoints and port (8765) as Falco's embedded web server, so probes,
ServiceMonitors and falcoctl configured for Falco keep working.
"""

from __future__ import annotations

import logging
import platform
import ssl
from collections.abc import Callable
from typing import Any

from aiohttp import web
from falcopy.agent.control.config import Webserver
from falcopy.agent.control.metrics import AgentMetrics
from falcopy.agent.control.readiness import Readiness
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from falcopy import __version__
from falcopy.common.http_site import start_site
from falcopy.engine.versions import ENGINE_VERSION, FALCO_COMPAT_VERSION, PROVIDED_PLUGINS

log = logging.getLogger(__name__)


def versions(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "falcopy_version": __version__,
        # tools written for Falco (falcoctl) read this to pick compatible rules artifacts
        "falco_version": FALCO_COMPAT_VERSION,
        "engine_version": ENGINE_VERSION,
        "engine_version_semver": ENGINE_VERSION,
        "machine": platform.machine(),
        "kernel_release": platform.release(),
        "python_version": platform.python_version(),
        "driver": "falcopy CO-RE eBPF probe",
        # the Falco plugins whose fields falcopy provides built in (for required_plugin_versions)
        "plugins": dict(PROVIDED_PLUGINS),
    }
    if extra:
        doc.update(extra)
    return doc


def create_app(
    cfg: Webserver,
    readiness: Readiness,
    metrics: AgentMetrics,
    versions_extra: Callable[[], dict[str, Any]] | None = None,
) -> web.Application:
    app = web.Application()

    async def healthz(_: web.Request) -> web.Response:
        if readiness.ready:
            return web.json_response({"status": "ok"})
        return web.json_response({"status": "not ready", **readiness.as_dict()}, status=503)

    async def metrics_handler(_: web.Request) -> web.Response:
        body = generate_latest(metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def versions_handler(_: web.Request) -> web.Response:
        return web.json_response(versions(versions_extra() if versions_extra else None))

    app.router.add_get(cfg.k8s_healthz_endpoint, healthz)
    app.router.add_get("/versions", versions_handler)
    if cfg.prometheus_metrics_enabled:
        app.router.add_get("/metrics", metrics_handler)
    return app


class WebServer:
    def __init__(self, app: web.Application, cfg: Webserver) -> None:
        self.app = app
        self.cfg = cfg
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        ssl_ctx = None
        if self.cfg.ssl_enabled:
            # Falco's ssl_certificate holds the key and the certificate in one PEM file
            ssl_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ssl_ctx.load_cert_chain(self.cfg.ssl_certificate)
        self._runner = await start_site(self.app, self.cfg.listen_address, self.cfg.listen_port, ssl_ctx)
        log.info("web server listening on %s:%d", self.cfg.listen_address, self.port)

    @property
    def port(self) -> int:
        if self._runner is None or not self._runner.addresses:
            raise RuntimeError("web server not started")
        return int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
