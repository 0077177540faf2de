"""The web server over real HTTP: readiness, Prometheus metrics, versions."""

from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer
from falcopy.agent.control.config import load_config
from falcopy.agent.control.metrics import AgentMetrics
from falcopy.agent.control.web import Readiness, create_app


async def _client(*overrides: str) -> tuple[TestClient, Readiness, AgentMetrics]:
    cfg = load_config(None, list(overrides)).webserver
    readiness, metrics = Readiness(), AgentMetrics()
    client = TestClient(TestServer(create_app(cfg, readiness, metrics, lambda: {"rules_files": ["/r"]})))
    await client.start_server()
    return client, readiness, metrics


async def test_healthz_only_ready_with_probe_and_rules() -> None:
    client, readiness, _ = await _client()
    try:
        resp = await client.get("/healthz")
        assert resp.status == 503 and (await resp.json())["status"] == "not ready"
        readiness.rules_loaded = True
        assert (await client.get("/healthz")).status == 503
        readiness.probe_attached = True
        resp = await client.get("/healthz")
        assert resp.status == 200 and await resp.json() == {"status": "ok"}
        readiness.shutting_down = True
        assert (await client.get("/healthz")).status == 503
    finally:
        await client.close()


async def test_custom_healthz_endpoint_and_metrics_switch() -> None:
    client, readiness, _ = await _client("webserver.k8s_healthz_endpoint=/ready")
    try:
        readiness.rules_loaded = readiness.probe_attached = True
        assert (await client.get("/ready")).status == 200
        assert (await client.get("/healthz")).status == 404
        assert (await client.get("/metrics")).status == 404  # prometheus_metrics_enabled is false by default
    finally:
        await client.close()


async def test_metrics_exposition() -> None:
    client, _, metrics = await _client("webserver.prometheus_metrics_enabled=true")
    try:
        ev = metrics.events
        ev.count("syscall", "openat", 41)
        ev.count("syscall", "execve", 2)
        ev.events, ev.engine_seconds, ev.kernel_drops = 43, 0.0043, 7
        metrics.alerts.labels(rule="Read sensitive file", priority="Warning", source="syscall").inc(3)
        metrics.output_dropped.labels(sink="http").inc(5)
        metrics.rule_reloads.labels(result="failure").inc()
        resp = await client.get("/metrics")
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain")
        text = await resp.text()
        for line in (
            'falcopy_events_total{source="syscall",type="openat"} 41.0',
            'falcopy_events_total{source="syscall",type="execve"} 2.0',
            "falcopy_kernel_drops_total 7.0",
            "falcopy_engine_seconds_total 0.0043",
            "falcopy_engine_seconds_per_event 0.0001",
            'falcopy_alerts_total{priority="Warning",rule="Read sensitive file",source="syscall"} 3.0',
            'falcopy_output_dropped_total{sink="http"} 5.0',
            'falcopy_rules_reloads_total{result="failure"} 1.0',
        ):
            assert line in text, line
    finally:
        await client.close()


async def test_versions() -> None:
    client, _, _ = await _client()
    try:
        doc = await (await client.get("/versions")).json()
        assert doc["engine_version"] == "0.62.0" and doc["engine_version_semver"] == "0.62.0"
        from falcopy import __version__
        from falcopy.engine.versions import FALCO_COMPAT_VERSION

        # falcopy's own version; falco_version is the Falco release it matches (what falcoctl reads)
        assert doc["falcopy_version"] == __version__ and doc["falco_version"] == FALCO_COMPAT_VERSION
        assert doc["plugins"]["container"] and doc["rules_files"] == ["/r"]
    finally:
        await client.close()
