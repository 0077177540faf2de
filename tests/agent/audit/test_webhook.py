"""The audit webhook over real HTTP: upstream k8s_audit rules on real-shaped events,
bad input, EventList batches, TLS."""

from __future__ import annotations

import ssl
import subprocess
import threading
from pathlib import Path

import aiohttp
import orjson
import pytest
from falcopy.agent.audit import AuditWebhook, AuditWebhookConfig, decode_body

from tests.agent.audit.events import audit_event, container, pod
from tests.agent.audit.harness import load_ruleset, running_webhook


@pytest.fixture(scope="module")
def k8s_rules(compat_dir: Path) -> object:
    return load_ruleset((compat_dir / "k8s_audit_rules.yaml",))


async def _fired(ruleset: object, *events: dict) -> list[str]:
    async with running_webhook(ruleset) as hook:
        for event in events:
            status, body = await hook.post(event)
            assert status == 200, body
        return [name for name, _, _ in hook.alerts]


async def test_privileged_pod(k8s_rules: object) -> None:
    event = pod("miner", containers=[container("app", "docker.io/library/nginx:1.25"),
                                      container("side", "busybox:1.36", privileged=True)])
    assert await _fired(k8s_rules, event) == ["Create Privileged Pod"]


async def test_privileged_init_container(k8s_rules: object) -> None:
    event = pod("init", containers=[container("app", "nginx:1.25")],
                initContainers=[container("setup", "alpine:3.19", privileged=True)])
    assert await _fired(k8s_rules, event) == ["Create Privileged Pod"]


async def test_privileged_falco_image_is_allowed(k8s_rules: object) -> None:
    event = pod("falco", containers=[container("falco", "falcosecurity/falco:0.44.1", privileged=True)])
    assert await _fired(k8s_rules, event) == []


async def test_sensitive_host_path(k8s_rules: object) -> None:
    event = pod("escape", containers=[container("app", "ubuntu:24.04")],
                volumes=[{"name": "docker", "hostPath": {"path": "/var/run/docker.sock", "type": "Socket"}}])
    assert await _fired(k8s_rules, event) == ["Create Sensitive Mount Pod"]


async def test_unsensitive_host_path(k8s_rules: object) -> None:
    event = pod("logs", containers=[container("app", "ubuntu:24.04")],
                volumes=[{"name": "logs", "hostPath": {"path": "/var/log/app"}}])
    assert await _fired(k8s_rules, event) == []


@pytest.mark.parametrize("subresource", ["exec", "attach"])
async def test_exec_and_attach(k8s_rules: object, subresource: str) -> None:
    uri = (f"/api/v1/namespaces/prod/pods/web-0/{subresource}?command=%2Fbin%2Fsh"
           "&container=web&stdin=true&stdout=true&tty=true")
    event = audit_event(verb="create", resource="pods", namespace="prod", name="web-0",
                        subresource=subresource, stage="ResponseStarted", code=101, uri=uri)
    async with running_webhook(k8s_rules) as hook:
        assert (await hook.post(event))[0] == 200
    assert [n for n, _, _ in hook.alerts] == ["Attach/Exec Pod"]
    text, fields = k8s_rules.format(k8s_rules_rule(k8s_rules, "Attach/Exec Pod"), hook.seen[0])
    assert fields["ka.uri.param[command]"] == "/bin/sh"
    assert f"action={subresource}" in text and "pod=web-0" in text


def k8s_rules_rule(ruleset: object, name: str) -> object:
    return next(r for r in ruleset.rules if r.name == name)


