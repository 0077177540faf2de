"""The chart's defences, rendered with real Helm: the audit endpoint's TLS and client
certificates (exercised against the real endpoint), its NetworkPolicy, the kubelet
RBAC choice and the admission webhook's failure policy."""

from __future__ import annotations

import base64
import ssl
from pathlib import Path
from typing import Any

import aiohttp
import helm_python as helm
import orjson
import pytest
import yaml
from falcopy.agent.audit import AuditWebhook

from tests.agent.audit.events import audit_event

from .render import CHART_DIR, REPO_ROOT, Rendered, render

PEERS = [{"ipBlock": {"cidr": "10.0.0.0/24"}}]
AUDIT_ON: dict[str, Any] = {"agent": {"k8sAudit": {"enabled": True, "clusterIP": "10.96.0.97",
                                                   "networkPolicy": {"from": PEERS}}}}


def _fail_message(values: dict[str, Any]) -> str:
    with helm.Chart.load(str(CHART_DIR)) as chart, pytest.raises(helm.HelmError) as err:
        chart.render(values, name="falcopy", namespace="falcopy", is_install=True)
    return str(err.value)


def _secret_files(r: Rendered, name: str, directory: Path) -> dict[str, Path]:
    out = {}
    for key, value in r.one("Secret", name)["data"].items():
        out[key] = directory / f"{name}-{key}"
        out[key].write_bytes(base64.b64decode(value))
    return out


# ------------------------------------------------------------------ audit endpoint TLS


def test_audit_tls_and_client_auth_are_on_by_default() -> None:
    r = render(AUDIT_ON)
    cfg = r.agent_config().falcopy.k8s_audit
    assert cfg.ssl_enabled and cfg.ssl_client_ca
    mounts = {m["mountPath"]: m for m in r.agent_container["volumeMounts"]}
    volumes = {v["name"]: v for v in r.daemonset["spec"]["template"]["spec"]["volumes"]}
    tls_dir, ca_dir = str(Path(cfg.ssl_certificate).parent), str(Path(cfg.ssl_client_ca).parent)
    assert mounts[tls_dir]["readOnly"] and mounts[ca_dir]["readOnly"]
    tls_volume = volumes[mounts[tls_dir]["name"]]["secret"]
    assert tls_volume["secretName"] == "falcopy-k8s-audit-tls"
    assert [i["key"] for i in tls_volume["items"]] == ["tls.crt", "tls.key"]
    # the agents get the client CA only: the API server's client key is in a Secret they never mount
    assert volumes[mounts[ca_dir]["name"]]["configMap"]["name"] == "falcopy-k8s-audit-client-ca"
    mounted_secrets = {v["secret"]["secretName"] for v in volumes.values() if "secret" in v}
    assert "falcopy-k8s-audit-client" not in mounted_secrets


async def test_chart_certificates_authenticate_the_api_server(tmp_path: Path) -> None:
    """The rendered Secrets and agent configuration, served by the real endpoint: the API
    server's certificate gets in, a client without it does not, and the serving
    certificate verifies for the Service's DNS name and its fixed clusterIP."""
    r = render(AUDIT_ON)
    serving = _secret_files(r, "falcopy-k8s-audit-tls", tmp_path)
    client_files = _secret_files(r, "falcopy-k8s-audit-client", tmp_path)
    client_ca = tmp_path / "client-ca.crt"
    client_ca.write_text(r.one("ConfigMap", "falcopy-k8s-audit-client-ca")["data"]["ca.crt"])
    cfg = r.agent_config().falcopy.k8s_audit.model_copy(update={
        "listen_address": "127.0.0.1", "listen_port": 0, "ssl_certificate": str(serving["tls.crt"]),
        "ssl_key": str(serving["tls.key"]), "ssl_client_ca": str(client_ca)})
    seen: list[str] = []
    hook = AuditWebhook(cfg, lambda e: seen.append(e.data["user"]["username"]))  # type: ignore[attr-defined]
    await hook.start()
    try:
        body = orjson.dumps(audit_event(verb="get", resource="pods", user="system:admin"))
        headers = {"Content-Type": "application/json"}
        # what the API server's webhook kubeconfig holds: the serving CA and the client pair
        apiserver = ssl.create_default_context(cafile=str(serving["ca.crt"]))
        apiserver.load_cert_chain(str(client_files["tls.crt"]), str(client_files["tls.key"]))
        anonymous = ssl.create_default_context(cafile=str(serving["ca.crt"]))
        async with aiohttp.ClientSession() as session:
            for name in ("falcopy-k8s-audit.falcopy.svc", "10.96.0.97"):
                async with session.post(hook.url, data=body, headers=headers, ssl=apiserver,
                                        server_hostname=name) as resp:
                    assert resp.status == 200, await resp.text()
            with pytest.raises(aiohttp.ClientError):
                async with session.post(hook.url, data=body, headers=headers, ssl=anonymous,
                                        server_hostname="falcopy-k8s-audit.falcopy.svc") as resp:
                    await resp.read()
    finally:
        await hook.stop()
    assert seen == ["system:admin", "system:admin"]
    # the client CA the agents trust is the one in the API server's Secret
    assert base64.b64decode(r.one("Secret", "falcopy-k8s-audit-client")["data"]["ca.crt"]).decode() == \
        client_ca.read_text()


