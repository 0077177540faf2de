"""The collector's HTTPS endpoint: each agent streams its node's metadata.

``GET /v1/k8smeta?node=N[&epoch=E&since=S]`` answers a chunked stream of JSON lines
(:mod:`falcopy.common.k8smeta`).  aiohttp serves it because the operator already
runs on aiohttp (kopf and the admission webhook): one more route on the same loop,
no second server stack, and watch-style JSON lines are what every HTTP client can
read incrementally (the agent reads them with httpx, which it already uses for the
kubelet); gRPC would add a code generator and a second HTTP/2 stack to both sides
for a one-way stream of small documents.

Callers present their service-account token; the operator asks the API server
about it (TokenReview) and admits only the configured service accounts.  When the
token is bound to a pod, the API server names that pod's node in the review
(``authentication.kubernetes.io/node-name``) and an agent may only ask for its
own node.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web
from falcopy.operator.k8smeta.index import ClusterIndex

from falcopy.common import k8smeta as wire

log = logging.getLogger("falcopy.operator.k8smeta")

NODE_NAME_EXTRA = "authentication.kubernetes.io/node-name"


@dataclass(frozen=True)
class Review:
    """What the API server said about a token."""

    authenticated: bool
    username: str = ""
    node: str | None = None
    error: str = ""


#: token -> review (a TokenReview call, or a stand-in in tests)
Reviewer = Callable[[str], Awaitable[Review]]


@dataclass
class ServerStats:
    subscribers: int = 0
    connections: int = 0
    snapshots: int = 0
    resumed: int = 0
    refused: int = 0
    bytes: int = 0
    reviews: int = 0


@dataclass
class _Cached:
    review: Review
    until: float


@dataclass
class CollectorServer:
    index: ClusterIndex
    reviewer: Reviewer
    allowed_users: frozenset[str]
    heartbeat_s: float = 15.0
    review_ttl_s: float = 60.0
    stats: ServerStats = field(default_factory=ServerStats)
    _wakeups: dict[str, set[asyncio.Event]] = field(default_factory=dict)
    _reviews: dict[str, _Cached] = field(default_factory=dict)
    _runner: web.AppRunner | None = None
    port: int = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(wire.PATH, self.stream)
        return app

    async def start(self, host: str, port: int, tls: ssl.SSLContext | None) -> None:
        self._runner = web.AppRunner(self.app(), shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, ssl_context=tls)
        await site.start()
        self.port = self._runner.addresses[0][1]
        log.info("k8smeta collector: serving %s on %s:%d (%s)", wire.PATH, host, self.port,
                 "TLS" if tls is not None else "plain HTTP")

    async def stop(self) -> None:
        for events in self._wakeups.values():
            for ev in events:
                ev.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ---------------------------------------------------------------- auth
    async def _review(self, token: str) -> Review:
        key = hashlib.sha256(token.encode()).hexdigest()
        now = time.monotonic()
        cached = self._reviews.get(key)
        if cached is not None and cached.until > now:
            return cached.review
        self.stats.reviews += 1
        review = await self.reviewer(token)
        if review.authenticated:  # refusals are asked again: a token may just have been issued
            if len(self._reviews) > 4096:
                self._reviews.clear()
            self._reviews[key] = _Cached(review, now + self.review_ttl_s)
        return review

    async def _authorize(self, request: web.Request, node: str) -> web.Response | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return self._refuse(401, "a service-account bearer token is required")
        try:
            review = await self._review(token.strip())
        except Exception as exc:  # the API server is unreachable: refuse, the agent retries
            log.warning("k8smeta collector: TokenReview failed: %s", exc)
            return self._refuse(503, "cannot review the token now")
        if not review.authenticated:
            return self._refuse(401, f"token not authenticated {review.error}".strip())
        if review.username not in self.allowed_users:
            return self._refuse(403, f"{review.username} may not read workload metadata")
        if review.node is not None and review.node != node:
            return self._refuse(403, f"{review.username} runs on {review.node}, not on {node}")
        return None

    def _refuse(self, status: int, message: str) -> web.Response:
        self.stats.refused += 1
        return web.Response(status=status, text=message + "\n")

    # ---------------------------------------------------------------- stream
    async def stream(self, request: web.Request) -> web.StreamResponse:
        node = request.query.get("node", "")
        if not node:
            return web.Response(status=400, text="node=<node name> is required\n")
        refused = await self._authorize(request, node)
        if refused is not None:
            return refused
        resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        wakeup = asyncio.Event()
        waiters = self._wakeups.setdefault(node, set())
        waiters.add(wakeup)
        view = self.index.view(node)
        view.notify = lambda: [ev.set() for ev in self._wakeups.get(node, ())]  # type: ignore[func-returns-value]
        self.stats.subscribers += 1
        self.stats.connections += 1
        try:
            last = await self._start(resp, node, request.query.get("epoch"), request.query.get("since"))
            while self._runner is not None:
                try:
                    await asyncio.wait_for(wakeup.wait(), self.heartbeat_s)
                except TimeoutError:
                    await self._write(resp, self.index.bookmark())
                    continue
                wakeup.clear()
                # read and advance before the write yields: lines appended meanwhile
                # are sent on the next turn
                pending, last = view.since(last), self.index.seq
                if pending is None:  # this subscriber fell behind the backlog
                    self.stats.snapshots += 1
                    await self._write(resp, self.index.snapshot(node))
                elif pending:
                    await self._write(resp, b"".join(pending))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            waiters.discard(wakeup)
            self.stats.subscribers -= 1
        return resp

    async def _start(self, resp: web.StreamResponse, node: str, epoch: str | None, since: str | None) -> int:
        lines = None
        if epoch == self.index.epoch and since is not None and since.isdigit():
            lines = self.index.view(node).since(int(since))
        if lines is None:
            self.stats.snapshots += 1
            data = self.index.snapshot(node)
        else:
            self.stats.resumed += 1
            data = b"".join(lines) or self.index.bookmark()
        seq = self.index.seq
        await self._write(resp, data)
        return seq

    async def _write(self, resp: web.StreamResponse, data: bytes) -> None:
        self.stats.bytes += len(data)
        await resp.write(data)
