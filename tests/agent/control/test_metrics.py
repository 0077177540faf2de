"""The agent's own counters and gauges (falcopy.agent.control.metrics.Family): plain numbers
exported at scrape time with the series prometheus_client's Counter and Gauge give."""

from __future__ import annotations

import threading

import pytest
from falcopy.agent.control.metrics import AgentMetrics
from prometheus_client import generate_latest


def _scrape(m: AgentMetrics) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in generate_latest(m.registry).decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def test_counters_and_gauges_are_exported_as_prometheus_client_would() -> None:
    m = AgentMetrics()
    m.alerts.labels(rule="shadow", priority="Warning", source="syscall").inc()
    m.alerts.labels("shadow", "Warning", "syscall").inc(2)  # the same child, positionally
    m.output_delivered.labels(sink="file")  # a child made and never counted is exported at 0
    depth = [3]
    m.output_queue.labels(sink="file").set_function(lambda: depth[0])
    m.rules_loaded.set(25)
    s = _scrape(m)
    assert s['falcopy_alerts_total{priority="Warning",rule="shadow",source="syscall"}'] == 3
    assert s['falcopy_alerts_created{priority="Warning",rule="shadow",source="syscall"}'] > 1e9
    assert s['falcopy_output_delivered_total{sink="file"}'] == 0
    assert s['falcopy_output_queue_depth{sink="file"}'] == 3
    assert s["falcopy_rules_loaded"] == 25 and s["falcopy_ready"] == 0
    depth[0] = 9  # read at each scrape
    assert _scrape(m)['falcopy_output_queue_depth{sink="file"}'] == 9


def test_a_collector_registered_before_and_after_the_registry_exists_is_scraped() -> None:
    from prometheus_client.core import GaugeMetricFamily

    class One:
        def __init__(self, name: str) -> None:
            self.name = name

        def collect(self) -> list[GaugeMetricFamily]:
            return [GaugeMetricFamily(self.name, "a test gauge", value=1)]

    m = AgentMetrics()
    m.register(One("early_gauge"))
    assert _scrape(m)["early_gauge"] == 1
    m.register(One("late_gauge"))
    s = _scrape(m)
    assert s["early_gauge"] == s["late_gauge"] == 1


def test_increments_from_several_threads_are_all_counted() -> None:
    m = AgentMetrics()
    child = m.output_failed.labels(sink="http")

    def count() -> None:
        for _ in range(20_000):
            child.inc()

    threads = [threading.Thread(target=count) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert _scrape(m)['falcopy_output_failed_total{sink="http"}'] == 80_000


def test_bad_use_is_refused_as_prometheus_client_refuses_it() -> None:
    m = AgentMetrics()
    with pytest.raises(ValueError, match="non-negative"):
        m.alerts.labels(rule="r", priority="Warning", source="syscall").inc(-1)
    with pytest.raises(ValueError, match="falcopy_output_dropped"):
        m.output_dropped.labels(queue="x")
    with pytest.raises(ValueError, match="falcopy_ready"):
        m.ready.labels("x")
