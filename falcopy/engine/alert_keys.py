"""falcopy's per-rule ``aggregation`` and ``threshold`` keys: what they say, and how
their values are read from the rules file.

Real Falco (0.44) loads a rule carrying these keys: the reader ignores a key it
does not know with a ``LOAD_UNKNOWN_KEY`` warning (older releases ignore it
silently) and its JSON schema reports it as a schema warning only.  falcopy
knows them, so they raise no warning here; a malformed value is an error naming
the key, file and line.

    aggregation: false                 # this rule's alerts are never aggregated
    aggregation:
      enabled: true                    # optional: default = falcopy.aggregation.enabled
      window: 30s                      # optional: default = falcopy.aggregation.window
      key: [container.id, fd.name]     # optional: default = the output fields minus volatile ones
    threshold:
      count: 20                        # fire when the condition matched this often...
      window: 10s                      # ...within this long (sliding)
      group_by: [proc.pid]             # optional: counted per value of these fields
      distinct: fd.name                # optional: count distinct values of this field
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from falcopy.engine.durations import parse_duration
from falcopy.engine.fields.base import FieldSource
from falcopy.engine.output import OutputFormat, compile_output

#: the rule keys falcopy adds to Falco's set
FALCOPY_RULE_KEYS = frozenset({"aggregation", "threshold"})

AGGREGATION_KEYS = frozenset({"enabled", "window", "key"})
THRESHOLD_KEYS = frozenset({"count", "window", "group_by", "distinct"})


class AlertKeyError(ValueError):
    """A malformed aggregation/threshold value: ``path`` names the offending sub-key."""

    def __init__(self, message: str, path: str) -> None:
        super().__init__(message)
        self.message = message
        self.path = path


@dataclass(frozen=True)
class AggregationSpec:
    #: None: follow the agent's falcopy.aggregation.enabled
    enabled: bool | None = None
    #: seconds; None: the agent's falcopy.aggregation.window
    window: float | None = None
    #: fields whose values make two alerts "the same"; empty: output fields minus volatile ones
    key: tuple[str, ...] = ()


@dataclass(frozen=True)
class ThresholdSpec:
    count: int
    window: float
    group_by: tuple[str, ...] = ()
    distinct: str | None = None

    def describe(self) -> str:
        what = f"{self.count} distinct {self.distinct}" if self.distinct else f"{self.count} matches"
        per = f" per {', '.join(self.group_by)}" if self.group_by else ""
        return f">= {what} in {self.window:g}s{per}"


@dataclass
class RuleAlertKeys:
    """What a rules file said about one rule (collected; fields checked by the collector)."""

    aggregation: AggregationSpec | None = None
    threshold: ThresholdSpec | None = None
    #: (field, sub-key path) for every field named, so the collector can check them
    fields: list[tuple[str, str]] = field(default_factory=list)


def _bool(value: Any, path: str) -> bool:
    if isinstance(value, bool):
        return value
    raise AlertKeyError(f"'{path}' must be true or false, got {value!r}", path)


def _window(value: Any, path: str) -> float:
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise AlertKeyError(f"'{path}': {exc}", path) from None
    if seconds <= 0:
        raise AlertKeyError(f"'{path}' must be a positive duration, got {value!r}", path)
    return seconds


def _field_list(value: Any, path: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise AlertKeyError(f"'{path}' must be a non-empty list of field names", path)
    return tuple(v.strip() for v in value)


def _mapping(value: Any, path: str, allowed: frozenset[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise AlertKeyError(f"'{path}' must be a mapping with keys {', '.join(sorted(allowed))}", path)
    for k in value:
        if k not in allowed:
            allowed_text = ", ".join(sorted(allowed))
            raise AlertKeyError(f"unknown key '{path}.{k}' (allowed: {allowed_text})", f"{path}.{k}")
    return dict(value)


def parse_aggregation(value: Any) -> AggregationSpec:
    if isinstance(value, bool):
        return AggregationSpec(enabled=value)
    m = _mapping(value, "aggregation", AGGREGATION_KEYS)
    return AggregationSpec(
        enabled=_bool(m["enabled"], "aggregation.enabled") if "enabled" in m else None,
        window=_window(m["window"], "aggregation.window") if "window" in m else None,
        key=_field_list(m["key"], "aggregation.key") if "key" in m else (),
    )


def parse_threshold(value: Any) -> ThresholdSpec:
    m = _mapping(value, "threshold", THRESHOLD_KEYS)
    for required in ("count", "window"):
        if required not in m:
            raise AlertKeyError(f"'threshold' needs '{required}'", "threshold")
    count = m["count"]
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise AlertKeyError(f"'threshold.count' must be an integer >= 1, got {count!r}", "threshold.count")
    distinct = m.get("distinct")
    if distinct is not None and (not isinstance(distinct, str) or not distinct.strip()):
        raise AlertKeyError("'threshold.distinct' must be one field name", "threshold.distinct")
    return ThresholdSpec(
        count=count,
        window=_window(m["window"], "threshold.window"),
        group_by=_field_list(m["group_by"], "threshold.group_by") if "group_by" in m else (),
        distinct=distinct.strip() if isinstance(distinct, str) else None,
    )


def parse_rule_keys(item: dict[str, Any]) -> RuleAlertKeys:
    """Read ``aggregation`` / ``threshold`` from one rule item (plain Python values)."""
    out = RuleAlertKeys()
    if "aggregation" in item:
        out.aggregation = parse_aggregation(item["aggregation"])
        out.fields += [(f, "aggregation.key") for f in out.aggregation.key]
    if "threshold" in item:
        out.threshold = parse_threshold(item["threshold"])
        out.fields += [(f, "threshold.group_by") for f in out.threshold.group_by]
        if out.threshold.distinct:
            out.fields.append((out.threshold.distinct, "threshold.distinct"))
    return out


def field_reader(fields: tuple[str, ...], source: FieldSource) -> OutputFormat | None:
    """The values of ``fields`` for an event: ``reader.render(event)[1]`` maps each field
    to its typed value (None where the event has none, ``<NA>`` in text)."""
    if not fields:
        return None
    return compile_output(" ".join(f"%{f}" for f in fields), source)


def hashable(value: Any) -> Any:
    """A dict key made of field values (lists become tuples)."""
    if isinstance(value, list | tuple):
        return tuple(hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((str(k), hashable(v)) for k, v in value.items()))
    return value
