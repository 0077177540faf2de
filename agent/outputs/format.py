"""Alert text and JSON exactly as Falco prints them.

Text: ``<time>: <Priority> <message>`` where ``<time>`` is ``HH:MM:SS.nnnnnnnnn`` in
local time, or ``YYYY-MM-DDTHH:MM:SS.nnnnnnnnn+0000`` with ``time_format_iso_8601``
(libsinsp's ``evt.time`` / ``evt.time.iso8601``).

JSON: one object per line, keys sorted at every level (nlohmann::json's default
std::map ordering), compact separators, ``time`` in UTC with nine fraction
digits and ``Z``.  Optional keys follow the ``json_include_*`` settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from falcopy.agent.outputs.alert import Alert

from falcopy.common import timefmt


def time_prefix(ts_ns: int, iso8601: bool) -> str:
    return timefmt.iso8601_offset(ts_ns) if iso8601 else timefmt.clock(ts_ns)


rfc3339 = timefmt.iso8601


def _default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, set | frozenset | tuple):
        return sorted(value, key=str) if isinstance(value, set | frozenset) else list(value)
    return str(value)


def _scrub(value: Any) -> Any:
    """Replace what is not valid UTF-8 (surrogate-escaped kernel bytes), as nlohmann does."""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    if isinstance(value, dict):
        return {_scrub(k): _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def dumps(obj: dict[str, Any]) -> bytes:
    opts = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
    try:
        return orjson.dumps(obj, default=_default, option=opts)
    except orjson.JSONEncodeError:
        return orjson.dumps(_scrub(obj), default=_default, option=opts)


@dataclass(frozen=True, slots=True)
class FormatOptions:
    json_output: bool = False
    iso8601: bool = False
    include_output: bool = True
    include_message: bool = False
    include_output_fields: bool = True
    include_tags: bool = True

    @classmethod
    def from_config(cls, config: Any) -> FormatOptions:
        return cls(
            json_output=config.json_output,
            iso8601=config.time_format_iso_8601,
            include_output=config.json_include_output_property,
            include_message=config.json_include_message_property,
            include_output_fields=config.json_include_output_fields_property,
            include_tags=config.json_include_tags_property,
        )


class AlertFormatter:
    def __init__(self, options: FormatOptions) -> None:
        self.options = options

    def text(self, alert: Alert) -> str:
        """Falco's output line: ``<time>: <Priority> <message>``."""
        return f"{time_prefix(alert.ts, self.options.iso8601)}: {alert.priority} {alert.message}"

    def as_dict(self, alert: Alert) -> dict[str, Any]:
        o = self.options
        doc: dict[str, Any] = {
            "hostname": alert.hostname,
            "priority": alert.priority,
            "rule": alert.rule,
            "source": alert.source,
            "time": rfc3339(alert.ts),
        }
        if o.include_output:
            doc["output"] = self.text(alert)
        if o.include_message:
            doc["message"] = alert.message
        if o.include_output_fields:
            doc["output_fields"] = alert.output_fields
        if o.include_tags:
            doc["tags"] = sorted(alert.tags)
        if alert.capture_file:
            doc["capture_file"] = alert.capture_file
        return doc

    def json(self, alert: Alert) -> bytes:
        return dumps(self.as_dict(alert))

    def line(self, alert: Alert) -> bytes:
        """What stdout/file/syslog/program receive (without the newline)."""
        if self.options.json_output:
            return self.json(alert)
        return self.text(alert).encode("utf-8", "surrogateescape").decode("utf-8", "replace").encode()


class FormattedAlert:
    """An alert travelling to the sinks; each rendering is computed once, off the event path."""

    __slots__ = ("_json", "_line", "alert", "formatter")

    def __init__(self, alert: Alert, formatter: AlertFormatter) -> None:
        self.alert = alert
        self.formatter = formatter
        self._json: bytes | None = None
        self._line: bytes | None = None

    @property
    def json(self) -> bytes:
        if self._json is None:
            self._json = self.formatter.json(self.alert)
        return self._json

    @property
    def line(self) -> bytes:
        if self._line is None:
            self._line = self.json if self.formatter.options.json_output else self.formatter.line(self.alert)
        return self._line
