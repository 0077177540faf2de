"""The agent's connection to the API server: its status Lease and its rules bundle
watch, run in one daemon thread with its own event loop and one HTTP client, so
the event path never waits on the API server and an unreachable API server
costs detection nothing (the projected rules volume keeps delivering)."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable

import httpx

from falcopy.distribution.apiaccess import ApiAccess

log = logging.getLogger(__name__)

Job = Callable[[httpx.AsyncClient], Awaitable[None]]


async def run_jobs(access: ApiAccess, jobs: list[Job]) -> None:
    """The jobs on one client until cancelled; a job that fails is logged and ends alone
    (the scale simulation runs thousands of agents' ``run_jobs`` on one loop)."""
    async with access.client() as client:
        results = await asyncio.gather(*(job(client) for job in jobs), return_exceptions=True)
    for r in results:
        if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError):
            log.error("cluster link job failed: %r", r)


class ClusterLink:
    def __init__(self, access: ApiAccess, jobs: list[Job]) -> None:
        self.access = access
        self.jobs = jobs
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="falcopy-cluster-link", daemon=True)
        self._thread.start()
        self._started.wait(5)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._task = loop.create_task(run_jobs(self.access, self.jobs))
        self._started.set()
        try:
            loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            pass
        finally:
            loop.close()

    def stop(self) -> None:
        loop, task = self._loop, self._task
        if loop is not None and task is not None and not loop.is_closed():
            loop.call_soon_threadsafe(task.cancel)
        if self._thread is not None:
            self._thread.join(5)
