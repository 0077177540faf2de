"""Turn a webhook request body into audit events, or say exactly what is wrong."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson

from falcopy.common.errors import FalcopyError
from falcopy.engine.fields.k8s_audit import AuditEvent

API_VERSIONS = frozenset({"audit.k8s.io/v1", "audit.k8s.io/v1beta1"})
# Fields every audit.k8s.io Event carries (required in the API types); an
# object without them is not an audit event the rules could make sense of.
_REQUIRED_STRINGS = ("level", "auditID", "stage", "requestURI", "verb")


class AuditDecodeError(FalcopyError, ValueError):
    """The whole body is unusable; ``reason`` is the counter label."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class ItemError:
    index: int
    message: str


@dataclass
class Decoded:
    events: list[AuditEvent]
    errors: list[ItemError]


def _check_event(obj: Any, in_list: bool) -> str | None:
    if not isinstance(obj, dict):
        return "an audit event must be a JSON object"
    kind = obj.get("kind")
    # items of an EventList may omit their TypeMeta
    if not (in_list and kind is None) and kind != "Event":
        return f"kind must be 'Event', got {kind!r}"
    api_version = obj.get("apiVersion")
    if api_version is not None and api_version not in API_VERSIONS:
        return f"unsupported apiVersion {api_version!r}"
    for key in _REQUIRED_STRINGS:
        if not isinstance(obj.get(key), str):
            return f"missing or non-string field {key!r}"
    if not isinstance(obj.get("user"), dict):
        return "missing field 'user'"
    for key in ("objectRef", "requestObject", "responseObject", "responseStatus", "annotations"):
        if key in obj and obj[key] is not None and not isinstance(obj[key], dict):
            return f"field {key!r} must be an object"
    return None


def decode_body(body: bytes, *, cluster_name: str | None = None,
                received_ns: int | None = None) -> Decoded:
    """Decode an ``Event`` or ``EventList`` body.

    Raises :class:`AuditDecodeError` when nothing in the body is usable;
    otherwise returns the valid events and one error per invalid list item.
    """
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise AuditDecodeError("invalid_json", f"invalid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise AuditDecodeError("not_audit", "body must be a JSON object (Event or EventList)")
    now = received_ns if received_ns is not None else time.time_ns()
    kind = doc.get("kind")
    if kind == "EventList":
        api_version = doc.get("apiVersion")
        if api_version is not None and api_version not in API_VERSIONS:
            raise AuditDecodeError("not_audit", f"unsupported apiVersion {api_version!r}")
        items = doc.get("items")
        if items is None:
            items = []
        if not isinstance(items, list):
            raise AuditDecodeError("not_audit", "EventList 'items' must be a list")
        events: list[AuditEvent] = []
        errors: list[ItemError] = []
        for index, item in enumerate(items):
            problem = _check_event(item, in_list=True)
            if problem is None:
                events.append(AuditEvent(item, received_ns=now, cluster_name=cluster_name))
            else:
                errors.append(ItemError(index, problem))
        return Decoded(events, errors)
    if kind != "Event":
        raise AuditDecodeError(
            "not_audit", f"data not recognized as a k8s audit event (kind={kind!r})")
    problem = _check_event(doc, in_list=False)
    if problem is not None:
        raise AuditDecodeError("invalid_event", problem)
    return Decoded([AuditEvent(doc, raw=body, received_ns=now, cluster_name=cluster_name)], [])
