"""Scrape-time numbers of the running agent's live objects: the probe, the pipeline,
the process table and the metadata store (falcopy's names), and Falco's metric names
read from the same objects (docs/outputs.md)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from falcopy.agent.control.falco_metrics import FalcoMetricsCollector, FalcoMetricsSource, files_sha256

import falcopy


def collect_runtime(agent: Any) -> Iterable[Any]:
    """Scrape-time numbers of ``agent``'s (the :class:`~falcopy.agent.app.Agent`) probe,
    pipeline, process table and metadata store."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    pipeline, store, probe = agent.pipeline, agent.store, agent.probe
    if probe is not None:
        try:
            by_class = probe.drops_by_class()
            stats = probe.filter_stats()
        except OSError:
            by_class, stats = {}, {}
        drops = CounterMetricFamily(
            "falcopy_kernel_drops_by_class",
            "Records lost because the ring was full (bulk: also when only the critical reserve was left)",
            labels=["class"],
        )
        for cls, n in by_class.items():
            drops.add_metric([cls], n)
        yield drops
        recs = CounterMetricFamily(
            "falcopy_kernel_records",
            "Records per event type: put in the ring (passed) or kept in the kernel (filtered)",
            labels=["type", "verdict"],
        )
        for t, (passed, filtered) in sorted(stats.items()):
            recs.add_metric([t, "passed"], passed)
            recs.add_metric([t, "filtered"], filtered)
        yield recs
        yield GaugeMetricFamily(
            "falcopy_kernel_filter_enabled", "1 when the rule-derived kernel filter is in force",
            value=1 if probe.kernel_filter_enabled else 0,
        )
    if pipeline is not None:
        yield CounterMetricFamily(
            "falcopy_pipeline_errors", "Records or rules that raised an error", value=pipeline.errors
        )
        yield GaugeMetricFamily(
            "falcopy_process_table_size",
            "Threads in the process table",
            value=len(pipeline.state.threads),
        )
    if store is not None:
        st = store.stats
        fam = CounterMetricFamily(
            "falcopy_enrichment", "Container metadata store activity", labels=["what"]
        )
        for what in ("misses", "runtime_lookups", "kubelet_refreshes", "published"):
            fam.add_metric([what], getattr(st, what, 0))
        yield fam
        meta = store.k8smeta
        if meta is not None:
            k8s = CounterMetricFamily(
                "falcopy_k8smeta", "Workload-metadata stream from the operator's collector", labels=["what"]
            )
            for what in ("connects", "snapshots", "lines", "failures"):
                k8s.add_metric([what], getattr(meta.stats, what))
            yield k8s
            yield GaugeMetricFamily("falcopy_k8smeta_connected", "1 while the stream is open",
                                    value=1 if meta.connected else 0)
            yield GaugeMetricFamily("falcopy_k8smeta_pods", "Pods of this node known from the collector",
                                    value=len(meta.meta.by_pod))


def register_falco_metrics(agent: Any) -> FalcoMetricsSource:
    """Falco's metric names (docs/outputs.md), read from the live objects at scrape time."""

    def drops_per_cpu() -> list[int]:
        return agent.probe.drops_per_cpu() if agent.probe is not None else []

    def n_threads() -> int | None:
        return len(agent.pipeline.state.threads) if agent.pipeline is not None else None

    def n_containers() -> int | None:
        return len(agent.store.snapshot()) if agent.store is not None else None

    src = FalcoMetricsSource(
        version=lambda: falcopy.__version__,
        config_files=files_sha256([agent.config_path]) if agent.config_path else {},
        rule_matches=lambda: agent.metrics.events.rule_matches,
        outputs_queue_drops=lambda: agent.dispatcher.total_dropped() if agent.dispatcher else 0,
        n_evts=lambda: agent.metrics.events.events,
        drops_per_cpu=drops_per_cpu,
        n_threads=n_threads,
        n_containers=n_containers,
    )
    agent.metrics.register(FalcoMetricsCollector(src))
    return src
