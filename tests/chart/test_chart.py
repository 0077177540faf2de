"""charts/falcopy rendered with real Helm, validated against Kubernetes' schemas,
and checked for the properties a node agent and its operator depend on."""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml
from falcopy.agent.control.config import AgentConfig

from falcopy.engine import RulesInput, load_rules

from .render import CHART_DIR, REPO_ROOT, Rendered, crds, render

K8S_VERSION = kubernetes_validate.latest_version()

CUSTOM_RULE = """\
- list: falcopy_chart_test_binaries
  items: [nc, ncat]
- rule: Netcat started
  desc: a netcat binary was started
  condition: evt.type = execve and evt.dir = < and proc.name in (falcopy_chart_test_binaries)
  output: netcat started (command=%proc.cmdline user=%user.name)
  priority: WARNING
  tags: [network]
"""

VALUE_SETS: dict[str, dict[str, Any]] = {
    "default": {},
    "json-off": {"config": {"json_output": False}},
    "falcosidekick": {"falcosidekick": {"enabled": True, "url": "http://falcosidekick.security.svc:2801/"}},
    "least-privilege": {"agent": {"privileged": False, "leastPrivileged": {"enabled": True}}},
    "custom-rules": {"customRules": {"netcat.yaml": CUSTOM_RULE,
                                     "z-extra.yml": "- list: more\n  items: [a]\n"}},
    "operator-off": {"operator": {"enabled": False}},
    "k8s-audit": {"agent": {"k8sAudit": {"enabled": True, "clusterIP": "10.96.0.97",
                                         "networkPolicy": {"from": [{"ipBlock": {"cidr": "10.0.0.0/24"}}]}}}},
    "k8s-audit-plain": {"agent": {"k8sAudit": {"enabled": True, "tls": {"enabled": False},
                                               "clientAuth": {"enabled": False},
                                               "networkPolicy": {"enabled": False}}}},
    "operator-shards": {"operator": {"shards": 2, "allowDefaultOverrides": True}},
    "capture-hostpath": {"config": {"capture": {"enabled": True}}},
    "capture-emptydir": {"config": {"capture": {"enabled": True, "mode": "all_rules"}},
                         "agent": {"capture": {"volume": "emptyDir", "sizeLimit": "512Mi"}}},
}


@pytest.fixture(scope="module", params=sorted(VALUE_SETS))
def rendered(request: pytest.FixtureRequest) -> tuple[str, Rendered]:
    return request.param, render(VALUE_SETS[request.param])


@pytest.fixture(scope="module")
def default() -> Rendered:
    return render({})


def _volume(r: Rendered, name: str) -> dict[str, Any]:
    vols = r.daemonset["spec"]["template"]["spec"]["volumes"]
    return next(v for v in vols if v["name"] == name)


def _mounts(r: Rendered) -> dict[str, dict[str, Any]]:
    return {m["mountPath"]: m for m in r.agent_container["volumeMounts"]}


def _tolerates(tolerations: list[dict[str, Any]], key: str, effect: str) -> bool:
    """Kubernetes' matching of a toleration to a taint without a value."""
    for t in tolerations:
        if t.get("effect") not in (None, "", effect):
            continue
        if t.get("operator") == "Exists" and t.get("key") in (None, "", key):
            return True
        if t.get("key") == key and t.get("operator", "Equal") in ("Equal", "Exists") and not t.get("value"):
            return True
    return False


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def _rules(r: Rendered) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for kind in ("Role", "ClusterRole"):
        for obj in r.all(kind):
            out.extend(obj.get("rules", []))
    return out


# --- every value set ---------------------------------------------------------------------------


def test_lint_clean() -> None:
    for name, values in sorted(VALUE_SETS.items()):
        report = helm.lint(str(CHART_DIR), values, strict=True)
        problems = [m for m in report["messages"] if m["severity"] >= 2]
        assert not problems and not report["errors"], f"{name}: {report}"


def test_every_object_is_valid_kubernetes(rendered: tuple[str, Rendered]) -> None:
    name, r = rendered
    assert r.objects, name
    for obj in r.objects:
        # strict: unknown fields (a typo in a template) fail too
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        labels = obj["metadata"]["labels"]
        for key in ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version",
                    "app.kubernetes.io/managed-by", "helm.sh/chart"):
            assert key in labels, f"{name}: {obj['kind']}/{obj['metadata']['name']} lacks label {key}"


