"""FalcoRule / ClusterFalcoRule objects as the operator sees them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from falcopy.operator.crd import GROUP, VERSION

NAMESPACED_KIND = "FalcoRule"
CLUSTER_KIND = "ClusterFalcoRule"
DEFAULT_PRIORITY = 50
#: rendering order of the item kinds inside one object: a list or macro must
#: exist before a later item of the same object appends to it
ITEM_KINDS = (("lists", "list"), ("macros", "macro"), ("rules", "rule"))


@dataclass(frozen=True, order=True)
class ObjKey:
    kind: str
    namespace: str  # "" for cluster-scoped objects
    name: str

    @property
    def namespaced(self) -> bool:
        return self.kind == NAMESPACED_KIND

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespaced else f"{self.kind} {self.name}"

    @property
    def label(self) -> str:
        """The name shown in engine messages and used for the rendered file."""
        if self.namespaced:
            return f"falcorule/{self.namespace}/{self.name}.yaml"
        return f"clusterfalcorule/{self.name}.yaml"

    @property
    def slug(self) -> str:
        """A ConfigMap-key-safe id (``[-._a-zA-Z0-9]``: namespaces and names already are)."""
        return f"ns.{self.namespace}.{self.name}" if self.namespaced else f"cluster.{self.name}"


@dataclass(frozen=True)
class RuleObject:
    key: ObjKey
    generation: int
    uid: str
    spec: dict[str, Any] = field(default_factory=dict, compare=False)
    #: the status as last written (by this replica or another before it)
    status: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def priority(self) -> int:
        value = self.spec.get("priority", DEFAULT_PRIORITY)
        return value if isinstance(value, int) and not isinstance(value, bool) else DEFAULT_PRIORITY

    def order(self) -> tuple[int, int, str, str]:
        """Load order: spec.priority (lower first), cluster-scoped before namespaced, namespace, name."""
        return (self.priority, 1 if self.key.namespaced else 0, self.key.namespace, self.key.name)

    def items(self) -> list[tuple[str, int, dict[str, Any]]]:
        """(spec path prefix, index, item) in rendering order."""
        out = []
        for section, _ in ITEM_KINDS:
            for i, item in enumerate(self.spec.get(section) or []):
                out.append((section, i, item))
        return out

    @classmethod
    def from_body(cls, body: Any) -> RuleObject:
        meta = body.get("metadata") or {}
        kind = body.get("kind") or (NAMESPACED_KIND if meta.get("namespace") else CLUSTER_KIND)
        namespace = (meta.get("namespace") or "") if kind == NAMESPACED_KIND else ""
        key = ObjKey(kind, namespace, meta.get("name") or "")
        return cls(
            key,
            int(meta.get("generation") or 0),
            str(meta.get("uid") or ""),
            _plain(body.get("spec") or {}),
            _plain(body.get("status") or {}),
        )


def _plain(value: Any) -> Any:
    """kopf bodies are mapping views: make a plain, JSON-shaped copy."""
    if isinstance(value, dict) or (hasattr(value, "items") and not isinstance(value, (str, bytes))):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


API_VERSION = f"{GROUP}/{VERSION}"
