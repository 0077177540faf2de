"""Counters of the audit webhook (exported by the agent's metrics endpoint)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric


@dataclass
class WebhookStats:
    requests: int = 0
    events_accepted: int = 0
    events_rejected: int = 0
    callback_errors: int = 0
    #: rejected requests by reason: invalid_json, content_type, too_large,
    #: not_audit, invalid_event, read_timeout, and the overflow of the bounds:
    #: too_many_requests (concurrent requests), queue_full (bytes waiting)
    rejected: Counter[str] = field(default_factory=Counter)

    def reject(self, reason: str) -> None:
        self.rejected[reason] += 1

    def as_dict(self) -> dict[str, int]:
        out = {
            "requests": self.requests,
            "events_accepted": self.events_accepted,
            "events_rejected": self.events_rejected,
            "callback_errors": self.callback_errors,
        }
        out.update({f"rejected_{reason}": n for reason, n in sorted(self.rejected.items())})
        return out


class WebhookStatsCollector:
    """Prometheus collector reading :class:`WebhookStats` at scrape time.

    ``registry.register(WebhookStatsCollector(webhook.stats))``; reading
    plain integers keeps the request path free of metric-library locks.
    """

    def __init__(self, stats: WebhookStats, prefix: str = "falcopy_k8s_audit",
                 pending_bytes: Callable[[], int] | None = None) -> None:
        self.stats = stats
        self.prefix = prefix
        self.pending_bytes = pending_bytes

    def collect(self) -> Iterator[Metric]:
        p, s = self.prefix, self.stats
        requests = CounterMetricFamily(f"{p}_requests", "Audit webhook requests received")
        requests.add_metric([], s.requests)
        yield requests
        events = CounterMetricFamily(f"{p}_events", "Audit events by result", labels=["result"])
        events.add_metric(["accepted"], s.events_accepted)
        events.add_metric(["rejected"], s.events_rejected)
        yield events
        rejected = CounterMetricFamily(f"{p}_rejected_requests", "Rejected requests by reason",
                                       labels=["reason"])
        for reason, n in sorted(s.rejected.items()):
            rejected.add_metric([reason], n)
        yield rejected
        errors = CounterMetricFamily(f"{p}_callback_errors", "Audit events whose handler failed")
        errors.add_metric([], s.callback_errors)
        yield errors
        if self.pending_bytes is not None:
            yield GaugeMetricFamily(f"{p}_pending_bytes",
                                    "Bytes of request bodies being read or waiting for evaluation",
                                    value=self.pending_bytes())
