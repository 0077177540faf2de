"""The reconcile loop: all FalcoRules -> validated plan -> ConfigMaps -> statuses.

Level-based rather than per-object: any change (create, update, delete, an
agent's Lease) re-plans the whole set, because an object's place in the bundle
depends on the others (load order, capacity).  The plan itself is incremental
(:mod:`falcopy.operator.validate` revalidates only the namespaces whose objects
changed), packing keeps unchanged objects in their shard, and only shards whose
content changed are written.

Bursts are coalesced: a pass starts once no change came for ``debounce``
seconds, or ``max_delay`` seconds after the burst's first change, whichever is
first, so 100 applies in a second cost a handful of passes (and ConfigMap
writes), and no change waits more than ``max_delay`` plus one pass.  A status
whose only change is its node count is written at most every ``status_period``.

With two replicas only the holder of the leader Lease (:mod:`falcopy.operator.leader`)
runs passes; the other keeps its indexes warm and takes over from what is published.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from falcopy.operator.bundle import BUNDLE_LABEL, LABELS, MANIFEST_KEY, Bundle, plan_bundle
from falcopy.operator.kube import Kube, list_keys, post_event
from falcopy.operator.model import ObjKey, RuleObject
from falcopy.operator.nodes import VersionHistory, live, node_counts, parse_lease
from falcopy.operator.render import Rendered
from falcopy.operator.settings import OperatorSettings
from falcopy.operator.validate import Plan, Validator, Verdict

log = logging.getLogger("falcopy.operator")


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class State:
    settings: OperatorSettings
    kube: Kube
    validator: Validator
    #: kopf's live indexes (one per kind), captured at start-up
    indexes: list[Mapping[Any, Any]] = field(default_factory=list)
    fallback: dict[ObjKey, Rendered] = field(default_factory=dict)
    history: VersionHistory = field(default_factory=VersionHistory)
    written: dict[ObjKey, dict[str, Any]] = field(default_factory=dict)
    shards: dict[str, dict[str, str] | None] = field(default_factory=dict)
    plan: Plan | None = None
    bundle: Bundle | None = None
    reconciles: int = 0
    #: the serial and version of the bundle last published (seeded from shard 0)
    serial: int = 0
    published_version: str = ""
    #: the admission webhook's checks (falcopy.operator.admission), set when serving it
    admission: Any = None
    #: None: a single replica, always leading (see falcopy.operator.leader)
    leader: Any = None
    _trigger: asyncio.Event | None = None
    _gate: set[ObjKey] | None = None
    _signature: Any = None
    _seeded: bool = False
    #: the shard each published object is in (packing keeps it there)
    _placed: dict[ObjKey, int] = field(default_factory=dict)
    #: the digest each object is published with
    _published: dict[ObjKey, str] = field(default_factory=dict)
    #: when the node counts of each object's status were last written (monotonic)
    _counted: dict[ObjKey, float] = field(default_factory=dict)
    #: the generation of every object seen by :meth:`changed` (status writes do not bump it)
    _generations: dict[ObjKey, int] = field(default_factory=dict)
    #: the agents' Lease reports, listed at most once per ``resync`` (monotonic time of the list)
    _reports: list[Any] = field(default_factory=list)
    _reports_at: float | None = None
    #: when the shards were last read back (monotonic)
    _shards_at: float = 0.0

    # ---------------------------------------------------------------- objects
    def objects(self) -> list[RuleObject]:
        out = []
        for index in self.indexes:
            for store in index.values():
                out.extend(store)
        return out

    def poke(self) -> None:
        if self._trigger is not None:
            self._trigger.set()

    def changed(self, event: str | None, obj: RuleObject, deleting: bool) -> None:
        """A watch event on a FalcoRule: a pass only when what is rendered may have changed.
        The operator's own status patches come back as MODIFIED events with the same
        generation; a pass for each of them would re-read and re-count for nothing."""
        key = obj.key
        if event == "DELETED" or deleting:
            self._generations.pop(key, None)
            self.poke()
            return
        if self._generations.get(key) != obj.generation:
            self._generations[key] = obj.generation
            self.poke()

    def shard_names(self) -> list[str]:
        return [f"{self.settings.configmap_prefix}-{i}" for i in range(self.settings.shards)]

    # ---------------------------------------------------------------- loop
    def leading(self) -> bool:
        return self.leader is None or self.leader.leading()

    def takeover(self) -> None:
        """Leadership gained: start from what is published and what the statuses say."""
        self._seeded = False
        self._signature = None
        self.plan = self.bundle = None
        self.written = {}
        self.poke()

    async def run(self) -> None:
        self._trigger = asyncio.Event()
        loop = asyncio.get_running_loop()
        self._trigger.set()  # a first pass right away (it waits for the index gate)
        while True:
            try:
                await asyncio.wait_for(self._trigger.wait(), timeout=self.settings.resync)
            except TimeoutError:
                pass
            await self._coalesce()
            if not self.leading():
                continue
            objects = self.objects()  # snapshot in kopf's loop: the indexes are not thread-safe
            try:
                if await loop.run_in_executor(None, self._gate_open, {o.key for o in objects}):
                    if not self._seeded:
                        await loop.run_in_executor(None, self._seed, objects)
                        self._seeded = True
                    await loop.run_in_executor(None, self.reconcile, objects)
            except NotLeading:
                log.warning("stopped a pass: no longer the leader")
            except Exception:  # API server away, CRDs missing...: the next change or resync retries,
                log.exception("reconcile failed")  # and the agents keep the last published set

    async def _coalesce(self) -> None:
        """Wait for a quiet ``debounce`` window, at most ``max_delay`` after the first change."""
        assert self._trigger is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.max_delay
        while True:
            self._trigger.clear()
            left = deadline - loop.time()
            if left <= 0:
                return
            try:
                await asyncio.wait_for(self._trigger.wait(), timeout=min(self.settings.debounce, left))
            except TimeoutError:
                return

    def _gate_open(self, indexed: set[ObjKey]) -> bool:
        """Publish nothing before kopf has indexed every existing object: a
        partial view would withdraw rules from the agents."""
        if self._gate is None or not self._gate <= indexed:
            self._gate = list_keys(self.kube)
        return self._gate <= indexed

    def _seed(self, objects: list[RuleObject]) -> None:
        """What is published already: the last good renderings survive a restart
        (or a change of leader), and the statuses as written are not rewritten."""
        self.written = {o.key: o.status for o in objects if o.status}
        self.fallback = {}
        self.shards = self.kube.configmaps(self.settings.namespace, self.shard_names())
        self._shards_at = time.monotonic()
        first = self.shards.get(self.shard_names()[0]) or {}
        if MANIFEST_KEY not in first:
            return
        doc = json.loads(first[MANIFEST_KEY])
        self.serial, self.published_version = int(doc.get("serial") or 0), str(doc.get("version"))
        files = {name: text for data in self.shards.values() if data for name, text in data.items()}
        contents = {}
        for entry in doc.get("files", []):
            key = ObjKey(entry["kind"], entry["namespace"], entry["object"])
            text = files.get(entry["name"])
            if text is None:
                continue
            # spans are lost; a seeded rendering is only used as a fallback
            self.fallback[key] = Rendered(key, int(entry["generation"]), 0, text)
            contents[key] = entry["sha256"]
        self.history.add(str(doc.get("version")), contents)
        self._published = contents
        self._placed = {
            ObjKey(e["kind"], e["namespace"], e["object"]): _shard_of(e["name"]) for e in doc.get("files", [])
        }
        log.info("seeded %d published FalcoRules from the rules ConfigMaps", len(self.fallback))

    # ---------------------------------------------------------------- one pass
    def reconcile(self, objects: list[RuleObject]) -> None:
        signature = (
            sorted((o.key, o.generation, json.dumps(o.spec, sort_keys=True)) for o in objects),
            sorted((k, r.digest) for k, r in self.fallback.items()),
        )
        if signature == self._signature and self.plan is not None and self.bundle is not None:
            plan, bundle = self.plan, self.bundle  # a resync
            if time.monotonic() - self._shards_at >= self.settings.resync:
                # read back once per resync period: a deleted or hand-edited ConfigMap is put back
                self.shards = self.kube.configmaps(self.settings.namespace, self.shard_names())
                self._shards_at = time.monotonic()
        else:
            plan = self.validator.plan(objects, self.fallback)
            bundle = plan_bundle(
                plan.active,
                self.settings.shards,
                self.settings.shard_budget,
                cluster_reserve=self.settings.cluster_reserve,
                tenant_precedence=self.settings.tenant_precedence,
                previous=self._placed,
                published=self._published,
            )
            self._signature = signature
        self.publish(bundle)
        self.plan, self.bundle = plan, bundle
        self._placed = {f.key: f.shard for f in bundle.files}
        self._published = {f.key: f.sha256 for f in bundle.files}
        published = {f.key for f in bundle.files}
        self.fallback = {r.key: r for r in plan.active if r.key in published}
        self.history.add(bundle.version, {f.key: f.sha256 for f in bundle.files})
        reports = live(self._leases(), self.settings.node_ttl)
        nodes = node_counts(reports, self.history, {f.key: f.sha256 for f in bundle.files})
        present = {o.key for o in objects}
        for key in list(self.written):
            if key not in present:
                del self.written[key]
                self._counted.pop(key, None)
        now = time.monotonic()
        for obj in objects:
            before = self.written.get(obj.key)
            status = self.status(obj, plan.verdicts[obj.key], bundle, nodes.get(obj.key, f"0/{len(reports)}"))
            if status == before:
                continue
            if before is not None and {**status, "nodes": before.get("nodes")} == before:
                # only the node count moved: coalesced, at most one write per status_period
                if now - self._counted.get(obj.key, 0.0) < self.settings.status_period:
                    continue
            self._fence()
            self.kube.patch_status(obj.key, status)
            self._counted[obj.key] = now
            self._announce(obj, status, before)
            self.written[obj.key] = status
        self.reconciles += 1

    def _leases(self) -> list[Any]:
        """The agents' reports, listed at most once per ``resync``: a change's pass counts
        from the last list (the agents cannot have loaded a bundle not published yet), and
        the next resync counts them again.  N Leases per list is the operator's only
        N-dependent request, so it must not be paid per change."""
        now = time.monotonic()
        if self._reports_at is None or now - self._reports_at >= self.settings.resync * 0.9:
            listed = self.kube.leases(self.settings.namespace, self.settings.lease_selector)
            self._reports = [parse_lease(x) for x in listed]
            self._reports_at = now
        return self._reports

    def _fence(self) -> None:
        """Every write checks the Lease is still ours (a replica that lost it stops at once)."""
        if not self.leading():
            raise NotLeading()

    def _announce(self, obj: RuleObject, status: dict[str, Any], before: dict[str, Any] | None) -> None:
        """An Event when the verdict on a generation changes (not on node-count updates)."""
        valid = status["conditions"][0]
        old = (before or {}).get("conditions", [{}])[0]
        if (valid["status"], valid["message"], valid["observedGeneration"]) == (
            old.get("status"),
            old.get("message"),
            old.get("observedGeneration"),
        ):
            return
        try:
            post_event(
                self.kube, obj.key, obj.uid, valid["reason"], valid["message"], valid["status"] != "True"
            )
        except Exception as exc:  # an Event is a courtesy; the status carries the verdict
            log.warning("cannot post an event for %s: %s", obj.key, exc)

    def status(self, obj: RuleObject, verdict: Verdict, bundle: Bundle, nodes: str) -> dict[str, Any]:
        file = bundle.file_of(obj.key)
        previous = {c["type"]: c for c in (self.written.get(obj.key) or {}).get("conditions", [])}
        valid = _condition(
            previous.get("Valid"), "Valid", verdict.valid, verdict.reason, verdict.message, obj.generation
        )
        if file is not None:
            pub = ("True", "Published", f"in ConfigMap {self.shard_names()[file.shard]} as {file.name}")
        elif obj.key in bundle.overflow:
            pub = (
                "False",
                "NoCapacity",
                "the room namespaced FalcoRules share in the rules ConfigMaps is full (operator settings "
                "shards / shard_budget / cluster_reserve; per-namespace quotas.bytes)"
                if obj.key.namespaced
                else "the rules ConfigMaps are full (operator settings shards / shard_budget)",
            )
        else:
            pub = ("False", "NotPublished", "no valid generation to publish")
        published = _condition(
            previous.get("Published"), "Published", pub[0] == "True", pub[1], pub[2], obj.generation
        )
        return {
            "observedGeneration": obj.generation,
            "activeGeneration": file.generation if file is not None else None,
            "rules": verdict.counts.get("rules", 0),
            "macros": verdict.counts.get("macros", 0),
            "lists": verdict.counts.get("lists", 0),
            "nodes": nodes,
            "configMap": self.shard_names()[file.shard] if file is not None else None,
            "conditions": [valid, published],
        }

    def publish(self, bundle: Bundle) -> None:
        """Shards 1.. first, shard 0 (the manifest) last: see bundle.py."""
        if bundle.version != self.published_version:
            self.serial += 1
        bundle = bundle.stamped(self.serial)
        names = self.shard_names()
        labels = {**LABELS, BUNDLE_LABEL: self.settings.configmap_prefix}
        for i in [*range(1, len(names)), 0]:
            name, data = names[i], bundle.shards[i]
            if self.shards.get(name) == data:
                continue
            self._fence()
            self.kube.put_configmap(
                self.settings.namespace, name, data, labels, self.shards.get(name) is not None
            )
            self.shards[name] = dict(data)
            log.info("published %s (%d files, bundle %s)", name, len(data) - (i == 0), bundle.version)
        self.published_version = bundle.version


class NotLeading(Exception):
    """The leader Lease was lost during a pass: its remaining writes are dropped."""


def _shard_of(name: str) -> int:
    head = name.split("-", 1)[0]
    return int(head) if head.isdigit() else 0


def _condition(
    previous: dict[str, Any] | None, type_: str, ok: bool, reason: str, message: str, generation: int
) -> dict[str, Any]:
    status = "True" if ok else "False"
    since = previous["lastTransitionTime"] if previous and previous.get("status") == status else _now()
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": since,
    }
