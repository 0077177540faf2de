"""Recorded events for ``falcopy replay``: one JSON object of field values per line.

The format (docs/engine.md has a complete example)::

    {"evt.type": "openat", "evt.time": "2026-06-10T10:00:00.000000001Z",
     "proc.name": "cat", "fd.name": "/etc/shadow", "proc.aname[2]": "bash"}

Keys are fields as a rule writes them (an argument in brackets or dotted);
``source`` selects the event source (default ``syscall``); ``evt.time`` is
nanoseconds since the epoch or an RFC 3339 time.  A raw Kubernetes audit
event (``kind: Event``) is an event of the ``k8s_audit`` source as it is.
A key that is no field of the source is an error naming the line and the
closest field; fields the rules read that an event lacks are counted, so the
report can name each once.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from datetime import datetime
from typing import Any

from falcopy.engine.event import DictEvent
from falcopy.engine.fields import AuditEvent, FieldSource

_BRACKET = re.compile(r"^([^\[]+)\[(.*)\]$")


class ReplayInputError(ValueError):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


class _Recording(dict[str, Any]):
    """Field values; lookups of absent fields are noted (the rules needed them)."""

    __slots__ = ("absent",)

    def __init__(self, values: dict[str, Any]) -> None:
        super().__init__(values)
        self.absent: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        if key in self:
            return dict.__getitem__(self, key)
        self.absent.add(key)
        return default


def parse_time(value: Any, line: int) -> int:
    if isinstance(value, bool):
        raise ReplayInputError(line, "evt.time must be nanoseconds since the epoch or an RFC 3339 time")
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str):
        m = re.fullmatch(r"(.*T\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:?\d\d)", value.strip())
        if m:
            base = datetime.fromisoformat(m.group(1) + (m.group(3).replace("Z", "+00:00")))
            frac = int((m.group(2) or "0").ljust(9, "0"))
            return int(base.timestamp()) * 1_000_000_000 + frac
    raise ReplayInputError(
        line, f"evt.time {value!r} is neither nanoseconds since the epoch nor an RFC 3339 time")


class ReplayReader:
    """Turns each line's object into an event of its source, checking its field names."""

    def __init__(self, sources: dict[str, FieldSource]) -> None:
        self.sources = sources
        self._missing: Counter[str] = Counter()
        self._last: _Recording | None = None

    @property
    def missing(self) -> Counter[str]:
        """Field text -> events that lacked it when a rule read it (counted once per event)."""
        self._fold()
        return self._missing

    def _fold(self) -> None:
        if self._last is not None:
            self._missing.update(self._last.absent)
            self._last = None

    def event(self, values: dict[str, Any], line: int) -> Any:
        self._fold()
        if values.get("kind") == "Event" and str(values.get("apiVersion", "")).startswith("audit.k8s.io/"):
            return AuditEvent(values)
        values = dict(values)
        source = str(values.pop("source", "syscall"))
        src = self.sources.get(source)
        if src is None:
            known = ", ".join(sorted(self.sources))
            raise ReplayInputError(line, f"unknown source {source!r} (known: {known})")
        for key in values:
            self._check_field(src, key, line)
        ts = parse_time(values["evt.time"], line) if "evt.time" in values else None
        if ts is not None:
            values["evt.time"] = ts
        event = DictEvent(values, source=source, ts=ts if ts is not None else 0)
        event.values = self._last = _Recording(values)  # from here on, reads are the rules'
        return event

    def _check_field(self, src: FieldSource, key: str, line: int) -> None:
        m = _BRACKET.match(key)
        name = m.group(1) if m else key
        if src.lookup(name) is not None:
            return
        close = difflib.get_close_matches(name, list(src.fields), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ReplayInputError(line, f"unknown field {key!r} for source {src.name}{hint}")
