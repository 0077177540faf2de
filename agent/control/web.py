"""The agent's web server: ``/healthz``, ``/metrics`` (Prometheus), ``/versions``.

Same endpoints and port (8765) as Falco's embedded web server, so probes,
ServiceMonitors and falcoctl configured for Falco keep working.

Three GET endpoints do not need an HTTP framework: the server is the standard
library's (``socketserver`` + ``http.server``, which prometheus_client imports anyway),
accepting on its own thread and answering each connection on a short-lived thread,
at most ``threadiness`` at once as in Falco.  aiohttp cost the agent ~11 MiB of RSS
for these three routes (docs/performance.md).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import platform
import selectors
import socket
import socketserver
import ssl
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from falcopy.agent.control.config import Webserver
from falcopy.agent.control.metrics import AgentMetrics
from falcopy.agent.control.readiness import Readiness
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from falcopy import __version__
from falcopy.engine.versions import ENGINE_VERSION, FALCO_COMPAT_VERSION, PROVIDED_PLUGINS

log = logging.getLogger(__name__)

#: status, content type, body
Response = tuple[int, str, bytes]
#: the handler of each path (GET and HEAD)
Routes = Mapping[str, Callable[[], Response]]

_JSON = "application/json; charset=utf-8"
#: seconds a client may stay silent (TLS handshake, request line, headers) before its
#: connection is dropped: a stalled client does not hold a thread for long
CLIENT_TIMEOUT_S = 10.0


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


def _json(doc: Any, status: int = 200) -> Response:
    return status, _JSON, json.dumps(doc).encode()


def create_app(
    cfg: Webserver,
    readiness: Readiness,
    metrics: AgentMetrics,
    versions_extra: Callable[[], dict[str, Any]] | None = None,
) -> Routes:
    def healthz() -> Response:
        if readiness.ready:
            return _json({"status": "ok"})
        return _json({"status": "not ready", **readiness.as_dict()}, 503)

    def metrics_handler() -> Response:
        return 200, CONTENT_TYPE_LATEST, generate_latest(metrics.registry)

    def versions_handler() -> Response:
        return _json(versions(versions_extra() if versions_extra else None))

    routes = {cfg.k8s_healthz_endpoint: healthz, "/versions": versions_handler}
    if cfg.prometheus_metrics_enabled:
        routes["/metrics"] = metrics_handler
    return routes


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = f"falcopy/{__version__}"
    timeout = CLIENT_TIMEOUT_S

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            # the handshake on this connection's thread, under the client timeout, not
            # on the accepting thread where a slow client would stall every other one
            self.request.settimeout(self.timeout)
            self.request.do_handshake()
        super().setup()

    def do_GET(self) -> None:
        self._answer(with_body=True)

    def do_HEAD(self) -> None:
        self._answer(with_body=False)

    def _answer(self, with_body: bool) -> None:
        route = self.server.routes.get(urlsplit(self.path).path)
        if route is None:
            status, ctype, body = 404, "text/plain; charset=utf-8", b"404: Not Found"
        else:
            try:
                status, ctype, body = route()
            except Exception:
                log.exception("web server: %s failed", self.path)
                status, ctype, body = 500, "text/plain; charset=utf-8", b"500: Internal Server Error"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        # no access log (as before); malformed requests at debug level
        log.debug("web server: %s: " + format, self.address_string(), *args)


class _Server(socketserver.TCPServer):
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, host: str, port: int, routes: Routes, threads: int,
                 ssl_ctx: ssl.SSLContext | None) -> None:
        # "::" or an IPv6 address binds an IPv6 socket
        self.address_family = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                                 flags=socket.AI_PASSIVE)[0][0]
        self.routes = routes
        self.slots = threading.BoundedSemaphore(threads)
        self.closing = False
        super().__init__((host, port), _Handler)
        if ssl_ctx is not None:
            self.socket = ssl_ctx.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)

    def process_request(self, request: Any, client_address: Any) -> None:
        # all threads busy: the next connection waits (in the listen backlog) for one
        while not self.slots.acquire(timeout=0.2):
            if self.closing:
                self.shutdown_request(request)
                return
        try:
            threading.Thread(target=self._serve_one, args=(request, client_address),
                             name="falcopy-web-request", daemon=True).start()
        except BaseException:
            self.slots.release()
            self.shutdown_request(request)
            raise

    def _serve_one(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            self.slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # a client that went away, timed out or failed the TLS handshake: its problem
        log.debug("web server: connection from %s failed", client_address, exc_info=True)


class WebServer:
    """Serves ``routes`` on ``cfg``'s address from a thread of its own.  ``start`` and
    ``stop`` are coroutines like the audit webhook's, so the app runs both alike."""

    def __init__(self, routes: Routes, cfg: Webserver) -> None:
        self.routes = routes
        self.cfg = cfg
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._wake_r = self._wake_w = -1

    async def start(self) -> None:
        ssl_ctx = None
        if self.cfg.ssl_enabled:
            # Falco's ssl_certificate holds the key and the certificate in one PEM file
            ssl_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ssl_ctx.load_cert_chain(self.cfg.ssl_certificate)
        # Falco's threadiness: 0 = one per CPU
        threads = self.cfg.threadiness or os.cpu_count() or 1
        self._server = _Server(self.cfg.listen_address, self.cfg.listen_port, self.routes, threads, ssl_ctx)
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._accept, args=(self._server, self._wake_r),
                                        name="falcopy-web", daemon=True)
        self._thread.start()
        log.info("web server listening on %s:%d", self.cfg.listen_address, self.port)

    @staticmethod
    def _accept(server: _Server, wake: int) -> None:
        # our own loop rather than serve_forever: stop() wakes it at once through the
        # pipe, and an idle server never wakes up (serve_forever polls twice a second)
        server.timeout = 0  # handle_request: accept what select saw, never block in it
        with selectors.DefaultSelector() as sel:
            sel.register(server.fileno(), selectors.EVENT_READ)
            sel.register(wake, selectors.EVENT_READ)
            while True:
                events = sel.select()
                if any(key.fd == wake for key, _ in events):
                    return
                server.handle_request()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("web server not started")
        return int(self._server.server_address[1])

    async def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.closing = True
        os.write(self._wake_w, b"x")
        await asyncio.get_running_loop().run_in_executor(None, thread.join, 10.0)
        server.server_close()
        os.close(self._wake_r)
        os.close(self._wake_w)
        self._server = self._thread = None
