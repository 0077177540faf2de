"""Field registries of every event source the engine knows.

``default_sources()`` gives one :class:`FieldSource` per source: ``syscall``
(values read from :class:`~falcopy.engine.event.DictEvent`; the agent passes
its own source with the same definitions and real accessors) and
``k8s_audit`` (values computed from the audit event JSON).
"""

from __future__ import annotations

from falcopy.engine.fields.base import Accessor, ArgMode, FieldDef, FieldSource, FieldType
from falcopy.engine.fields.evttypes import SYSCALL_EVENT_TYPES, is_known_event_type
from falcopy.engine.fields.k8s_audit import K8S_AUDIT_FIELDS, AuditEvent, K8sAuditFieldSource
from falcopy.engine.fields.syscall import SYSCALL_FIELDS

__all__ = [
    "K8S_AUDIT_FIELDS",
    "SYSCALL_EVENT_TYPES",
    "SYSCALL_FIELDS",
    "Accessor",
    "ArgMode",
    "AuditEvent",
    "FieldDef",
    "FieldSource",
    "FieldType",
    "K8sAuditFieldSource",
    "default_sources",
    "is_known_event_type",
    "lookup_field",
    "syscall_source",
]


def syscall_source() -> FieldSource:
    """The syscall source with DictEvent accessors (replay, tests, validation)."""
    return FieldSource("syscall", dict(SYSCALL_FIELDS))


def default_sources() -> dict[str, FieldSource]:
    """A fresh source table: callers may replace entries (the agent swaps ``syscall``)."""
    return {"syscall": syscall_source(), "k8s_audit": K8sAuditFieldSource()}


def lookup_field(sources: dict[str, FieldSource], source: str,
                 name: str) -> tuple[FieldDef, str | None] | None:
    """Resolve ``name`` (``proc.name``, ``evt.arg.flags``, ``k8s.pod.label.app``)
    in ``source``; None when the source or the field is unknown.  A bracketed
    argument (``proc.aname[2]``) must be split off by the caller."""
    src = sources.get(source)
    if src is None:
        return None
    return src.lookup(name)
