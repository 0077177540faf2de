"""Deletions lost across a watch gap: list again, drop what the list no longer holds.

When a watch breaks and its resourceVersion has been compacted (410 Gone), kopf lists
the kind again and hands every object it finds to the handlers as a ``type: None``
event, but nothing for the objects that vanished meanwhile: their DELETED events are
gone with the history, and kopf's own indices drop an object only on a DELETED event
too.  Without a sweep such objects would stay in the index (and on the agents) until
the operator restarts.

The relister lists a kind itself and hands the uids to :meth:`ClusterIndex.sweep`,
which removes only objects last seen before the list was requested.  It runs a short
while after kopf's re-listing of that kind (``listed``), and every ``every_s`` for
all kinds: a kind whose every object was deleted during the gap re-lists empty, and
an empty listing sends no event to be noticed by.  Lists ask for object metadata
only (``PartialObjectMetadataList``) in pages, so a large cluster costs the API
server little.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import orjson
from falcopy.operator.k8smeta.index import ClusterIndex
from kubernetes import client

log = logging.getLogger("falcopy.operator.k8smeta")

#: metadata only where the API server supports it, a full list where it does not
ACCEPT = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
PAGE = 500
LIST_TIMEOUT_S = 60.0


class Relister:
    def __init__(self, index: ClusterIndex, api: client.ApiClient,
                 kinds: tuple[tuple[str, str, str], ...], *, every_s: float, settle_s: float = 1.0,
                 page: int = PAGE) -> None:
        self.index = index
        self.api = api
        #: API kind -> URL path of its cluster-wide list
        self.paths = {kind: (f"/api/{gv}/{plural}" if "/" not in gv else f"/apis/{gv}/{plural}")
                      for gv, plural, kind in kinds}
        self.every_s = every_s
        self.page = page
        #: quiet time after kopf's last listed object of a kind before it is swept
        self.settle_s = settle_s
        self.swept = 0
        self.lists = 0
        self.failures = 0
        self._due: dict[str, asyncio.TimerHandle] = {}
        self._wake: asyncio.Queue[str] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    def start(self) -> None:
        self._wake = asyncio.Queue()  # on the running loop (a restarted operator has another)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="k8smeta-relist")

    async def stop(self) -> None:
        for handle in self._due.values():
            handle.cancel()
        self._due.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def listed(self, kind: str) -> None:
        """kopf handed over a listed object of ``kind``: sweep it once the listing is quiet."""
        if self._task is None:
            return
        handle = self._due.pop(kind, None)
        if handle is not None:
            handle.cancel()
        loop = asyncio.get_running_loop()
        self._due[kind] = loop.call_later(self.settle_s, self._fire, kind)

    def _fire(self, kind: str) -> None:
        self._due.pop(kind, None)
        self._wake.put_nowait(kind)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_all = loop.time() + self.every_s
        while True:
            try:
                kinds = [await asyncio.wait_for(self._wake.get(), max(0.0, next_all - loop.time()))]
            except TimeoutError:
                kinds = list(self.paths)
                next_all = loop.time() + self.every_s
            for kind in kinds:
                await self.sweep(kind)

    async def sweep(self, kind: str) -> int:
        """List ``kind`` and drop the index's objects the list lost; the number dropped."""
        mark = self.index.changes
        try:
            uids = await asyncio.to_thread(self.list_uids, kind)
        except Exception as exc:  # an API outage, a bad answer: the next sweep retries
            self.failures += 1
            if not self._failing:
                self._failing = True
                log.warning("k8smeta collector: listing %s failed (%s); deleted objects may linger "
                            "until a list succeeds", kind, exc)
            return 0
        if self._failing:
            self._failing = False
            log.info("k8smeta collector: listing %s works again", kind)
        self.lists += 1
        dropped = self.index.sweep(kind, uids, mark)
        if dropped:
            self.swept += dropped
            log.info("k8smeta collector: %d %s object(s) deleted during a watch gap were dropped",
                     dropped, kind)
        return dropped

    def list_uids(self, kind: str) -> set[str]:
        """The uids the API server holds of ``kind`` now (blocking: run it in a thread)."""
        path = self.paths[kind]
        uids: set[str] = set()
        token = ""
        while True:
            query: list[tuple[str, str | int]] = [("limit", self.page)]
            if token:
                query.append(("continue", token))
            method, url, headers, _, _ = self.api.param_serialize(
                "GET", path, query_params=query, header_params={"Accept": ACCEPT},
                auth_settings=["BearerToken"])
            resp = self.api.call_api(method, url, header_params=headers, _request_timeout=LIST_TIMEOUT_S)
            data = resp.read()
            if resp.status >= 300:
                raise client.ApiException(status=resp.status, reason=resp.reason,
                                          body=data.decode(errors="replace"))
            doc = orjson.loads(data)
            for item in doc.get("items") or []:
                uid = (item.get("metadata") or {}).get("uid")
                if uid:
                    uids.add(str(uid))
            token = str((doc.get("metadata") or {}).get("continue") or "")
            if not token:
                return uids
