"""yamllint on the chart's values and the kind config; the kind config gives the nodes
what the chart's DaemonSet mounts from them."""

from __future__ import annotations

import yaml
from yamllint import linter
from yamllint.config import YamlLintConfig

from .render import CHART_DIR, REPO_ROOT, render

YAMLLINT = YamlLintConfig("{extends: default, rules: {line-length: {max: 120}}}")


def _lint(path: str) -> list[str]:
    full = REPO_ROOT / path
    return [f"{path}:{p.line}:{p.column}: {p.level} {p.desc} ({p.rule})"
            for p in linter.run(full.read_text(), YAMLLINT, str(full))]


def test_values_yamllint_clean() -> None:
    assert _lint(str((CHART_DIR / "values.yaml").relative_to(REPO_ROOT))) == []


def test_kind_config_yamllint_clean() -> None:
    assert _lint("kind-config.yaml") == []


def test_kind_nodes_have_what_the_daemonset_mounts() -> None:
    kind = yaml.safe_load((REPO_ROOT / "kind-config.yaml").read_text())
    assert kind["kind"] == "Cluster" and kind["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    roles = [n["role"] for n in kind["nodes"]]
    assert "control-plane" in roles and "worker" in roles
    r = render({})
    host_paths = {v["hostPath"]["path"] for v in r.daemonset["spec"]["template"]["spec"]["volumes"]
                  if "hostPath" in v}
    for node in kind["nodes"]:
        mounted = {m["containerPath"] for m in node.get("extraMounts", [])}
        # kind nodes lack these kernel mounts; /proc, /etc and the runtime sockets are the node's own
        for path in ("/sys/kernel/btf", "/sys/kernel/tracing"):
            assert path in host_paths and path in mounted, (node["role"], path)
