"""The agent's Prometheus metrics (one registry per agent, served on /metrics).

Per-event numbers (events by type, engine time) are counted by the event loop
in plain integers and read at scrape time by a collector: a prometheus-client
``Counter.inc()`` per event would cost more than evaluating most rules.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector


class EventStats:
    """Written by the event thread only; read (racily but safely) by scrapes."""

    def __init__(self) -> None:
        self.by_type: dict[tuple[str, str], int] = {}
        self.events = 0
        self.engine_seconds = 0.0
        self.kernel_drops = 0
        #: times the event thread slept and was woken by records (batching: well below events)
        self.ring_wakeups = 0
        #: reads made sooner than the batch window on the quiet reader's budget
        self.ring_quick_reads = 0
        self.alerts_suppressed = 0
        #: (rule, priority, source, tags) -> matches: Falco's falcosecurity_falco_rules_matches_total
        self.rule_matches: dict[tuple[str, str, str, tuple[str, ...]], int] = {}

    def count(self, source: str, evt_type: str, n: int = 1) -> None:
        key = (source, evt_type)
        self.by_type[key] = self.by_type.get(key, 0) + n


class _EventCollector(Collector):
    def __init__(self, stats: EventStats, extra: list[Callable[[], Iterable[Any]]]) -> None:
        self._stats = stats
        self._extra = extra

    def collect(self) -> Iterable[Any]:
        s = self._stats
        by_type = CounterMetricFamily(
            "falcopy_events", "Events processed, by source and type", labels=["source", "type"]
        )
        for (source, evt_type), n in list(s.by_type.items()):
            by_type.add_metric([source, evt_type], n)
        yield by_type
        yield CounterMetricFamily(
            "falcopy_kernel_drops", "Records the kernel probe could not deliver", value=s.kernel_drops
        )
        yield CounterMetricFamily(
            "falcopy_ring_wakeups", "Times the event thread was woken by records in the ring buffer",
            value=s.ring_wakeups,
        )
        yield CounterMetricFamily(
            "falcopy_ring_quick_reads", "Reads of the ring sooner than the batch window, after a quiet spell",
            value=s.ring_quick_reads,
        )
        yield CounterMetricFamily(
            "falcopy_engine_seconds", "Time spent processing events (state + rules)", value=s.engine_seconds
        )
        per_event = s.engine_seconds / s.events if s.events else 0.0
        yield GaugeMetricFamily(
            "falcopy_engine_seconds_per_event", "Mean processing time per event since start", value=per_event
        )
        for fn in self._extra:
            yield from fn()


class AgentMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.events = EventStats()
        self._extra: list[Callable[[], Iterable[Any]]] = []
        self.registry.register(_EventCollector(self.events, self._extra))
        r = self.registry
        self.alerts = Counter(
            "falcopy_alerts",
            "Alerts raised, by rule and priority",
            ["rule", "priority", "source"],
            registry=r,
        )
        self.output_delivered = Counter(
            "falcopy_output_delivered", "Alerts delivered, per sink", ["sink"], registry=r
        )
        self.output_failed = Counter(
            "falcopy_output_failed", "Alerts a sink failed to deliver", ["sink"], registry=r
        )
        self.output_dropped = Counter(
            "falcopy_output_dropped", "Alerts dropped because the sink's queue was full", ["sink"], registry=r
        )
        self.output_queue = Gauge(
            "falcopy_output_queue_depth", "Alerts waiting, per sink", ["sink"], registry=r
        )
        self.rule_reloads = Counter(
            "falcopy_rules_reloads", "Rule reloads, by result", ["result"], registry=r
        )
        self.rules_loaded = Gauge("falcopy_rules_loaded", "Enabled rules in the running ruleset", registry=r)
        self.ready = Gauge("falcopy_ready", "1 once the probe is attached and rules are loaded", registry=r)
        self.startup_seconds = Gauge(
            "falcopy_startup_seconds", "Seconds from process start until the agent was ready", registry=r
        )
        self._lock = threading.Lock()

    def add_collector(self, fn: Callable[[], Iterable[Any]]) -> None:
        """Extra metric families produced at scrape time (enrichment cache, state tables...)."""
        with self._lock:
            self._extra.append(fn)
