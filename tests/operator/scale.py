"""A realistic large set of rule objects: many tenants' FalcoRules plus the cluster's own.

Each FalcoRule has a namespace-private list and macro and two rules (one with an exception);
each ClusterFalcoRule has a list and a rule.  Shared by the render-scale bench and the
incremental / coalescing tests, so both speak of the same workload."""

from __future__ import annotations

from typing import Any

from falcopy.operator.model import ObjKey, RuleObject

RULE = {"desc": "generated", "output": "hit %proc.name %proc.cmdline %k8s.pod.name", "priority": "WARNING"}


def falcorule_spec(ns: str, i: int, variant: int = 0) -> dict[str, Any]:
    return {
        "priority": 50,
        "lists": [{"list": f"allowed_{i}", "items": [f"app{i}", f"worker{i}", f"v{variant}"]}],
        "macros": [
            {"macro": f"app_container_{i}", "condition": f"container.image.repository = repo/{ns}-{i}"}
        ],
        "rules": [
            {
                **RULE,
                "rule": f"Unexpected process {i}",
                "condition": (f"fp_spawned_process and app_container_{i} and not proc.name in (allowed_{i})"),
                "exceptions": [
                    {
                        "name": "probes",
                        "fields": ["proc.name"],
                        "comps": ["in"],
                        "values": [[["curl", "wget"]]],
                    }
                ],
            },
            {
                **RULE,
                "rule": f"Write below etc {i}",
                "condition": f"evt.type in (open, openat) and fd.name startswith /etc/app{i}/",
                "priority": "ERROR",
            },
        ],
    }


def clusterrule_spec(i: int, variant: int = 0) -> dict[str, Any]:
    return {
        "priority": 10 + i % 20,
        "lists": [{"list": f"cluster_bins_{i}", "items": [f"tool{i}", f"miner{i}", f"v{variant}"]}],
        "rules": [
            {
                **RULE,
                "rule": f"Cluster tool {i} started",
                "condition": f"fp_spawned_process and proc.name in (cluster_bins_{i})",
                "priority": "CRITICAL",
            }
        ],
    }


def namespace(n: int) -> str:
    return f"tenant-{n:03d}"


def scale_objects(falcorules: int = 1000, namespaces: int = 200, clusterrules: int = 100) -> list[RuleObject]:
    out = []
    for i in range(falcorules):
        ns = namespace(i % namespaces)
        out.append(RuleObject(ObjKey("FalcoRule", ns, f"app-{i}"), 1, f"uid-{i}", falcorule_spec(ns, i)))
    for i in range(clusterrules):
        out.append(
            RuleObject(ObjKey("ClusterFalcoRule", "", f"cluster-{i}"), 1, f"cuid-{i}", clusterrule_spec(i))
        )
    return out


def manifest(obj: RuleObject) -> dict[str, Any]:
    """The object as a manifest for the API server."""
    meta: dict[str, Any] = {"name": obj.key.name}
    if obj.key.namespaced:
        meta["namespace"] = obj.key.namespace
    return {"apiVersion": "falcopy.io/v1alpha1", "kind": obj.key.kind, "metadata": meta, "spec": obj.spec}
