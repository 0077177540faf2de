"""Workload metadata from the operator's collector: this node's pods and what they relate to.

:class:`NodeMeta` applies the collector's stream (:mod:`falcopy.common.k8smeta`) and
resolves each pod into an immutable :class:`PodMeta` (namespace, ReplicaSet ->
Deployment or ReplicationController, selecting Service).  :class:`K8sMetaSubscriber`
keeps the stream open from the metadata store's loop thread: it resumes from the
last sequence number it applied, reconnects with backoff, and keeps the last data
while the operator is away (rules keep the workload fields; kubelet data keeps
flowing regardless).  Each change calls ``on_change`` so that the store republishes
the containers whose pod metadata changed: nothing ever pins an old or missing
answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
from falcopy.agent.enrichment.config import K8sMetaConfig
from falcopy.agent.enrichment.docker import SourceFault, connect_fault
from falcopy.agent.enrichment.faults import Backoff, FaultLog
from falcopy.agent.enrichment.model import ObjMeta, PodMeta

from falcopy.common import k8smeta as wire

log = logging.getLogger("falcopy.agent.enrichment")


def _obj(rec: dict[str, Any] | None) -> ObjMeta | None:
    if rec is None:
        return None
    return ObjMeta(name=rec.get("name", ""), uid=rec.get("uid", ""), labels=rec.get("labels") or {})


class NodeMeta:
    """The node's share of the cluster metadata, as the stream built it (loop thread)."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        self.epoch: str | None = None
        self.seq = 0
        #: published answers, read from the event path's thread (replaced, never mutated)
        self.by_pod: dict[str, PodMeta] = {}
        self.by_container: dict[str, str] = {}

    def apply(self, msg: dict[str, Any]) -> bool:
        """One stream line; True when the published answers may have changed."""
        kind = msg.get("type")
        if "seq" in msg:
            self.seq = int(msg["seq"])
        if kind == "snapshot":
            self.epoch = msg.get("epoch")
            self.records = {r["uid"]: r for r in msg.get("objects") or []}
        elif kind == "put":
            rec = msg["obj"]
            self.records[rec["uid"]] = rec
        elif kind == "del":
            self.records.pop(msg.get("uid", ""), None)
        else:
            return False
        self._resolve()
        return True

    def lookup(self, container_id: str, pod_uid: str | None = None) -> PodMeta | None:
        """By full (or 12-char) container id, else by pod UID."""
        uid = self.by_container.get(container_id) or self.by_container.get(container_id[:12])
        if uid is None:
            uid = pod_uid
        return self.by_pod.get(uid) if uid else None

    def _resolve(self) -> None:
        ns_by_name = {r["name"]: r for r in self.records.values() if r.get("kind") == wire.NS}
        by_pod: dict[str, PodMeta] = {}
        by_container: dict[str, str] = {}
        for rec in self.records.values():
            if rec.get("kind") != wire.POD:
                continue
            owner = self.records.get(rec.get("owner") or "")
            rs = owner if owner is not None and owner.get("kind") == wire.RS else None
            rc = owner if owner is not None and owner.get("kind") == wire.RC else None
            dep = self.records.get(rs.get("owner") or "") if rs is not None else None
            svcs = [self.records[s] for s in rec.get("svcs") or [] if s in self.records]
            meta = PodMeta(pod=ObjMeta(rec.get("name", ""), rec["uid"], rec.get("labels") or {}),
                           ns_name=rec.get("ns", ""), ip=rec.get("ip") or "",
                           ns=_obj(ns_by_name.get(rec.get("ns", ""))), rs=_obj(rs),
                           deployment=_obj(dep), rc=_obj(rc), svc=_obj(svcs[0] if svcs else None))
            previous = self.by_pod.get(rec["uid"])
            # the same object when nothing changed: the store republishes on identity change only
            by_pod[rec["uid"]] = previous if previous == meta else meta
            for cid in rec.get("containers") or []:
                by_container[cid] = rec["uid"]
                by_container[cid[:12]] = rec["uid"]
        self.by_pod, self.by_container = by_pod, by_container


