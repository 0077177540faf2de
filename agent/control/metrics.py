"""The agent's Prometheus metrics (one registry per agent, served on /metrics).

Per-event numbers (events by type, engine time) are counted by the event loop
in plain integers and read at scrape time by a collector: a prometheus-client
``Counter.inc()`` per event would cost more than evaluating most rules.  The
alert, output and reload counters are plain numbers too (:class:`Family`), and
prometheus_client is imported when the registry is first asked for (the web
server's first scrape, a test): its import (~40 ms of CPU with http.server,
email, urllib and ssl) is not on the way to the first alert.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry


class Collector(Protocol):
    """What a prometheus_client registry accepts: metric families read at scrape time."""

    def collect(self) -> Iterable[Any]: ...


class Child:
    """One label set's number: a counter's (``inc``) or a gauge's (``set``,
    ``set_function``), as prometheus_client's children spell them."""

    __slots__ = ("_fn", "_lock", "created", "value")

    def __init__(self) -> None:
        self.value = 0.0
        self.created = time.time()
        self._fn: Callable[[], float] | None = None
        self._lock = threading.Lock()  # several sink workers and the event thread count

    def inc(self, amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError("counters can only be incremented by non-negative amounts")
        with self._lock:
            self.value += amount

    def set(self, value: float) -> None:
        self.value = float(value)

    def set_function(self, fn: Callable[[], float]) -> None:
        """The gauge reads ``fn()`` at scrape time."""
        self._fn = fn

    def get(self) -> float:
        return float(self._fn()) if self._fn is not None else self.value


class Family:
    """A counter or gauge, with or without labels, exported by the agent's collector at
    scrape time with the same series prometheus_client's ``Counter`` / ``Gauge`` give
    (``_total`` and ``_created`` for a counter)."""

    def __init__(self, kind: Literal["counter", "gauge"], name: str, doc: str,
                 labelnames: Iterable[str] = ()) -> None:
        self.kind, self.name, self.doc = kind, name, doc
        self.labelnames = tuple(labelnames)
        self._children: dict[tuple[str, ...], Child] = {}
        self._lock = threading.Lock()
        if not self.labelnames:
            self._children[()] = Child()

    def labels(self, *values: Any, **by_name: Any) -> Child:
        if by_name:
            if values or set(by_name) != set(self.labelnames):
                raise ValueError(f"{self.name}: labels {sorted(by_name)} != {list(self.labelnames)}")
            values = tuple(by_name[n] for n in self.labelnames)
        if len(values) != len(self.labelnames) or not self.labelnames:
            raise ValueError(f"{self.name}: {len(values)} label values for {list(self.labelnames)}")
        key = tuple(str(v) for v in values)
        child = self._children.get(key)
        if child is None:
            with self._lock:
                child = self._children.setdefault(key, Child())
        return child

    # an unlabelled family is its own child
    def inc(self, amount: float = 1.0) -> None:
        self._children[()].inc(amount)

    def set(self, value: float) -> None:
        self._children[()].set(value)

    def get(self) -> float:
        return self._children[()].get()

    def family(self) -> Any:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        labels = list(self.labelnames)
        children = list(self._children.items())
        if self.kind == "counter":
            counter = CounterMetricFamily(self.name, self.doc, labels=labels)
            for key, c in children:
                counter.add_metric(list(key), c.get(), created=c.created)
            return counter
        gauge = GaugeMetricFamily(self.name, self.doc, labels=labels)
        for key, c in children:
            gauge.add_metric(list(key), c.get())
        return gauge


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


class _EventCollector:
    def __init__(self, stats: EventStats, families: list[Family],
                 extra: list[Callable[[], Iterable[Any]]]) -> None:
        self._stats = stats
        self._families = families
        self._extra = extra

    def collect(self) -> Iterable[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

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
        for fam in self._families:
            yield fam.family()


class AgentMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.events = EventStats()
        self._extra: list[Callable[[], Iterable[Any]]] = []
        self._lock = threading.Lock()
        self.alerts = Family("counter", "falcopy_alerts", "Alerts raised, by rule and priority",
                             ["rule", "priority", "source"])
        self.output_delivered = Family("counter", "falcopy_output_delivered", "Alerts delivered, per sink",
                                       ["sink"])
        self.output_failed = Family("counter", "falcopy_output_failed", "Alerts a sink failed to deliver",
                                    ["sink"])
        self.output_dropped = Family("counter", "falcopy_output_dropped",
                                     "Alerts dropped because the sink's queue was full", ["sink"])
        self.output_queue = Family("gauge", "falcopy_output_queue_depth", "Alerts waiting, per sink",
                                   ["sink"])
        self.rule_reloads = Family("counter", "falcopy_rules_reloads", "Rule reloads, by result", ["result"])
        self.rules_loaded = Family("gauge", "falcopy_rules_loaded", "Enabled rules in the running ruleset")
        self.ready = Family("gauge", "falcopy_ready", "1 once the probe is attached and rules are loaded")
        self.startup_seconds = Family("gauge", "falcopy_startup_seconds",
                                      "Seconds from process start until the agent was ready")
        families = [self.alerts, self.output_delivered, self.output_failed, self.output_dropped,
                    self.output_queue, self.rule_reloads, self.rules_loaded, self.ready,
                    self.startup_seconds]
        #: collectors registered before the registry exists (see ``registry``)
        self._collectors: list[Collector] = [_EventCollector(self.events, families, self._extra)]
        self._registry = registry
        if registry is not None:
            registry.register(self._collectors[0])  # type: ignore[arg-type]

    @property
    def registry(self) -> CollectorRegistry:
        """The prometheus_client registry of every collector (imported and built on first use)."""
        with self._lock:
            if self._registry is None:
                from prometheus_client import CollectorRegistry

                self._registry = CollectorRegistry()
                for c in self._collectors:
                    self._registry.register(c)  # type: ignore[arg-type]
            return self._registry

    def register(self, collector: Collector) -> None:
        """Add a collector to the registry, now or when it is built."""
        with self._lock:
            self._collectors.append(collector)
            if self._registry is not None:
                self._registry.register(collector)  # type: ignore[arg-type]

    def add_collector(self, fn: Callable[[], Iterable[Any]]) -> None:
        """Extra metric families produced at scrape time (enrichment cache, state tables...)."""
        with self._lock:
            self._extra.append(fn)
