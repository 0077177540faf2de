"""http_output: one POST per alert (falcosidekick's ``POST /``), with httpx in asyncio.

TLS is verified unless ``insecure``; ``ca_cert``/``ca_bundle``/``ca_path`` add
trust anchors and ``mtls`` presents ``client_cert``/``client_key``.  Connection
errors, timeouts and 5xx answers are retried with exponential backoff; other
4xx answers are final (a retry would get the same answer).

After ``max_consecutive_timeouts`` alerts in a row failed, the endpoint is
considered down: the sink stops sending and only probes it again after a pause
(1 s, doubling up to 30 s).  Meanwhile alerts wait in the sink's queue (and
are delivered when the endpoint is back); what overflows the queue is dropped
and counted.  A dead endpoint thus costs no network work per alert, and the
event path only ever pays a non-blocking queue put.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import os
import ssl
import sys

import httpx
from falcopy.agent.control.config import HttpOutput
from falcopy.agent.outputs.format import FormattedAlert
from falcopy.agent.outputs.sinks.base import SinkError

log = logging.getLogger(__name__)


def ssl_context(cfg: HttpOutput) -> ssl.SSLContext | bool:
    if cfg.insecure:
        return False
    cafile = cfg.ca_cert or cfg.ca_bundle or None
    capath = cfg.ca_path if cfg.ca_path and os.path.isdir(cfg.ca_path) else None
    try:
        ctx = ssl.create_default_context()
        if cafile or capath:
            ctx.load_verify_locations(cafile=cafile, capath=capath)
        if cfg.mtls:
            ctx.load_cert_chain(cfg.client_cert, cfg.client_key)
    except (OSError, ssl.SSLError) as exc:
        raise SinkError(f"http_output TLS setup failed: {exc}") from exc
    return ctx


class HttpSink:
    name = "http"

    def __init__(self, cfg: HttpOutput, json_output: bool, timeout: float = 2.0) -> None:
        self.cfg = cfg
        self.concurrency = cfg.concurrency
        self._json = json_output
        self._timeout = timeout
        self._client: httpx.AsyncClient | None = None
        self._consecutive_failures = 0
        #: event-loop time before which the endpoint is considered down
        self._down_until = 0.0
        self._down_pause = 0.0
        self._verify = ssl_context(cfg)  # raised at start-up: a bad CA path is a config error

    async def start(self) -> None:
        limits = httpx.Limits(
            max_connections=self.concurrency,
            max_keepalive_connections=self.concurrency if self.cfg.keep_alive else 0,
        )
        headers = {
            "User-Agent": self.cfg.user_agent,
            "Content-Type": "application/json" if self._json else "text/plain",
        }
        if self.cfg.compress_uploads:
            headers["Content-Encoding"] = "gzip"
        self._client = httpx.AsyncClient(
            verify=self._verify,
            timeout=httpx.Timeout(self._timeout),
            limits=limits,
            headers=headers,
            follow_redirects=False,
        )

    async def send(self, item: FormattedAlert) -> None:
        assert self._client is not None
        body = item.json if self._json else item.line
        if self.cfg.compress_uploads:
            body = gzip.compress(body, compresslevel=5)
        loop = asyncio.get_running_loop()
        while (wait := self._down_until - loop.time()) > 0:
            await asyncio.sleep(wait)
        tripped = self._consecutive_failures >= max(self.cfg.max_consecutive_timeouts, 1)
        attempts = 1 if tripped else self.cfg.retries + 1
        delay = self.cfg.retry_backoff_ms / 1000.0
        last = ""
        for attempt in range(attempts):
            if attempt:
                await asyncio.sleep(delay)
                delay *= 2
            try:
                resp = await self._client.post(self.cfg.url, content=body)
            except httpx.TimeoutException:
                last = f"timed out after {self._timeout}s"
                continue
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
                continue
            if resp.status_code < 300:
                self._consecutive_failures = 0
                self._down_pause = 0.0
                if self.cfg.echo:
                    sys.stdout.write(resp.text + "\n")
                    sys.stdout.flush()
                return
            last = f"HTTP {resp.status_code}"
            if 400 <= resp.status_code < 500 and resp.status_code not in (408, 429):
                break
        self._consecutive_failures += 1
        # concurrent senders failing together extend the pause once, not once each
        if (
            self._consecutive_failures >= max(self.cfg.max_consecutive_timeouts, 1)
            and loop.time() >= self._down_until
        ):
            self._down_pause = min(30.0, self._down_pause * 2) if self._down_pause else 1.0
            self._down_until = loop.time() + self._down_pause
        raise SinkError(f"POST {self.cfg.url} failed: {last}")

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
