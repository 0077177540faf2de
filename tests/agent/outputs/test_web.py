"""The web server over real HTTP: readiness, Prometheus metrics, versions, TLS, and a
stalled client that does not hold the others up."""

from __future__ import annotations

import socket
import ssl
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from falcopy.agent.control.config import load_config
from falcopy.agent.control.metrics import AgentMetrics
from falcopy.agent.control.web import Readiness, WebServer, create_app


class Client:
    """An HTTP client of a running WebServer (the shape the tests used with aiohttp's)."""

    def __init__(self, server: WebServer, scheme: str = "http",
                 verify: ssl.SSLContext | bool = True) -> None:
        self.server = server
        self.http = httpx.AsyncClient(base_url=f"{scheme}://127.0.0.1:{server.port}", verify=verify)

    async def get(self, path: str) -> httpx.Response:
        return await self.http.get(path)

    async def close(self) -> None:
        await self.http.aclose()
        await self.server.stop()


async def _client(*overrides: str, scheme: str = "http",
                  verify: ssl.SSLContext | bool = True) -> tuple[Client, Readiness, AgentMetrics]:
    cfg = load_config(None, ["webserver.listen_address=127.0.0.1", "webserver.listen_port=0",
                             *overrides]).webserver
    readiness, metrics = Readiness(), AgentMetrics()
    server = WebServer(create_app(cfg, readiness, metrics, lambda: {"rules_files": ["/r"]}), cfg)
    await server.start()
    return Client(server, scheme, verify), readiness, metrics


@asynccontextmanager
async def serving(*overrides: str, **kw: object) -> AsyncIterator[tuple[Client, Readiness, AgentMetrics]]:
    client, readiness, metrics = await _client(*overrides, **kw)  # type: ignore[arg-type]
    try:
        yield client, readiness, metrics
    finally:
        await client.close()


async def test_healthz_only_ready_with_probe_and_rules() -> None:
    client, readiness, _ = await _client()
    try:
        resp = await client.get("/healthz")
        assert resp.status_code == 503 and resp.json()["status"] == "not ready"
        readiness.rules_loaded = True
        assert (await client.get("/healthz")).status_code == 503
        readiness.probe_attached = True
        resp = await client.get("/healthz")
        assert resp.status_code == 200 and resp.json() == {"status": "ok"}
        readiness.shutting_down = True
        assert (await client.get("/healthz")).status_code == 503
    finally:
        await client.close()


async def test_custom_healthz_endpoint_and_metrics_switch() -> None:
    client, readiness, _ = await _client("webserver.k8s_healthz_endpoint=/ready")
    try:
        readiness.rules_loaded = readiness.probe_attached = True
        assert (await client.get("/ready")).status_code == 200
        assert (await client.get("/healthz")).status_code == 404
        # prometheus_metrics_enabled is false by default
        assert (await client.get("/metrics")).status_code == 404
    finally:
        await client.close()


async def test_metrics_exposition() -> None:
    client, _, metrics = await _client("webserver.prometheus_metrics_enabled=true")
    try:
        ev = metrics.events
        ev.count("syscall", "openat", 41)
        ev.count("syscall", "execve", 2)
        ev.events, ev.engine_seconds, ev.kernel_drops = 43, 0.0043, 7
        ev.ring_wakeups, ev.ring_quick_reads = 5, 3
        metrics.alerts.labels(rule="Read sensitive file", priority="Warning", source="syscall").inc(3)
        metrics.output_dropped.labels(sink="http").inc(5)
        metrics.rule_reloads.labels(result="failure").inc()
        resp = await client.get("/metrics")
        assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/plain")
        text = resp.text
        for line in (
            'falcopy_events_total{source="syscall",type="openat"} 41.0',
            'falcopy_events_total{source="syscall",type="execve"} 2.0',
            "falcopy_kernel_drops_total 7.0",
            "falcopy_ring_wakeups_total 5.0",
            "falcopy_ring_quick_reads_total 3.0",
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
        doc = (await client.get("/versions")).json()
        assert doc["engine_version"] == "0.62.0" and doc["engine_version_semver"] == "0.62.0"
        from falcopy import __version__
        from falcopy.engine.versions import FALCO_COMPAT_VERSION

        # falcopy's own version; falco_version is the Falco release it matches (what falcoctl reads)
        assert doc["falcopy_version"] == __version__ and doc["falco_version"] == FALCO_COMPAT_VERSION
        assert doc["plugins"]["container"] and doc["rules_files"] == ["/r"]
    finally:
        await client.close()


async def test_head_and_unknown_paths() -> None:
    async with serving() as (client, readiness, _):
        readiness.rules_loaded = readiness.probe_attached = True
        resp = await client.http.head("/healthz")
        assert resp.status_code == 200 and resp.content == b""
        assert int(resp.headers["Content-Length"]) == len(b'{"status": "ok"}')
        assert (await client.get("/nope")).status_code == 404
        # only the path selects the route, as with Falco's server
        assert (await client.get("/healthz?verbose=1")).status_code == 200


@pytest.fixture(scope="module")
def falco_pem(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Falco's ssl_certificate: the key and the certificate in one PEM file."""
    d = tmp_path_factory.mktemp("webtls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")],
                   check=True, capture_output=True)
    pem = d / "falco.pem"
    pem.write_text((d / "key.pem").read_text() + (d / "cert.pem").read_text())
    return pem


