"""The stage between the ruleset and the sinks: threshold rules, then aggregation.

Aggregation: two alerts are "the same" when they come from the same rule and
have equal values for a key (the rule's ``aggregation.key`` fields, else its
output fields minus volatile ones: times, pids, fds).  Within a window the
first alert goes out at once, unchanged; repeats are only counted; when the
window closes one summary alert (same rule, priority, tags, source) carries the
count, the first and last time and a bounded sample of the fields that varied.
Every match is accounted for: first alerts + the summaries' ``falcopy.count``.

Windows close when the clock passes their end (the event loop calls
:meth:`AlertStage.tick`), early when ``max_keys`` windows are open (the oldest
one, reported with ``falcopy.close_reason: cap``), and all at once on reload and
shutdown (:meth:`AlertStage.flush`).

The stage runs on the event thread and on the audit webhook's thread: one lock.
"""

from __future__ import annotations

import heapq
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from falcopy.agent.outputs.alert import Alert
from falcopy.agent.outputs.format import rfc3339

from falcopy.engine.alert_keys import hashable
from falcopy.engine.threshold import DEFAULT_MAX_GROUPS, DEFAULT_MAX_VALUES, ThresholdGate

_NS = 1_000_000_000

#: output fields that differ between repeats of the same thing (base names, without [arg])
VOLATILE_FIELDS = frozenset({
    "evt.time", "evt.time.s", "evt.time.iso8601", "evt.datetime", "evt.datetime.s", "evt.rawtime",
    "evt.rawtime.s", "evt.rawtime.ns", "evt.reltime", "evt.reltime.s", "evt.reltime.ns", "evt.num",
    "evt.latency", "evt.latency.s", "evt.latency.ns", "evt.latency.human", "evt.deltatime",
    "evt.deltatime.s", "evt.deltatime.ns", "evt.arg.fd", "evt.rawarg.fd",
    "proc.pid", "proc.ppid", "proc.vpid", "proc.pvpid", "proc.sid", "proc.vpgid", "proc.pgid", "proc.apid",
    "proc.duration", "proc.pid.ts", "proc.ppid.ts", "proc.ppid.duration", "proc.start_ts",
    "thread.tid", "thread.vtid", "thread.ismain", "fd.num", "fd.ino",
})
_SCALARS = frozenset({str, int, float, bool, type(None)})
_BASE = re.compile(r"^(?:[a-z_]+\()?([A-Za-z0-9_.]+)")


def is_volatile(name: str, extra: frozenset[str] = frozenset()) -> bool:
    m = _BASE.match(name)
    base = m.group(1) if m else name
    return base in VOLATILE_FIELDS or base in extra or name in extra


@dataclass(frozen=True)
class AggregationSettings:
    enabled: bool = False
    window: float = 60.0
    max_keys: int = 10_000
    sample_size: int = 5
    ignore_fields: frozenset[str] = frozenset()

    @classmethod
    def from_config(cls, config: Any) -> AggregationSettings:
        a = config.falcopy.aggregation
        return cls(a.enabled, a.window_seconds(), a.max_keys, a.sample_size, frozenset(a.ignore_fields))


@dataclass
class _Window:
    seq: int
    first: Alert
    end: int
    window: float
    key_fields: dict[str, Any]
    count: int = 0
    first_ts: int = 0
    last_ts: int = 0
    #: field -> values seen in repeats that differ from the first alert's (at most sample_size)
    varied: dict[str, list[Any]] = field(default_factory=dict)


@dataclass
class AggregationStats:
    aggregated: dict[str, int] = field(default_factory=dict)
    summaries: dict[str, int] = field(default_factory=dict)
    closed_early: int = 0
    passed: int = 0


