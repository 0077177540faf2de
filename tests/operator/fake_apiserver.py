"""A stand-in Kubernetes API server for the operator tests (no real one can run here).

Speaks enough of the REST and watch protocol for kopf and the kubernetes
client: discovery (/api, /apis, resource lists), list with labelSelector and
resourceVersion, chunked watch streams resumed from a resourceVersion,
get/create/replace/delete, merge-patch and JSON-patch (RFC 6902), the status
subresource (spec and status updated separately; generation bumped on spec
changes), finalizers with deletionTimestamp, ConfigMaps (1 MiB limit enforced
like the real server), Leases and Events; ``fieldSelector`` on metadata.name /
metadata.namespace (and, as the real request-info resolver does, a list or
watch by ``metadata.name`` is authorized as a request for that name); 410 Gone
for a watch from a compacted resourceVersion.

Built to hold thousands of watchers (the scale simulation, tests/scale): one
wake-up per resource, each event serialised once for all its watchers.
Run alone with ``python -m tests.operator.fake_apiserver URL_FILE``; then
``GET /_test/stats`` answers the requests served, by verb and resource.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime as dt
import json
import signal
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

CONFIGMAP_LIMIT = 1024 * 1024


@dataclass(frozen=True)
class Res:
    group: str  # "" for core
    version: str
    plural: str
    kind: str
    namespaced: bool
    status: bool = False  # has a status subresource
    verbs: tuple[str, ...] = ("create", "delete", "get", "list", "patch", "update", "watch")

    @property
    def gv(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


RESOURCES = [
    Res("", "v1", "configmaps", "ConfigMap", True),
    Res("", "v1", "events", "Event", True),
    Res("", "v1", "namespaces", "Namespace", False),
    Res("falcopy.io", "v1alpha1", "falcorules", "FalcoRule", True, status=True),
    Res("falcopy.io", "v1alpha1", "clusterfalcorules", "ClusterFalcoRule", False, status=True),
    Res("coordination.k8s.io", "v1", "leases", "Lease", True),
    Res("events.k8s.io", "v1", "events", "Event", True),
    # the workload kinds the metadata collector watches
    Res("", "v1", "pods", "Pod", True),
    Res("", "v1", "services", "Service", True),
    Res("", "v1", "replicationcontrollers", "ReplicationController", True),
    Res("apps", "v1", "replicasets", "ReplicaSet", True),
    Res("apps", "v1", "deployments", "Deployment", True),
    Res("authentication.k8s.io", "v1", "tokenreviews", "TokenReview", False, verbs=("create",)),
]


def _json(body: Any, status: int = 200) -> web.Response:
    """``web.json_response`` through orjson: the encoding is most of what a Lease write or a
    shard read costs this server."""
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def _status(code: int, reason: str, message: str) -> web.Response:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    return _json(body, status=code)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = merge_patch(result.get(k), v)
    return result


def _pointer(path: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]


def json_patch(doc: Any, ops: list[dict[str, Any]]) -> Any:
    """RFC 6902 (add, remove, replace, test, copy, move)."""
    doc = copy.deepcopy(doc)

    def parent(path: str) -> tuple[Any, str]:
        parts = _pointer(path)
        cur = doc
        for p in parts[:-1]:
            cur = cur[int(p)] if isinstance(cur, list) else cur[p]
        return cur, parts[-1]

    def get(path: str) -> Any:
        cur = doc
        for p in _pointer(path):
            cur = cur[int(p)] if isinstance(cur, list) else cur[p]
        return cur

    for op in ops:
        kind, path = op["op"], op["path"]
        if kind == "test":
            if get(path) != op["value"]:
                raise ValueError(f"test failed at {path}")
            continue
        if kind in ("copy", "move"):
            value = copy.deepcopy(get(op["from"]))
            if kind == "move":
                c, k = parent(op["from"])
                del c[int(k) if isinstance(c, list) else k]
            kind, op = "add", {"path": path, "value": value}
        c, k = parent(path)
        if kind == "add":
            if isinstance(c, list):
                c.insert(len(c) if k == "-" else int(k), op["value"])
            else:
                c[k] = op["value"]
        elif kind == "remove":
            del c[int(k) if isinstance(c, list) else k]
        elif kind == "replace":
            if isinstance(c, list):
                c[int(k)] = op["value"]
            else:
                if k not in c:
                    raise KeyError(path)
                c[k] = op["value"]
        else:
            raise ValueError(f"unsupported op {kind}")
    return doc


def field_matcher(selector: str | None) -> Callable[[dict[str, Any]], bool]:
    """``metadata.name=x,metadata.namespace=y`` (=, ==, !=), what field selectors allow here,
    parsed once (a watch applies it to every event); ValueError for any other field."""
    terms = []
    for term in (selector or "").split(",") if selector else []:
        negate = "!=" in term
        key, _, value = term.replace("!=", "=").replace("==", "=").partition("=")
        field_ = key.strip()
        if field_ not in ("metadata.name", "metadata.namespace"):
            raise ValueError(f'field label not supported: "{field_}"')
        terms.append((field_.split(".")[1], value.strip(), negate))

    def match(obj: dict[str, Any]) -> bool:
        meta = obj.get("metadata") or {}
        return all((str(meta.get(k) or "") == v) != negate for k, v, negate in terms)

    return match


def _fields_match(obj: dict[str, Any], selector: str | None) -> bool:
    return field_matcher(selector)(obj)


def selected_name(query: Any) -> str:
    """The name a list/watch is limited to by ``fieldSelector=metadata.name=x`` (else "")."""
    for term in (query.get("fieldSelector") or "").split(","):
        key, eq, value = term.replace("==", "=").partition("=")
        if eq and key.strip() == "metadata.name" and "!" not in key:
            return value.strip()
    return ""


def _labels_match(obj: dict[str, Any], selector: str | None) -> bool:
    if not selector:
        return True
    labels = (obj.get("metadata") or {}).get("labels") or {}
    for term in selector.split(","):
        term = term.strip()
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k.strip()) == v.strip():
                return False
        elif "=" in term:
            k, v = term.replace("==", "=").split("=", 1)
            if labels.get(k.strip()) != v.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


@dataclass
class Store:
    rv: int = 0
    objects: dict[tuple[str, str], dict[tuple[str, str], dict[str, Any]]] = field(default_factory=dict)
    #: per resource: (resourceVersion, type, object, the watch line sent for it)
    history: dict[tuple[str, str], list[tuple[int, str, dict[str, Any], bytes]]] = field(default_factory=dict)
    #: per resource, set (and replaced) when an event is appended: one set() wakes every watcher
    #: of the resource at once (a Condition hands its lock on one watcher per loop pass), and a
    #: Lease renewal wakes no ConfigMap watcher
    wakers: dict[tuple[str, str], asyncio.Event] = field(default_factory=dict)
    #: watches from a resourceVersion below this get 410 Gone
    compacted: int = 0
    #: bumped to end every open watch stream (``watch_gap``)
    severed: int = 0
    requests: list[tuple[str, str]] = field(default_factory=list)
    #: (verb, resource) -> requests served; watches open now
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: (verb, resource) -> request body bytes received (what writes cost)
    bytes_in: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: resource -> watches open now
    watching: Counter[str] = field(default_factory=Counter)
    #: (user agent, attributes) of every request the authorizer saw, and of those it denied
    authorized: list[tuple[str, RequestAttrs]] = field(default_factory=list)
    denied: list[tuple[str, RequestAttrs]] = field(default_factory=list)


@dataclass(frozen=True)
class RequestAttrs:
    """A resource request as RBAC sees it (verb from the method, as the real API server maps it)."""

    verb: str
    group: str
    resource: str  # "plural" or "plural/subresource"
    namespace: str
    name: str


def request_verb(method: str, name: str | None, query: Any) -> str:
    if method == "GET":
        if name is not None:
            return "get"
        return "watch" if query.get("watch") in ("true", "1") else "list"
    if method == "DELETE" and name is None:
        return "deletecollection"
    verbs = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
    return verbs.get(method, method.lower())


class FakeApiServer:
    def __init__(self) -> None:
        self.store = Store()
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._started = threading.Event()
        self._stopping = False
        self.port = 0
        #: (user agent, attributes) -> allowed?; None = everything is allowed
        self.authorizer: Callable[[str, RequestAttrs], bool | None] | None = None
        #: bearer token -> TokenReview ``status.user`` (tokens not listed are not authenticated)
        self.tokens: dict[str, dict[str, Any]] = {}
        self.token_reviews = 0
        #: (method, path) -> seconds to hold the request before serving it: an overloaded
        #: or stalled server, for one request
        self.hold: Callable[[str, str], float] | None = None
        #: the event loop the server runs on (the scale simulation's process uses uvloop's)
        self.loop_factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> str:
        self._thread = threading.Thread(target=self._run, name="fake-apiserver", daemon=True)
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("fake API server did not start")
        return self.url

    def _run(self) -> None:
        self._loop = self.loop_factory()
        self._loop.run_until_complete(self._serve())
        self._loop.run_forever()

    async def _serve(self) -> None:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, backlog=4096)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        self._started.set()

    def stop(self) -> None:
        if self._loop is None:
            return
        self._stopping = True

        async def shutdown() -> None:
            self._wake_all()
            if self._runner is not None:
                await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(5)

    def kubeconfig(self) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {"token": "test-token"}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
            "current-context": "fake",
        }

    # thread-safe snapshots for assertions
    def objects(self, plural: str, namespace: str | None = None) -> list[dict[str, Any]]:
        out = []
        for (_, p), objs in list(self.store.objects.items()):
            if p != plural:
                continue
            for (ns, _), obj in list(objs.items()):
                if namespace is None or ns == namespace:
                    out.append(copy.deepcopy(obj))
        return out

    def compact(self) -> None:
        """Forget the history so far, as etcd compaction does: watches from an older
        resourceVersion get 410 Gone and must list again."""

        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(self._compact(), self._loop).result(10)

    def watch_gap(self, *gone: tuple[str, str, str]) -> None:
        """Objects (plural, namespace, name) deleted while every watch is down, the history
        compacted before the watches come back: the open streams end, no DELETED event is
        ever sent, and a watcher resuming from before gets 410 Gone and must list again."""

        async def run() -> None:
            for plural, namespace, name in gone:
                held = [objs for (_, p), objs in self.store.objects.items() if p == plural]
                assert any((namespace, name) in objs for objs in held), f"no {plural} {namespace}/{name}"
                for objs in held:
                    objs.pop((namespace, name), None)
            self.store.rv += 1
            self.store.severed += 1
            await self._compact()

        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)

    async def _compact(self) -> None:
        self.store.compacted = self.store.rv
        for key in self.store.history:
            self.store.history[key] = []
        self._wake_all()

    def get(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        for (_, p), objs in list(self.store.objects.items()):
            if p == plural and (namespace, name) in objs:
                return copy.deepcopy(objs[(namespace, name)])
        return None

    # ------------------------------------------------------------------ routing
    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        parts = [p for p in request.path.split("/") if p]
        if parts == ["_test", "stats"]:
            counts = [{"verb": v, "resource": r, "count": n, "bytes": self.store.bytes_in[(v, r)]}
                      for (v, r), n in sorted(self.store.counts.items())]
            return _json({"requests": counts, "watching": self.store.watching,
                                      "rv": self.store.rv})
        self.store.requests.append((request.method, request.path_qs))
        if self.hold is not None and (seconds := self.hold(request.method, request.path)):
            await asyncio.sleep(seconds)
        if parts == ["api"]:
            return _json({"kind": "APIVersions", "versions": ["v1"]})
        if parts == ["apis"]:
            return _json(self._groups())
        if parts[:1] == ["api"] and len(parts) >= 2:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        elif parts[:1] == ["apis"] and len(parts) == 2:
            return _json(self._group(parts[1]))
        else:
            return _status(404, "NotFound", f"no route {request.path}")
        if not rest:
            return _json(self._resource_list(group, version))
        namespace = ""
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace, rest = rest[1], rest[2:]
        res = next(
            (r for r in RESOURCES if r.group == group and r.version == version and r.plural == rest[0]), None
        )
        if res is None:
            return _status(
                404, "NotFound", f"the server could not find the requested resource {request.path}"
            )
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if sub not in (None, "status") or (sub == "status" and not res.status):
            return _status(404, "NotFound", f"no subresource {sub}")
        if res.namespaced is False:
            namespace = ""
        verb = request_verb(request.method, name, request.query)
        self.store.counts[(verb, res.plural + (f"/{sub}" if sub else ""))] += 1
        self.store.bytes_in[(verb, res.plural + (f"/{sub}" if sub else ""))] += request.content_length or 0
        if self.authorizer is not None:
            agent = request.headers.get("User-Agent", "")
            # a list/watch by metadata.name is authorized for that name (RBAC resourceNames)
            named = name or (selected_name(request.query) if verb in ("list", "watch") else "")
            attrs = RequestAttrs(verb, group, res.plural + (f"/{sub}" if sub else ""), namespace, named)
            verdict = self.authorizer(agent, attrs)
            if verdict is not None:  # None: a caller the authorizer does not judge (the test itself)
                self.store.authorized.append((agent, attrs))
                if not verdict:
                    self.store.denied.append((agent, attrs))
                    return _status(403, "Forbidden", f"{agent}: {attrs} is not allowed")
        try:
            return await self._handle(request, res, namespace, name, sub)
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            return _status(422, "Invalid", f"{type(exc).__name__}: {exc}")

    def _groups(self) -> dict[str, Any]:
        groups: dict[str, list[str]] = {}
        for r in RESOURCES:
            if r.group:
                groups.setdefault(r.group, [])
                if r.version not in groups[r.group]:
                    groups[r.group].append(r.version)
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [self._group(g) for g in groups]}

    def _group(self, group: str) -> dict[str, Any]:
        versions = sorted({r.version for r in RESOURCES if r.group == group})
        gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {
            "kind": "APIGroup",
            "apiVersion": "v1",
            "name": group,
            "versions": gvs,
            "preferredVersion": gvs[0],
        }

    def _resource_list(self, group: str, version: str) -> dict[str, Any]:
        resources = []
        for r in RESOURCES:
            if r.group == group and r.version == version:
                resources.append(
                    {
                        "name": r.plural,
                        "singularName": r.kind.lower(),
                        "namespaced": r.namespaced,
                        "kind": r.kind,
                        "verbs": list(r.verbs),
                    }
                )
                if r.status:
                    resources.append(
                        {
                            "name": f"{r.plural}/status",
                            "singularName": "",
                            "namespaced": r.namespaced,
                            "kind": r.kind,
                            "verbs": ["get", "patch", "update"],
                        }
                    )
        gv = f"{group}/{version}" if group else version
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}

    # ------------------------------------------------------------------ verbs
    async def _handle(
        self, request: web.Request, res: Res, namespace: str, name: str | None, sub: str | None
    ) -> web.StreamResponse:
        objs = self.store.objects.setdefault((res.gv, res.plural), {})
        method = request.method
        if res.plural == "tokenreviews":
            return await self._token_review(request)
        if name is None:
            if method == "GET":
                if request.query.get("watch") in ("true", "1"):
                    return await self._watch(request, res, namespace)
                return self._list(request, res, namespace)
            if method == "POST":
                body = await request.json(loads=orjson.loads)
                return await self._create(res, namespace, body)
            return _status(405, "MethodNotAllowed", method)
        key = (namespace, name)
        current = objs.get(key)
        if method == "GET":
            if current is None:
                return _status(404, "NotFound", f'{res.plural} "{name}" not found')
            return _json(current)
        if current is None:
            return _status(404, "NotFound", f'{res.plural} "{name}" not found')
        if method == "DELETE":
            return await self._delete(res, key, current)
        body = await request.json(loads=orjson.loads)
        if method == "PUT":
            want = (body.get("metadata") or {}).get("resourceVersion")
            if want and want != current["metadata"]["resourceVersion"]:
                return _status(
                    409,
                    "Conflict",
                    "the object has been modified; please apply your changes "
                    "to the latest version and try again",
                )
            new = body
        elif method == "PATCH":
            ctype = request.content_type
            new = (
                json_patch(current, body)
                if ctype == "application/json-patch+json"
                else merge_patch(current, body)
            )
        else:
            return _status(405, "MethodNotAllowed", method)
        return await self._update(res, key, current, new, sub)

    async def _token_review(self, request: web.Request) -> web.Response:
        if request.method != "POST":
            return _status(405, "MethodNotAllowed", request.method)
        body = await request.json(loads=orjson.loads)
        self.token_reviews += 1
        user = self.tokens.get(str((body.get("spec") or {}).get("token") or ""))
        status: dict[str, Any] = (
            {"authenticated": True, "user": user} if user is not None
            else {"authenticated": False, "error": "invalid bearer token"}
        )
        return _json({**body, "status": status}, status=201)

    def _list(self, request: web.Request, res: Res, namespace: str) -> web.Response:
        objs = self.store.objects.get((res.gv, res.plural), {})
        selector = request.query.get("labelSelector")
        fields = request.query.get("fieldSelector")
        items = [
            o
            for (ns, _), o in sorted(objs.items())
            if (not namespace or ns == namespace) and _labels_match(o, selector) and _fields_match(o, fields)
        ]
        meta = {"resourceVersion": str(self.store.rv)}
        limit = int(request.query.get("limit") or 0)
        if limit:  # pages: the continue token is the offset (a real one also pins the snapshot)
            start = int(request.query.get("continue") or 0)
            if start + limit < len(items):
                meta["continue"] = str(start + limit)
            items = items[start:start + limit]
        return _json(
            {
                "apiVersion": res.gv,
                "kind": f"{res.kind}List",
                "metadata": meta,
                "items": items,
            }
        )

    def _waker(self, key: tuple[str, str]) -> asyncio.Event:
        return self.store.wakers.setdefault(key, asyncio.Event())

    def _wake(self, key: tuple[str, str]) -> None:
        waker = self.store.wakers.pop(key, None)
        if waker is not None:
            waker.set()

    def _wake_all(self) -> None:
        for key in list(self.store.wakers):
            self._wake(key)

    async def _emit(self, res: Res, kind: str, obj: dict[str, Any]) -> None:
        line = orjson.dumps({"type": kind, "object": obj}) + b"\n"
        self.store.history.setdefault((res.gv, res.plural), []).append(
            (self.store.rv, kind, copy.deepcopy(obj), line)
        )
        self._wake((res.gv, res.plural))

    def _bump(self, obj: dict[str, Any]) -> None:
        self.store.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.store.rv)

    def _validate(self, res: Res, obj: dict[str, Any]) -> web.Response | None:
        if res.plural == "configmaps":
            data = obj.get("data") or {}
            size = sum(len(k.encode()) + len(str(v).encode()) for k, v in data.items())
            if size > CONFIGMAP_LIMIT:
                return _status(
                    422,
                    "Invalid",
                    f'ConfigMap "{obj["metadata"]["name"]}" is invalid: []: '
                    f"Too long: must have at most {CONFIGMAP_LIMIT} bytes",
                )
        return None

    async def _create(self, res: Res, namespace: str, body: dict[str, Any]) -> web.Response:
        objs = self.store.objects.setdefault((res.gv, res.plural), {})
        meta = body.setdefault("metadata", {})
        name = meta.get("name") or (meta.get("generateName", "obj-") + uuid.uuid4().hex[:5])
        meta["name"] = name
        if res.namespaced:
            meta["namespace"] = namespace
        if (namespace, name) in objs:
            return _status(409, "AlreadyExists", f'{res.plural} "{name}" already exists')
        bad = self._validate(res, body)
        if bad is not None:
            return bad
        body["apiVersion"] = res.gv
        body["kind"] = res.kind
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if res.status:
            meta["generation"] = 1
            body.pop("status", None)
            spec = body.setdefault("spec", {})
            spec.setdefault("priority", 50)  # the CRD schema's default
        self._bump(body)
        objs[(namespace, name)] = body
        await self._emit(res, "ADDED", body)
        return _json(body, status=201)

    async def _update(
        self, res: Res, key: tuple[str, str], current: dict[str, Any], new: dict[str, Any], sub: str | None
    ) -> web.Response:
        new = copy.deepcopy(new)
        # immutable / server-owned metadata
        for k in ("uid", "creationTimestamp", "name", "namespace", "generation", "deletionTimestamp"):
            if k in current["metadata"]:
                new.setdefault("metadata", {})[k] = current["metadata"][k]
        new["apiVersion"], new["kind"] = res.gv, res.kind
        if res.status:
            if sub == "status":
                status = new.get("status")
                new = copy.deepcopy(current)
                if status is None:
                    new.pop("status", None)
                else:
                    new["status"] = status
            else:
                if "status" in current:
                    new["status"] = copy.deepcopy(current["status"])
                else:
                    new.pop("status", None)
                new.setdefault("spec", {}).setdefault("priority", 50)
                if new.get("spec") != current.get("spec"):
                    new["metadata"]["generation"] = int(current["metadata"].get("generation", 1)) + 1
        bad = self._validate(res, new)
        if bad is not None:
            return bad
        if new == {
            **current,
            "metadata": {
                **current["metadata"],
                "resourceVersion": new["metadata"].get(
                    "resourceVersion", current["metadata"]["resourceVersion"]
                ),
            },
        }:
            return _json(current)  # no-op: no new resourceVersion, no event
        self._bump(new)
        objs = self.store.objects[(res.gv, res.plural)]
        if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            del objs[key]
            await self._emit(res, "DELETED", new)
            return _json(new)
        objs[key] = new
        await self._emit(res, "MODIFIED", new)
        return _json(new)

    async def _delete(self, res: Res, key: tuple[str, str], current: dict[str, Any]) -> web.Response:
        objs = self.store.objects[(res.gv, res.plural)]
        if current["metadata"].get("finalizers"):
            if not current["metadata"].get("deletionTimestamp"):
                new = copy.deepcopy(current)
                new["metadata"]["deletionTimestamp"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                self._bump(new)
                objs[key] = new
                await self._emit(res, "MODIFIED", new)
                return _json(new, status=202)
            return _json(current, status=202)
        del objs[key]
        gone = copy.deepcopy(current)
        self._bump(gone)
        await self._emit(res, "DELETED", gone)
        return _json({"kind": "Status", "apiVersion": "v1", "status": "Success"})

    async def _watch(self, request: web.Request, res: Res, namespace: str) -> web.StreamResponse:
        since = int(request.query.get("resourceVersion") or 0)
        timeout = float(request.query.get("timeoutSeconds") or 300)
        selector = request.query.get("labelSelector")
        fields = field_matcher(request.query.get("fieldSelector"))  # refused before the stream starts
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        key = (res.gv, res.plural)
        history = self.store.history.setdefault(key, [])
        sent = 0
        severed = self.store.severed
        self.store.watching[res.plural] += 1
        try:
            if since and since < self.store.compacted:
                gone = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Expired",
                        "code": 410, "message": f"too old resource version: {since} ({self.store.compacted})"}
                await resp.write(json.dumps({"type": "ERROR", "object": gone}).encode() + b"\n")
                await resp.write_eof()
                return resp
            # skip what the client has already seen
            while sent < len(history) and history[sent][0] <= since:
                sent += 1
            # one deadline for the whole stream, not a timer per wait: 5,000 watchers wait per event
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(deadline):
                    while not self._stopping and self.store.severed == severed:
                        if self.store.history[key] is not history:  # compacted meanwhile
                            history, sent = self.store.history[key], 0
                        woken = self._waker(key)  # before reading: an event appended from now on sets it
                        while sent < len(history):
                            _, _, obj, line = history[sent]
                            sent += 1
                            ns = (obj.get("metadata") or {}).get("namespace") or ""
                            if (namespace and ns != namespace) or not _labels_match(obj, selector):
                                continue
                            if not fields(obj):
                                continue
                            await resp.write(line)
                        if (sent < len(self.store.history[key]) or self._stopping
                                or self.store.severed != severed):
                            continue
                        await woken.wait()
            await resp.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            return resp
        finally:
            self.store.watching[res.plural] -= 1
        return resp


def main() -> None:
    """Serve until SIGTERM; the URL is written to the file named by the first argument."""
    import uvloop

    from tests.scale.sim_agents import raise_open_files  # thousands of watch streams

    raise_open_files()
    server = FakeApiServer()
    server.loop_factory = uvloop.new_event_loop
    server.port = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    server.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    Path(sys.argv[1]).write_text(server.url)
    stop.wait()
    server.stop()


if __name__ == "__main__":
    main()
