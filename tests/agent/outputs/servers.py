"""Real receivers for the sink tests: an HTTP server (falcosidekick's POST /) and a syslog socket."""

from __future__ import annotations

import asyncio
import gzip
import socket
import threading
from dataclasses import dataclass, field

from aiohttp import web

from tests.waiting import CEILING_S, wait_until


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]


@dataclass
class HttpReceiver:
    """aiohttp server in its own thread. ``status``/``delay``/``hold`` change its behaviour at run time.

    ``hold``: requests are accepted and left unanswered until it is cleared (a dead
    endpoint that keeps connections open); ``held`` counts the ones waiting now."""

    status: int = 200
    delay: float = 0.0
    hold: bool = False
    requests: list[Received] = field(default_factory=list)
    port: int = 0
    ssl_context: object | None = None

    def __post_init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._runner: web.AppRunner | None = None
        self.attempts = 0
        self.held = 0

    async def _handle(self, request: web.Request) -> web.Response:
        self.attempts += 1
        body = await request.read()
        # aiohttp already inflates a gzip Content-Encoding; be explicit if it did not
        if request.headers.get("Content-Encoding") == "gzip" and body[:2] == b"\x1f\x8b":
            body = gzip.decompress(body)
        if self.hold:
            self.held += 1
            try:
                while self.hold:
                    await asyncio.sleep(0.01)
            finally:
                self.held -= 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.status < 300:
            self.requests.append(Received(body, dict(request.headers)))
            return web.Response(text='{"status":"ok"}', status=self.status)
        return web.Response(text="boom", status=self.status)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, ssl_context=self.ssl_context)
        self._loop.run_until_complete(site.start())
        self.port = self._runner.addresses[0][1]
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup())

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://127.0.0.1:{self.port}/"

    def start(self) -> HttpReceiver:
        self._thread.start()
        assert self._ready.wait(5)
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def wait_for(self, n: int, timeout: float = CEILING_S) -> list[Received]:
        wait_until(lambda: len(self.requests) >= n, timeout)
        return self.requests


class SyslogReceiver:
    """A unix datagram socket standing in for /dev/log."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(5)

    def recv(self) -> bytes:
        return self.sock.recv(1 << 20)

    def close(self) -> None:
        self.sock.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

