"""The agent's side of the node-status Lease (contract: :mod:`falcopy.distribution.lease`)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import time
from typing import Any

import httpx

from falcopy.distribution.apiaccess import ApiAccess
from falcopy.distribution.lease import (
    ERROR_ANNOTATION,
    LEASE_PREFIX,
    LOADED_AT_ANNOTATION,
    STATUS_LABEL,
    VERSION_ANNOTATION,
)

log = logging.getLogger(__name__)


class LeaseReporter:
    """Keeps ``falcopy-agent-<node>`` renewed with what the agent loaded: renewed every
    ``period`` seconds.  A new bundle version rides on the next renewal; the first
    version the Lease carries and a change of the error (a failed reload, or the load
    that clears it) are written at a random moment within ``report_within`` seconds
    (default: one period), or at the renewal if that comes first.

    The report is off the delivery path: the rules are live when the agent swaps
    them, the Lease only feeds the operator's node count.  Every agent loads a new
    bundle within the same second, so an immediate write would be a burst of one
    write per node at the API server, competing with the next change's delivery.
    Riding on the renewals (which are spread over the period: agents start at
    different moments) an agent writes once per period whatever the rate of rules
    changes (an extra write per period would double it while rules change: 5,000
    nodes, 333 writes/s instead of 167), and the node count lags a load by one
    period at most, as before.  A start-up or an error is rarer and worth telling
    sooner: it gets the spread early write.

    :meth:`run` is a coroutine of the agent's cluster link
    (:mod:`falcopy.agent.control.clusterlink`, its own thread: the event path never
    waits on the API server); :meth:`start` runs it alone in such a link.  A failed
    write is retried on the next period."""

    def __init__(
        self,
        node: str,
        namespace: str,
        *,
        period: float = 30.0,
        access: ApiAccess | None = None,
        report_within: float | None = None,
    ) -> None:
        self.node = node
        self.namespace = namespace
        self.period = period
        self.report_within = period if report_within is None else report_within
        self.name = LEASE_PREFIX + node
        self.access = access
        self.writes = 0
        self._version = ""
        self._error = ""
        self._loaded_at = ""
        #: (version, error) the Lease carries: what the last successful write said
        self._written: tuple[str, str] = ("", "")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._link: Any = None
        self._path = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"

    # ------------------------------------------------------------------ from any thread
    def loaded(self, version: str) -> None:
        self._version = version
        self._error = ""
        self._loaded_at = dt.datetime.now(dt.UTC).isoformat()
        self._poke()

    def failed(self, error: str) -> None:
        self._error = error[:1000]
        self._poke()

    def _poke(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is None or wake is None or loop.is_closed():
            return
        try:
            here = asyncio.get_running_loop() is loop
        except RuntimeError:
            here = False
        # from the link's own loop (the bundle watch) no wake-up through the loop's self-pipe
        if here:
            wake.set()
        else:
            loop.call_soon_threadsafe(wake.set)

    def start(self) -> None:
        from falcopy.agent.control.clusterlink import ClusterLink

        self._link = ClusterLink(self.access or ApiAccess.discover(), [self.run])
        self._link.start()

    def stop(self) -> None:
        if self._link is not None:
            self._link.stop()

    # ------------------------------------------------------------------ in the link's loop
    async def run(self, client: httpx.AsyncClient) -> None:
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        while True:
            self._wake.clear()
            try:
                await self.write(client)
            except (httpx.HTTPError, RuntimeError) as exc:  # the API server may be away: next period
                log.warning("cannot update lease %s/%s: %s", self.namespace, self.name, exc)
            renewal = time.monotonic() + self.period
            while not self._urgent():
                try:
                    await asyncio.wait_for(self._wake.wait(), renewal - time.monotonic())
                except TimeoutError:
                    break  # the renewal, with whatever version was loaded meanwhile
                self._wake.clear()
            else:
                # at a random moment soon, unless the renewal comes first
                delay = random.uniform(0, self.report_within)  # noqa: S311 (jitter)
                await asyncio.sleep(max(0.0, min(delay, renewal - time.monotonic())))

    def _urgent(self) -> bool:
        """A first version, or an error appeared, changed or cleared since the last write."""
        version, error = self._written
        return (bool(self._version) and not version) or self._error != error

    def body(self) -> dict[str, Any]:
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": {STATUS_LABEL: "true", "app.kubernetes.io/part-of": "falcopy"},
                "annotations": {
                    VERSION_ANNOTATION: self._version,
                    ERROR_ANNOTATION: self._error,
                    LOADED_AT_ANNOTATION: self._loaded_at,
                },
            },
            "spec": {
                "holderIdentity": self.node,
                "leaseDurationSeconds": int(self.period * 3),
                "renewTime": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            },
        }

    async def write(self, client: httpx.AsyncClient) -> None:
        body = self.body()
        r = await client.put(f"{self._path}/{self.name}", json=body)
        if r.status_code == 404:
            r = await client.post(self._path, json=body)
        if r.status_code >= 300:
            raise RuntimeError(f"HTTP {r.status_code}: {r.text[:200]}")
        annotations = body["metadata"]["annotations"]
        self._written = (annotations[VERSION_ANNOTATION], annotations[ERROR_ANNOTATION])
        self.writes += 1

    def write_now(self) -> None:
        """One write, blocking (tests and tools)."""

        async def once() -> None:
            async with (self.access or ApiAccess.discover()).client() as client:
                await self.write(client)

        asyncio.run(once())
