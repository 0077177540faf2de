"""The operator as Kubernetes metadata collector: kopf watches feed the index, the
server streams each node's share (see :mod:`falcopy.operator.k8smeta.index`)."""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any

import kopf
from falcopy.operator.k8smeta.index import ClusterIndex
from falcopy.operator.k8smeta.relist import Relister
from falcopy.operator.k8smeta.server import NODE_NAME_EXTRA, CollectorServer, Review
from falcopy.operator.settings import CollectorSettings
from kubernetes import client

log = logging.getLogger("falcopy.operator.k8smeta")

#: (group/version, plural, kind) of the watched kinds; the chart's RBAC lists exactly these
WATCHED: tuple[tuple[str, str, str], ...] = (
    ("v1", "pods", "Pod"),
    ("v1", "namespaces", "Namespace"),
    ("v1", "services", "Service"),
    ("v1", "replicationcontrollers", "ReplicationController"),
    ("apps/v1", "replicasets", "ReplicaSet"),
    ("apps/v1", "deployments", "Deployment"),
)



def token_reviewer(api: client.ApiClient) -> Any:
    """A reviewer asking the API server (TokenReview; the blocking client runs in a thread)."""
    auth = client.AuthenticationV1Api(api)

    def review(token: str) -> Review:
        body = client.V1TokenReview(spec=client.V1TokenReviewSpec(token=token))
        status = auth.create_token_review(body).status
        if status is None or not status.authenticated:
            return Review(False, error=(status.error or "") if status is not None else "")
        user = status.user
        extra = (user.extra or {}) if user is not None else {}
        nodes = extra.get(NODE_NAME_EXTRA) or []
        return Review(True, username=(user.username or "") if user is not None else "",
                      node=nodes[0] if nodes else None)

    async def reviewer(token: str) -> Review:
        return await asyncio.to_thread(review, token)

    return reviewer


def server_tls(settings: CollectorSettings) -> ssl.SSLContext | None:
    if settings.insecure:
        return None
    assert settings.certfile is not None and settings.keyfile is not None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(settings.certfile), str(settings.keyfile))
    return ctx


class Collector:
    def __init__(self, settings: CollectorSettings, reviewer: Any, api: client.ApiClient) -> None:
        self.settings = settings
        self.index = ClusterIndex(backlog=settings.backlog)
        self.server = CollectorServer(self.index, reviewer, frozenset(settings.agents),
                                      heartbeat_s=settings.heartbeat_s)
        self.relister = Relister(self.index, api, WATCHED, every_s=settings.relist_s)

    def register(self, registry: kopf.OperatorRegistry) -> None:
        for gv, plural, kind in WATCHED:
            group, _, version = gv.rpartition("/")
            self._watch(registry, group, version, plural, kind)

        @kopf.on.startup(registry=registry)
        async def start_collector(**_: Any) -> None:
            s = self.settings
            await self.server.start(s.host, s.port, server_tls(s))
            self.relister.start()

        @kopf.on.cleanup(registry=registry)
        async def stop_collector(**_: Any) -> None:
            await self.relister.stop()
            await self.server.stop()

    def _watch(self, registry: kopf.OperatorRegistry, group: str, version: str, plural: str,
               kind: str) -> None:
        index = self.index
        relister = self.relister

        resource = (group, version, plural) if group else (version, plural)

        # a coroutine: it runs on the loop with the server and the relister (a plain function
        # would run in kopf's thread pool, beside them)
        @kopf.on.event(*resource, id=f"k8smeta-{plural}", registry=registry)
        async def changed(event: dict[str, Any], **_: Any) -> None:
            raw = event.get("object") or {}
            if event.get("type") == "DELETED":
                index.delete(kind, raw)
                return
            index.upsert(kind, raw)
            if event.get("type") is None:  # kopf listed the kind: the first time, or after a watch gap
                relister.listed(kind)
