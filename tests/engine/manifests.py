"""Reading Falco's 0.35.1 test manifests (falco_tests*.yaml) at test time."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML


@dataclass
class ManifestCase:
    manifest: str
    name: str
    files: list[str]
    validate: bool
    errors: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    exit_status: int = 0
    rules_events: dict[str, list[str]] = field(default_factory=dict)
    detect: bool | None = None

    @property
    def id(self) -> str:
        return f"{self.manifest}::{self.name}"


def _as_list(v: Any) -> list[str]:
    if v is None:
        return []
    if isinstance(v, str):
        return [v]
    return [str(x) for x in v]


def load_cases(fixtures: Path, manifest: str) -> list[ManifestCase]:
    """Every case that validates a rules file, or (exceptions manifest) loads one."""
    data = YAML(typ="rt").load((fixtures / manifest).read_text())
    out: list[ManifestCase] = []
    for name, case in data["trace_files"].items():
        if "validate_rules_file" in case:
            files, validate = _as_list(case["validate_rules_file"]), True
        elif manifest.endswith("exceptions.yaml") and "rules_file" in case:
            files, validate = _as_list(case["rules_file"]), False
        else:
            continue
        events = {}
        for entry in case.get("rules_events") or []:
            for rule, types in entry.items():
                events[str(rule)] = [str(t) for t in types]
        out.append(ManifestCase(
            manifest=manifest, name=str(name), files=files, validate=validate,
            errors=[dict(e) for e in case.get("validate_errors") or []],
            warnings=[dict(w) for w in case.get("validate_warnings") or []],
            exit_status=int(case.get("exit_status", 0)), rules_events=events,
            detect=bool(case["detect"]) if "detect" in case else None))
    return out