async def test_tls_with_falcos_single_pem(falco_pem: Path) -> None:
    trusted = ssl.create_default_context(cafile=str(falco_pem))
    async with serving("webserver.ssl_enabled=true", f"webserver.ssl_certificate={falco_pem}",
                       "webserver.prometheus_metrics_enabled=true",
                       scheme="https", verify=trusted) as (client, _, _):
        resp = await client.get("/metrics")
        assert resp.status_code == 200 and "falcopy_kernel_drops_total" in resp.text
        # a plain-HTTP client gets no answer from the TLS port
        with pytest.raises(httpx.TransportError):
            await httpx.AsyncClient().get(f"http://127.0.0.1:{client.server.port}/metrics")
        # and a client that trusts other CAs refuses the server
        with pytest.raises(httpx.ConnectError):
            await httpx.AsyncClient(verify=ssl.create_default_context()).get(
                f"https://127.0.0.1:{client.server.port}/metrics")
        # the server is unharmed by both
        assert (await client.get("/metrics")).status_code == 200


async def test_tls_needs_a_readable_certificate(tmp_path: Path) -> None:
    cfg = load_config(None, ["webserver.listen_port=0", "webserver.ssl_enabled=true",
                             f"webserver.ssl_certificate={tmp_path / 'missing.pem'}"]).webserver
    server = WebServer(create_app(cfg, Readiness(), AgentMetrics()), cfg)
    with pytest.raises(OSError):
        await server.start()


@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_a_stalled_client_does_not_hold_up_the_others(scheme: str, falco_pem: Path) -> None:
    tls = ([f"webserver.ssl_certificate={falco_pem}", "webserver.ssl_enabled=true"]
           if scheme == "https" else [])
    trusted = ssl.create_default_context(cafile=str(falco_pem))
    async with serving("webserver.threadiness=2", *tls,
                       scheme=scheme, verify=trusted) as (client, readiness, _):
        readiness.rules_loaded = readiness.probe_attached = True
        # connected, then silent: no TLS handshake, no request line
        with socket.create_connection(("127.0.0.1", client.server.port)):
            for _ in range(5):
                assert (await client.get("/healthz")).status_code == 200


async def test_connections_beyond_threadiness_wait_for_a_thread() -> None:
    async with serving("webserver.threadiness=1") as (client, readiness, _):
        readiness.rules_loaded = readiness.probe_attached = True
        port = client.server.port
        with socket.create_connection(("127.0.0.1", port)) as stalled:
            # the one thread is taken by the silent client: a request is accepted by the
            # kernel but not answered until that client goes
            waiting = socket.create_connection(("127.0.0.1", port))
            waiting.settimeout(0.5)
            waiting.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
            with pytest.raises(TimeoutError):
                waiting.recv(1)
            stalled.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
            assert stalled.recv(12) == b"HTTP/1.0 200"
        waiting.settimeout(30)
        with waiting:
            assert waiting.recv(12) == b"HTTP/1.0 200"
