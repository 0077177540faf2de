"""Leader election between operator replicas, with a coordination.k8s.io Lease.

Why a Lease and not kopf's peering: kopf's peering pauses every handler of the
replicas that are not the highest-priority peer, watches and indexes included,
so a takeover starts from an empty index (a full re-list, and a publication gate
that waits for it); it needs cluster-wide rights on its own KopfPeering CRDs;
and it has no fencing (two peers may both run during a handover).  Here both
replicas watch, index and answer admission reviews (read-only work, so a
takeover starts warm and admission has two endpoints), and only the holder of
the Lease ``<name>`` in the release namespace writes ConfigMaps and statuses.

The protocol is client-go's: the holder renews every ``retry`` seconds with a
compare-and-swap on the Lease's resourceVersion; a candidate takes the Lease
once its record (holder, renewTime) has not changed for ``duration`` seconds by
the candidate's *own* clock (no clock comparison between replicas); the holder
stops writing when it has not renewed for ``renew_deadline`` (< ``duration``),
so the old leader has stopped before anyone else can take over.  Each request of
a try times out after half the renew deadline (kube-scheduler gives its election
client the renew deadline as its timeout): one request stalled on an overloaded API
server or a dead connection must not hold the renewal loop until the deadline has
passed when a retry on a new connection would still renew in time.  On a clean
shutdown the holder releases the Lease, and the other replica takes over at its
next try instead of after a full lease period.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

log = logging.getLogger("falcopy.operator.leader")


def identity() -> str:
    """This replica's holder identity: the pod name (HOSTNAME) and a random suffix."""
    return f"{os.environ.get('HOSTNAME') or socket.gethostname()}-{uuid.uuid4().hex[:8]}"


class LeaderElector:
    def __init__(
        self,
        api: client.CoordinationV1Api,
        namespace: str,
        name: str,
        *,
        duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry: float = 2.0,
        holder: str | None = None,
    ) -> None:
        if not retry < renew_deadline < duration:
            raise ValueError("leader election needs retry < renew_deadline < duration")
        self.api = api
        self.namespace = namespace
        self.name = name
        self.duration = duration
        self.renew_deadline = renew_deadline
        self.retry = retry
        self.holder = holder or identity()
        #: seconds per request: a read and a write fit in one renew deadline
        self.request_timeout = renew_deadline / 2
        self._renewed: float | None = None  # monotonic time of our last successful acquire/renew
        self._observed: tuple[Any, ...] | None = None
        self._observed_at = 0.0

    # ---------------------------------------------------------------- state
    def leading(self) -> bool:
        """True while our last renewal is recent enough: writes are safe."""
        return self._renewed is not None and time.monotonic() - self._renewed < self.renew_deadline

    # ---------------------------------------------------------------- one try (blocking)
    def try_acquire_or_renew(self) -> bool:
        now = dt.datetime.now(dt.UTC)
        try:
            lease = self.api.read_namespaced_lease(self.name, self.namespace,
                                                   _request_timeout=self.request_timeout)
        except ApiException as exc:
            if exc.status != 404:
                raise
            return self._create(now)
        spec = lease.spec or client.V1LeaseSpec()
        record = (spec.holder_identity, spec.renew_time, lease.metadata.resource_version)
        if spec.holder_identity != self.holder:
            if record[:2] != (self._observed or (None, None))[:2]:
                self._observed, self._observed_at = record, time.monotonic()
            held_for = spec.lease_duration_seconds or self.duration
            if spec.holder_identity and time.monotonic() - self._observed_at < held_for:
                return False
            spec.lease_transitions = (spec.lease_transitions or 0) + 1
            spec.acquire_time = now
            log.info("taking the leader Lease %s over from %r", self.name, spec.holder_identity)
        spec.holder_identity = self.holder
        spec.renew_time = now
        spec.lease_duration_seconds = int(self.duration)
        lease.spec = spec
        try:
            # compare-and-swap: the resourceVersion read above, or 409
            self.api.replace_namespaced_lease(self.name, self.namespace, lease,
                                              _request_timeout=self.request_timeout)
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise
        return True

    def _create(self, now: dt.datetime) -> bool:
        body = client.V1Lease(
            metadata=client.V1ObjectMeta(name=self.name, namespace=self.namespace),
            spec=client.V1LeaseSpec(
                holder_identity=self.holder,
                lease_duration_seconds=int(self.duration),
                acquire_time=now,
                renew_time=now,
                lease_transitions=0,
            ),
        )
        try:
            self.api.create_namespaced_lease(self.namespace, body, _request_timeout=self.request_timeout)
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise
        return True

    def release(self) -> None:
        """Give the Lease up (clean shutdown): the other replica need not wait it out."""
        if not self.leading():
            return
        self._renewed = None
        try:
            lease = self.api.read_namespaced_lease(self.name, self.namespace,
                                                   _request_timeout=self.request_timeout)
            if lease.spec.holder_identity != self.holder:
                return
            lease.spec.holder_identity = None
            lease.spec.lease_duration_seconds = 1
            self.api.replace_namespaced_lease(self.name, self.namespace, lease,
                                              _request_timeout=self.request_timeout)
        except (ApiException, urllib3.exceptions.HTTPError) as exc:
            log.warning("could not release the leader Lease %s: %s", self.name, exc)

    # ---------------------------------------------------------------- the loop
    async def run(
        self, started: Callable[[], Awaitable[None] | None], stopped: Callable[[], Awaitable[None] | None]
    ) -> None:
        """Try, renew and watch the deadline forever; ``started``/``stopped`` on each change."""
        loop = asyncio.get_running_loop()
        leader = False
        try:
            while True:
                attempt = time.monotonic()
                try:
                    ok = await loop.run_in_executor(None, self.try_acquire_or_renew)
                except Exception as exc:  # the API server away: keep what we have until the deadline
                    log.warning("leader Lease %s: %s", self.name, exc)
                    ok = False
                if ok:
                    self._renewed = attempt
                if self.leading() and not leader:
                    leader = True
                    log.info("leading as %s (Lease %s/%s)", self.holder, self.namespace, self.name)
                    await _call(started)
                elif leader and not self.leading():
                    leader = False
                    log.warning("lost the leader Lease %s: standing by", self.name)
                    await _call(stopped)
                await asyncio.sleep(self.retry)
        finally:
            if leader:
                await loop.run_in_executor(None, self.release)


async def _call(fn: Callable[[], Awaitable[None] | None]) -> None:
    out = fn()
    if out is not None:
        await out
