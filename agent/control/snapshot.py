"""Falco's periodic metrics snapshot (``metrics.enabled``): an internal alert and/or a JSON line.

Field names follow Falco's (``falco.*``, ``scap.*``) for the numbers falcopy
has, so dashboards built on Falco's snapshot keep most of their panels.
"""

from __future__ import annotations

import os
import resource
import time
from typing import Any

from falcopy.agent.control.metrics import AgentMetrics

from falcopy import __version__

SNAPSHOT_RULE = "Falco internal: metrics snapshot"


class SnapshotMaker:
    def __init__(self, metrics: AgentMetrics, convert_memory_to_mb: bool = True) -> None:
        self.metrics = metrics
        self.mb = convert_memory_to_mb
        self.start_ns = time.time_ns()
        self._prev_events = 0
        self._prev_t = time.monotonic()
        self._prev_cpu = time.process_time()

    def fields(self, queue_drops: int, alerts: int) -> dict[str, Any]:
        ev = self.metrics.events
        now, cpu = time.monotonic(), time.process_time()
        dt = max(now - self._prev_t, 1e-9)
        rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        out: dict[str, Any] = {
            "evt.source": "syscall",
            "falco.version": __version__,
            "falco.start_ts": self.start_ns,
            "falco.duration_sec": int((time.time_ns() - self.start_ns) / 1e9),
            "falco.kernel_release": os.uname().release,
            "falco.host_num_cpus": os.cpu_count() or 0,
            "falco.num_evts": ev.events,
            "falco.num_evts_prev": self._prev_events,
            "falco.evts_rate_sec": round((ev.events - self._prev_events) / dt, 2),
            "falco.outputs_queue_num_drops": queue_drops,
            "falco.num_alerts": alerts,
            "falco.cpu_usage_perc": round(100.0 * (cpu - self._prev_cpu) / dt, 2),
            "scap.n_drops": ev.kernel_drops,
        }
        if self.mb:
            out["falco.memory_rss_mb"] = round(rss_kb / 1024.0, 2)  # peak RSS
        else:
            out["falco.memory_rss_kb"] = rss_kb
        self._prev_events, self._prev_t, self._prev_cpu = ev.events, now, cpu
        return out
