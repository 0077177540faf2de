"""What the rule engine needs from an event, whatever its source.

Every event source (the kernel capture, the k8s audit webhook, `replay`)
hands the engine objects that satisfy :class:`Event`.  Field values are not
read from the event by the engine directly: at compile time the engine asks
the source's :class:`~falcopy.engine.fields.base.FieldSource` for an accessor
per field reference, so each source decides how a value is produced (dict
lookup, process table, JSON pointer...).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Event(Protocol):
    #: event source name: "syscall", "k8s_audit", "internal"
    source: str
    #: event type used by the evt.type index (e.g. "openat"); None when the
    #: source has no types (k8s_audit): such events only see rules whose
    #: event-type set is "all".
    type: str | None
    #: wall clock, nanoseconds since the epoch
    ts: int


class DictEvent:
    """An event whose field values are given directly, keyed by field text.

    Used by `falcopy replay` and by tests: ``{"evt.type": "openat",
    "proc.name": "cat", "proc.aname[2]": "bash", "proc.aname": ["bash", ...]}``.
    The key is the field as written in a rule (with its argument in brackets).
    """

    __slots__ = ("source", "ts", "type", "values")

    def __init__(self, values: dict[str, Any], source: str = "syscall", ts: int | None = None) -> None:
        self.values = values
        self.source = source
        evt_type = values.get("evt.type")
        self.type = evt_type if isinstance(evt_type, str) else None
        raw_ts = ts if ts is not None else values.get("evt.time", 0)
        self.ts = int(raw_ts) if isinstance(raw_ts, int | float) else 0
