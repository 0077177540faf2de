"""A Falco chart user's values file: Falco's chart keys render into the agent, falcosidekick and a
ServiceMonitor; keys that make no sense here fail the schema naming themselves; the config is
checked against the agent's own model; every example rule of the chart and docs loads."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml
from ruamel.yaml import YAML

from falcopy.engine import RulesInput, load_rules
from tests.conftest import COMPAT_DIR

from .render import CHART_DIR, REPO_ROOT, Rendered, render

K8S_VERSION = kubernetes_validate.latest_version()

FALCO_STYLE: dict[str, Any] = {
    "driver": {"enabled": True, "kind": "modern_ebpf",
               "modernEbpf": {"leastPrivileged": True, "bufSizePreset": 5}},
    "tty": True,
    "resources": {"requests": {"cpu": "200m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "768Mi"}},
    "tolerations": [{"effect": "NoSchedule", "key": "node-role.kubernetes.io/control-plane"}],
    "nodeSelector": {"kubernetes.io/os": "linux"},
    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "falco", "operator": "NotIn", "values": ["off"]}]}]}}},
    "podPriorityClassName": "falco-critical",
    "podSecurityContext": {"seccompProfile": {"type": "Unconfined"}},
    "podAnnotations": {"team": "security"},
    "podLabels": {"tier": "node"},
    "extra": {
        "env": [{"name": "EXTRA_FLAG", "value": "1"}],
        "args": ["-o", "log_level=debug"],
        "initContainers": [{"name": "warmup", "image": "busybox:1.36", "command": ["true"]}],
    },
    "mounts": {
        "volumes": [{"name": "captures",
                     "hostPath": {"path": "/var/lib/falcopy", "type": "DirectoryOrCreate"}}],
        "volumeMounts": [{"name": "captures", "mountPath": "/captures"}],
    },
    "metrics": {"enabled": True},
    "serviceMonitor": {"create": True, "labels": {"release": "kube-prometheus"}, "interval": "30s"},
    "falco": {"priority": "notice", "json_output": True, "static_fields": {"cluster": "prod-eu"},
              "webserver": {"listen_port": 8766}},
    "falcosidekick": {"enabled": True, "config": {"slack": {"webhookurl": "https://hooks.example/T0/B0/x",
                                                            "minimumpriority": "warning"},
                                                  "customfields": "env:prod"}},
    "customRules": {"local.yaml": "- rule: Shell spawned\n  desc: a shell\n"
                                  "  condition: fp_spawned_process and proc.name = bash\n"
                                  "  output: shell (%proc.cmdline)\n  priority: NOTICE\n"},
}


@pytest.fixture(scope="module")
def falco_style() -> Rendered:
    return render(FALCO_STYLE)


def test_falco_style_values_are_valid_kubernetes(falco_style: Rendered) -> None:
    for obj in falco_style.objects:
        if obj["kind"] == "ServiceMonitor":
            continue  # a Prometheus-operator CRD: checked in test_service_monitor
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_falco_keys_reach_the_agent_pod(falco_style: Rendered) -> None:
    spec = falco_style.daemonset["spec"]["template"]["spec"]
    c = falco_style.agent_container
    assert c["tty"] is True
    assert c["resources"] == FALCO_STYLE["resources"]
    assert spec["tolerations"] == FALCO_STYLE["tolerations"]  # Falco's control-plane-only list, as given
    assert spec["nodeSelector"] == FALCO_STYLE["nodeSelector"]
    assert spec["affinity"] == FALCO_STYLE["affinity"]
    assert spec["priorityClassName"] == "falco-critical"
    assert spec["securityContext"] == FALCO_STYLE["podSecurityContext"]
    meta = falco_style.daemonset["spec"]["template"]["metadata"]
    assert meta["annotations"]["team"] == "security" and meta["labels"]["tier"] == "node"
    assert {"name": "EXTRA_FLAG", "value": "1"} in c["env"]
    assert c["args"][-2:] == ["-o", "log_level=debug"]
    assert spec["initContainers"][0]["name"] == "warmup"
    assert {"name": "captures", "mountPath": "/captures"} in c["volumeMounts"]
    assert any(v["name"] == "captures" for v in spec["volumes"])
    # driver.modernEbpf.leastPrivileged = the capabilities mode
    sc = c["securityContext"]
    assert sc["privileged"] is False and "BPF" in sc["capabilities"]["add"]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports["http"] == 8766 and c["livenessProbe"]["httpGet"]["port"] == "http"


def test_falco_passthrough_and_driver_reach_the_config(falco_style: Rendered) -> None:
    cfg = falco_style.agent_config()  # loaded by the agent's own model
    assert cfg.priority.lower() == "notice" and cfg.static_fields == {"cluster": "prod-eu"}
    assert cfg.engine.modern_ebpf.buf_size_preset == 5
    assert cfg.metrics.enabled and cfg.webserver.prometheus_metrics_enabled
    assert cfg.webserver.listen_port == 8766
    svc = next(o for o in falco_style.all("Service") if o["metadata"]["name"] == "falcopy")
    assert svc["spec"]["ports"][0]["port"] == 8766


def test_falcosidekick_deployed_and_targeted(falco_style: Rendered) -> None:
    name = "falcopy-falcosidekick"
    dep = falco_style.one("Deployment", name)
    c = dep["spec"]["template"]["spec"]["containers"][0]
    assert c["image"] == "docker.io/falcosecurity/falcosidekick:2.34.1"
    assert c["envFrom"] == [{"secretRef": {"name": name}}]
    secret = falco_style.one("Secret", name)
    assert secret["stringData"] == {
        "SLACK_WEBHOOKURL": "https://hooks.example/T0/B0/x",
        "SLACK_MINIMUMPRIORITY": "warning",
        "CUSTOMFIELDS": "env:prod",
    }
    svc = falco_style.one("Service", name)
    assert svc["spec"]["ports"][0]["port"] == 2801
    assert svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]
    cfg = falco_style.agent_config()
    assert cfg.http_output.enabled and cfg.http_output.url == f"http://{name}.falcopy.svc:2801/"
    assert cfg.json_output and cfg.json_include_output_fields_property


def test_external_falcosidekick_is_not_deployed() -> None:
    r = render({"falcosidekick": {"enabled": True, "deploy": False, "url": "https://sk.example:2801/"}})
    assert not [d for d in r.all("Deployment") if "falcosidekick" in d["metadata"]["name"]]
    assert r.agent_config().http_output.url == "https://sk.example:2801/"


def test_service_monitor(falco_style: Rendered) -> None:
    sm = falco_style.one("ServiceMonitor")
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["metadata"]["labels"]["release"] == "kube-prometheus"
    svc = next(o for o in falco_style.all("Service") if o["metadata"]["name"] == "falcopy")
    labels = svc["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in sm["spec"]["selector"]["matchLabels"].items())
    assert sm["spec"]["namespaceSelector"] == {"matchNames": ["falcopy"]}
    (endpoint,) = sm["spec"]["endpoints"]
    assert endpoint["port"] == svc["spec"]["ports"][0]["name"] and endpoint["path"] == "/metrics"
    assert endpoint["interval"] == "30s"
    assert not render({}).has("ServiceMonitor")


def _schema_error(values: dict[str, Any]) -> str:
    with helm.Chart.load(str(CHART_DIR)) as chart, pytest.raises(helm.HelmError) as err:
        chart.validate_schema(values)
    return str(err.value)


@pytest.mark.parametrize(("values", "named"), [
    ({"config": {"bogus_key": 1}}, "bogus_key"),
    ({"falco": {"json_outptu": True}}, "json_outptu"),
    ({"config": {"webserver": {"listen_prot": 1}}}, "listen_prot"),
    ({"falcoctl": {"artifact": {"install": {"enabled": True}}}}, "falcoctl"),
    ({"driver": {"kind": "kmod"}}, "kind"),
    ({"controller": {"kind": "deployment"}}, "kind"),
    ({"collectors": {"kubernetes": {"enabled": True}}}, "collectors"),
])
def test_schema_errors_name_the_key(values: dict[str, Any], named: str) -> None:
    assert named in _schema_error(values)


def test_priority_any_case() -> None:
    for p in ("WARNING", "Warning", "informational", "Info"):
        render({"config": {"priority": p}})
    assert "priority" in _schema_error({"config": {"priority": "loud"}})


def test_falcos_own_falco_yaml_as_passthrough() -> None:
    falco_yaml = YAML(typ="safe").load((COMPAT_DIR / "falco.yaml").read_text())
    falco_yaml.pop("rules_files", None)  # Falco's /etc/falco paths: the chart computes falcopy's
    r = render({"falco": falco_yaml})
    cfg = r.agent_config()
    assert cfg.webserver.listen_port == falco_yaml["webserver"]["listen_port"]


def test_config_schema_is_the_agents_model() -> None:
    res = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "chart_config_schema.py"), "--check"],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


# --- every example rule of the chart and the docs loads against the default rules ---------------

def _default_rules() -> list[RulesInput]:
    return [RulesInput(str(p), p.read_text()) for p in sorted((REPO_ROOT / "rules").glob("*.yaml"))]


def _values_examples() -> list[tuple[str, str]]:
    """The commented `customRules` example of values.yaml, uncommented."""
    text = (CHART_DIR / "values.yaml").read_text()
    m = re.search(r"^customRules: \{\}\n((?:#.*\n)+)", text, re.M)
    assert m, "values.yaml has no customRules example"
    doc = yaml.safe_load("\n".join(line[2:] for line in m.group(1).splitlines()))
    return [(f"values.yaml customRules {name}", body) for name, body in doc.items()]


def _docs_examples() -> list[tuple[str, str]]:
    out = []
    for md in sorted([*REPO_ROOT.glob("docs/*.md"), REPO_ROOT / "README.md"]):
        for i, block in enumerate(re.findall(r"```yaml\n(.*?)```", md.read_text(), re.S)):
            doc = yaml.safe_load(block)
            if isinstance(doc, list) and any(isinstance(x, dict) and {"rule", "macro", "list"} & set(x)
                                             for x in doc):
                out.append((f"{md.name} block {i}", block))
    return out


EXAMPLES = _values_examples() + _docs_examples()


@pytest.mark.parametrize(("where", "text"), EXAMPLES, ids=[w for w, _ in EXAMPLES])
def test_example_rules_load_against_the_default_rules(where: str, text: str) -> None:
    result = load_rules([*_default_rules(), RulesInput(where, text)])
    assert result.ok, "\n".join(map(str, result.errors))


def test_docs_manifests_validate(tmp_path: Path) -> None:
    """FalcoRule manifests shown in docs, as `falcopy validate` (the webhook's answers) sees them."""
    manifests = []
    for md in sorted(REPO_ROOT.glob("docs/*.md")):
        for block in re.findall(r"```yaml\n(.*?)```", md.read_text(), re.S):
            docs = [d for d in yaml.safe_load_all(block) if isinstance(d, dict)]
            if any(str(d.get("apiVersion", "")).startswith("falcopy.io/") for d in docs):
                manifests.append(block)
    assert manifests, "the docs show no FalcoRule manifest"
    for i, block in enumerate(manifests):
        path = tmp_path / f"docs-manifest-{i}.yaml"
        path.write_text(block)
        res = subprocess.run([str(Path(sys.executable).with_name("falcopy")), "validate", str(path)],
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stdout + res.stderr