def test_audit_client_ca_from_values() -> None:
    own_ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    bundle = base64.b64encode(own_ca.encode()).decode()
    r = render({"agent": {"k8sAudit": {**AUDIT_ON["agent"]["k8sAudit"], "clientAuth": {"caBundle": bundle}}}})
    assert r.one("ConfigMap", "falcopy-k8s-audit-client-ca")["data"]["ca.crt"].strip() == own_ca.strip()
    assert [s["metadata"]["name"] for s in r.all("Secret") if "k8s-audit" in s["metadata"]["name"]] == [
        "falcopy-k8s-audit-tls"]


def test_audit_client_auth_needs_tls() -> None:
    audit = {**AUDIT_ON["agent"]["k8sAudit"], "tls": {"enabled": False}}
    message = _fail_message({"agent": {"k8sAudit": audit}})
    assert "clientAuth.enabled needs agent.k8sAudit.tls.enabled" in message


def test_plain_audit_endpoint_when_asked() -> None:
    off = {"enabled": False}
    audit = {"enabled": True, "tls": off, "clientAuth": off, "networkPolicy": off}
    r = render({"agent": {"k8sAudit": audit}})
    cfg = r.agent_config().falcopy.k8s_audit
    assert not cfg.ssl_enabled and not cfg.ssl_client_ca
    assert not r.has("NetworkPolicy")
    assert not [s for s in r.all("Secret") if "k8s-audit" in s["metadata"]["name"]]


# ------------------------------------------------------------------ NetworkPolicy


def test_network_policy_admits_only_the_api_servers_to_the_audit_port() -> None:
    r = render(AUDIT_ON)
    policy = r.one("NetworkPolicy", "falcopy-agent")["spec"]
    assert policy["podSelector"]["matchLabels"] == r.daemonset["spec"]["selector"]["matchLabels"]
    assert policy["policyTypes"] == ["Ingress"]
    ports = {p["name"]: p["containerPort"] for p in r.agent_container["ports"]}
    audit_rule, web_rule = policy["ingress"]
    assert audit_rule == {"from": PEERS, "ports": [{"port": "k8s-audit", "protocol": "TCP"}]}
    assert "k8s-audit" in ports
    # kubelet's probes and Prometheus keep reaching the web server, as without the policy
    assert web_rule == {"ports": [{"port": "http", "protocol": "TCP"}]} and "http" in ports
    assert not render({}).has("NetworkPolicy")


def test_network_policy_needs_its_peers() -> None:
    message = _fail_message({"agent": {"k8sAudit": {"enabled": True}}})
    assert "agent.k8sAudit.networkPolicy.from" in message and "enabled=false" in message


# ------------------------------------------------------------------ kubelet RBAC, webhook policy


@pytest.mark.parametrize(("authorization", "resource"), [("pods", "nodes/pods"), ("proxy", "nodes/proxy")])
def test_kubelet_authorization_choice(authorization: str, resource: str) -> None:
    r = render({"agent": {"kubelet": {"authorization": authorization}}})
    assert r.one("ClusterRole", "falcopy-agent")["rules"] == [
        {"apiGroups": [""], "resources": [resource], "verbs": ["get"]}]


@pytest.mark.parametrize("kube_version", ["1.30.0", "1.33.0", "1.36.0"])
def test_auto_kubelet_authorization_renders_for_every_version(kube_version: str) -> None:
    report = helm.lint(str(CHART_DIR), {}, strict=True, kube_version=kube_version)
    assert not report["errors"] and not [m for m in report["messages"] if m["severity"] >= 2], report


def test_failure_policy_default_is_the_documented_one() -> None:
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    assert values["operator"]["webhook"]["failurePolicy"] == "Ignore"
    assert "failurePolicy: Ignore" in (REPO_ROOT / "docs" / "operator.md").read_text()
    hooks = render({}).one("ValidatingWebhookConfiguration")["webhooks"]
    assert {h["failurePolicy"] for h in hooks} == {"Ignore"}
    fail = render({"operator": {"webhook": {"failurePolicy": "Fail"}}}).one("ValidatingWebhookConfiguration")
    assert {h["failurePolicy"] for h in fail["webhooks"]} == {"Fail"}