def test_crds_are_valid_kubernetes() -> None:
    found = crds()
    assert found, "charts/falcopy/crds is empty"
    for crd in found:
        kubernetes_validate.validate(crd, K8S_VERSION, strict=True)


def test_agent_accepts_rendered_config(rendered: tuple[str, Rendered]) -> None:
    name, r = rendered
    cfg = r.agent_config()  # raises ConfigError naming the key if the agent would refuse to start
    assert cfg.falcopy.host.proc == "/host/proc", name
    mounts = _mounts(r)
    # every rules path the agent loads exists in the container: the image's rules or a mount
    for path in cfg.rules_files:
        assert path == "/usr/share/falcopy/rules" or path in mounts, f"{name}: {path} is not mounted"


def test_values_mirror_falcopy_yaml() -> None:
    """`config` holds falcopy.yaml keys only (the agent rejects unknown keys)."""
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    fields = set(AgentConfig.model_fields)
    assert set(values["config"]) <= fields, set(values["config"]) - fields
    shipped = yaml.safe_load((REPO_ROOT / "config" / "falcopy.yaml").read_text())
    for key in ("priority", "json_output", "append_output", "http_output", "webserver", "stdout_output"):
        assert key in values["config"] and key in shipped, key
    assert values["config"]["webserver"]["listen_port"] == shipped["webserver"]["listen_port"]


def test_schema_rejects_bad_values() -> None:
    with helm.Chart.load(str(CHART_DIR)) as chart:
        for bad in ({"agent": {"privilegd": True}}, {"config": {"priority": "loud"}},
                    {"customRules": {"rules.txt": "- list: a\n  items: []"}},
                    {"falcosidekick": {"enabled": True, "url": "falcosidekick:2801"}},
                    {"agent": {"containerRuntimeSockets": [{"name": "Docker!", "hostPath": "/x"}]}}):
            with pytest.raises(helm.HelmError):
                chart.validate_schema(bad)


# --- the agent DaemonSet ---------------------------------------------------------------------


def test_agent_daemonset_node_access(default: Rendered) -> None:
    spec = default.daemonset["spec"]["template"]["spec"]
    assert spec["hostPID"] is True
    assert spec["tolerations"] == [{"operator": "Exists"}]  # every node, control planes included
    assert _tolerates(spec["tolerations"], "node-role.kubernetes.io/control-plane", "NoSchedule")
    assert _tolerates(spec["tolerations"], "node-role.kubernetes.io/master", "NoSchedule")
    assert spec["priorityClassName"] == "system-node-critical"
    c = default.agent_container
    assert c["securityContext"]["privileged"] is True
    assert c["args"][0] == "agent"
    assert c["resources"]["requests"] and c["resources"]["limits"]

    mounts = _mounts(default)
    expect = {  # container path -> host path, all read-only
        "/host/proc": "/proc",
        "/host/etc": "/etc",
        "/sys/kernel/btf": "/sys/kernel/btf",
        "/sys/kernel/tracing": "/sys/kernel/tracing",
        "/host/var/run/docker.sock": "/var/run/docker.sock",
        "/host/run/containerd/containerd.sock": "/run/containerd/containerd.sock",
        "/host/run/crio/crio.sock": "/run/crio/crio.sock",
    }
    for cpath, hpath in expect.items():
        assert mounts[cpath].get("readOnly") is True, cpath
        assert _volume(default, mounts[cpath]["name"])["hostPath"]["path"] == hpath
    # nothing else of the host is writable
    for m in mounts.values():
        vol = _volume(default, m["name"])
        if "hostPath" in vol:
            assert m.get("readOnly") is True, m

    cfg = default.agent_config()
    assert (cfg.falcopy.host.root, cfg.falcopy.host.proc) == ("/host", "/host/proc")
    assert _env(c)["HOST_ROOT"]["value"] == "/host"  # runtime sockets are looked up under it


