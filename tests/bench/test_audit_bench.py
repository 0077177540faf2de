"""Audit events per second through the webhook and the upstream k8s_audit rules.

Run: ``.venv/bin/pytest tests/bench/test_audit_bench.py -m bench -s``.
Three numbers: rules only (AuditEvent decode + evaluate), the endpoint with
EventList batches of 100 (the API server's default batching), and the
endpoint with one Event per request (no batching).
"""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from falcopy.engine.fields.k8s_audit import AuditEvent
from tests.agent.audit.harness import load_ruleset, running_webhook

pytestmark = pytest.mark.bench


def _events(fixtures: Path) -> list[dict]:
    out = []
    for path in sorted((fixtures / "trace_files" / "k8s_audit").glob("*.json")):
        for line in path.read_text().splitlines():
            doc = orjson.loads(line) if line.strip() else None
            if isinstance(doc, dict) and doc.get("kind") == "Event" and "user" in doc:
                out.append(doc)
    return out


def _report(label: str, n: int, seconds: float, alerts: int) -> None:
    print(f"\n[audit bench] {label}: {n} events in {seconds:.3f}s = {n / seconds:,.0f} events/s "
          f"({alerts} alerts)")


async def test_audit_throughput(compat_dir: Path, falco_fixtures_dir: Path) -> None:
    ruleset = load_ruleset((compat_dir / "k8s_audit_rules.yaml",))
    events = _events(falco_fixtures_dir)
    assert len(events) > 40
    raw = [orjson.dumps(e) for e in events]

    rounds = 40
    start = time.perf_counter()
    fired = 0
    for _ in range(rounds):
        for body in raw:
            fired += len(ruleset.evaluate(AuditEvent.from_json(body)))
    _report("rules only", rounds * len(raw), time.perf_counter() - start, fired)

    async with running_webhook(ruleset) as hook:
        batch = [dict(e) for e in events] * 2
        body = orjson.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": batch[:100]})
        start = time.perf_counter()
        for _ in range(rounds // 2):
            status, _ = await hook.post(body)
            assert status == 200
        _report("endpoint, EventList x100", (rounds // 2) * 100, time.perf_counter() - start,
                len(hook.alerts))

        hook.alerts.clear()
        start = time.perf_counter()
        for body in raw * 10:
            status, _ = await hook.post(body)
            assert status == 200
        _report("endpoint, one Event per request", 10 * len(raw), time.perf_counter() - start,
                len(hook.alerts))
    assert hook.webhook.stats.events_rejected == 0
