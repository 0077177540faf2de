"""The admission webhook's validation: bounded, and cancelled when the caller is gone.

An AdmissionReview runs the same engine load as a reconcile pass, in a worker
thread.  Unbounded, anyone who can reach the webhook port could post reviews
and walk away, leaving threads compiling.  So:

- at most ``admission_concurrency`` checks run at once; others wait their turn;
- each check runs under the validation time budget (``validation_timeout``);
- when the client disconnects, the handler is cancelled and the check's
  cancellation flag is set, so the engine load stops at its next item
  (:class:`falcopy.engine.limits.Budget`).

aiohttp does not cancel a handler whose client went away (kopf's webhook server
runs it with the default ``handler_cancellation=False``), so
:class:`ClientAwareWebhookServer` watches the request's transport and cancels
the handler itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import dataclass, field
from typing import Any

import aiohttp.web
import kopf
from falcopy.operator.model import RuleObject
from falcopy.operator.reconcile import State
from falcopy.operator.validate import REASON_BUDGET, Verdict

#: how often a running handler looks whether its client is still connected
CLIENT_POLL = 0.1


class ClientAwareWebhookServer(kopf.WebhookServer):
    """kopf's webhook server, cancelling a request's handler when its client disconnects."""

    @staticmethod
    async def _serve(fn: Any, request: aiohttp.web.Request) -> aiohttp.web.Response:
        handler = asyncio.current_task()
        assert handler is not None

        async def watch() -> None:
            while request.transport is not None and not request.transport.is_closing():
                await asyncio.sleep(CLIENT_POLL)
            handler.cancel()

        watcher = asyncio.create_task(watch())
        try:
            return await kopf.WebhookServer._serve(fn, request)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher


@dataclass
class Admission:
    state: State
    concurrency: int
    _slots: asyncio.Semaphore | None = None
    #: checks running in worker threads right now (tests and metrics read it)
    running: int = 0
    #: requests whose client left while they waited or ran
    cancelled: int = 0
    #: checks that stopped early because their client had left
    stopped: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def check(self, candidate: RuleObject) -> Verdict:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.concurrency)
        try:
            async with self._slots:
                gone = threading.Event()
                others = self.state.objects()  # snapshot in kopf's loop: the indexes are not thread-safe
                loop = asyncio.get_running_loop()
                future = loop.run_in_executor(None, self._run, candidate, others, gone)
                try:
                    return await asyncio.shield(future)
                except asyncio.CancelledError:
                    gone.set()  # the engine load stops at its next item
                    raise
        except asyncio.CancelledError:  # the client left, while waiting for a slot or checking
            self.cancelled += 1
            raise

    def _run(self, candidate: RuleObject, others: list[RuleObject], gone: threading.Event) -> Verdict:
        with self._lock:
            self.running += 1
        try:
            verdict = self.state.validator.check(candidate, others, self.state.fallback, gone)
            if gone.is_set() and verdict.reason == REASON_BUDGET:
                with self._lock:
                    self.stopped += 1
            return verdict
        finally:
            with self._lock:
                self.running -= 1