async def test_cluster_admin_binding(k8s_rules: object) -> None:
    binding = {"kind": "ClusterRoleBinding", "apiVersion": "rbac.authorization.k8s.io/v1",
               "metadata": {"name": "pwn"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                           "name": "cluster-admin"},
               "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "web"}]}
    event = audit_event(verb="create", resource="clusterrolebindings", namespace=None, name=None,
                        api_group="rbac.authorization.k8s.io", code=201, request_object=binding,
                        response_object=binding)
    async with running_webhook(k8s_rules) as hook:
        assert (await hook.post(event))[0] == 200
    assert [n for n, _, _ in hook.alerts] == ["Attach to cluster-admin Role"]
    text, _ = k8s_rules.format(k8s_rules_rule(k8s_rules, "Attach to cluster-admin Role"), hook.seen[0])
    assert '"name":"default"' in text


async def test_secret_read_and_delete(k8s_rules: object) -> None:
    get = audit_event(verb="get", resource="secrets", namespace="prod", name="db-password")
    denied = audit_event(verb="get", resource="secrets", namespace="prod", name="db-password",
                         code=403, user="dev-bob", groups=("system:authenticated",))
    delete = audit_event(verb="delete", resource="secrets", namespace="prod", name="db-password")
    fired = await _fired(k8s_rules, get, delete)
    assert fired == ["K8s Secret Get Successfully", "K8s Secret Deleted"]
    # a user outside the allowed list is reported as such first (rule_matching: first)
    assert await _fired(k8s_rules, denied) == ["Disallowed K8s User"]


async def test_pod_in_kube_system(k8s_rules: object) -> None:
    event = pod("backdoor", namespace="kube-system", containers=[container("c", "alpine:3.19")])
    assert await _fired(k8s_rules, event) == ["Pod Created in Kube Namespace"]


async def test_benign_events_fire_nothing(k8s_rules: object) -> None:
    benign = [
        audit_event(verb="list", resource="pods", namespace="default"),
        audit_event(verb="watch", resource="configmaps", namespace="kube-system",
                    user="system:kube-controller-manager", stage="ResponseStarted"),
        audit_event(verb="get", resource="pods", namespace="prod", name="web-0"),
        pod("web", containers=[container("web", "nginx:1.25", allowPrivilegeEscalation=False)]),
        audit_event(verb="get", resource="", namespace=None, uri="/healthz", user="system:anonymous"),
        audit_event(verb="patch", resource="deployments", namespace="prod", name="web", api_group="apps"),
    ]
    assert await _fired(k8s_rules, *benign) == []


async def test_event_list_batch(k8s_rules: object) -> None:
    items = [
        pod("p", containers=[container("c", "nginx", privileged=True)]),
        audit_event(verb="list", resource="pods"),
        audit_event(verb="delete", resource="secrets", namespace="prod", name="s"),
    ]
    for item in items:  # the API server leaves TypeMeta off list items
        item.pop("kind")
        item.pop("apiVersion")
    body = {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {}, "items": items}
    async with running_webhook(k8s_rules) as hook:
        status, reply = await hook.post(body)
    assert (status, reply) == (200, {"accepted": 3})
    assert [n for n, _, _ in hook.alerts] == ["Create Privileged Pod", "K8s Secret Deleted"]


async def test_v1beta1_events_accepted(k8s_rules: object) -> None:
    event = audit_event(verb="delete", resource="secrets", namespace="prod", name="s")
    event["apiVersion"] = "audit.k8s.io/v1beta1"
    body = {"kind": "EventList", "apiVersion": "audit.k8s.io/v1beta1", "items": [event]}
    assert await _fired(k8s_rules, body) == ["K8s Secret Deleted"]


# ---------------------------------------------------------------------------- bad input

GOOD = audit_event(verb="delete", resource="secrets", namespace="prod", name="after-bad-input")


@pytest.mark.parametrize(("body", "content_type", "status", "reason"), [
    (b'{"kind": "Event", "verb": ', "application/json", 400, "invalid_json"),
    (b"\xff\xfe not json", "application/json", 400, "invalid_json"),
    (orjson.dumps(GOOD), "text/plain", 415, "content_type"),
    (orjson.dumps(GOOD), "application/x-www-form-urlencoded", 415, "content_type"),
    (b"[1, 2, 3]", "application/json", 400, "not_audit"),
    (b'{"kind": 0}', "application/json", 400, "not_audit"),
    (b'{"kind": "Pod", "metadata": {}}', "application/json", 400, "not_audit"),
    (b'{"kind": "Event", "apiVersion": "audit.k8s.io/v1"}', "application/json", 400, "invalid_event"),
    (orjson.dumps({**GOOD, "apiVersion": "audit.k8s.io/v2"}), "application/json", 400, "invalid_event"),
    (orjson.dumps({k: v for k, v in GOOD.items() if k != "verb"}), "application/json", 400, "invalid_event"),
    (orjson.dumps({k: v for k, v in GOOD.items() if k != "user"}), "application/json", 400, "invalid_event"),
    (orjson.dumps({**GOOD, "objectRef": "pods"}), "application/json", 400, "invalid_event"),
    (b'{"kind": "EventList", "items": {"a": 1}}', "application/json", 400, "not_audit"),
])
async def test_bad_input_rejected_then_good_event_detected(
        k8s_rules: object, body: bytes, content_type: str, status: int, reason: str) -> None:
    async with running_webhook(k8s_rules) as hook:
        got, reply = await hook.post(body, content_type=content_type)
        assert got == status and reply["error"] == reason, reply
        assert hook.webhook.stats.rejected[reason] == 1
        assert hook.seen == []
        assert (await hook.post(GOOD))[0] == 200
    assert [n for n, _, _ in hook.alerts] == ["K8s Secret Deleted"]


async def test_oversized_body(k8s_rules: object) -> None:
    async with running_webhook(k8s_rules, max_body_bytes=4096) as hook:
        big = {**GOOD, "requestObject": {"data": {"blob": "x" * 8192}}}
        status, reply = await hook.post(big)
        assert (status, reply["error"]) == (413, "too_large")

        async def chunked() -> object:  # no Content-Length: the limit holds while reading
            for _ in range(10):
                yield b" " * 1024
        async with hook.session.post(hook.url, data=chunked(),
                                     headers={"Content-Type": "application/json"}) as resp:
            assert resp.status == 413
        assert hook.webhook.stats.rejected["too_large"] == 2
        assert (await hook.post(GOOD))[0] == 200
    assert [n for n, _, _ in hook.alerts] == ["K8s Secret Deleted"]


async def test_event_list_with_invalid_items(k8s_rules: object) -> None:
    bad = {"kind": "Event", "verb": "get"}
    body = {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": [bad, GOOD, "junk"]}
    async with running_webhook(k8s_rules) as hook:
        status, reply = await hook.post(body)
    # the valid item is still evaluated; the others are named in the answer
    assert status == 400 and reply["accepted"] == 1
    assert [r["index"] for r in reply["rejected"]] == [0, 2]
    assert hook.webhook.stats.events_rejected == 2 and hook.webhook.stats.events_accepted == 1
    assert [n for n, _, _ in hook.alerts] == ["K8s Secret Deleted"]


async def test_wrong_method_and_path(k8s_rules: object) -> None:
    async with running_webhook(k8s_rules) as hook:
        async with hook.session.get(hook.url) as resp:
            assert resp.status == 405
        async with hook.session.post(hook.url.replace("/k8s-audit", "/other"), json=GOOD) as resp:
            assert resp.status == 404
    assert hook.seen == []


async def test_failing_consumer_does_not_break_the_endpoint() -> None:
    calls: list[str] = []

    def on_event(event: object) -> None:
        calls.append("x")
        if len(calls) == 1:
            raise RuntimeError("consumer bug")

    settings = AuditWebhookConfig(listen_address="127.0.0.1", listen_port=0)
    hook = AuditWebhook(settings, on_event)
    await hook.start()
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(2):
                async with session.post(hook.url, json=GOOD) as resp:
                    assert resp.status == 200
    finally:
        await hook.stop()
    assert len(calls) == 2 and hook.stats.callback_errors == 1


async def test_consumer_on_worker_thread_and_custom_path() -> None:
    seen: list[tuple[str, str]] = []

    def on_event(event: object) -> None:
        # evaluation runs on the intake's worker, never on a thread serving HTTP
        seen.append((event.data["verb"], threading.current_thread().name))  # type: ignore[attr-defined]

    settings = AuditWebhookConfig(listen_address="127.0.0.1", listen_port=0, path="/audit/v1",
                                  cluster_name="prod-eu")
    hook = AuditWebhook(settings, on_event)
    await hook.start()
    try:
        assert hook.url.endswith("/audit/v1")
        async with aiohttp.ClientSession() as session, session.post(hook.url, json=GOOD) as resp:
            assert resp.status == 200
    finally:
        await hook.stop()
    assert seen == [("delete", "falcopy-audit-eval")]


def test_cluster_name_reaches_the_field() -> None:
    from falcopy.engine.fields.k8s_audit import extract

    decoded = decode_body(orjson.dumps(GOOD), cluster_name="prod-eu")
    assert extract(decoded.events[0], "ka.cluster.name") == "prod-eu"


# ---------------------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def tls_material(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


async def test_tls_endpoint(k8s_rules: object, tls_material: tuple[Path, Path]) -> None:
    cert, key = tls_material
    async with running_webhook(k8s_rules, ssl_enabled=True, ssl_certificate=str(cert),
                               ssl_key=str(key)) as hook:
        assert hook.url.startswith("https://")
        verified = ssl.create_default_context(cafile=str(cert))
        async with hook.session.post(hook.url, json=GOOD, ssl=verified) as resp:
            assert resp.status == 200
        # a client that trusts other CAs refuses the server: verification is on
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            async with hook.session.post(hook.url, json=GOOD, ssl=ssl.create_default_context()):
                pass
    assert [n for n, _, _ in hook.alerts] == ["K8s Secret Deleted"]


async def test_tls_needs_a_certificate() -> None:
    hook = AuditWebhook(AuditWebhookConfig(listen_address="127.0.0.1", listen_port=0, ssl_enabled=True),
                        lambda e: None)
    with pytest.raises(ValueError, match="ssl_certificate"):
        await hook.start()


async def test_counters_exported_to_prometheus(k8s_rules: object) -> None:
    from falcopy.agent.audit import WebhookStatsCollector
    from prometheus_client import CollectorRegistry, generate_latest

    async with running_webhook(k8s_rules) as hook:
        registry = CollectorRegistry()
        registry.register(WebhookStatsCollector(hook.webhook.stats))
        await hook.post(b"{", content_type="application/json")
        await hook.post(GOOD, content_type="text/plain")
        await hook.post(GOOD)
        text = generate_latest(registry).decode()
    assert "falcopy_k8s_audit_requests_total 3.0" in text
    assert 'falcopy_k8s_audit_events_total{result="accepted"} 1.0' in text
    assert 'falcopy_k8s_audit_rejected_requests_total{reason="invalid_json"} 1.0' in text
    assert 'falcopy_k8s_audit_rejected_requests_total{reason="content_type"} 1.0' in text
