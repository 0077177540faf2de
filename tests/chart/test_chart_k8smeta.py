"""The workload-metadata collector in the chart, rendered with real Helm: on by default,
off with one value, least-privilege RBAC, the agents' connection settings and CA."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path
from typing import Any

from tests.chart.render import Rendered, render

COLLECTOR = "falcopy-operator-collector"
WATCHED = {("", "pods"), ("", "namespaces"), ("", "services"), ("", "replicationcontrollers"),
           ("apps", "replicasets"), ("apps", "deployments")}


def _operator_rules(r: Rendered) -> list[dict[str, Any]]:
    return r.one("ClusterRole", "falcopy-operator")["rules"]


def _operator_env(r: Rendered) -> dict[str, Any]:
    container = r.one("Deployment")["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value") for e in container["env"]}


def test_collector_on_by_default_with_read_only_rbac_on_exactly_its_kinds() -> None:
    r = render()
    rules = _operator_rules(r)
    granted = {(g, res): tuple(rule["verbs"]) for rule in rules for g in rule["apiGroups"]
               for res in rule["resources"]}
    for kind in WATCHED:
        assert granted[kind] == ("list", "watch"), kind
    assert granted[("authentication.k8s.io", "tokenreviews")] == ("create",)
    # nothing else of the core/apps groups (no secrets, no get, no writes)
    core_apps = {k for k in granted if k[0] in ("", "apps")}
    assert core_apps == WATCHED | {("", "events")}
    env = _operator_env(r)
    assert env["FALCOPY_OPERATOR_K8SMETA_PORT"] == "8444"
    assert env["FALCOPY_OPERATOR_K8SMETA_AGENTS"] == "system:serviceaccount:falcopy:falcopy"
    assert env["FALCOPY_OPERATOR_K8SMETA_CERT"].startswith("/etc/falcopy/k8smeta/")
    assert env["FALCOPY_OPERATOR_K8SMETA_RELIST"] == "300"
    svc = r.one("Service", COLLECTOR)
    assert svc["spec"]["ports"][0]["port"] == 8444 and svc["spec"]["ports"][0]["targetPort"] == "k8smeta"
    # every replica collects (not only the leader): the Service selects all the operator's pods
    deployment = r.one("Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert svc["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


def test_agents_connect_with_tls_verified_against_the_published_ca(tmp_path: Path) -> None:
    r = render()
    cfg = r.agent_config()
    meta = cfg.falcopy.enrichment.k8smeta
    assert meta.enabled and not meta.insecure
    assert meta.url == f"https://{COLLECTOR}.falcopy.svc:8444"
    assert meta.ca_file == "/etc/falcopy/k8smeta/ca.crt" and meta.idle_timeout_s == 60
    pod = r.daemonset["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "k8smeta-ca")
    assert volume["configMap"]["name"] == f"{COLLECTOR}-ca"  # the CA only, never the key
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "k8smeta-ca")
    assert mount["mountPath"] == "/etc/falcopy/k8smeta"
    # the published CA really signed the serving certificate, for the Service's DNS name
    secret = r.one("Secret", f"{COLLECTOR}-tls")
    ca = tmp_path / "ca.crt"
    ca.write_text(r.one("ConfigMap", f"{COLLECTOR}-ca")["data"]["ca.crt"])
    crt = tmp_path / "tls.crt"
    crt.write_bytes(base64.b64decode(secret["data"]["tls.crt"]))
    out = subprocess.run(["openssl", "verify", "-CAfile", str(ca), str(crt)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    text = subprocess.run(["openssl", "x509", "-in", str(crt), "-noout", "-text"], capture_output=True,
                          text=True, check=True).stdout
    assert f"DNS:{COLLECTOR}.falcopy.svc" in text


def test_one_value_turns_it_off() -> None:
    r = render({"operator": {"collector": {"enabled": False}}})
    granted = {(g, res) for rule in _operator_rules(r)
               for g in rule["apiGroups"] for res in rule["resources"]}
    assert not granted & (WATCHED | {("authentication.k8s.io", "tokenreviews")})
    assert "FALCOPY_OPERATOR_K8SMETA_PORT" not in _operator_env(r)
    assert not [o for o in r.objects if o["metadata"]["name"].startswith(COLLECTOR)]
    assert r.agent_config().falcopy.enrichment.k8smeta.enabled is False
    assert all(v["name"] != "k8smeta-ca" for v in r.daemonset["spec"]["template"]["spec"]["volumes"])


def test_no_operator_no_collector() -> None:
    r = render({"operator": {"enabled": False}})
    assert r.agent_config().falcopy.enrichment.k8smeta.enabled is False
    assert not [o for o in r.objects if o["metadata"]["name"].startswith(COLLECTOR)]
