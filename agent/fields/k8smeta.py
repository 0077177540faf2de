"""``k8smeta.*`` workload fields and their deprecated ``k8s.*`` aliases.

Values come from :attr:`ContainerInfo.k8smeta` (the operator's collector, see
:mod:`falcopy.agent.enrichment.k8smeta`); pod name/uid/ip/labels and the namespace
name are the kubelet's and stay in :mod:`falcopy.agent.fields.syscall`.  As in
Falco, ``k8smeta.*.labels`` is a list of ``key:value`` entries and the deprecated
``k8s.*.labels`` a ``key:value, key:value`` text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from falcopy.agent.enrichment.model import HOST_CONTAINER_ID, ObjMeta, PodMeta
from falcopy.agent.fields.accessor import Factory, Simple
from falcopy.agent.fields.event import SyscallEvent

UNAVAILABLE: dict[str, str] = {}
DIRECT: frozenset[str] = frozenset()

#: field-name kind -> PodMeta attribute
_KINDS = {"ns": "ns", "deployment": "deployment", "svc": "svc", "rs": "rs", "rc": "rc"}


def _pod_meta(ev: SyscallEvent) -> PodMeta | None:
    if ev.thread.container_id == HOST_CONTAINER_ID:
        return None
    return ev.container().k8smeta


def _object(kind: str) -> Callable[[SyscallEvent], ObjMeta | None]:
    attr = _KINDS[kind]

    def get(ev: SyscallEvent) -> ObjMeta | None:
        meta = _pod_meta(ev)
        return getattr(meta, attr) if meta is not None else None
    return get


def _attr(kind: str, name: str) -> Simple:
    obj = _object(kind)

    def get(ev: SyscallEvent) -> Any:
        found = obj(ev)
        return (getattr(found, name) or None) if found is not None else None
    return get


def _labels_text(kind: str) -> Simple:
    obj = _object(kind)

    def get(ev: SyscallEvent) -> Any:
        found = obj(ev)
        if found is None or not found.labels:
            return None
        return ", ".join(f"{k}:{v}" for k, v in found.labels.items())
    return get


def _label(kind: str) -> Factory:
    obj = _object(kind)

    def factory(arg: str | None) -> Simple:
        def get(ev: SyscallEvent) -> Any:
            found = obj(ev)
            return found.labels.get(arg) if found is not None and arg is not None else None
        return get
    return factory


def _labels_list(kind: str) -> Factory:
    obj = _object(kind)

    def factory(arg: str | None) -> Simple:
        def get(ev: SyscallEvent) -> Any:
            found = obj(ev)
            return [f"{k}:{v}" for k, v in found.labels.items()] if found is not None else []
        return get
    return factory


def _simple_fields() -> dict[str, Simple]:
    fields: dict[str, Simple] = {}
    for kind in _KINDS:
        if kind != "ns":
            fields[f"k8smeta.{kind}.name"] = _attr(kind, "name")
            fields[f"k8s.{kind}.name"] = _attr(kind, "name")
        fields[f"k8smeta.{kind}.uid"] = _attr(kind, "uid")
        fields[f"k8s.{kind}.uid"] = _attr(kind, "uid")
        fields[f"k8s.{kind}.id"] = _attr(kind, "uid")
        fields[f"k8s.{kind}.labels"] = _labels_text(kind)
    return fields


def _arg_fields() -> dict[str, Factory]:
    fields: dict[str, Factory] = {}
    for kind in _KINDS:
        fields[f"k8smeta.{kind}.label"] = _label(kind)
        fields[f"k8s.{kind}.label"] = _label(kind)
        fields[f"k8smeta.{kind}.labels"] = _labels_list(kind)
    return fields


FIELDS: dict[str, Simple] = _simple_fields()
WITH_ARG: dict[str, Factory] = _arg_fields()
#: the fields only the operator's collector fills (empty when enrichment.k8smeta is off)
COLLECTOR_FIELDS: frozenset[str] = frozenset(FIELDS) | frozenset(WITH_ARG)
