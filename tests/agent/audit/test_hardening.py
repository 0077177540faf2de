"""The audit endpoint as an attacker meets it: without a client certificate, with
bodies built to produce huge answers, slowly, and in numbers (all over loopback)."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
import threading
from pathlib import Path

import aiohttp
import orjson
import pytest
from falcopy.agent.audit import AuditWebhook, AuditWebhookConfig, WebhookStatsCollector
from falcopy.agent.control.config import ConfigError, load_config
from prometheus_client import CollectorRegistry

from tests.agent.audit.events import audit_event
from tests.agent.audit.harness import load_ruleset, running_webhook
from tests.waiting import wait_until

JSON = {"Content-Type": "application/json"}
EXEC_URI = "/api/v1/namespaces/prod/pods/web-0/exec?command=%2Fbin%2Fsh&container=web&stdin=true&tty=true"


def _forged_exec() -> dict:
    """What the issue's attacker posted: an exec by a user who did nothing."""
    return audit_event(verb="create", resource="pods", namespace="prod", name="web-0", subresource="exec",
                       stage="ResponseStarted", code=101, uri=EXEC_URI, user="innocent-bob",
                       groups=("system:authenticated",))


@pytest.fixture(scope="module")
def k8s_rules(compat_dir: Path) -> object:
    return load_ruleset((compat_dir / "k8s_audit_rules.yaml",))


# ------------------------------------------------------------------ client certificates