@dataclass
class SubscriberStats:
    connects: int = 0
    snapshots: int = 0
    lines: int = 0
    failures: int = 0


class K8sMetaSubscriber:
    """Keeps this node's metadata stream open (a task on the metadata store's loop)."""

    def __init__(self, config: K8sMetaConfig, node: str, faults: FaultLog,
                 on_change: Callable[[], None] | None = None) -> None:
        self.config = config
        self.node = node
        self.meta = NodeMeta()
        self.faults = faults
        self.stats = SubscriberStats()
        self.on_change = on_change
        self.source = f"k8smeta collector ({config.url})"
        self.connected = False

    def lookup(self, container_id: str, pod_uid: str | None = None) -> PodMeta | None:
        return self.meta.lookup(container_id, pod_uid)

    def _ssl(self) -> ssl.SSLContext | bool:
        if self.config.insecure:
            return False
        if self.config.ca_file and os.path.exists(self.config.ca_file):
            return ssl.create_default_context(cafile=self.config.ca_file)
        return ssl.create_default_context()

    def _token(self) -> dict[str, str]:
        path = self.config.token_file
        if not path:
            return {}
        try:
            with open(path, encoding="utf-8") as fh:  # re-read: projected tokens rotate
                token = fh.read().strip()
        except OSError as exc:
            raise SourceFault("token file unreadable", f"{path}: {exc.strerror}") from exc
        return {"Authorization": f"Bearer {token}"} if token else {}

    def _url(self) -> str:
        query = {"node": self.node}
        if self.meta.epoch is not None:
            query.update(epoch=self.meta.epoch, since=str(self.meta.seq))
        return f"{str(self.config.url).rstrip('/')}{wire.PATH}?{urlencode(query)}"

    async def run(self, stopping: Callable[[], bool]) -> None:
        cfg = self.config
        backoff = Backoff(cfg.retry_base_s, cfg.retry_cap_s)
        timeout = httpx.Timeout(cfg.connect_timeout_s, read=cfg.idle_timeout_s)
        transport = httpx.AsyncHTTPTransport(verify=self._ssl(), retries=0)
        async with httpx.AsyncClient(transport=transport, timeout=timeout) as http:
            while not stopping():
                try:
                    await self._stream(http, backoff)
                    fault = SourceFault("closed the stream", "")
                except SourceFault as exc:
                    fault = exc
                self.connected = False
                self.stats.failures += 1
                self.faults.fault(self.source, fault.condition, fault.detail)
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.sleep(backoff.failed())

    async def _stream(self, http: httpx.AsyncClient, backoff: Backoff) -> None:
        try:
            async with http.stream("GET", self._url(), headers=self._token()) as resp:
                if resp.status_code in (401, 403):
                    body = (await resp.aread()).decode(errors="replace").strip()[:200]
                    raise SourceFault(f"refused the service account token (HTTP {resp.status_code})", body)
                if resp.status_code != 200:
                    raise SourceFault(f"answered HTTP {resp.status_code}", "")
                self.stats.connects += 1
                self.connected = True
                first = True
                async for line in resp.aiter_lines():
                    if not line:
                        continue
                    try:
                        msg = orjson.loads(line)
                    except orjson.JSONDecodeError as exc:
                        raise SourceFault("sent invalid JSON", str(exc)[:200]) from exc
                    if first:  # the collector answers: the condition (if any) is over
                        first = False
                        self.faults.ok(self.source)
                        backoff.succeeded()
                    self.stats.lines += 1
                    if msg.get("type") == "snapshot":
                        self.stats.snapshots += 1
                    if self.meta.apply(msg) and self.on_change is not None:
                        self.on_change()
        except httpx.TimeoutException as exc:
            raise SourceFault("went silent", f"no line within {self.config.idle_timeout_s}s") from exc
        except httpx.ConnectError as exc:
            raise connect_fault(exc) from exc
        except (httpx.TransportError, OSError) as exc:
            raise SourceFault("broke the stream", f"{type(exc).__name__}: {exc}") from exc
