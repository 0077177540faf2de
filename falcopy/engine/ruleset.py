"""Compiled rules indexed by source and event type."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from falcopy.engine.alert_keys import AggregationSpec, ThresholdSpec
from falcopy.engine.output import OutputFormat
from falcopy.engine.priority import Priority

Pred = Callable[[Any, dict[Any, Any]], bool]


@dataclass(eq=False)
class CompiledRule:
    name: str
    desc: str
    priority: Priority
    tags: list[str]
    source: str
    enabled: bool
    #: event types the rule can match; None = every type (no evt.type restriction)
    evttypes: frozenset[str] | None
    condition: str = ""
    output: str = ""
    predicate: Pred = field(default=lambda _e, _c: False, repr=False)
    #: the predicate for events the evttype index routed here (type already in evttypes)
    indexed_predicate: Pred | None = field(default=None, repr=False)
    #: indexed_predicate as (first conjunct, rest or None), for the evaluation loop
    indexed_split: tuple[Pred, Pred | None] | None = field(default=None, repr=False)
    #: identity of the first test: consecutive rules sharing it evaluate it once
    first_key: object = field(default=None, repr=False)
    #: per event type: (first, rest, first_key) with the evt.type checks decided
    by_type: dict[str, tuple[Pred, Pred | None, object]] = field(default_factory=dict, repr=False)
    output_format: OutputFormat | None = field(default=None, repr=False)
    #: definition order (Falco evaluates in this order)
    index: int = 0
    #: the `enabled` value the rules files gave (selection starts from it)
    default_enabled: bool = True
    capture: bool = False
    capture_duration: int = 0
    exception_fields: list[str] = field(default_factory=list)
    #: falcopy's per-rule keys (see falcopy.engine.alert_keys) and their compiled field readers
    aggregation: AggregationSpec | None = None
    aggregation_key: OutputFormat | None = field(default=None, repr=False)
    threshold: ThresholdSpec | None = None
    threshold_group: OutputFormat | None = field(default=None, repr=False)
    threshold_distinct: OutputFormat | None = field(default=None, repr=False)


#: (first test, ((rest or None, rule), ...)): consecutive rules whose first test is the
#: same macro/check share one entry, the test runs once and a failure skips them all
_Entry = tuple[Pred, tuple[tuple["Pred | None", CompiledRule], ...]]


def _entries(rules: list[CompiledRule], evt_type: str | None = None) -> tuple[_Entry, ...]:
    out: list[tuple[Pred, list[tuple[Pred | None, CompiledRule]]]] = []
    last_key: object = None
    for r in rules:
        special = r.by_type.get(evt_type) if evt_type is not None else None
        if special is not None:
            first, rest, key = special
        elif r.indexed_split is not None:
            first, rest = r.indexed_split
            key = r.first_key
        else:
            first, rest, key = r.predicate, None, None
        if out and key is not None and key == last_key:
            out[-1][1].append((rest, r))
        else:
            out.append((first, [(rest, r)]))
        last_key = key
    return tuple((f, tuple(g)) for f, g in out)


def _parse_selection(selection: Iterable[Any]) -> list[tuple[str, str, str]]:
    """Accept falco.yaml ``rules:`` entries ({"disable": {"rule": "*"}}) or
    (action, "rule"|"tag", pattern) tuples."""
    out: list[tuple[str, str, str]] = []
    for entry in selection:
        if isinstance(entry, dict):
            for action, spec in entry.items():
                if action not in ("enable", "disable") or not isinstance(spec, dict):
                    raise ValueError(f"invalid rules selection entry: {entry!r}")
                for kind, pattern in spec.items():
                    if kind not in ("rule", "tag"):
                        raise ValueError(f"invalid rules selection entry: {entry!r}")
                    out.append((action, kind, str(pattern)))
        else:
            action, kind, pattern = entry
            if action not in ("enable", "disable") or kind not in ("rule", "tag"):
                raise ValueError(f"invalid rules selection entry: {entry!r}")
            out.append((action, kind, str(pattern)))
    return out


class Ruleset:
    def __init__(self, rules: list[CompiledRule], *, rule_matching: str = "first",
                 min_priority: Priority = Priority.DEBUG, selection: Iterable[Any] = ()) -> None:
        if rule_matching not in ("first", "all"):
            raise ValueError(f"rule_matching must be 'first' or 'all', not {rule_matching!r}")
        self.rules = rules
        self.rule_matching = rule_matching
        self.min_priority = min_priority
        self._by_name = {r.name: r for r in rules}
        self.apply_selection(selection)

    # -------------------------------------------------------------- selection
    def apply_selection(self, selection: Iterable[Any]) -> None:
        """Falco's ``rules:`` config: enable/disable by rule name (wildcards) or
        tag, applied in order over the rules files' own ``enabled`` values."""
        for r in self.rules:
            r.enabled = r.default_enabled
        for action, kind, pattern in _parse_selection(selection):
            on = action == "enable"
            if kind == "rule":
                rx = re.compile(fnmatch.translate(pattern), re.DOTALL)
                for r in self.rules:
                    if rx.fullmatch(r.name):
                        r.enabled = on
            else:
                for r in self.rules:
                    if pattern in r.tags:
                        r.enabled = on
        self._build_index()

    def _active(self, r: CompiledRule) -> bool:
        return r.enabled and r.priority <= self.min_priority

    def _build_index(self) -> None:
        per_source: dict[str, dict[str, list[CompiledRule]]] = {}
        all_types: dict[str, list[CompiledRule]] = {}
        for r in self.rules:
            if not self._active(r):
                continue
            all_types.setdefault(r.source, [])
            types = per_source.setdefault(r.source, {})
            if r.evttypes is None:
                all_types[r.source].append(r)
            else:
                for t in r.evttypes:
                    types.setdefault(t, []).append(r)
        # one tuple per (source, type): the type's rules then the all-types bucket,
        # each in definition order, so evaluation is a single lookup and a loop
        self._index: dict[str, dict[str | None, tuple[_Entry, ...]]] = {}
        self._fallback: dict[str, tuple[_Entry, ...]] = {}
        for source in set(per_source) | set(all_types):
            generic = sorted(all_types.get(source, []), key=lambda r: r.index)
            idx: dict[str | None, tuple[_Entry, ...]] = {}
            for t, rs in per_source.get(source, {}).items():
                ordered = sorted(rs, key=lambda r: r.index) + generic
                idx[t] = _entries(ordered, t)
            self._index[source] = idx
            self._fallback[source] = _entries(generic)
        # the instance attribute shadows the method: callers get the closure directly
        self.evaluate = self._make_evaluate()  # type: ignore[method-assign]

    # -------------------------------------------------------------- queries
    def evttypes(self, source: str = "syscall") -> set[str] | None:
        """Event types the enabled rules of ``source`` need; None = all."""
        if self._fallback.get(source):
            return None
        return {t for t in self._index.get(source, {}) if t is not None}

    def rule(self, name: str) -> CompiledRule | None:
        return self._by_name.get(name)

    def enabled_rules(self) -> list[CompiledRule]:
        return [r for r in self.rules if self._active(r)]

    # -------------------------------------------------------------- hot path
    def evaluate(self, event: Any) -> list[CompiledRule]:
        """The rules matching ``event`` (with rule_matching "first": the first match, after the
        threshold rules that matched before it);
        replaced per instance by the closure :meth:`_make_evaluate` builds."""
        return self._make_evaluate()(event)

    def _make_evaluate(self) -> Callable[[Any], list[CompiledRule]]:
        # one closure over the index: no attribute lookups per event
        index = self._index
        fallback = self._fallback
        empty: tuple[_Entry, ...] = ()

        def first_match(event: Any) -> list[CompiledRule]:
            idx = index.get(event.source)
            if idx is None:
                return []
            bucket = idx.get(event.type)
            if bucket is None:
                bucket = fallback.get(event.source, empty)
                if not bucket:
                    return []
            cache: dict[Any, Any] = {}
            # a threshold rule's match only counts towards its threshold: it must not hide the
            # alert of a later rule, so it does not end the scan (checked on matches only)
            counting: list[CompiledRule] | None = None
            for first, group in bucket:
                if first(event, cache):
                    for rest, rule in group:
                        if rest is None or rest(event, cache):
                            if rule.threshold is None:
                                return [rule] if counting is None else [*counting, rule]
                            if counting is None:
                                counting = []
                            counting.append(rule)
            return counting or []

        def all_matches(event: Any) -> list[CompiledRule]:
            idx = index.get(event.source)
            if idx is None:
                return []
            bucket = idx.get(event.type)
            if bucket is None:
                bucket = fallback.get(event.source, empty)
            cache: dict[Any, Any] = {}
            out: list[CompiledRule] = []
            for first, group in bucket:
                if first(event, cache):
                    out.extend(rule for rest, rule in group if rest is None or rest(event, cache))
            return out

        return first_match if self.rule_matching == "first" else all_matches

    def format(self, rule: CompiledRule, event: Any) -> tuple[str, dict[str, Any]]:
        if rule.output_format is None:
            return rule.output, {}
        return rule.output_format.render(event)
