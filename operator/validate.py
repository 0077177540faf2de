"""Validation of FalcoRules with the rule engine, in the context agents will load them.

An object is checked exactly as agents will see it: the default rules, then
every accepted object before it in load order, then the object itself.  The
first time a set fails, objects are added one by one so each failure is blamed
on the object that introduced it; accepted objects form the published set.

An object whose current generation is invalid keeps its last valid rendering
running (``fallback``): a typo in ``kubectl edit`` must not silently remove
protection.  Its status says so.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cachetools import LRUCache
from falcopy.operator.model import ObjKey, RuleObject
from falcopy.operator.precheck import CostError, check_cost
from falcopy.operator.quota import Usage, exceeded, usage
from falcopy.operator.render import Rendered, RenderMismatch, render
from falcopy.operator.scope import DefaultNames, Issue, ScopeError, namespace_local_names, scope_object
from falcopy.operator.settings import OperatorSettings, Quotas
from ruamel.yaml import YAML

from falcopy.engine import LoadResult, RulesInput, load_rules
from falcopy.engine.limits import BUDGET_MESSAGES, Budget

REASON_VALID = "Valid"
REASON_INVALID = "InvalidRules"
REASON_SCOPE = "ScopeViolation"
REASON_DEPENDENCY = "DependencyInvalid"
REASON_QUOTA = "QuotaExceeded"
REASON_BUDGET = "ValidationBudgetExceeded"
MAX_MESSAGE = 4000  # status messages stay readable in `kubectl describe`
#: entries per memo: a few generations of every object of a large cluster
CACHE_SIZE = 20_000


@dataclass
class Verdict:
    key: ObjKey
    generation: int
    valid: bool
    reason: str
    message: str
    counts: dict[str, int] = field(default_factory=dict)
    #: generation running on agents (the current one, an earlier valid one, or None)
    active_generation: int | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class Plan:
    verdicts: dict[ObjKey, Verdict]
    #: what agents load after the default rules, in load order
    active: list[Rendered]


@dataclass
class _Group:
    """One namespace's (or the cluster's) validation: its accepted renderings, its verdicts."""

    accepted: list[Rendered]
    verdicts: dict[ObjKey, Verdict]


class _Cache:
    """A bounded, thread-safe memo (the reconcile loop and admission checks share it)."""

    def __init__(self, size: int) -> None:
        self._lru: LRUCache[Any, Any] = LRUCache(maxsize=size)
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            return self._lru.get(key)

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._lru[key] = value


def _spec_json(obj: RuleObject) -> str:
    return json.dumps(obj.spec, sort_keys=True, separators=(",", ":"))


def _read_inputs(paths: Iterable[Path]) -> list[RulesInput]:
    files: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            files.extend(sorted(f for f in p.iterdir() if f.suffix in (".yaml", ".yml") and f.is_file()))
        else:
            files.append(p)
    return [RulesInput(str(f), f.read_text()) for f in files]


def _default_names(inputs: list[RulesInput]) -> DefaultNames:
    names = DefaultNames()
    yaml = YAML(typ="safe", pure=True)
    for inp in inputs:
        doc = yaml.load(inp.content) or []
        for item in doc if isinstance(doc, list) else []:
            if not isinstance(item, dict):
                continue
            for key, bucket in (("rule", names.rules), ("macro", names.macros), ("list", names.lists)):
                if isinstance(item.get(key), str):
                    bucket.add(item[key])
    return names


class Validator:
    def __init__(
        self,
        default_rules: Iterable[Path],
        *,
        allow_default_overrides: bool = False,
        quotas: Quotas | None = None,
        timeout: float | None = None,
        tenant_precedence: bool = False,
    ) -> None:
        """``quotas``: per-namespace limits (None: none); ``timeout``: seconds one
        engine load may take (the object it was compiling then is refused)."""
        self.default_paths = [Path(p) for p in default_rules]
        self.allow_default_overrides = allow_default_overrides
        self.quotas = quotas
        self.timeout = timeout
        self.tenant_precedence = tenant_precedence
        #: set by the caller when it is gone (admission): loads stop at the next item
        self._cancelled = threading.local()
        # content-keyed memos: renderings (or scope refusals), quota usage, group verdicts
        self._renders = _Cache(CACHE_SIZE)
        self._usages = _Cache(CACHE_SIZE)
        self._groups = _Cache(CACHE_SIZE)
        self.defaults = _read_inputs(self.default_paths)
        self.names = _default_names(self.defaults)
        base = self._load([])
        if not base.ok:
            raise ValueError("the default rules do not load: " + "; ".join(map(str, base.errors[:3])))
        self._base = base

    @classmethod
    def from_settings(cls, settings: OperatorSettings) -> Validator:
        return cls(
            settings.default_rules,
            allow_default_overrides=settings.allow_default_overrides,
            quotas=settings.quotas,
            timeout=settings.validation_timeout,
            tenant_precedence=settings.tenant_precedence,
        )

    def _load(self, rendered: list[Rendered]) -> LoadResult:
        budget = Budget(self.timeout, getattr(self._cancelled, "event", None) or threading.Event())
        return load_rules(
            [*self.defaults, *(r.input() for r in rendered)],
            budget=budget,
            tenant_precedence=self.tenant_precedence,
        )

    def render(self, obj: RuleObject, objects: Iterable[RuleObject]) -> Rendered:
        """Scope and render one object (raises ScopeError)."""
        local = namespace_local_names(objects, obj.key.namespace) if obj.key.namespaced else None
        return self._render_scoped(obj, local)

    def _render_scoped(self, obj: RuleObject, local: dict[str, set[str]] | None) -> Rendered:
        check_cost(obj)  # a compile-cost bomb is refused before it costs a render and a load
        items = scope_object(obj, self.names, local, allow_default_overrides=self.allow_default_overrides)
        try:
            return render(obj, items)
        except RenderMismatch as exc:
            raise ScopeError([Issue("spec", "rules file", str(exc))]) from None

    def plan(
        self,
        objects: Iterable[RuleObject],
        fallback: Mapping[ObjKey, Rendered] | None = None,
        cancelled: threading.Event | None = None,
    ) -> Plan:
        """``cancelled``: set when the caller is gone; the engine loads stop early."""
        self._cancelled.event = cancelled
        try:
            return self._plan(objects, fallback)
        finally:
            self._cancelled.event = None

    def _plan(self, objects: Iterable[RuleObject], fallback: Mapping[ObjKey, Rendered] | None) -> Plan:
        """Validation partitioned by namespace, each part cached by its content.

        A namespaced object can only read the default and cluster items and
        define or change its own namespace's, so its verdict depends on the
        default rules, the accepted cluster objects and its namespace's objects,
        nothing else.  The cluster's objects are validated first; then every
        namespace whose content (or the cluster's accepted set) changed since its
        last validation, together in one load (several when some fail); the
        others keep their cached verdicts.  A change to one FalcoRule costs
        one render and one load of the defaults, the cluster's objects and its
        namespace's objects."""
        fallback = fallback or {}
        groups: dict[str, list[RuleObject]] = {}
        for obj in sorted(objects, key=RuleObject.order):
            groups.setdefault(obj.key.namespace, []).append(obj)
        cluster = self._cluster_group(groups.pop("", []), fallback)
        context = tuple((r.key, r.digest) for r in cluster.accepted)
        results = {"": cluster}
        dirty: dict[str, tuple[Any, list[RuleObject]]] = {}
        for ns, members in groups.items():
            key = (ns, context, self._signature(members, fallback))
            cached = self._groups.get(key)
            if cached is not None:
                results[ns] = cached
            else:
                dirty[ns] = (key, members)
        if dirty:
            fresh = self._tenant_groups(cluster.accepted, [m for _, m in dirty.values()], fallback)
            for ns, (key, _) in dirty.items():
                self._groups.put(key, fresh[ns])
                results[ns] = fresh[ns]
        verdicts: dict[ObjKey, Verdict] = {}
        active: list[Rendered] = []
        for group in results.values():
            verdicts.update(group.verdicts)
            active.extend(group.accepted)
        return Plan(verdicts, sorted(active, key=Rendered.order))

    def _signature(self, members: list[RuleObject], fallback: Mapping[ObjKey, Rendered]) -> Any:
        return tuple(
            (o.key, o.generation, _spec_json(o), fallback[o.key].digest if o.key in fallback else None)
            for o in members
        )

    def _cluster_group(self, members: list[RuleObject], fallback: Mapping[ObjKey, Rendered]) -> _Group:
        key = ("", (), self._signature(members, fallback))
        cached = self._groups.get(key)
        if cached is None:
            cached = self._validate_group([], members, fallback)
            self._groups.put(key, cached)
        return cached

    def _tenant_groups(
        self, fixed: list[Rendered], groups: list[list[RuleObject]], fallback: Mapping[ObjKey, Rendered]
    ) -> dict[str, _Group]:
        """Several namespaces validated together (they cannot affect each other), then split."""
        joint = self._validate_group(fixed, [o for g in groups for o in g], fallback)
        out = {}
        for members in groups:
            keys = {o.key for o in members}
            out[members[0].key.namespace] = _Group(
                [r for r in joint.accepted if r.key in keys],
                {k: v for k, v in joint.verdicts.items() if k in keys},
            )
        return out

    def _render_cached(self, obj: RuleObject, local: dict[str, set[str]] | None) -> Rendered | ScopeError:
        names = None if local is None else tuple(tuple(sorted(local[s])) for s in sorted(local))
        key = (obj.key, obj.generation, _spec_json(obj), names)
        hit = self._renders.get(key)
        if hit is None:
            try:
                hit = self._render_scoped(obj, local)
            except ScopeError as exc:
                hit = exc
            self._renders.put(key, hit)
        return hit

    def _usage(self, r: Rendered) -> Usage:
        hit = self._usages.get(r.digest)
        if hit is None:
            hit = usage(r)
            self._usages.put(r.digest, hit)
        return hit

    def _validate_group(
        self, fixed: list[Rendered], objects: list[RuleObject], fallback: Mapping[ObjKey, Rendered]
    ) -> _Group:
        """Verdicts on ``objects`` loaded after the defaults and ``fixed`` (accepted already)."""
        verdicts: dict[ObjKey, Verdict] = {}
        candidates: list[tuple[RuleObject, Rendered | None]] = []
        locals_: dict[str, dict[str, set[str]]] = {}
        for obj in objects:
            local = None
            if obj.key.namespaced:
                ns = obj.key.namespace
                if ns not in locals_:
                    locals_[ns] = namespace_local_names(objects, ns)
                local = locals_[ns]
            r = self._render_cached(obj, local)
            if isinstance(r, ScopeError):
                reason = REASON_INVALID if isinstance(r, CostError) else REASON_SCOPE
                verdicts[obj.key] = Verdict(
                    obj.key, obj.generation, False, reason, _clip("; ".join(map(str, r.issues)))
                )
                candidates.append((obj, None))
            else:
                candidates.append((obj, r))
        used: dict[str, Usage] = {}
        for i, (obj, r) in enumerate(candidates):
            if r is None or not obj.key.namespaced or self.quotas is None:
                continue
            total = used.get(obj.key.namespace, Usage()) + self._usage(r)
            over = exceeded(total, self.quotas)
            if over is None:
                used[obj.key.namespace] = total
                continue
            verdicts[obj.key] = Verdict(
                obj.key, obj.generation, False, REASON_QUOTA, _clip(over), dict(r.counts)
            )
            candidates[i] = (obj, None)
        accepted = [r for _, r in candidates if r is not None]
        by_key = {obj.key: obj for obj in objects}
        result = self._settle(fixed, accepted, by_key, verdicts)
        for obj, _ in candidates:
            if obj.key in verdicts:
                continue
            r = next(x for x in accepted if x.key == obj.key)
            verdicts[obj.key] = self._valid(obj, r, result)
        # invalid objects: their last valid rendering, if it still loads with the rest
        for obj, _ in candidates:
            v = verdicts[obj.key]
            previous = fallback.get(obj.key)
            if v.valid or previous is None:
                continue
            # a fallback seeded from the ConfigMaps does not know the priority
            previous = dataclasses.replace(previous, priority=obj.priority)
            if obj.key.namespaced and self.quotas is not None:
                total = used.get(obj.key.namespace, Usage()) + self._usage(previous)
                if exceeded(total, self.quotas) is not None:
                    continue
                used[obj.key.namespace] = total
            trial = sorted([*accepted, previous], key=Rendered.order)
            if self._load_with(fixed, trial).ok:
                accepted = trial
                v.active_generation = previous.generation
                v.message = _clip(f"{v.message} (generation {previous.generation} stays active)")
        return _Group(accepted, verdicts)

    def _load_with(self, fixed: list[Rendered], rendered: list[Rendered]) -> LoadResult:
        return self._load(sorted([*fixed, *rendered], key=Rendered.order) if fixed else rendered)

    def _settle(
        self,
        fixed: list[Rendered],
        accepted: list[Rendered],
        objects: Mapping[ObjKey, RuleObject],
        verdicts: dict[ObjKey, Verdict],
    ) -> LoadResult:
        """Drop objects from ``accepted`` (in place) until it loads after ``fixed``
        (which loads on its own); returns the clean load.

        Errors located in an object's own file blame that object (one load finds
        them all).  Errors elsewhere (in the default rules, caused by an object
        that redefines something they use) are blamed by bisecting for the
        shortest failing prefix: O(log n) loads instead of one per object."""
        while True:
            # the default rules alone: loaded once (every object refused costs no extra load)
            result = self._load_with(fixed, accepted) if accepted or fixed else self._base
            if result.ok:
                return result
            labels = {r.key.label: r for r in accepted}
            own = {labels[e.file].key for e in result.errors if e.file in labels}
            if own:
                for r in [x for x in accepted if x.key in own]:
                    verdicts[r.key] = self._invalid(objects[r.key], r, result)
                accepted[:] = [x for x in accepted if x.key not in own]
                continue
            if not accepted:  # the defaults (and fixed) alone failed (their budget ran out): nothing to drop
                return result
            spent = [e for e in result.errors if e.message.startswith(BUDGET_MESSAGES)]
            if spent:
                # out of time outside any object's own file: the last object loaded pays
                last = accepted.pop()
                verdicts[last.key] = Verdict(
                    last.key,
                    objects[last.key].generation,
                    False,
                    REASON_BUDGET,
                    _clip(f"the rules loaded with this object did not compile in time: {spent[0]}"),
                    dict(last.counts),
                )
                continue
            lo, hi = 0, len(accepted)  # the defaults (and fixed) alone load; the whole prefix does not
            failing = result
            while hi - lo > 1:
                mid = (lo + hi) // 2
                trial = self._load_with(fixed, accepted[:mid])
                if trial.ok:
                    lo = mid
                else:
                    hi, failing = mid, trial
            culprit = accepted[hi - 1]
            verdicts[culprit.key] = self._invalid(objects[culprit.key], culprit, failing)
            del accepted[hi - 1]

    def check(
        self,
        candidate: RuleObject,
        others: Iterable[RuleObject],
        fallback: Mapping[ObjKey, Rendered] | None = None,
        cancelled: threading.Event | None = None,
    ) -> Verdict:
        """Verdict on ``candidate`` replacing its namesake among ``others`` (admission)."""
        objs = {o.key: o for o in others}
        objs[candidate.key] = candidate
        plan = self.plan(
            objs.values(), {k: v for k, v in (fallback or {}).items() if k != candidate.key}, cancelled
        )
        return plan.verdicts[candidate.key]

    def _valid(self, obj: RuleObject, r: Rendered, result: LoadResult) -> Verdict:
        warnings = [r.locate(w) for w in result.warnings if w.file == r.key.label]
        n = r.counts
        message = f"{n['rules']} rules, {n['macros']} macros, {n['lists']} lists loaded"
        if warnings:
            message += f"; {len(warnings)} warning(s): {warnings[0]}"
        return Verdict(
            obj.key, obj.generation, True, REASON_VALID, _clip(message), dict(n), obj.generation, warnings
        )

    def _invalid(self, obj: RuleObject, r: Rendered, result: LoadResult) -> Verdict:
        own = [e for e in result.errors if e.file == r.key.label]
        if own:
            spent = any(e.message.startswith(BUDGET_MESSAGES) for e in own)
            return Verdict(
                obj.key,
                obj.generation,
                False,
                REASON_BUDGET if spent else REASON_INVALID,
                _clip("; ".join(r.locate(e) for e in own)),
                dict(r.counts),
            )
        # errors elsewhere that appear only with this object: e.g. it redefines a
        # macro that an earlier rule uses, or it uses an item that failed
        return Verdict(
            obj.key,
            obj.generation,
            False,
            REASON_DEPENDENCY,
            _clip("loading it breaks other rules: " + "; ".join(map(str, result.errors[:5]))),
            dict(r.counts),
        )


def admission_denial(candidate: RuleObject, verdict: Verdict) -> str:
    """The text the admission webhook denies ``candidate`` with (also `falcopy validate`'s)."""
    return f"{candidate.key}: {verdict.reason}: {verdict.message}"


def _clip(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 15] + " ... (clipped)"
