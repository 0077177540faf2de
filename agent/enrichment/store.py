"""The asynchronous container metadata cache the event path reads from.

``get()`` runs on the event thread and costs one dict lookup for a known
container.  An id seen for the first time is answered at once with a partial
:class:`ContainerInfo` (id, full id and type from the cgroup, other fields
None) and a fetch is scheduled on the store's own asyncio loop thread.  When
the runtime (and later the kubelet) answers, a new ContainerInfo object
replaces the partial one; published objects are never mutated, so a reader
sees either the old or the new answer, never a half-written one.

First events of a new container are therefore evaluated with ``container.id``
known and the other container.*/k8s.* fields None (``<NA>``), as in Falco,
which also looks metadata up asynchronously.  A caller that prefers to hold
such events for a moment can call :meth:`MetadataStore.wait_for` with a short
grace period (it blocks, so not on the hot path of a busy node).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from falcopy.agent.enrichment.config import EnrichmentConfig
from falcopy.agent.enrichment.docker import DockerClient, SourceFault
from falcopy.agent.enrichment.faults import Backoff, FaultLog
from falcopy.agent.enrichment.k8smeta import K8sMetaSubscriber
from falcopy.agent.enrichment.kubelet import KubeletClient, PodContainer, PodIndex, default_kubelet_url
from falcopy.agent.enrichment.merge import host_info, merge
from falcopy.agent.enrichment.model import HOST_CONTAINER_ID, ContainerInfo, PodMeta

log = logging.getLogger("falcopy.agent.enrichment")


@dataclass
class _Entry:
    """Fetch state of one container (loop thread only)."""

    full_id: str = ""
    runtime_type: str = ""
    pod_uid: str | None = None
    runtime: ContainerInfo | None = None
    runtime_done: bool = False
    #: monotonic time the container was first seen: a kubelet list fetched
    #: after it and not naming it means "not a pod container"
    first_seen: float = 0.0
    backoff: Backoff = field(default_factory=Backoff)
    in_flight: bool = False


@dataclass
class StoreStats:
    misses: int = 0
    runtime_lookups: int = 0
    kubelet_refreshes: int = 0
    published: int = 0


class MetadataStore:
    """MetadataLookup backed by the runtime sockets and the kubelet; see the module doc."""

    def __init__(self, config: EnrichmentConfig | None = None, *,
                 runtimes: list[DockerClient] | None = None,
                 kubelet: KubeletClient | None = None,
                 use_config_kubelet: bool = True,
                 fault_log: FaultLog | None = None,
                 node_name: str | None = None) -> None:
        self.config = config or EnrichmentConfig()
        self.faults = fault_log or FaultLog()
        self.stats = StoreStats()
        self._runtimes = runtimes if runtimes is not None else self._runtimes_from_config()
        self._kubelet = kubelet
        if kubelet is None and use_config_kubelet:
            self._kubelet = self._kubelet_from_config()
        self.k8smeta = self._k8smeta_from_config(node_name)
        self._cri_sockets = self.config.socket_paths("cri")
        self._cache: dict[str, ContainerInfo] = {HOST_CONTAINER_ID: host_info()}
        self._hints: dict[str, tuple[str, str, str | None]] = {}
        self._pending: list[str] = []
        self._lock = threading.Lock()
        self._published = threading.Condition(self._lock)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._entries: dict[str, _Entry] = {}
        self._pods = PodIndex()
        self._pods_fetched_at = float("-inf")
        self._pods_attempt_at = float("-inf")
        #: monotonic start times of the latest kubelet list requests and container
        #: lookups (container id, time): the rate limit's and the backoff's record
        self.kubelet_attempts: deque[float] = deque(maxlen=32)
        self.lookup_attempts: deque[tuple[str, float]] = deque(maxlen=64)
        self._kubelet_backoff = Backoff(self.config.retry_base_s, self.config.retry_cap_s)
        self._kick: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._ready = threading.Event()
        self._listeners: list[Callable[[ContainerInfo], None]] = []
        self._stopping = False

    # -- construction from config -------------------------------------------------
    def _runtimes_from_config(self) -> list[DockerClient]:
        if not self.config.enabled:
            return []
        clients = []
        for engine in ("docker", "podman"):
            for path in self.config.socket_paths(engine):
                clients.append(DockerClient(path, runtime=engine, timeout_s=self.config.runtime_timeout_s))
        return clients

    def _kubelet_from_config(self) -> KubeletClient | None:
        kcfg = self.config.kubelet
        if not (self.config.enabled and kcfg.enabled):
            return None
        url = kcfg.url or default_kubelet_url()
        if url is None:
            log.info("container metadata: kubelet disabled (no kubelet url, NODE_IP or NODE_NAME)")
            return None
        return KubeletClient(url, token_file=kcfg.token_file, ca_file=kcfg.ca_file,
                             insecure=kcfg.insecure, timeout_s=kcfg.timeout_s)

    def _k8smeta_from_config(self, node_name: str | None) -> K8sMetaSubscriber | None:
        mcfg = self.config.k8smeta
        if not (self.config.enabled and mcfg.enabled):
            return None
        node = node_name or mcfg.node_name or os.environ.get("NODE_NAME")
        if not node:
            log.warning("container metadata: k8smeta disabled (no node name: set NODE_NAME or "
                        "enrichment.k8smeta.node_name)")
            return None
        return K8sMetaSubscriber(mcfg, node, self.faults, on_change=self._k8smeta_changed)

    # -- event-thread API ------------------------------------------------------------
    def get(self, container_id: str) -> ContainerInfo | None:
        """Metadata known now for a 12-char id; never blocks (MetadataLookup)."""
        info = self._cache.get(container_id)
        if info is not None:
            return info
        if not container_id:
            return None
        return self._miss(container_id)

    def observe(self, container_id: str, full_id: str, runtime_type: str,
                pod_uid: str | None = None) -> ContainerInfo | None:
        """Tell the store what a cgroup said (full id, type guess, pod UID) and schedule a fetch.

        The process table calls this when it resolves a cgroup, so that partial
        answers carry container.full_id and container.type before the runtime
        replies, and k8s.* come from the pod (matched by UID) while the kubelet
        has not yet listed the new container's id."""
        if container_id == HOST_CONTAINER_ID or not container_id:
            return self.get(container_id)
        if container_id not in self._hints:
            self._hints[container_id] = (full_id, runtime_type, pod_uid)
        return self.get(container_id)

    def wait_for(self, container_id: str, timeout_s: float) -> ContainerInfo | None:
        """Block up to ``timeout_s`` for complete metadata (a grace period; not for the hot path)."""
        self.get(container_id)
        deadline = time.monotonic() + timeout_s
        with self._published:
            while True:
                info = self._cache.get(container_id)
                remaining = deadline - time.monotonic()
                if (info is not None and info.complete) or remaining <= 0:
                    return info
                self._published.wait(remaining)

    def add_listener(self, callback: Callable[[ContainerInfo], None]) -> None:
        """``callback(info)`` on the store thread each time metadata is published."""
        self._listeners.append(callback)

    def snapshot(self) -> dict[str, ContainerInfo]:
        return dict(self._cache)

    def _miss(self, container_id: str) -> ContainerInfo:
        with self._lock:
            info = self._cache.get(container_id)
            if info is not None:
                return info
            full_id, runtime_type, _ = self._hints.get(container_id, ("", "", None))
            info = ContainerInfo(id=container_id, full_id=full_id, type=runtime_type)
            self._cache[container_id] = info
            self.stats.misses += 1
            self._evict_locked()
            loop = self._loop
            if loop is None:
                if len(self._pending) < self.config.max_entries:  # bounded while not running
                    self._pending.append(container_id)
                return info
        with contextlib.suppress(RuntimeError):  # loop closed during shutdown
            loop.call_soon_threadsafe(self._schedule, container_id)
        return info

    def _evict_locked(self) -> None:
        excess = len(self._cache) - self.config.max_entries
        if excess <= 0:
            return
        for key in list(self._cache)[:excess + 1]:
            if key != HOST_CONTAINER_ID:
                self._cache.pop(key, None)
                self._hints.pop(key, None)

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="falcopy-enrichment", daemon=True)
        self._thread.start()
        self._ready.wait(5.0)

    def stop(self, timeout_s: float = 5.0) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        fut = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
        with contextlib.suppress(Exception):
            fut.result(timeout_s)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout_s)
        self._thread = None

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._kick = asyncio.Event()
        with self._lock:
            self._loop = loop
            pending, self._pending = self._pending, []
        for cid in pending:
            self._schedule(cid)
        if self._kubelet is not None:
            self._spawn(self._kubelet_loop())
        self._spawn(self._sweep_loop())
        if self.k8smeta is not None:
            self._spawn(self.k8smeta.run(lambda: self._stopping))
        if self.config.watch_events:
            for client in self._runtimes:
                self._spawn(self._watch_runtime(client))
        self._check_cri_sockets()
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            with self._lock:
                self._loop = None
            loop.close()

    async def _shutdown(self) -> None:
        # a flag as well as cancel(): asyncio.wait_for (3.11) may swallow a
        # cancellation that races with the awaited event
        self._stopping = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for client in self._runtimes:
            await client.aclose()
        if self._kubelet is not None:
            await self._kubelet.aclose()

    def _spawn(self, coro: object) -> None:
        task = asyncio.ensure_future(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _check_cri_sockets(self) -> None:
        present = [p for p in self._cri_sockets if os.path.exists(p)]
        if present:
            log.info("container metadata: CRI socket(s) %s found; container.* fields on this node come "
                     "from the kubelet /pods (no CRI client)", ", ".join(present))

    # -- loop thread: runtime lookups ---------------------------------------------------
    def _schedule(self, container_id: str) -> None:
        entry = self._entries.get(container_id)
        if entry is None:
            full_id, runtime_type, pod_uid = self._hints.get(container_id, ("", "", None))
            entry = _Entry(full_id=full_id, runtime_type=runtime_type, pod_uid=pod_uid,
                           first_seen=time.monotonic(),
                           backoff=Backoff(self.config.retry_base_s, self.config.retry_cap_s))
            self._entries[container_id] = entry
        if entry.in_flight:
            return
        entry.in_flight = True
        self._spawn(self._resolve(container_id, entry))

    async def _resolve(self, container_id: str, entry: _Entry) -> None:
        self.lookup_attempts.append((container_id, time.monotonic()))
        try:
            await self._resolve_runtime(container_id, entry)
        except Exception:  # a bug in parsing must not kill the loop
            log.exception("container metadata: lookup of %s failed", container_id)
            entry.runtime_done = True
        finally:
            entry.in_flight = False
        pod = self._pods.lookup(container_id, entry.pod_uid)
        self._publish(container_id, entry, pod)
        if (pod is None or not pod.full_id) and self._kubelet is not None and self._kick is not None:
            self._kick.set()
        if not entry.runtime_done and entry.backoff.attempts < self.config.max_attempts:
            delay = entry.backoff.failed()
            asyncio.get_running_loop().call_later(delay, self._schedule, container_id)

    async def _resolve_runtime(self, container_id: str, entry: _Entry) -> None:
        faulted = False
        for client in self._runtimes:
            if not os.path.exists(client.socket_path):
                self.faults.fault(client.source, "socket absent")
                continue
            self.stats.runtime_lookups += 1
            try:
                # the full id when the cgroup gave it: a 12-char prefix can be ambiguous
                info = await client.inspect(entry.full_id or container_id)
            except SourceFault as fault:
                self.faults.fault(client.source, fault.condition, fault.detail)
                faulted = True
                continue
            self.faults.ok(client.source)
            if info is not None:
                entry.runtime = info
                entry.runtime_done = True
                return
        # every reachable runtime said "unknown": final unless one of them failed
        entry.runtime_done = not faulted

    def _complete(self, container_id: str, entry: _Entry, pod: PodContainer | None) -> bool:
        if not entry.runtime_done:
            return False
        if self._kubelet is None or (pod is not None and pod.full_id):
            return True
        return self._pods_fetched_at >= entry.first_seen

    def _k8smeta_of(self, container_id: str, entry: _Entry, pod: PodContainer | None) -> PodMeta | None:
        if self.k8smeta is None:
            return None
        return self.k8smeta.lookup(entry.full_id or (pod.full_id if pod else "") or container_id,
                                   (pod.pod_uid if pod else None) or entry.pod_uid)

    def _k8smeta_changed(self) -> None:
        # loop thread: republish the containers whose pod metadata is another object now
        # (a pod that arrived late included: a missing answer is never kept)
        for cid, entry in list(self._entries.items()):
            current = self._cache.get(cid)
            if current is None:
                continue
            pod = self._pods.lookup(cid, entry.pod_uid)
            if self._k8smeta_of(cid, entry, pod) is not current.k8smeta:
                self._publish(cid, entry, pod)

    def _publish(self, container_id: str, entry: _Entry, pod: PodContainer | None) -> None:
        info = merge(container_id, entry.full_id, entry.runtime_type, entry.runtime, pod,
                     self._complete(container_id, entry, pod), self._k8smeta_of(container_id, entry, pod))
        with self._published:
            if container_id not in self._cache:
                return  # evicted meanwhile
            self._cache[container_id] = info
            self.stats.published += 1
            self._published.notify_all()
        for callback in self._listeners:
            try:
                callback(info)
            except Exception:
                log.exception("container metadata listener failed")

    async def _watch_runtime(self, client: DockerClient) -> None:
        # Falco's container plugin listens to the runtimes too: containers that
        # already run, and each one that starts, are looked up before their
        # processes make the first rule ask for container fields.
        source = f"{client.source} events"
        backoff = Backoff(self.config.retry_base_s, self.config.retry_cap_s)
        while not self._stopping:
            if not os.path.exists(client.socket_path):
                await asyncio.sleep(self.config.socket_poll_s)
                continue
            try:
                for full_id in await client.running_ids():
                    self._prefetch(full_id, client.runtime)
                backoff.succeeded()
                async for action, full_id in client.events():
                    self.faults.ok(source)
                    if action == "start":
                        self._prefetch(full_id, client.runtime)
                    elif action == "destroy":
                        asyncio.get_running_loop().call_later(self.config.forget_after_s, self.forget,
                                                              full_id[:12])
            except SourceFault as fault:
                self.faults.fault(source, fault.condition, fault.detail)
                await asyncio.sleep(backoff.failed())

    def _prefetch(self, full_id: str, runtime: str) -> None:
        cid = full_id[:12]
        if cid not in self._cache:
            self._hints.setdefault(cid, (full_id, runtime, None))
            self.get(cid)

    def forget(self, container_id: str) -> None:
        """Drop a container that is gone (its last events have long been evaluated)."""
        with self._lock:
            self._cache.pop(container_id, None)
            self._hints.pop(container_id, None)
        self._entries.pop(container_id, None)

    async def _sweep_loop(self) -> None:
        # containers that used up their retries get a fresh series now and then,
        # so that a runtime that comes back is used without a restart
        while not self._stopping:
            await asyncio.sleep(self.config.retry_sweep_s)
            for cid, entry in list(self._entries.items()):
                if cid not in self._cache:  # evicted by the event thread
                    self._entries.pop(cid, None)
                elif not entry.runtime_done and not entry.in_flight:
                    entry.backoff.succeeded()
                    self._schedule(cid)

    # -- loop thread: kubelet ---------------------------------------------------------
    async def _kubelet_loop(self) -> None:
        assert self._kick is not None
        kcfg = self.config.kubelet
        while not self._stopping:
            ok = await self._refresh_pods()
            delay = kcfg.refresh_s if ok else max(0.0, self._kubelet_backoff.not_before - time.monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), timeout=delay)
            self._kick.clear()
            # rate limit: unknown containers arriving in bursts share one refresh
            wait = max(self._pods_attempt_at + kcfg.min_refresh_interval_s,
                       self._kubelet_backoff.not_before) - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)

    async def _refresh_pods(self) -> bool:
        assert self._kubelet is not None
        self._pods_attempt_at = time.monotonic()
        self.kubelet_attempts.append(self._pods_attempt_at)
        self.stats.kubelet_refreshes += 1
        try:
            pods = await self._kubelet.pods()
        except SourceFault as fault:
            self.faults.fault(self._kubelet.source, fault.condition, fault.detail)
            self._kubelet_backoff.failed()
            return False
        self.faults.ok(self._kubelet.source)
        self._kubelet_backoff.succeeded()
        self._pods = pods
        self._pods_fetched_at = self._pods_attempt_at
        for cid, entry in list(self._entries.items()):
            if cid in self._cache:
                self._publish(cid, entry, pods.lookup(cid, entry.pod_uid))
            else:
                self._entries.pop(cid, None)
        return True
