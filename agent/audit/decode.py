"""Turn a webhook request body into audit events, or say exactly what is wrong.

An ``EventList`` is split into its items without building the whole document
(``msgspec.Raw`` slices of the body); each item is decoded only when the caller
takes it, so evaluating a 16 MiB list holds the body plus one event, not a
decoded tree five times the body's size.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import msgspec

from falcopy.common.errors import FalcopyError
from falcopy.engine.fields.k8s_audit import AuditEvent

API_VERSIONS = frozenset({"audit.k8s.io/v1", "audit.k8s.io/v1beta1"})
# Fields every audit.k8s.io Event carries (required in the API types); an
# object without them is not an audit event the rules could make sense of.
_REQUIRED_STRINGS = ("level", "auditID", "stage", "requestURI", "verb")
#: client-supplied values quoted in error messages are cut to this many characters
_QUOTE_MAX = 60


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


class _Envelope(msgspec.Struct):
    """What is needed to tell an Event from an EventList; other keys are skipped, not built."""

    kind: Any = None
    apiVersion: Any = None
    items: msgspec.Raw = msgspec.Raw()


_envelope = msgspec.json.Decoder(_Envelope)
_item_slices = msgspec.json.Decoder(list[msgspec.Raw])
_any = msgspec.json.Decoder()


def _quote(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _QUOTE_MAX else text[: _QUOTE_MAX - 3] + "..."


def _check_event(obj: Any, in_list: bool) -> str | None:
    if not isinstance(obj, dict):
        return "an audit event must be a JSON object"
    kind = obj.get("kind")
    # items of an EventList may omit their TypeMeta
    if not (in_list and kind is None) and kind != "Event":
        return f"kind must be 'Event', got {_quote(kind)}"
    api_version = obj.get("apiVersion")
    if api_version is not None and api_version not in API_VERSIONS:
        return f"unsupported apiVersion {_quote(api_version)}"
    for key in _REQUIRED_STRINGS:
        if not isinstance(obj.get(key), str):
            return f"missing or non-string field {key!r}"
    if not isinstance(obj.get("user"), dict):
        return "missing field 'user'"
    for key in ("objectRef", "requestObject", "responseObject", "responseStatus", "annotations"):
        if key in obj and obj[key] is not None and not isinstance(obj[key], dict):
            return f"field {key!r} must be an object"
    return None


def iter_body(body: bytes | bytearray, *, cluster_name: str | None = None,
              received_ns: int | None = None) -> Iterator[AuditEvent | ItemError]:
    """The events of an ``Event`` or ``EventList`` body, one at a time.

    Raises :class:`AuditDecodeError` at once when nothing in the body is usable;
    otherwise returns an iterator giving each valid event, or an :class:`ItemError`
    for each invalid list item, decoding an item only when it is reached.
    """
    try:
        envelope = _envelope.decode(body)
    except msgspec.DecodeError as exc:
        if isinstance(exc, msgspec.ValidationError):  # valid JSON, but not an object
            raise AuditDecodeError("not_audit", "body must be a JSON object (Event or EventList)") from None
        raise AuditDecodeError("invalid_json", f"invalid JSON: {str(exc)[:200]}") from None
    now = received_ns if received_ns is not None else time.time_ns()
    if envelope.kind == "EventList":
        if envelope.apiVersion is not None and envelope.apiVersion not in API_VERSIONS:
            raise AuditDecodeError("not_audit", f"unsupported apiVersion {_quote(envelope.apiVersion)}")
        items = envelope.items
        if len(items) == 0 or (len(items) == 4 and bytes(items) == b"null"):  # absent or null: empty
            return iter(())
        try:
            slices = _item_slices.decode(items)
        except msgspec.DecodeError:
            raise AuditDecodeError("not_audit", "EventList 'items' must be a list") from None
        return _list_items(slices, now, cluster_name)
    if envelope.kind != "Event":
        raise AuditDecodeError(
            "not_audit", f"data not recognized as a k8s audit event (kind={_quote(envelope.kind)})")
    doc = _any.decode(body)
    problem = _check_event(doc, in_list=False)
    if problem is not None:
        raise AuditDecodeError("invalid_event", problem)
    return iter((AuditEvent(doc, raw=bytes(body), received_ns=now, cluster_name=cluster_name),))


def _list_items(slices: list[msgspec.Raw], now: int,
                cluster_name: str | None) -> Iterator[AuditEvent | ItemError]:
    for index in range(len(slices)):
        raw, slices[index] = slices[index], msgspec.Raw()  # the slice is not needed after this item
        item = _any.decode(raw)
        problem = _check_event(item, in_list=True)
        if problem is None:
            yield AuditEvent(item, received_ns=now, cluster_name=cluster_name)
        else:
            yield ItemError(index, problem)


def decode_body(body: bytes | bytearray, *, cluster_name: str | None = None,
                received_ns: int | None = None) -> Decoded:
    """Decode a whole body at once (tools and tests; the webhook uses :func:`iter_body`)."""
    events: list[AuditEvent] = []
    errors: list[ItemError] = []
    for item in iter_body(body, cluster_name=cluster_name, received_ns=received_ns):
        if isinstance(item, ItemError):
            errors.append(item)
        else:
            events.append(item)
    return Decoded(events, errors)
