"""Threshold rules: a rule with a ``threshold`` key alerts only when its condition
matched at least ``count`` times (or for ``count`` distinct values of a field)
within a sliding ``window``, per group of ``group_by`` values.

It fires once per group and window: on the match that reaches the threshold,
with the count, the group and the distinct values in its output fields; the
group's further matches within ``window`` after that are absorbed (counted in
``absorbed``).  Memory is bounded: a group holds fewer than ``count`` entries,
and at most ``max_groups`` groups are tracked (the least recently matched one is
evicted first and counted in ``evicted``).

Time is the events' own clock (``event.ts``), so `falcopy replay` of recorded
events gives what the live agent gave.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

from falcopy.engine.alert_keys import hashable

_NS = 1_000_000_000
#: distinct values listed in a threshold alert (the count is always exact)
DEFAULT_MAX_VALUES = 50
DEFAULT_MAX_GROUPS = 10_000


@dataclass
class _Group:
    #: count mode: the last match times (at most count)
    times: deque[int] = field(default_factory=deque)
    #: distinct mode: value -> (last time, value as emitted)
    seen: dict[Any, tuple[int, Any]] = field(default_factory=dict)
    first_ts: int = 0
    #: alerts are muted until this time after firing
    muted_until: int = 0


@dataclass
class ThresholdStats:
    matches: dict[str, int] = field(default_factory=dict)
    fired: dict[str, int] = field(default_factory=dict)
    absorbed: dict[str, int] = field(default_factory=dict)
    evicted: int = 0


def _bump(d: dict[str, int], key: str, n: int = 1) -> None:
    d[key] = d.get(key, 0) + n


class ThresholdGate:
    """Decides, per match of a threshold rule, whether it alerts (thread-confined: the caller locks)."""

    def __init__(self, max_groups: int = DEFAULT_MAX_GROUPS, max_values: int = DEFAULT_MAX_VALUES) -> None:
        if max_groups < 1:
            raise ValueError("max_groups must be >= 1")
        self.max_groups = max_groups
        self.max_values = max_values
        self._groups: OrderedDict[tuple[Any, ...], _Group] = OrderedDict()
        self.stats = ThresholdStats()

    def __len__(self) -> int:
        return len(self._groups)

    def check(self, rule: Any, event: Any) -> dict[str, Any] | None:
        """None: no alert for this match; else the output fields the alert carries."""
        spec = rule.threshold
        name = rule.name
        _bump(self.stats.matches, name)
        ts = int(event.ts)
        window_ns = int(spec.window * _NS)
        group_values = rule.threshold_group.render(event)[1] if rule.threshold_group is not None else {}
        gkey = (name, rule.source, *(hashable(group_values.get(f)) for f in spec.group_by))
        groups = self._groups
        group = groups.get(gkey)
        if group is None:
            group = _Group(first_ts=ts)
            groups[gkey] = group
            if len(groups) > self.max_groups:
                groups.popitem(last=False)
                self.stats.evicted += 1
        else:
            groups.move_to_end(gkey)
        if ts < group.muted_until:
            _bump(self.stats.absorbed, name)
            return None
        horizon = ts - window_ns
        if spec.distinct is None:
            times = group.times
            times.append(ts)
            while times and times[0] < horizon:
                times.popleft()
            if len(times) < spec.count:
                return None
            count, values = len(times), None
            first = times[0]
        else:
            assert rule.threshold_distinct is not None
            raw = rule.threshold_distinct.render(event)[1].get(spec.distinct)
            group.seen[hashable(raw)] = (ts, raw)
            if len(group.seen) < spec.count:
                return None
            live = {k: v for k, v in group.seen.items() if v[0] >= horizon}
            group.seen = live
            if len(live) < spec.count:
                return None
            count = len(live)
            first = min(t for t, _ in live.values())
            values = sorted((v for _, v in live.values()), key=str)[: self.max_values]
        group.times.clear()
        group.seen = {}
        group.muted_until = ts + window_ns
        _bump(self.stats.fired, name)
        fields: dict[str, Any] = {
            "falcopy.count": count,
            "falcopy.threshold": spec.count,
            "falcopy.window": spec.window,
            "falcopy.first_time": first,
            "falcopy.last_time": ts,
        }
        if spec.group_by:
            fields["falcopy.group"] = {f: group_values.get(f) for f in spec.group_by}
        if values is not None:
            fields["falcopy.distinct"] = {spec.distinct: values}
        return fields