def test_rules_mounted_as_directories(rendered: tuple[str, Rendered]) -> None:
    """subPath mounts never see kubelet's ConfigMap updates: rules must be directories."""
    name, r = rendered
    for m in r.agent_container["volumeMounts"]:
        assert "subPath" not in m and "subPathExpr" not in m, f"{name}: {m}"
    mounts = _mounts(r)
    cfg = r.agent_config()
    for path in cfg.rules_files[1:]:
        vol = _volume(r, mounts[path]["name"])
        sources = [vol] if "configMap" in vol else vol.get("projected", {}).get("sources", [])
        assert sources and all("configMap" in s for s in sources), f"{name}: {path} is not from ConfigMaps"
    assert cfg.rules_files[0] == "/usr/share/falcopy/rules"  # defaults load first, overrides after
    assert cfg.watch_config_files is True


def test_downward_api_env(default: Rendered) -> None:
    env = _env(default.agent_container)
    assert env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    assert env["NODE_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.hostIP"
    assert env["FALCO_HOSTNAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"


def test_probes_on_healthz(default: Rendered) -> None:
    c = default.agent_container
    cfg = default.agent_config()
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports["http"] == cfg.webserver.listen_port == 8765
    for probe in ("livenessProbe", "readinessProbe"):
        get = c[probe]["httpGet"]
        assert get["path"] == cfg.webserver.k8s_healthz_endpoint == "/healthz", probe
        assert get["port"] == "http", probe


def test_probes_follow_webserver_port() -> None:
    r = render({"config": {"webserver": {"enabled": True, "listen_port": 9876}}})
    c = r.agent_container
    assert {p["name"]: p["containerPort"] for p in c["ports"]}["http"] == 9876
    assert r.agent_config().webserver.listen_port == 9876
    svc = r.one("Service", "falcopy")
    assert svc["spec"]["ports"][0]["port"] == 9876


def test_least_privilege_mode() -> None:
    r = render(VALUE_SETS["least-privilege"])
    sc = r.agent_container["securityContext"]
    assert sc["privileged"] is False and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert sc["capabilities"]["add"] == ["BPF", "PERFMON", "SYS_RESOURCE", "SYS_PTRACE", "SYS_ADMIN"]
    # RuntimeDefault seccomp would deny bpf() and perf_event_open()
    assert sc["seccompProfile"] == {"type": "Unconfined"}
    assert r.daemonset["spec"]["template"]["spec"]["hostPID"] is True
    # fewer capabilities when the kernel allows it (CAP_BPF kernels, tracefs mounted on the host)
    r2 = render({"agent": {"privileged": False, "leastPrivileged": {
        "enabled": True, "capabilities": ["BPF", "PERFMON", "SYS_RESOURCE", "SYS_PTRACE"]}}})
    assert "SYS_ADMIN" not in r2.agent_container["securityContext"]["capabilities"]["add"]


def test_json_off() -> None:
    cfg = render(VALUE_SETS["json-off"]).agent_config()
    assert cfg.json_output is False and cfg.http_output.enabled is False
    assert render({}).agent_config().json_output is True


def test_falcosidekick_output() -> None:
    r = render(VALUE_SETS["falcosidekick"])
    cfg = r.agent_config()
    assert cfg.http_output.enabled is True
    assert cfg.http_output.url == "http://falcosidekick.security.svc:2801/"
    # falcosidekick reads JSON only and rejects alerts without output_fields
    assert cfg.json_output is True and cfg.json_include_output_fields_property is True
    # even when the user turned JSON off
    r2 = render({"config": {"json_output": False}, "falcosidekick": {"enabled": True}})
    assert r2.agent_config().json_output is True
    assert "falcosidekick" in r.notes


def test_append_output_and_priority_pass_through() -> None:
    r = render({"config": {"priority": "warning", "append_output": [
        {"match": {"source": "syscall"}, "extra_output": "on %container.image.repository",
         "extra_fields": ["k8s.ns.name"]}]}})
    cfg = r.agent_config()
    assert cfg.priority == "Warning"
    assert cfg.append_output[0].extra_output == "on %container.image.repository"
    assert cfg.append_output[0].match.source == "syscall"


def test_custom_rules_configmap() -> None:
    r = render(VALUE_SETS["custom-rules"])
    mounts = _mounts(r)
    m = mounts["/etc/falcopy/rules.d/custom"]
    cm_name = _volume(r, m["name"])["configMap"]["name"]
    cm = r.one("ConfigMap", cm_name)
    assert sorted(cm["data"]) == ["netcat.yaml", "z-extra.yml"]
    assert "/etc/falcopy/rules.d/custom" in r.agent_config().rules_files
    # the file the agent will read is the rules text as given, and it loads
    result = load_rules([RulesInput(f, cm["data"][f]) for f in sorted(cm["data"])])
    assert result.ok, [str(e) for e in result.errors]
    assert [rule.name for rule in result.ruleset.rules] == ["Netcat started"]
    # editing rules must not roll the DaemonSet (the agents reload them), editing the config must
    def checksum(values: dict[str, Any]) -> str:
        return render(values).daemonset["spec"]["template"]["metadata"]["annotations"]["checksum/config"]

    edited = {"customRules": {"netcat.yaml": CUSTOM_RULE.replace("WARNING", "ERROR"), "z-extra.yml": "[]"}}
    assert checksum(VALUE_SETS["custom-rules"]) == checksum(edited)
    assert checksum(VALUE_SETS["custom-rules"]) != checksum({**edited, "config": {"priority": "error"}})
    assert "/etc/falcopy/rules.d/custom" not in _mounts(render({}))


def test_custom_rules_need_yaml_suffix() -> None:
    with helm.Chart.load(str(CHART_DIR)) as chart, pytest.raises(helm.HelmError) as err:
        chart.render({"customRules": {"rules.txt": "- list: a\n  items: []"}}, name="falcopy", namespace="x")
    assert "rules.txt" in str(err.value)


def test_operator_off() -> None:
    r = render(VALUE_SETS["operator-off"])
    for kind in ("Deployment", "ValidatingWebhookConfiguration", "Secret", "Role", "RoleBinding"):
        assert not r.has(kind), kind
    assert "FALCOPY_NAMESPACE" not in _env(r.agent_container)
    assert [o["metadata"]["name"] for o in r.all("ClusterRole")] == ["falcopy-agent"]
    assert "/etc/falcopy/rules.d/operator" not in _mounts(r)
    assert "/etc/falcopy/rules.d/operator" not in r.agent_config().rules_files
    assert r.has("DaemonSet")


def test_k8s_audit_service() -> None:
    r = render(VALUE_SETS["k8s-audit"])
    svc = r.one("Service", "falcopy-k8s-audit")
    assert svc["spec"]["clusterIP"] == "10.96.0.97"
    assert svc["spec"]["ports"][0]["port"] == 9765
    assert svc["spec"]["ports"][0]["targetPort"] == "k8s-audit"
    assert svc["spec"]["selector"] == r.daemonset["spec"]["selector"]["matchLabels"]
    cfg = r.agent_config()
    assert cfg.falcopy.k8s_audit.enabled and cfg.falcopy.k8s_audit.path == "/k8s-audit"
    assert {p["name"]: p["containerPort"] for p in r.agent_container["ports"]}["k8s-audit"] == 9765
    assert "/k8s-audit" in r.notes
    assert not render({}).all("Service") or all(s["metadata"]["name"] != "falcopy-k8s-audit"
                                                 for s in render({}).all("Service"))


def test_metrics_service_selects_agents(default: Rendered) -> None:
    svc = default.one("Service", "falcopy")
    assert svc["spec"]["selector"] == default.daemonset["spec"]["selector"]["matchLabels"]
    assert svc["spec"]["ports"][0]["targetPort"] == "http"
    assert default.agent_config().webserver.prometheus_metrics_enabled is True


# --- RBAC ------------------------------------------------------------------------------------


def test_rbac_minimal(rendered: tuple[str, Rendered]) -> None:
    name, r = rendered
    for rule in _rules(r):
        assert "*" not in rule["verbs"] and "*" not in rule.get("resources", []), f"{name}: {rule}"
        assert "secrets" not in rule.get("resources", []), f"{name}: {rule}"
        assert not {"delete", "deletecollection", "escalate", "bind", "impersonate"} & set(rule["verbs"])


def test_agent_rbac(default: Rendered) -> None:
    # the kubelet's /pods through its fine-grained check (Kubernetes >= 1.33), not nodes/proxy
    role = default.one("ClusterRole", "falcopy-agent")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["nodes/pods"], "verbs": ["get"]}]
    # its status Lease for the operator, in the release namespace only (written, never read), and
    # the operator's rules bundle, those ConfigMaps by name only (tests/chart/test_agent_rules_api.py)
    ns_role = default.one("Role", "falcopy-agent")
    assert ns_role["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create", "update"]},
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"],
         "resourceNames": [f"falcopy-falcorules-{i}" for i in range(4)]}]
    assert _env(default.agent_container)["FALCOPY_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == \
        "metadata.namespace"
    binding = default.one("ClusterRoleBinding", "falcopy-agent")
    sa = default.daemonset["spec"]["template"]["spec"]["serviceAccountName"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa, "namespace": "falcopy"}]
    # no kubelet client, no cluster access at all
    r = render({"agent": {"kubelet": {"enabled": False}}})
    assert not [o for o in r.all("ClusterRole") if o["metadata"]["name"] == "falcopy-agent"]


