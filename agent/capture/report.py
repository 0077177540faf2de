"""What ``falcopy replay CAPTURE`` prints: the alerts the capture reproduces (built
exactly as the live agent built them), the other rules its events match, and the
``--timeline`` table."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, TextIO

from falcopy.agent.capture.replay import Capture, replay_events
from falcopy.agent.fields.event import SyscallEvent
from falcopy.agent.fields.syscall import AgentSyscallSource


@dataclass
class ReplayResult:
    events: int = 0
    #: (rule, evt.num) of the alerts the live agent would have raised
    alerts: list[tuple[str, int]] = field(default_factory=list)
    #: rules that matched an event without being the alert raised (rule_matching: first)
    also: Counter[str] = field(default_factory=Counter)

    def reproduced(self, capture: Capture) -> bool:
        trig = capture.trigger
        return (str(trig.get("rule")), int(trig.get("evt.num", -1))) in self.alerts


def _agent_config(capture: Capture, as_json: bool, min_priority: str | None) -> Any:
    from falcopy.agent.control.config import AgentConfig

    settings = dict(capture.header.get("outputs") or {})
    settings["json_output"] = as_json
    if min_priority is not None:
        settings["priority"] = min_priority
    return AgentConfig.model_validate(settings)


def replay_capture(capture: Capture, ruleset: Any, out: TextIO, *, as_json: bool = False,
                   min_priority: str | None = None) -> ReplayResult:
    """Evaluate every event with ``ruleset`` (loaded with rule_matching "all" so that
    every matching rule is known); print the alerts the live agent's rule_matching
    raises, and after each the other rules that matched the same event."""
    from falcopy.agent.outputs.builder import AlertBuilder
    from falcopy.agent.outputs.format import AlertFormatter, FormatOptions

    config = _agent_config(capture, as_json, min_priority)
    sources = {"syscall": AgentSyscallSource()}
    builder = AlertBuilder(config, ruleset, sources, hostname=str(capture.header.get("hostname", "")))
    formatter = AlertFormatter(FormatOptions.from_config(config))
    first_only = config.rule_matching == "first"
    result = ReplayResult()
    for event in replay_events(capture):
        result.events += 1
        matched = [r for r in ruleset.evaluate(event) if builder.accepts(r.priority.falco_name)]
        if not matched:
            continue
        raised = matched[:1] if first_only else matched
        for rule in raised:
            alert = builder.build(rule, event)
            if alert is None:
                continue
            result.alerts.append((rule.name, event.num))
            out.write(formatter.line(alert).decode("utf-8", "replace") + "\n")
        others = matched[len(raised):]
        if others:
            result.also.update(r.name for r in others)
            if not as_json:
                out.write(f"    also matched: {', '.join(r.name for r in others)}\n")
    return result


def summary(capture: Capture, result: ReplayResult) -> list[str]:
    trig = capture.trigger
    verdict = "reproduced" if result.reproduced(capture) else "NOT reproduced"
    lines = [f"{capture.name}: {result.events} events, {len(result.alerts)} alerts; "
             f"trigger {trig.get('rule')!r} at evt.num {trig.get('evt.num')}: {verdict}"]
    live = set(capture.live_alerts)
    missing = sorted(live - set(result.alerts), key=lambda a: a[1])
    for rule, num in missing:
        lines.append(f"  live alert not reproduced: {rule!r} at evt.num {num}")
    for rule, n in sorted(result.also.items()):
        lines.append(f"  also matching (not raised with rule_matching first): {rule!r} on {n} event(s)")
    return lines


# --- timeline -----------------------------------------------------------------------------------

_SRC = AgentSyscallSource()


def _field(name: str) -> Any:
    found = _SRC.lookup(name)
    assert found is not None, name
    return _SRC.accessor(*found)


_ARGS = _field("evt.args")
_FD_NAME = _field("fd.name")


def _tree(event: SyscallEvent, depth: int = 3) -> str:
    chain = [event.thread, *event.ancestors()[: depth - 1]]
    return " < ".join(f"{t.comm or t.exe}[{t.pid}]" for t in chain)


def _details(event: SyscallEvent) -> str:
    rec = event.rec
    if rec.type in ("execve", "execveat"):
        t = event.thread
        return " ".join([t.exepath or t.exe, *t.args])
    fd_name = _FD_NAME(event)
    text = _ARGS(event)
    return f"{fd_name}  {text}" if fd_name else text


def _clock(ts: int) -> str:
    sec, frac = divmod(ts, 1_000_000_000)
    return time.strftime("%H:%M:%S", time.gmtime(sec)) + f".{frac // 1000:06d}"


def timeline(capture: Capture, out: TextIO, ruleset: Any = None, width: int = 0) -> int:
    """One row per event: time (UTC), event number, process < parent < grandparent,
    event type, result and key arguments; ``!`` marks the alert that triggered the
    capture, ``*`` the other live alerts; with rules, the rules each event matches."""
    live = {num for _, num in capture.live_alerts}
    trigger = int(capture.trigger.get("evt.num", -1))
    header = f"  {'TIME (UTC)':15} {'EVT.NUM':>9}  {'PROCESS < PARENT < ...':42} {'EVENT':12} DETAILS"
    out.write(header + "\n")
    rows = 0
    for event in replay_events(capture):
        mark = "!" if event.num == trigger else "*" if event.num in live else " "
        details = " ".join(_details(event).split())
        if ruleset is not None:
            names = [r.name for r in ruleset.evaluate(event)]
            if names:
                details += f"  => {'; '.join(names)}"
        line = f"{mark} {_clock(event.ts):15} {event.num:>9}  {_tree(event):42.42} {event.type:12} {details}"
        out.write((line[:width] if width else line).rstrip() + "\n")
        rows += 1
    return rows
