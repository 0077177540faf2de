"""``falcopy validate`` of FalcoRule / ClusterFalcoRule manifests, without a cluster.

What `kubectl apply -f FILE` would meet: every object of the file, in order,
gets the admission webhook's answer (the same :class:`Validator` and the same
denial text), checked against the default rules and the objects accepted
before it in the file.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from falcopy.operator.crd import GROUP, KINDS
from falcopy.operator.model import NAMESPACED_KIND, RuleObject
from falcopy.operator.validate import Validator, admission_denial
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

#: the namespace kubectl puts a namespaced object in when the manifest names none
DEFAULT_NAMESPACE = "default"


@dataclass
class ManifestVerdict:
    path: Path
    line: int
    what: str
    allowed: bool
    message: str

    def __str__(self) -> str:
        answer = "allowed" if self.allowed else "denied"
        return f"{self.path}:{self.line}: {self.what}: {answer}: {self.message}"


def _documents(path: Path) -> list[tuple[int, Any]]:
    yaml = YAML(typ="rt", pure=True)
    out = []
    for doc in yaml.load_all(path.read_text(encoding="utf-8")):
        line = doc.lc.line + 1 if hasattr(doc, "lc") and doc.lc.line is not None else 1
        out.append((line, doc))
    return out


def is_manifest_file(path: Path) -> bool:
    """A Kubernetes manifest (mappings with apiVersion and kind), not a Falco rules file (a list)."""
    try:
        docs = _documents(path)
    except (OSError, UnicodeDecodeError, YAMLError):
        return False
    return any(isinstance(d, dict) and "apiVersion" in d and "kind" in d for _, d in docs)


def _is_rule_object(doc: Any) -> bool:
    return (
        isinstance(doc, dict)
        and doc.get("kind") in KINDS
        and str(doc.get("apiVersion", "")).split("/")[0] == GROUP
    )


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def validate_manifests(paths: Iterable[Path], default_rules: Iterable[Path], *,
                       allow_default_overrides: bool = False) -> list[ManifestVerdict]:
    validator = Validator(default_rules, allow_default_overrides=allow_default_overrides)
    accepted: dict[Any, RuleObject] = {}
    verdicts: list[ManifestVerdict] = []
    for path in paths:
        try:
            docs = _documents(path)
        except OSError as exc:
            verdicts.append(ManifestVerdict(path, 0, "file", False, f"cannot read: {exc.strerror}"))
            continue
        except YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else 0
            verdicts.append(ManifestVerdict(path, line, "file", False, f"not YAML: {exc}"))
            continue
        for line, doc in docs:
            if not _is_rule_object(doc):
                kind = doc.get("kind", "?") if isinstance(doc, dict) else type(doc).__name__
                skipped = "not a falcopy rule object: skipped"
                verdicts.append(ManifestVerdict(path, line, str(kind), True, skipped))
                continue
            body = _plain(doc)
            meta = body.setdefault("metadata", {})
            if body["kind"] == NAMESPACED_KIND:
                meta.setdefault("namespace", DEFAULT_NAMESPACE)
            meta.setdefault("generation", 1)
            candidate = RuleObject.from_body(body)
            verdict = validator.check(candidate, accepted.values())
            if verdict.valid:
                accepted[candidate.key] = candidate
                verdicts.append(ManifestVerdict(path, line, str(candidate.key), True, verdict.message))
            else:
                denial = admission_denial(candidate, verdict)
                verdicts.append(ManifestVerdict(path, line, str(candidate.key), False, denial))
    return verdicts