def test_operator_rbac_covers_crds_and_its_configmap(default: Rendered) -> None:
    role = default.one("ClusterRole", "falcopy-operator")
    rules = role["rules"]
    for crd in crds():
        group, plural = crd["spec"]["group"], crd["spec"]["names"]["plural"]
        main = [x for x in rules if x["apiGroups"] == [group] and x["resources"] == [plural]]
        status = [x for x in rules if x["apiGroups"] == [group] and x["resources"] == [f"{plural}/status"]]
        # kopf's index and event handlers only list and watch: the objects are never written
        assert main and main[0]["verbs"] == ["list", "watch"], plural
        assert status and status[0]["verbs"] == ["patch"], plural
    assert not any("configmaps" in x["resources"] for x in rules)  # only in its namespace (Role)
    assert not any("validatingwebhookconfigurations" in x["resources"] for x in rules)

    ns_role = default.one("Role", "falcopy-operator")
    assert ns_role["metadata"]["namespace"] == "falcopy"
    cm_rules = [x for x in ns_role["rules"] if x["resources"] == ["configmaps"]]
    assert [x["verbs"] for x in cm_rules if not x.get("resourceNames")] == [["create"]]
    named = [x for x in cm_rules if x.get("resourceNames")]
    assert len(named) == 1 and named[0]["verbs"] == ["get", "update"]
    # the ConfigMaps it may change are exactly those the agents mount and those it is told to write
    projected = _volume(default, _mounts(default)["/etc/falcopy/rules.d/operator"]["name"])["projected"]
    mounted = [src["configMap"]["name"] for src in projected["sources"]]
    assert all(src["configMap"]["optional"] is True for src in projected["sources"])  # absent until written
    op_env = _env(default.one("Deployment")["spec"]["template"]["spec"]["containers"][0])
    prefix = op_env["FALCOPY_OPERATOR_CONFIGMAP_PREFIX"]["value"]
    shards = int(op_env["FALCOPY_OPERATOR_SHARDS"]["value"])
    assert named[0]["resourceNames"] == mounted == [f"{prefix}-{i}" for i in range(shards)]
    assert prefix == "falcopy-falcorules" and shards == 4
    # it reads the agents' status Leases, and writes its own leader Lease only, by name
    lease = op_env["FALCOPY_OPERATOR_LEADER_LEASE"]["value"]
    assert lease == "falcopy-operator-leader"
    assert op_env["FALCOPY_OPERATOR_LEADER_ELECTION"]["value"] == "true"
    assert [x for x in ns_role["rules"] if x["resources"] == ["leases"]] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["list"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "resourceNames": [lease],
         "verbs": ["get", "update"]}]
    assert default.one("Deployment")["spec"]["replicas"] == 2