class Aggregator:
    """Open windows by (rule, source, key values); not thread-safe (AlertStage locks)."""

    def __init__(self, settings: AggregationSettings, emit: Callable[[Alert], None]) -> None:
        if settings.max_keys < 1:
            raise ValueError("max_keys must be >= 1")
        self.settings = settings
        self.emit = emit
        self._open: OrderedDict[tuple[Any, ...], _Window] = OrderedDict()
        self._ends: list[tuple[int, int, tuple[Any, ...]]] = []
        self._seq = 0
        #: per compiled rule: its output fields that make the default key (the names never change)
        self._default_key: dict[Any, tuple[str, ...]] = {}
        self.stats = AggregationStats()

    def __len__(self) -> int:
        return len(self._open)

    def _settings_for(self, rule: Any) -> tuple[bool, float]:
        spec = rule.aggregation
        s = self.settings
        if spec is None:
            return s.enabled, s.window
        enabled = s.enabled if spec.enabled is None else spec.enabled
        return enabled, spec.window if spec.window is not None else s.window

    def _key(self, rule: Any, event: Any, alert: Alert) -> dict[str, Any]:
        if rule.aggregation is not None and rule.aggregation_key is not None:
            values = rule.aggregation_key.render(event)[1]
            return {f: values.get(f) for f in rule.aggregation.key}
        names = self._default_key.get(rule)
        if names is None:
            extra = self.settings.ignore_fields
            names = tuple(k for k in alert.output_fields if not is_volatile(k, extra))
            self._default_key[rule] = names
        fields = alert.output_fields
        return {k: fields.get(k) for k in names}

    def offer(self, rule: Any, event: Any, alert: Alert) -> None:
        enabled, window = self._settings_for(rule)
        if not enabled:
            self.stats.passed += 1
            self.emit(alert)
            return
        key_fields = self._key(rule, event, alert)
        key = (alert.rule, alert.source,
               *((k, v if type(v) in _SCALARS else hashable(v)) for k, v in key_fields.items()))
        w = self._open.get(key)
        if w is not None and alert.ts < w.end:
            self._count(w, alert)
            return
        if w is not None:  # the clock has not ticked past its end yet: close it now
            self._close(key, "window")
        self._seq += 1
        end = alert.ts + int(window * _NS)
        self._open[key] = _Window(self._seq, alert, end, window, key_fields)
        heapq.heappush(self._ends, (end, self._seq, key))
        if len(self._ends) > 2 * self.settings.max_keys + 1024:
            # windows closed early left their entries behind: keep the heap bounded by max_keys
            self._ends = [(w.end, w.seq, k) for k, w in self._open.items()]
            heapq.heapify(self._ends)
        self.emit(alert)
        if len(self._open) > self.settings.max_keys:
            oldest = next(iter(self._open))
            self._close(oldest, "cap")
            self.stats.closed_early += 1

    def _count(self, w: _Window, alert: Alert) -> None:
        if w.count == 0:
            w.first_ts = alert.ts
        w.count += 1
        w.last_ts = alert.ts
        s = self.stats.aggregated
        s[alert.rule] = s.get(alert.rule, 0) + 1
        first_fields = w.first.output_fields
        limit = self.settings.sample_size
        for k, v in alert.output_fields.items():
            if k in w.key_fields or k.startswith("evt.time") or v == first_fields.get(k):
                continue
            sample = w.varied.setdefault(k, [])
            if len(sample) < limit and v not in sample:
                sample.append(v)

    def tick(self, now_ns: int) -> None:
        ends = self._ends
        while ends and ends[0][0] <= now_ns:
            _, seq, key = heapq.heappop(ends)
            w = self._open.get(key)
            if w is not None and w.seq == seq:
                self._close(key, "window")

    def flush(self, reason: str) -> None:
        for key in list(self._open):
            self._close(key, reason)
        self._ends.clear()
        self._default_key.clear()  # a reload brings new rule objects

    def _close(self, key: tuple[Any, ...], reason: str) -> None:
        w = self._open.pop(key)
        if w.count == 0:
            return
        s = self.stats.summaries
        s[w.first.rule] = s.get(w.first.rule, 0) + 1
        self.emit(summary_alert(w, reason))


_CLOSE_TEXT = {
    "window": "",
    "cap": "; closed early: falcopy.aggregation.max_keys windows were open",
    "reload": "; closed early: the rules were reloaded",
    "shutdown": "; closed early: the agent is stopping",
    "end": "; closed at the end of the replayed events",
}


