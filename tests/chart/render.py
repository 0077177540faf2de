"""Render charts/falcopy with real Helm (helm-python-sdk: Helm v4's Go SDK) and index the objects."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml
from falcopy.agent.control.config import AgentConfig, load_config

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "charts" / "falcopy"
NOTES = "templates/NOTES.txt"


@dataclass
class Rendered:
    """The objects of one `helm template`, by (kind, name)."""

    release: str
    namespace: str
    objects: list[dict[str, Any]] = field(default_factory=list)
    notes: str = ""

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str, name: str | None = None) -> dict[str, Any]:
        found = [o for o in self.all(kind) if name is None or o["metadata"]["name"] == name]
        names = [o["metadata"]["name"] for o in found]
        assert len(found) == 1, f"expected one {kind} {name or ''}, got {names}"
        return found[0]

    def has(self, kind: str) -> bool:
        return bool(self.all(kind))

    @property
    def daemonset(self) -> dict[str, Any]:
        return self.one("DaemonSet")

    @property
    def agent_container(self) -> dict[str, Any]:
        return self.daemonset["spec"]["template"]["spec"]["containers"][0]

    def agent_config_text(self) -> str:
        volumes = self.daemonset["spec"]["template"]["spec"]["volumes"]
        ds_config = next(v for v in volumes if v["name"] == "config")
        return self.one("ConfigMap", ds_config["configMap"]["name"])["data"]["falcopy.yaml"]

    def agent_config(self) -> AgentConfig:
        """falcopy.yaml as the agent itself loads it (its own pydantic model)."""
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "falcopy.yaml"
            path.write_text(self.agent_config_text())
            return load_config(path)


def render(values: dict[str, Any] | None = None, release: str = "falcopy",
           namespace: str = "falcopy") -> Rendered:
    """Schema-checked `helm template`; identical renders are shared (treat the result as read-only)."""
    return _render(json.dumps(values or {}, sort_keys=True), release, namespace)


@lru_cache(maxsize=64)
def _render(values_json: str, release: str, namespace: str) -> Rendered:
    values = json.loads(values_json)
    with helm.Chart.load(str(CHART_DIR)) as chart:
        chart.validate_schema(values or {})
        manifests = chart.render(values or {}, name=release, namespace=namespace, is_install=True)
    out = Rendered(release, namespace)
    for path, text in sorted(manifests.items()):
        if path.endswith(NOTES):
            out.notes = text
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                out.objects.append(doc)
    return out


def crds() -> list[dict[str, Any]]:
    with helm.Chart.load(str(CHART_DIR)) as chart:
        return [yaml.safe_load(f["data"]) if "data" in f else f for f in chart.crds]
