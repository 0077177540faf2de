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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from falcopy.operator.model import ObjKey, RuleObject
from falcopy.operator.render import Rendered, render
from falcopy.operator.scope import DefaultNames, ScopeError, namespace_local_names, scope_object
from ruamel.yaml import YAML

from falcopy.engine import LoadResult, RulesInput, load_rules

REASON_VALID = "Valid"
REASON_INVALID = "InvalidRules"
REASON_SCOPE = "ScopeViolation"
REASON_DEPENDENCY = "DependencyInvalid"
MAX_MESSAGE = 4000  # status messages stay readable in `kubectl describe`


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
    def __init__(self, default_rules: Iterable[Path], *, allow_default_overrides: bool = False) -> None:
        self.default_paths = [Path(p) for p in default_rules]
        self.allow_default_overrides = allow_default_overrides
        self.defaults = _read_inputs(self.default_paths)
        self.names = _default_names(self.defaults)
        base = self._load([])
        if not base.ok:
            raise ValueError("the default rules do not load: " + "; ".join(map(str, base.errors[:3])))

    def _load(self, rendered: list[Rendered]) -> LoadResult:
        return load_rules([*self.defaults, *(r.input() for r in rendered)])

    def render(self, obj: RuleObject, objects: Iterable[RuleObject]) -> Rendered:
        """Scope and render one object (raises ScopeError)."""
        local = namespace_local_names(objects, obj.key.namespace) if obj.key.namespaced else None
        items = scope_object(obj, self.names, local, allow_default_overrides=self.allow_default_overrides)
        # namespaced rule conditions were wrapped in "(...)": one column more on their first line
        scoped = obj.key.namespaced
        prefixes = {p: 1 for p, item in items if scoped and "rule" in item and "condition" in item}
        return render(obj, items, prefixes)

    def plan(self, objects: Iterable[RuleObject], fallback: Mapping[ObjKey, Rendered] | None = None) -> Plan:
        objects = sorted(objects, key=RuleObject.order)
        fallback = fallback or {}
        verdicts: dict[ObjKey, Verdict] = {}
        candidates: list[tuple[RuleObject, Rendered | None]] = []
        for obj in objects:
            try:
                candidates.append((obj, self.render(obj, objects)))
            except ScopeError as exc:
                verdicts[obj.key] = Verdict(
                    obj.key, obj.generation, False, REASON_SCOPE, _clip("; ".join(map(str, exc.issues)))
                )
                candidates.append((obj, None))
        accepted = [r for _, r in candidates if r is not None]
        by_key = {obj.key: obj for obj in objects}
        result = self._settle(accepted, by_key, verdicts)
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
            trial = sorted([*accepted, previous], key=Rendered.order)
            if self._load(trial).ok:
                accepted = trial
                v.active_generation = previous.generation
                v.message = _clip(f"{v.message} (generation {previous.generation} stays active)")
        return Plan(verdicts, accepted)

    def _settle(
        self, accepted: list[Rendered], objects: Mapping[ObjKey, RuleObject], verdicts: dict[ObjKey, Verdict]
    ) -> LoadResult:
        """Drop objects from ``accepted`` (in place) until it loads; returns the clean load.

        Errors located in an object's own file blame that object (one load finds
        them all).  Errors elsewhere (in the default rules, caused by an object
        that redefines something they use) are blamed by bisecting for the
        shortest failing prefix: O(log n) loads instead of one per object."""
        while True:
            result = self._load(accepted)
            if result.ok:
                return result
            labels = {r.key.label: r for r in accepted}
            own = {labels[e.file].key for e in result.errors if e.file in labels}
            if own:
                for r in [x for x in accepted if x.key in own]:
                    verdicts[r.key] = self._invalid(objects[r.key], r, result)
                accepted[:] = [x for x in accepted if x.key not in own]
                continue
            lo, hi = 0, len(accepted)  # the defaults alone load; the whole prefix does not
            failing = result
            while hi - lo > 1:
                mid = (lo + hi) // 2
                trial = self._load(accepted[:mid])
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
    ) -> Verdict:
        """Verdict on ``candidate`` replacing its namesake among ``others`` (admission)."""
        objs = {o.key: o for o in others}
        objs[candidate.key] = candidate
        plan = self.plan(objs.values(), {k: v for k, v in (fallback or {}).items() if k != candidate.key})
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
            return Verdict(
                obj.key,
                obj.generation,
                False,
                REASON_INVALID,
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
