"""The FalcoRule / ClusterFalcoRule CustomResourceDefinitions.

The chart's ``crds/*.yaml`` are generated from this module
(``falcopy operator --write-crds charts/falcopy/crds``) and a test checks they
match, so the schema the API server enforces and the one the operator expects
cannot drift apart.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

GROUP = "falcopy.io"
VERSION = "v1alpha1"
KINDS = {
    # kind: (plural, scope, short names)
    "FalcoRule": ("falcorules", "Namespaced", ["fr"]),
    "ClusterFalcoRule": ("clusterfalcorules", "Cluster", ["cfr"]),
}

_STR: dict[str, Any] = {"type": "string"}
_BOOL: dict[str, Any] = {"type": "boolean"}
_STRLIST: dict[str, Any] = {"type": "array", "items": {"type": "string"}}
_NAME: dict[str, Any] = {"type": "string", "pattern": "^[a-zA-Z][a-zA-Z0-9_]*$"}
_OVERRIDE: dict[str, Any] = {
    "type": "object",
    "description": "Falco 0.37+ override: key -> append | replace",
    "additionalProperties": {"type": "string", "enum": ["append", "replace"]},
}
# Exception fields/comps/values are "a scalar or a list" (values: tuples whose
# elements may themselves be lists): not expressible as a structural schema, so
# these three alone keep unknown fields; the operator checks them with the engine.
_FREE: dict[str, Any] = {"x-kubernetes-preserve-unknown-fields": True}
_PRIORITIES = [
    "EMERGENCY",
    "ALERT",
    "CRITICAL",
    "ERROR",
    "WARNING",
    "NOTICE",
    "INFORMATIONAL",
    "INFO",
    "DEBUG",
]

_EXCEPTION: dict[str, Any] = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": _STR,
        "fields": {**_FREE, "description": "a field name, or a list of field names"},
        "comps": {**_FREE, "description": "a comparison operator, or one per field"},
        "values": {**_FREE, "description": "tuples of values (a flat list when fields is a scalar)"},
    },
}
_DURATION: dict[str, Any] = {"x-kubernetes-int-or-string": True, "description": "e.g. 10s, 5m, or seconds"}
# falcopy's rule keys (docs/outputs.md); the operator checks their values with the engine
_AGGREGATION: dict[str, Any] = {
    "type": "object",
    "description": "aggregate repeated alerts of this rule: first at once, then a summary per window",
    "properties": {"enabled": _BOOL, "window": _DURATION, "key": {**_STRLIST, "minItems": 1}},
}
_THRESHOLD: dict[str, Any] = {
    "type": "object",
    "description": "alert only when the condition matched count times (or distinct values) within window",
    "required": ["count", "window"],
    "properties": {
        "count": {"type": "integer", "minimum": 1},
        "window": _DURATION,
        "group_by": {**_STRLIST, "minItems": 1},
        "distinct": {"type": "string", "minLength": 1},
    },
}
_RULE: dict[str, Any] = {
    "type": "object",
    "required": ["rule"],
    "properties": {
        "rule": {"type": "string", "minLength": 1},
        "desc": _STR,
        "condition": _STR,
        "output": _STR,
        "priority": {
            "type": "string",
            "enum": _PRIORITIES + [p.lower() for p in _PRIORITIES] + [p.capitalize() for p in _PRIORITIES],
        },
        "tags": _STRLIST,
        "enabled": _BOOL,
        "source": _STR,
        "append": _BOOL,
        "override": _OVERRIDE,
        "exceptions": {"type": "array", "items": _EXCEPTION},
        "warn_evttypes": _BOOL,
        "skip-if-unknown-filter": _BOOL,
        "capture": _BOOL,
        "capture_duration": {"type": "integer"},
        "aggregation": _AGGREGATION,
        "threshold": _THRESHOLD,
    },
}
_MACRO: dict[str, Any] = {
    "type": "object",
    "required": ["macro"],
    "properties": {"macro": _NAME, "condition": _STR, "append": _BOOL, "override": _OVERRIDE},
}
_LIST: dict[str, Any] = {
    "type": "object",
    "required": ["list"],
    "properties": {
        "list": _NAME,
        "items": {"type": "array", "items": {"x-kubernetes-int-or-string": True}},
        "append": _BOOL,
        "override": _OVERRIDE,
    },
}
_SPEC: dict[str, Any] = {
    "type": "object",
    "properties": {
        "priority": {
            "type": "integer",
            "minimum": 0,
            "maximum": 99,
            "default": 50,
            "description": "load order: lower loads first; ties: cluster-scoped first, then namespace, name",
        },
        "lists": {"type": "array", "items": _LIST},
        "macros": {"type": "array", "items": _MACRO},
        "rules": {"type": "array", "items": _RULE},
    },
}
_CONDITION: dict[str, Any] = {
    "type": "object",
    "required": ["type", "status"],
    "properties": {
        "type": _STR,
        "status": _STR,
        "reason": _STR,
        "message": _STR,
        "lastTransitionTime": _STR,
        "observedGeneration": {"type": "integer"},
    },
}
_STATUS: dict[str, Any] = {
    "type": "object",
    # kopf keeps its handler progress under status.kopf
    "x-kubernetes-preserve-unknown-fields": True,
    "properties": {
        "observedGeneration": {"type": "integer"},
        "activeGeneration": {"type": "integer"},
        "rules": {"type": "integer"},
        "macros": {"type": "integer"},
        "lists": {"type": "integer"},
        "nodes": _STR,
        "configMap": _STR,
        "conditions": {"type": "array", "items": _CONDITION},
    },
}
_COLUMNS: list[dict[str, Any]] = [
    {"name": "Valid", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Valid")].status'},
    {"name": "Rules", "type": "integer", "jsonPath": ".status.rules"},
    {"name": "Nodes", "type": "string", "jsonPath": ".status.nodes"},
    {"name": "Priority", "type": "integer", "jsonPath": ".spec.priority", "priority": 1},
    {
        "name": "Reason",
        "type": "string",
        "jsonPath": '.status.conditions[?(@.type=="Valid")].reason',
        "priority": 1,
    },
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def crd(kind: str) -> dict[str, Any]:
    plural, scope, short = KINDS[kind]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}", "labels": {"app.kubernetes.io/part-of": "falcopy"}},
        "spec": {
            "group": GROUP,
            "scope": scope,
            "names": {
                "kind": kind,
                "plural": plural,
                "singular": kind.lower(),
                "listKind": f"{kind}List",
                "shortNames": short,
                "categories": ["falcopy"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": _COLUMNS,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "apiVersion": _STR,
                                "kind": _STR,
                                "metadata": {"type": "object"},
                                "spec": _SPEC,
                                "status": _STATUS,
                            },
                        }
                    },
                }
            ],
        },
    }


def crd_yaml(kind: str) -> str:
    yaml = YAML()
    yaml.default_flow_style = False
    yaml.width = 120
    out = io.StringIO()
    out.write(f"# {kind}: Falco rule items as Kubernetes objects (docs/operator.md).\n")
    out.write("# Generated by `falcopy operator crds`; do not edit by hand.\n")
    # a deep copy through JSON: shared sub-schemas must not turn into YAML anchors
    yaml.dump(json.loads(json.dumps(crd(kind))), out)
    return out.getvalue()


def crd_filename(kind: str) -> str:
    return f"{KINDS[kind][0]}.{GROUP}.yaml"


def write_crds(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for kind in KINDS:
        path = directory / crd_filename(kind)
        path.write_text(crd_yaml(kind))
        written.append(path)
    return written