def summary_alert(w: _Window, reason: str) -> Alert:
    first = w.first
    span = (w.last_ts - w.first_ts) / _NS
    key_text = " ".join(f"{k}={'<NA>' if v is None else v}" for k, v in w.key_fields.items())
    early = _CLOSE_TEXT.get(reason, f"; closed early ({reason})")
    message = (f"{w.count} more alert(s) of this rule with {key_text or 'the same output'} "
               f"from {rfc3339(w.first_ts)} to {rfc3339(w.last_ts)} ({span:.3f}s, "
               f"{w.window:g}s window{early})")
    fields: dict[str, Any] = dict(w.key_fields)
    # the time field the first alert had (evt.time, or evt.time.iso8601 with time_format_iso_8601)
    time_key = "evt.time.iso8601" if "evt.time.iso8601" in first.output_fields else "evt.time"
    fields.update({
        time_key: w.last_ts,
        "falcopy.count": w.count,
        "falcopy.first_time": w.first_ts,
        "falcopy.last_time": w.last_ts,
        "falcopy.window": w.window,
        "falcopy.close_reason": reason,
        "falcopy.varied": w.varied,
    })
    return Alert(ts=w.last_ts, rule=first.rule, priority=first.priority, message=message,
                 output_fields=fields, tags=list(first.tags), source=first.source, hostname=first.hostname)


Build = Callable[[Any, Any], "Alert | None"]


class AlertStage:
    """rule match -> threshold gate -> alert -> aggregation -> ``emit`` (the dispatcher)."""

    def __init__(self, build: Build, emit: Callable[[Alert], None], settings: AggregationSettings, *,
                 max_groups: int | None = None, max_values: int | None = None) -> None:
        self._build = build
        self._lock = threading.Lock()
        self.gate = ThresholdGate(max_groups=max_groups or DEFAULT_MAX_GROUPS,
                                  max_values=max_values or DEFAULT_MAX_VALUES)
        self.aggregator = Aggregator(settings, emit)

    def on_match(self, rule: Any, event: Any) -> None:
        with self._lock:
            extra = None
            if rule.threshold is not None:
                extra = self.gate.check(rule, event)
                if extra is None:
                    return
            alert = self._build(rule, event)
            if alert is None:
                return
            if extra is not None:
                alert.output_fields.update(extra)
                count = extra["falcopy.count"]
                alert.message = f"{alert.message} (threshold {rule.threshold.describe()}: {count})"
            self.aggregator.offer(rule, event, alert)

    def tick(self, now_ns: int) -> None:
        with self._lock:
            self.aggregator.tick(now_ns)

    def flush(self, reason: str) -> None:
        """Close every open window now (reload: keys may change; shutdown: nothing may stay behind).
        Threshold counts carry over a reload: a rules update must not reset an attacker's count."""
        with self._lock:
            self.aggregator.flush(reason)

    def open_windows(self) -> int:
        return len(self.aggregator)

    def metric_families(self) -> Iterable[Any]:
        """Scrape-time metrics: plain integers on the event path, read here."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        a, t = self.aggregator.stats, self.gate.stats
        per_rule = [
            ("falcopy_alerts_aggregated", "Alerts counted into an open aggregation window, per rule",
             a.aggregated),
            ("falcopy_aggregation_summaries", "Summary alerts emitted when a window closed, per rule",
             a.summaries),
            ("falcopy_threshold_matches", "Matches of threshold rules, per rule", t.matches),
            ("falcopy_threshold_fired", "Threshold rule alerts, per rule", t.fired),
            ("falcopy_threshold_absorbed", "Threshold rule matches after it fired within its window",
             t.absorbed),
        ]
        for name, doc, values in per_rule:
            fam = CounterMetricFamily(name, doc, labels=["rule"])
            for rule, n in list(values.items()):
                fam.add_metric([rule], n)
            yield fam
        yield CounterMetricFamily("falcopy_aggregation_windows_closed_early",
                                  "Aggregation windows closed before their end because max_keys were open",
                                  value=a.closed_early)
        yield CounterMetricFamily("falcopy_threshold_groups_evicted",
                                  "Threshold groups dropped because max_groups were tracked",
                                  value=t.evicted)
        yield GaugeMetricFamily("falcopy_aggregation_open_windows", "Aggregation windows open",
                                value=len(self.aggregator))
