"""The collector's cluster index and each node's view of it.

The operator sees every pod, namespace, ReplicaSet, Deployment, Service and
ReplicationController once (API watches).  A node needs only its own pods and the
objects they relate to: the namespace, the owner chain (pod -> ReplicaSet ->
Deployment, or pod -> ReplicationController) and the Services whose selector
matches.  Each node view counts, per object, how many of the node's pods refer to
it: an object is sent (``put``) when the count leaves 0 and withdrawn (``del``)
when it returns to 0.  A change is serialised once and the same bytes are appended
to every node that holds the object (the fan-out is a list append per node).

Each view keeps the last ``backlog`` lines it was sent, numbered by the index's
sequence: a subscriber that reconnects within that window gets exactly what it
missed, an older one gets a snapshot (see :mod:`falcopy.common.k8smeta`).
"""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from falcopy.common import k8smeta as wire

#: API kind -> record kind
KIND_OF: dict[str, str] = {
    "Pod": wire.POD, "Namespace": wire.NS, "ReplicaSet": wire.RS,
    "Deployment": wire.DEPLOYMENT, "Service": wire.SVC, "ReplicationController": wire.RC,
}
_OWNER_KINDS = {"ReplicaSet", "ReplicationController", "Deployment"}


@dataclass(slots=True)
class Obj:
    """The few facts of one object the agents need (everything else is dropped)."""

    kind: str
    uid: str
    name: str
    ns: str
    labels: dict[str, str]
    #: uid of the controlling owner (pod: ReplicaSet/ReplicationController; rs: Deployment)
    owner: str = ""
    #: Service selector (None or empty: selects no pod, as in Kubernetes)
    selector: dict[str, str] | None = None
    node: str = ""
    ip: str = ""
    containers: tuple[str, ...] = ()
    #: uids of the Services selecting this pod (maintained by the index)
    svcs: tuple[str, ...] = ()
    #: the index's change count when this object was last seen (see ``ClusterIndex.sweep``)
    seen: int = 0

    def record(self) -> dict[str, Any]:
        rec: dict[str, Any] = {"kind": self.kind, "uid": self.uid, "name": self.name, "ns": self.ns,
                               "labels": self.labels}
        if self.kind == wire.POD:
            rec.update(ip=self.ip, owner=self.owner, containers=list(self.containers), svcs=list(self.svcs))
        elif self.kind == wire.RS:
            rec["owner"] = self.owner
        return rec


