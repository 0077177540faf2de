"""From an engine match (rule + event) to an :class:`Alert`, with Falco's ``append_output``.

Falco (>= 0.41, container plugin) appends the plugin's *suggested* fields to
every syscall alert: ``container_id=%container.id container_name=... k8s_ns_name=...``
in the text and the same fields in ``output_fields``.  falcopy has the container
and k8s fields built in and does the same when ``suggested_output`` is on
(Falco's default).  ``extra_output`` / ``extra_fields`` entries apply to the
rules their ``match`` selects (rule name, source, all of the given tags).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from falcopy.agent.control.config import PRIORITY_ORDER, AgentConfig, AppendOutput, ConfigError
from falcopy.agent.outputs.alert import Alert

log = logging.getLogger(__name__)

#: fields the container plugin marks as suggested output, in the order Falco prints them
SUGGESTED_FIELDS: dict[str, tuple[str, ...]] = {
    "syscall": (
        "container.id",
        "container.name",
        "container.image.repository",
        "container.image.tag",
        "k8s.pod.name",
        "k8s.ns.name",
    ),
}

Renderer = Any  # engine OutputFormat: .render(event) -> (str, dict)
CompileFn = Callable[[str, Any], Renderer]


def _default_compile(fmt: str, source: Any) -> Renderer:
    from falcopy.engine import compile_output

    return compile_output(fmt, source)


@dataclass(slots=True)
class _Extras:
    """What append_output adds to one rule's alerts."""

    text: list[Renderer] = field(default_factory=list)
    #: (name, renderer, as_string): `name: fmt` items render to text; a bare field keeps its type
    fields: list[tuple[str, Renderer, bool]] = field(default_factory=list)


def _applies(entry: AppendOutput, name: str, source: str, tags: list[str]) -> bool:
    m = entry.match
    if m.rule is not None and m.rule != name:
        return False
    if m.source is not None and m.source != source:
        return False
    return all(t in tags for t in m.tags)


def priority_rank(name: str) -> int:
    return PRIORITY_ORDER.index(name)


class AlertBuilder:
    def __init__(
        self,
        config: AgentConfig,
        ruleset: Any,
        sources: dict[str, Any],
        hostname: str | None = None,
        compile_fn: CompileFn | None = None,
    ) -> None:
        self._entries = list(config.append_output)
        self._iso = config.time_format_iso_8601
        self._min_rank = priority_rank(config.priority)
        self._sources = sources
        self._compile = compile_fn or _default_compile
        self.hostname = hostname if hostname is not None else config.hostname()
        self._ruleset = ruleset
        self._cache: dict[tuple[str, str], _Extras] = {}
        self.validate()

    def validate(self) -> None:
        """Compile every extra_output / extra_fields now, so a bad format stops start-up."""
        errors = []
        for i, entry in enumerate(self._entries):
            wanted = [entry.match.source] if entry.match.source else list(self._sources)
            compiled_somewhere = False
            problems = []
            for src in wanted:
                fsrc = self._sources.get(src)
                if fsrc is None:
                    problems.append(f"unknown source {src!r}")
                    continue
                try:
                    self._compile_entry(entry, fsrc)
                    compiled_somewhere = True
                except Exception as exc:
                    problems.append(f"{src}: {exc}")
            if (entry.extra_output or entry.extra_fields) and not compiled_somewhere:
                errors.append(f"append_output[{i}]: {'; '.join(problems)}")
        if errors:
            raise ConfigError(errors)

    def set_ruleset(self, ruleset: Any) -> None:
        self._ruleset = ruleset
        self._cache = {}

    def _compile_entry(self, entry: AppendOutput, fsrc: Any) -> _Extras:
        extras = _Extras()
        if entry.extra_output:
            extras.text.append(self._compile(entry.extra_output, fsrc))
        for item in entry.extra_fields:
            if isinstance(item, str):
                extras.fields.append((item, self._compile(f"%{item}", fsrc), False))
            else:
                ((name, fmt),) = item.items()
                extras.fields.append((name, self._compile(str(fmt), fsrc), True))
        return extras

    def _extras_for(self, rule: Any, own_fields: dict[str, Any]) -> _Extras:
        key = (rule.name, rule.source)
        extras = self._cache.get(key)
        if extras is not None:
            return extras
        extras = _Extras()
        fsrc = self._sources.get(rule.source)
        if fsrc is not None:
            for entry in self._entries:
                if not _applies(entry, rule.name, rule.source, list(rule.tags)):
                    continue
                try:
                    part = self._compile_entry(entry, fsrc)
                except Exception:  # validated at start-up; a source it does not fit is skipped
                    part = _Extras()
                extras.text.extend(part.text)
                extras.fields.extend(part.fields)
                if entry.suggested_output:
                    # static_fields are suggested for every source, as Falco does
                    candidates = (*SUGGESTED_FIELDS.get(rule.source, ()), *fsrc.constants)
                    suggested = [f for f in candidates if f not in own_fields]
                    if suggested:
                        fmt = " ".join(f"{f.replace('.', '_')}=%{f}" for f in suggested)
                        try:
                            extras.text.append(self._compile(fmt, fsrc))
                        except Exception as exc:
                            log.warning("suggested output for source %s not available: %s", rule.source, exc)
        self._cache[key] = extras
        return extras

    def accepts(self, priority_name: str) -> bool:
        return priority_rank(priority_name) <= self._min_rank

    def build(self, rule: Any, event: Any) -> Alert | None:
        prio = rule.priority.falco_name
        if not self.accepts(prio):
            return None
        message, fields = self._ruleset.format(rule, event)
        fields = dict(fields)
        extras = self._extras_for(rule, fields)
        if extras.text:
            parts = [message]
            for fmt in extras.text:
                text, more = fmt.render(event)
                if text:
                    parts.append(text)
                fields.update(more)
            message = " ".join(parts)
        for name, fmt, as_string in extras.fields:
            text, more = fmt.render(event)
            fields[name] = text if as_string else more.get(name, text)
        fields["evt.time.iso8601" if self._iso else "evt.time"] = event.ts
        return Alert(
            ts=event.ts,
            rule=rule.name,
            priority=prio,
            message=message,
            output_fields=fields,
            tags=sorted(rule.tags),
            source=rule.source,
            hostname=self.hostname,
        )

    def internal(self, rule: str, priority: str, message: str, fields: dict[str, Any], ts: int) -> Alert:
        """Falco's "Falco internal: ..." alerts (source ``internal``)."""
        return Alert(
            ts=ts,
            rule=rule,
            priority=priority,
            message=message,
            output_fields=fields,
            tags=[],
            source="internal",
            hostname=self.hostname,
        )