def test_operator_replicas_need_leader_election() -> None:
    single = render({"operator": {"replicas": 1, "leaderElection": {"enabled": False}}})
    role = single.one("Role", "falcopy-operator")
    assert all("resourceNames" not in x for x in role["rules"] if x["resources"] == ["leases"])
    with pytest.raises(Exception, match="leaderElection"):
        render({"operator": {"replicas": 2, "leaderElection": {"enabled": False}}})


def test_operator_shards_follow_values() -> None:
    r = render(VALUE_SETS["operator-shards"])
    env = _env(r.one("Deployment")["spec"]["template"]["spec"]["containers"][0])
    assert env["FALCOPY_OPERATOR_SHARDS"]["value"] == "2"
    assert env["FALCOPY_OPERATOR_ALLOW_OVERRIDES"]["value"] == "true"
    projected = _volume(r, "operator-rules")["projected"]
    names = [s["configMap"]["name"] for s in projected["sources"]]
    assert names == ["falcopy-falcorules-0", "falcopy-falcorules-1"]
    assert "FALCOPY_OPERATOR_ALLOW_OVERRIDES" not in _env(
        render({}).one("Deployment")["spec"]["template"]["spec"]["containers"][0])


def test_operator_deployment(default: Rendered) -> None:
    dep = default.one("Deployment", "falcopy-operator")
    spec = dep["spec"]["template"]["spec"]
    c = spec["containers"][0]
    assert c["args"][0] == "operator"
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert "hostPID" not in spec
    env = _env(c)
    assert env["FALCOPY_OPERATOR_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    # FalcoRules are checked against the same default rules the agents load first
    assert env["FALCOPY_OPERATOR_DEFAULT_RULES"]["value"] == default.agent_config().rules_files[0]
    tls = {m["mountPath"]: m for m in c["volumeMounts"]}["/etc/falcopy/webhook"]
    assert env["FALCOPY_OPERATOR_WEBHOOK_CERT"]["value"] == tls["mountPath"] + "/tls.crt"
    assert env["FALCOPY_OPERATOR_WEBHOOK_KEY"]["value"] == tls["mountPath"] + "/tls.key"
    port = {p["name"]: p["containerPort"] for p in c["ports"]}["webhook"]
    assert env["FALCOPY_OPERATOR_WEBHOOK_PORT"]["value"] == str(port)
    assert c["readinessProbe"]["tcpSocket"]["port"] == "webhook"
    off = render({"operator": {"webhook": {"enabled": False}}}).one("Deployment")
    c_off = off["spec"]["template"]["spec"]["containers"][0]
    assert "FALCOPY_OPERATOR_WEBHOOK_PORT" not in _env(c_off) and "readinessProbe" not in c_off
    assert [p["name"] for p in c_off["ports"]] == ["k8smeta"]  # the metadata collector's only


def test_operator_cli_accepts_chart_env(default: Rendered) -> None:
    """Every FALCOPY_OPERATOR_* variable the chart sets is an option of `falcopy operator`."""
    from falcopy.operator.cli import operator_cmd

    envvars = {p.envvar for p in operator_cmd.params if getattr(p, "envvar", None)}
    env = _env(default.one("Deployment")["spec"]["template"]["spec"]["containers"][0])
    assert set(env) <= envvars, set(env) - envvars


# --- webhook certificate -----------------------------------------------------------------------


def _openssl(*args: str, stdin: bytes | None = None) -> str:
    assert shutil.which("openssl"), "openssl CLI missing (package openssl)"
    proc = subprocess.run(["openssl", *args], input=stdin, capture_output=True, check=True)
    return proc.stdout.decode()


def test_webhook_certificate(default: Rendered, tmp_path: Path) -> None:
    secret = default.one("Secret", "falcopy-operator-webhook-tls")
    assert secret["type"] == "kubernetes.io/tls"
    vwc = default.one("ValidatingWebhookConfiguration", "falcopy-operator")
    ca = base64.b64decode(secret["data"]["ca.crt"])
    cert = base64.b64decode(secret["data"]["tls.crt"])
    (tmp_path / "ca.pem").write_bytes(ca)
    (tmp_path / "cert.pem").write_bytes(cert)
    # the API server trusts the CA in caBundle; the operator serves a certificate it signed
    verified = _openssl("verify", "-CAfile", str(tmp_path / "ca.pem"), str(tmp_path / "cert.pem"))
    assert verified.strip().endswith("OK")
    san = _openssl("x509", "-noout", "-ext", "subjectAltName", "-in", str(tmp_path / "cert.pem"))
    assert "DNS:falcopy-operator.falcopy.svc" in san
    # kopf serves each admission handler at /<handler id>
    from falcopy.operator.app import WEBHOOK_IDS
    key = base64.b64decode(secret["data"]["tls.key"])
    pub_cert = _openssl("x509", "-noout", "-pubkey", "-in", str(tmp_path / "cert.pem"))
    pub_key = _openssl("pkey", "-pubout", stdin=key)
    assert pub_cert == pub_key

    kinds = {c["spec"]["names"]["plural"]: c["spec"]["group"] for c in crds()}
    hooks = vwc["webhooks"]
    assert {h["rules"][0]["resources"][0] for h in hooks} == set(kinds)
    svc = default.one("Service", "falcopy-operator")
    for h in hooks:
        assert base64.b64decode(h["clientConfig"]["caBundle"]) == ca
        ref = h["clientConfig"]["service"]
        assert (ref["name"], ref["namespace"], ref["port"]) == ("falcopy-operator", "falcopy", 443)
        assert h["rules"][0]["operations"] == ["CREATE", "UPDATE"]
        kind = next(c["spec"]["names"]["kind"] for c in crds()
                    if c["spec"]["names"]["plural"] == h["rules"][0]["resources"][0])
        assert ref["path"] == f"/{WEBHOOK_IDS[kind]}"
        assert h["sideEffects"] == "None" and h["failurePolicy"] == "Ignore"
    assert svc["spec"]["ports"][0]["targetPort"] == "webhook"
    dep = default.one("Deployment", "falcopy-operator")["spec"]["template"]["spec"]
    tls_vol = next(v for v in dep["volumes"] if v["name"] == "webhook-tls")
    assert tls_vol["secret"]["secretName"] == secret["metadata"]["name"]


def test_webhook_existing_secret() -> None:
    r = render({"operator": {"webhook": {"existingSecret": "my-tls", "caBundle": "Q0E="}}})
    # no webhook certificate made (the metadata collector's own is the only one)
    assert [s["metadata"]["name"] for s in r.all("Secret")] == ["falcopy-operator-collector-tls"]
    assert r.one("ValidatingWebhookConfiguration")["webhooks"][0]["clientConfig"]["caBundle"] == "Q0E="
    with helm.Chart.load(str(CHART_DIR)) as chart, pytest.raises(helm.HelmError) as err:
        chart.render({"operator": {"webhook": {"existingSecret": "my-tls"}}}, name="falcopy", namespace="x")
    assert "caBundle" in str(err.value)


# --- names, notes ------------------------------------------------------------------------------


def test_release_names_are_consistent() -> None:
    r = render({}, release="prod", namespace="security")
    assert r.daemonset["metadata"]["name"] == "prod-falcopy"
    for obj in r.objects:
        if obj["kind"] not in ("ClusterRole", "ClusterRoleBinding", "ValidatingWebhookConfiguration"):
            assert obj["metadata"]["namespace"] == "security", obj["metadata"]["name"]
    assert "kubectl -n security logs daemonset/prod-falcopy" in r.notes
    cfg_vol = _volume(r, "config")["configMap"]["name"]
    assert r.one("ConfigMap", cfg_vol)


def test_notes_tell_how_to_read_alerts(default: Rendered) -> None:
    assert "kubectl -n falcopy logs daemonset/falcopy" in default.notes
    assert "JSON" in default.notes
    assert "/healthz" in default.notes


# --- capture on alert ------------------------------------------------------------------------


def test_capture_off_mounts_nothing(default: Rendered) -> None:
    assert not default.agent_config().capture.enabled
    names = [v["name"] for v in default.daemonset["spec"]["template"]["spec"]["volumes"]]
    assert "captures" not in names


@pytest.mark.parametrize("which", ["capture-hostpath", "capture-emptydir"])
def test_capture_volume_holds_path_prefix(which: str) -> None:
    r = render(VALUE_SETS[which])
    cfg = r.agent_config()
    assert cfg.capture.enabled
    mount = _mounts(r)["/var/lib/falcopy/captures"]
    assert not mount.get("readOnly")
    # the agent writes its captures on that volume (the root file system is read-only)
    assert cfg.capture.path_prefix == "/var/lib/falcopy/captures/falcopy"
    volume = _volume(r, mount["name"])
    if which == "capture-hostpath":
        assert volume["hostPath"] == {"path": "/var/lib/falcopy/captures", "type": "DirectoryOrCreate"}
    else:
        assert volume["emptyDir"] == {"sizeLimit": "512Mi"}
        assert cfg.capture.mode == "all_rules"


def test_capture_path_prefix_and_volume_are_checked() -> None:
    r = render({"config": {"capture": {"enabled": True, "path_prefix": "/var/lib/falcopy/captures/node1"}}})
    assert r.agent_config().capture.path_prefix == "/var/lib/falcopy/captures/node1"
    with helm.Chart.load(str(CHART_DIR)) as chart:
        for bad in ({"agent": {"capture": {"volume": "nfs"}}}, {"config": {"capture": {"mode": "some"}}},
                    {"config": {"capture": {"path_prefix": "relative/x"}}}):
            with pytest.raises(helm.HelmError):
                chart.validate_schema(bad)