def _strings(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def _container_ids(status: dict[str, Any]) -> tuple[str, ...]:
    ids = []
    for key in ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"):
        for cs in status.get(key) or []:
            raw = str((cs or {}).get("containerID") or "")
            _, sep, cid = raw.partition("://")
            if sep and cid:
                ids.append(cid.lower())
    return tuple(ids)


def parse(api_kind: str, body: dict[str, Any]) -> Obj | None:
    """The compact record of an API object; None for a kind or body that is not ours."""
    kind = KIND_OF.get(api_kind)
    meta = body.get("metadata") or {}
    uid = str(meta.get("uid") or "")
    if kind is None or not uid:
        return None
    owner = ""
    for ref in meta.get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") in _OWNER_KINDS:
            owner = str(ref.get("uid") or "")
            break
    obj = Obj(kind=kind, uid=uid, name=str(meta.get("name") or ""),
              ns=str(meta.get("namespace") or "") if kind != wire.NS else "",
              labels=_strings(meta.get("labels")), owner=owner)
    spec = body.get("spec") or {}
    if kind == wire.POD:
        status = body.get("status") or {}
        obj.node = str(spec.get("nodeName") or "")
        obj.ip = str(status.get("podIP") or "")
        obj.containers = _container_ids(status)
    elif kind == wire.SVC:
        obj.selector = _strings(spec.get("selector")) or None
    return obj


def _selects(svc: Obj, pod: Obj) -> bool:
    sel = svc.selector
    return bool(sel) and all(pod.labels.get(k) == v for k, v in sel.items())  # type: ignore[union-attr]


@dataclass(eq=False)
class NodeView:
    """What one node has been sent: object refcounts and the recent lines."""

    node: str
    backlog: int
    refs: dict[str, int] = field(default_factory=dict)
    #: (seq, line) of the last ``backlog`` lines
    lines: deque[tuple[int, bytes]] = field(default_factory=deque)
    #: highest sequence number no longer in ``lines`` (resume points <= it get a snapshot)
    dropped: int = 0
    bytes_sent: int = 0
    #: called after lines were appended (the server wakes this node's subscribers)
    notify: Callable[[], None] | None = None

    def append(self, seq: int, line: bytes) -> None:
        self.lines.append((seq, line))
        self.bytes_sent += len(line)
        if len(self.lines) > self.backlog:
            self.dropped = self.lines.popleft()[0]

    def since(self, seq: int) -> list[bytes] | None:
        """Lines after ``seq``; None when some of them are no longer held."""
        if seq < self.dropped:
            return None
        return [line for s, line in self.lines if s > seq]


class ClusterIndex:
    """Every watched object, the relations of each pod, and the node views."""

    def __init__(self, backlog: int = 1024, epoch: str | None = None) -> None:
        self.epoch = epoch or secrets.token_hex(8)
        self.seq = 0
        self.backlog = backlog
        self.objs: dict[str, Obj] = {}
        self.views: dict[str, NodeView] = {}
        self._ns_uid: dict[str, str] = {}
        self._pods_by_ns: dict[str, set[str]] = {}
        self._pods_by_owner: dict[str, set[str]] = {}
        self._rs_by_owner: dict[str, set[str]] = {}
        self._svcs_by_ns: dict[str, set[str]] = {}
        #: pod uid -> (node, related uids) as last applied to the node views
        self._placed: dict[str, tuple[str, frozenset[str]]] = {}
        #: object uid -> nodes holding it
        self._holders: dict[str, set[str]] = {}
        #: object uid -> its serialised record (shared by every node it is sent to)
        self._wire: dict[str, bytes] = {}
        #: kinds of objects being deleted (their ``del`` lines name the kind)
        self._deleting: dict[str, str] = {}
        self.changes = 0

    # ---------------------------------------------------------------- input
    def upsert(self, api_kind: str, body: dict[str, Any]) -> None:
        obj = parse(api_kind, body)
        if obj is None:
            return
        self.changes += 1
        obj.seen = self.changes
        old = self.objs.get(obj.uid)
        if old is not None:
            self._unlink(old)
        self.objs[obj.uid] = obj
        self._link(obj)
        if obj.kind == wire.POD:
            self._place(obj.uid)
            return
        self._publish(obj)
        for pod_uid in self._affected(obj, old):
            self._place(pod_uid)

    def delete(self, api_kind: str, body: dict[str, Any]) -> None:
        uid = str((body.get("metadata") or {}).get("uid") or "")
        old = self.objs.pop(uid, None)
        if old is None:
            return
        self.changes += 1
        self._unlink(old)
        affected = [uid] if old.kind == wire.POD else list(self._affected(old, None))
        self._deleting[uid] = old.kind
        try:
            for pod_uid in affected:
                self._place(pod_uid)
        finally:
            del self._deleting[uid]
            self._wire.pop(uid, None)

    def sweep(self, api_kind: str, listed: set[str], mark: int) -> int:
        """Drop the objects of a kind that a list no longer holds; the number dropped.

        ``mark`` is ``changes`` taken before the list was requested.  An object last seen
        at or before it existed before the list began, so its absence from the list means
        it was deleted (a watch gap lost the DELETED event).  One seen after the mark may
        have been created after the list's snapshot and is kept: the watch delivers its
        deletion, if any, like any other.  Comparing resourceVersions is not needed (and
        Kubernetes asks clients not to order them)."""
        kind = KIND_OF[api_kind]
        stale = [o.uid for o in self.objs.values()
                 if o.kind == kind and o.seen <= mark and o.uid not in listed]
        for uid in stale:
            self.delete(api_kind, {"metadata": {"uid": uid}})
        return len(stale)

    # ---------------------------------------------------------------- subscribers
    def view(self, node: str) -> NodeView:
        view = self.views.get(node)
        if view is None:
            view = self.views[node] = NodeView(node, self.backlog, dropped=self.seq)
        return view

    def snapshot(self, node: str) -> bytes:
        view = self.view(node)
        objects = b",".join(self._wire[uid] for uid in view.refs)
        head = orjson.dumps({"type": "snapshot", "epoch": self.epoch, "seq": self.seq})
        return head[:-1] + b',"objects":[' + objects + b"]}\n"

    def bookmark(self) -> bytes:
        return b'{"type":"bookmark","seq":%d}\n' % self.seq

    def node_objects(self, node: str) -> list[Obj]:
        view = self.views.get(node)
        return [self.objs[uid] for uid in view.refs] if view is not None else []

    # ---------------------------------------------------------------- internals
    def _link(self, obj: Obj) -> None:
        if obj.kind == wire.POD:
            self._pods_by_ns.setdefault(obj.ns, set()).add(obj.uid)
            if obj.owner:
                self._pods_by_owner.setdefault(obj.owner, set()).add(obj.uid)
        elif obj.kind == wire.NS:
            self._ns_uid[obj.name] = obj.uid
        elif obj.kind == wire.RS and obj.owner:
            self._rs_by_owner.setdefault(obj.owner, set()).add(obj.uid)
        elif obj.kind == wire.SVC:
            self._svcs_by_ns.setdefault(obj.ns, set()).add(obj.uid)

    def _unlink(self, obj: Obj) -> None:
        def drop(index: dict[str, set[str]], key: str) -> None:
            members = index.get(key)
            if members is not None:
                members.discard(obj.uid)
                if not members:
                    del index[key]

        if obj.kind == wire.POD:
            drop(self._pods_by_ns, obj.ns)
            if obj.owner:
                drop(self._pods_by_owner, obj.owner)
        elif obj.kind == wire.NS:
            if self._ns_uid.get(obj.name) == obj.uid:
                del self._ns_uid[obj.name]
        elif obj.kind == wire.RS and obj.owner:
            drop(self._rs_by_owner, obj.owner)
        elif obj.kind == wire.SVC:
            drop(self._svcs_by_ns, obj.ns)

    def _affected(self, obj: Obj, old: Obj | None) -> set[str]:
        """Pods whose relations may change with this object."""
        if obj.kind == wire.NS:
            return set(self._pods_by_ns.get(obj.name, ()))
        if obj.kind in (wire.RS, wire.RC):
            return set(self._pods_by_owner.get(obj.uid, ()))
        if obj.kind == wire.DEPLOYMENT:
            return {p for rs in self._rs_by_owner.get(obj.uid, ()) for p in self._pods_by_owner.get(rs, ())}
        if obj.kind == wire.SVC:
            pods = set(self._pods_by_ns.get(obj.ns, ()))
            if old is not None and old.ns != obj.ns:
                pods |= self._pods_by_ns.get(old.ns, set())
            return pods
        return set()

    def _relations(self, pod: Obj) -> tuple[frozenset[str], tuple[str, ...]]:
        rel: set[str] = set()
        ns_uid = self._ns_uid.get(pod.ns)
        if ns_uid:
            rel.add(ns_uid)
        owner = self.objs.get(pod.owner) if pod.owner else None
        if owner is not None:
            rel.add(owner.uid)
            if owner.kind == wire.RS and owner.owner in self.objs:
                rel.add(owner.owner)
        svcs = sorted((self.objs[s] for s in self._svcs_by_ns.get(pod.ns, ()) if _selects(self.objs[s], pod)),
                      key=lambda s: s.name)
        rel.update(s.uid for s in svcs)
        return frozenset(rel), tuple(s.uid for s in svcs)

    def _place(self, pod_uid: str) -> None:
        """Bring the node views in line with one pod's current node and relations."""
        pod = self.objs.get(pod_uid)
        old_node, old_rel = self._placed.get(pod_uid, ("", frozenset()))
        if pod is not None and pod.node:
            new_node = pod.node
            new_rel, pod.svcs = self._relations(pod)
        else:
            new_node, new_rel = "", frozenset()
        if old_node and old_node != new_node:
            self._release(old_node, pod_uid)
            for uid in old_rel:
                self._release(old_node, uid)
            old_rel = frozenset()
        if not new_node:
            self._placed.pop(pod_uid, None)
            return
        assert pod is not None
        self._placed[pod_uid] = (new_node, new_rel)
        # the objects first, so that a receiver never sees a pod before what it names
        for uid in new_rel - old_rel:
            self._acquire(new_node, uid)
        if old_node != new_node:
            self._publish(pod, only=new_node)
            self._acquire(new_node, pod_uid)
        else:
            self._publish(pod)
        for uid in old_rel - new_rel:
            self._release(new_node, uid)

    def _publish(self, obj: Obj, only: str | None = None) -> None:
        """Serialise the record; send it to its holders when it changed."""
        # orjson hands back its 4 KiB working buffer; a copy of the exact size is what stays
        data = memoryview(orjson.dumps(obj.record())).tobytes()
        if self._wire.get(obj.uid) == data:
            return
        self._wire[obj.uid] = data
        holders = self._holders.get(obj.uid)
        if only is not None or not holders:
            return
        line = self._line(b'"put","obj":' + data)
        for node in holders:
            self._send(node, line)

    def _acquire(self, node: str, uid: str) -> None:
        view = self.view(node)
        count = view.refs.get(uid, 0)
        view.refs[uid] = count + 1
        if count == 0:
            self._holders.setdefault(uid, set()).add(node)
            self._send(node, self._line(b'"put","obj":' + self._wire[uid]))

    def _release(self, node: str, uid: str) -> None:
        view = self.views[node]
        count = view.refs.get(uid, 0) - 1
        if count > 0:
            view.refs[uid] = count
            return
        view.refs.pop(uid, None)
        holders = self._holders.get(uid)
        if holders is not None:
            holders.discard(node)
            if not holders:
                del self._holders[uid]
        obj = self.objs.get(uid)
        kind = obj.kind if obj is not None else self._deleting.get(uid, "")
        self._send(node, self._line(b'"del","kind":' + orjson.dumps(kind) + b',"uid":' + orjson.dumps(uid)))

    def _line(self, body: bytes) -> tuple[int, bytes]:
        self.seq += 1
        return self.seq, b'{"seq":%d,"type":' % self.seq + body + b"}\n"

    def _send(self, node: str, line: tuple[int, bytes]) -> None:
        view = self.view(node)
        view.append(*line)
        if view.notify is not None:
            view.notify()
