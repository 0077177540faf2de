"""The agent's watch on the rules bundle through the API server.

Only shard 0 (it carries the manifest and is written last) is watched, by a
``metadata.name`` field selector, so RBAC can limit the agent to the bundle's
ConfigMaps by ``resourceNames``; the other shards are fetched by name, and only
when the manifest lists a file on them whose content (by digest, whatever its
name) this agent does not hold yet.  The operator puts new and changed objects
in shard 0 (operator/bundle.py), so a change reaches the agent in the watch event
itself, and a file the operator later moves to another shard costs no fetch.  A
bundle is handed on only when every file matches the manifest (the verification
of :func:`falcopy.distribution.bundle.verify_bundle`, as for the volume) and its
serial is above every serial handed on before: a version never goes backwards.

The watch resumes from the last resourceVersion seen (bookmarks keep it fresh),
lists again when the server answers 410 Gone, and backs off exponentially (with
jitter, so thousands of agents do not reconnect in step) while the server is
unreachable.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

import httpx

from falcopy.common.errors import FalcopyError
from falcopy.distribution.apiaccess import watch_events
from falcopy.distribution.bundle import (
    MANIFEST_KEY,
    BundleDir,
    BundleIncomplete,
    Manifest,
    parse_manifest,
    verify_bundle,
)

log = logging.getLogger(__name__)

#: the watch's server-side timeout is drawn from this range (seconds), as client-go's reflectors do
WATCH_TIMEOUT_S = (300.0, 600.0)
BACKOFF_S = (0.5, 30.0)


class ApiError(FalcopyError):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"HTTP {code}: {message}")
        self.code = code


def _failure(response: httpx.Response) -> ApiError:
    try:
        message = str(response.json().get("message") or response.reason_phrase)
    except ValueError:
        message = response.reason_phrase
    return ApiError(response.status_code, message)


class BundleWatch:
    def __init__(
        self,
        client: httpx.AsyncClient,
        namespace: str,
        configmaps: list[str],
        on_bundle: Callable[[BundleDir], None],
        *,
        watch_timeout: tuple[float, float] = WATCH_TIMEOUT_S,
        backoff: tuple[float, float] = BACKOFF_S,
    ) -> None:
        if not configmaps:
            raise ValueError("no bundle ConfigMaps to watch")
        self.client = client
        self.namespace = namespace
        self.configmaps = list(configmaps)
        self.on_bundle = on_bundle
        self.watch_timeout = watch_timeout
        self.backoff = backoff
        #: the highest serial handed on
        self.serial = 0
        self.bundle: BundleDir | None = None
        #: requests made, by kind (list, watch, get) and failures
        self.requests: Counter[str] = Counter()
        self.last_error = ""
        #: the latest back-off delays chosen after a failure (for status and tests)
        self.retry_delays: deque[float] = deque(maxlen=32)
        #: the texts of the bundle handed on, by digest (verified against the manifest)
        self._held: dict[str, str] = {}
        self._base = f"/api/v1/namespaces/{namespace}/configmaps"
        self._selector = f"metadata.name={self.configmaps[0]}"

    # ------------------------------------------------------------------ loop
    async def run(self) -> None:
        rv: str | None = None
        failures = 0
        while True:
            try:
                if rv is None:
                    rv = await self._list()
                failures = 0
                rv = await self._watch(rv)
            except asyncio.CancelledError:
                raise
            except (httpx.HTTPError, ApiError, ValueError) as exc:
                failures += 1
                self.requests["failed"] += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                delay = random.uniform(0, min(self.backoff[1], self.backoff[0] * 2 ** min(failures, 16)))  # noqa: S311
                self.retry_delays.append(delay)
                level = logging.WARNING if failures == 1 else logging.DEBUG
                log.log(level, "rules bundle watch on %s/%s: %s; retrying in %.1fs (the rules volume stays "
                        "the source meanwhile)", self.namespace, self.configmaps[0], self.last_error, delay)
                await asyncio.sleep(delay)

    async def _list(self) -> str:
        self.requests["list"] += 1
        r = await self.client.get(self._base, params={"fieldSelector": self._selector})
        if r.status_code != 200:
            raise _failure(r)
        doc = r.json()
        for item in doc.get("items") or []:
            await self._offer(item)
        return str((doc.get("metadata") or {}).get("resourceVersion") or "")

    async def _watch(self, rv: str) -> str | None:
        """One watch request; the resourceVersion to resume from, None to list again."""
        seconds = int(random.uniform(*self.watch_timeout))  # noqa: S311 (jitter)
        params = {"watch": "1", "fieldSelector": self._selector, "resourceVersion": rv,
                  "allowWatchBookmarks": "true", "timeoutSeconds": str(seconds)}
        timeout = httpx.Timeout(10.0, read=seconds + 30.0)
        self.requests["watch"] += 1
        async with self.client.stream("GET", self._base, params=params, timeout=timeout) as r:
            if r.status_code == 410:
                return None
            if r.status_code != 200:
                await r.aread()
                raise _failure(r)
            async for event in watch_events(r):
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:  # our resourceVersion was compacted away
                        log.info("rules bundle watch: resourceVersion %s expired; listing again", rv)
                        return None
                    raise ApiError(int(obj.get("code") or 500), str(obj.get("message")))
                rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv)
                if kind in ("ADDED", "MODIFIED"):
                    await self._offer(obj)
                elif kind == "DELETED":
                    log.warning("rules bundle ConfigMap %s/%s deleted: keeping the running rules",
                                self.namespace, self.configmaps[0])
        return rv

    # ------------------------------------------------------------------ one version
    async def _offer(self, obj: dict[str, Any]) -> None:
        data = obj.get("data") or {}
        raw = data.get(MANIFEST_KEY)
        where = f"configmap {self.namespace}/{self.configmaps[0]}"
        if raw is None:
            return
        try:
            m = parse_manifest(raw, where)
        except BundleIncomplete as exc:
            log.warning("%s", exc)
            return
        if m.serial <= self.serial:
            return  # seen, or older than what was handed on: never backwards
        shards = {0: data}
        for index in sorted(self._missing_shards(m)):
            if index >= len(self.configmaps):
                log.warning("%s: the manifest lists shard %d; this agent knows %d rules ConfigMaps "
                            "(falcopy.rules_api.configmaps)", where, index, len(self.configmaps))
                return
            shards[index] = await self._get(self.configmaps[index])
        texts: dict[str, str] = {}
        for d in shards.values():
            texts.update((k, v) for k, v in d.items() if k != MANIFEST_KEY)
        extra = list(texts)
        digests = {e.name: e.sha256 for e in m.entries}

        def read(name: str) -> str | None:
            text = texts.get(name)
            return self._held.get(digests.get(name, "")) if text is None else text

        try:
            bundle = verify_bundle(m, read, extra, where, f"api:{self.namespace}/{self.configmaps[0]}",
                                   f"API configmaps {self.namespace}/{self.configmaps[0]}")
        except BundleIncomplete as exc:
            # a later shard was rewritten again since: its next manifest (shard 0) follows
            log.info("rules bundle from the API mid-update (%s); waiting for the next version", exc)
            return
        self._held = {e.sha256: str(read(e.name)) for e in m.entries}
        self.serial, self.bundle = m.serial, bundle
        self.on_bundle(bundle)

    def _missing_shards(self, m: Manifest) -> set[int]:
        """Shards other than 0 holding a file this agent lacks (all of them for an old manifest)."""
        out: set[int] = set()
        for e in m.entries:
            if e.shard == 0 or e.sha256 in self._held:
                continue
            if e.shard is None:
                return set(range(1, len(self.configmaps)))
            out.add(e.shard)
        return out

    async def _get(self, name: str) -> dict[str, str]:
        self.requests["get"] += 1
        r = await self.client.get(f"{self._base}/{name}")
        if r.status_code == 404:
            return {}
        if r.status_code != 200:
            raise _failure(r)
        return dict(r.json().get("data") or {})