def _openssl(cwd: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _ca(d: Path, name: str) -> None:
    _openssl(d, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={name}",
             "-keyout", f"{name}.key", "-out", f"{name}.crt")


def _signed(d: Path, ca: str, name: str, cn: str, ext: str) -> None:
    _openssl(d, "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}", "-keyout", f"{name}.key",
             "-out", f"{name}.csr")
    (d / f"{name}.ext").write_text(ext)
    _openssl(d, "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
             "-CAcreateserial", "-days", "1", "-out", f"{name}.crt", "-extfile", f"{name}.ext")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A serving CA and certificate, the API server's client CA and certificate, and a stranger's."""
    d = tmp_path_factory.mktemp("audit-pki")
    for ca in ("serving-ca", "client-ca", "other-ca"):
        _ca(d, ca)
    _signed(d, "serving-ca", "server", "falcopy-k8s-audit",
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    client_ext = "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n"
    _signed(d, "client-ca", "apiserver", "kube-apiserver-audit", client_ext)
    _signed(d, "other-ca", "stranger", "kube-apiserver-audit", client_ext)
    return d


def _client(pki: Path, cert: str | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki / "serving-ca.crt"))
    if cert is not None:
        ctx.load_cert_chain(str(pki / f"{cert}.crt"), str(pki / f"{cert}.key"))
    return ctx


async def test_forged_event_refused_without_client_certificate(k8s_rules: object, pki: Path) -> None:
    tls = {"ssl_enabled": True, "ssl_certificate": str(pki / "server.crt"),
           "ssl_key": str(pki / "server.key"), "ssl_client_ca": str(pki / "client-ca.crt")}
    forged = orjson.dumps(_forged_exec())
    async with running_webhook(k8s_rules, **tls) as hook:
        # no certificate, and a certificate from a CA the webhook does not trust: no request gets in
        for cert in (None, "stranger"):
            with pytest.raises(aiohttp.ClientError):
                async with hook.session.post(hook.url, data=forged, ssl=_client(pki, cert),
                                             headers=JSON) as resp:
                    await resp.read()
        assert hook.seen == [] and hook.alerts == [] and hook.webhook.stats.requests == 0
        # the API server's certificate is accepted and the same event is evaluated
        async with hook.session.post(hook.url, data=forged, ssl=_client(pki, "apiserver"),
                                     headers=JSON) as resp:
            assert resp.status == 200, await resp.text()
    assert [name for name, _, _ in hook.alerts] == ["Attach/Exec Pod"]


def test_client_ca_needs_tls(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ssl_client_ca needs ssl_enabled"):
        load_config(None, ["falcopy.k8s_audit.ssl_client_ca=/etc/ca.crt"])
    with pytest.raises(ConfigError, match="max_pending_bytes"):
        load_config(None, ["falcopy.k8s_audit.max_pending_bytes=1000"])


# ------------------------------------------------------------------ answers stay small


async def test_oversized_invalid_body_gets_a_small_answer(k8s_rules: object) -> None:
    junk = {"kind": "Pod", "metadata": {"name": "x" * 200}, "note": "(" * 100}
    items = [junk] * 9000
    body = orjson.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": items})
    assert len(body) > 3_000_000
    async with running_webhook(k8s_rules) as hook:
        async with hook.session.post(hook.url, data=body, headers=JSON) as resp:
            raw = await resp.read()
            assert resp.status == 400
        reply = orjson.loads(raw)
        assert len(raw) < 4096, len(raw)
        assert reply["rejected_total"] == len(items) and reply["accepted"] == 0
        assert [r["index"] for r in reply["rejected"]] == list(range(10))
        assert hook.webhook.stats.events_rejected == len(items)

        # a client-chosen value quoted in an error is cut short too
        huge_kind = orjson.dumps({"kind": "K" * 1_000_000})
        async with hook.session.post(hook.url, data=huge_kind,
                                     headers=JSON) as resp:
            raw = await resp.read()
            assert resp.status == 400 and orjson.loads(raw)["error"] == "not_audit"
        assert len(raw) < 1024, len(raw)
    assert hook.alerts == []


# ------------------------------------------------------------------ slow clients


def _raw_connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    return sock


def _read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (30 s ceiling per read)."""
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


async def test_slow_clients_are_cut_off(k8s_rules: object) -> None:
    async with running_webhook(k8s_rules, read_timeout_s=0.5, body_timeout_s=2.0) as hook:
        port = hook.webhook.port
        loop = asyncio.get_running_loop()

        def slow_headers() -> bytes:
            with _raw_connect(port) as sock:
                sock.sendall(b"POST /k8s-audit HTTP/1.1\r\nHost: x\r\nContent-Type: applic")
                return _read_until_closed(sock)  # never finishes its headers

        def stalled_body() -> bytes:
            with _raw_connect(port) as sock:
                sock.sendall(b"POST /k8s-audit HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                             b"Content-Length: 1000\r\n\r\n{\"kind\": ")
                return _read_until_closed(sock)

        def trickled_body() -> bytes:
            with _raw_connect(port) as sock:
                sock.sendall(b"POST /k8s-audit HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                             b"Content-Length: 100000\r\n\r\n")
                stop = threading.Event()
                received: list[bytes] = []
                reader = threading.Thread(target=lambda: (received.append(_read_until_closed(sock)),
                                                          stop.set()))
                reader.start()
                # a byte every 0.1 s: never silent for read_timeout_s, but never done either
                while not stop.wait(0.1):
                    try:
                        sock.sendall(b" ")
                    except OSError:
                        break
                reader.join(30)
                return received[0] if received else b""

        headers_answer = await loop.run_in_executor(None, slow_headers)
        assert headers_answer == b""  # closed without a request ever reaching the handler
        for attempt in (stalled_body, trickled_body):
            answer = await loop.run_in_executor(None, attempt)
            assert answer.startswith(b"HTTP/1.1 408"), (attempt.__name__, answer[:200])
        assert hook.webhook.stats.rejected["read_timeout"] == 2
        assert hook.webhook.handler.in_flight == 0
        assert hook.webhook.intake.reserved_bytes == 0  # the slow bodies' room is given back
        assert hook.seen == []


# ------------------------------------------------------------------ overflow


async def test_overflow_is_refused_and_counted() -> None:
    gate = threading.Event()
    seen: list[str] = []

    def on_event(event: object) -> None:
        gate.wait(60)  # the worker is busy until the test opens the gate
        seen.append(event.data["auditID"])  # type: ignore[attr-defined]

    body = orjson.dumps(audit_event(verb="get", resource="pods"))
    settings = AuditWebhookConfig(listen_address="127.0.0.1", listen_port=0, max_concurrent_requests=2,
                                  max_body_bytes=len(body) + 20, max_pending_bytes=2 * len(body) + 10)
    hook = AuditWebhook(settings, on_event)
    await hook.start()
    try:
        async with aiohttp.ClientSession() as session:
            async def post(data: bytes) -> tuple[int, dict, str | None]:
                async with session.post(hook.url, data=data, headers=JSON) as r:
                    return r.status, orjson.loads(await r.read()), r.headers.get("Retry-After")

            first = asyncio.ensure_future(post(body))
            assert await asyncio.to_thread(wait_until, lambda: hook.intake.reserved_bytes == len(body), 30)
            registry = CollectorRegistry()
            pending = lambda: hook.intake.reserved_bytes  # noqa: E731
            registry.register(WebhookStatsCollector(hook.stats, pending_bytes=pending))
            assert registry.get_sample_value("falcopy_k8s_audit_pending_bytes") == len(body)
            # a body larger than the room left in the byte budget waits nowhere: 429
            status, reply, retry = await post(body + b" " * 20)
            assert (status, reply["error"], retry) == (429, "queue_full", "1")
            second = asyncio.ensure_future(post(body))
            assert await asyncio.to_thread(wait_until, lambda: hook.handler.in_flight == 2, 30)
            # a third request while two are in flight: 429 without reading it
            status, reply, retry = await post(body)
            assert (status, reply["error"], retry) == (429, "too_many_requests", "1")
            gate.set()
            assert [(await first)[0], (await second)[0]] == [200, 200]
    finally:
        gate.set()
        await hook.stop()
    assert len(seen) == 2
    assert hook.stats.rejected["queue_full"] == 1 and hook.stats.rejected["too_many_requests"] == 1
    assert hook.intake.reserved_bytes == 0
