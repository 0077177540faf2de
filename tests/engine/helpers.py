"""Small helpers for engine tests: load YAML text, evaluate dict events."""

from __future__ import annotations

from typing import Any

from falcopy.engine import LoadResult, Ruleset, RulesInput, load_rules
from falcopy.engine.event import DictEvent


def load(text: str, **kwargs: Any) -> LoadResult:
    return load_rules([RulesInput("test.yaml", text)], **kwargs)


def ruleset(text: str, **kwargs: Any) -> Ruleset:
    res = load(text, **kwargs)
    assert res.ok, [str(e) for e in res.errors]
    assert res.ruleset is not None
    return res.ruleset


def one_rule(condition: str, evt_type: str | None = "open", output: str = "out") -> Ruleset:
    cond = condition if evt_type is None else f"evt.type={evt_type} and ({condition})"
    return ruleset(f"""
- rule: r
  desc: d
  condition: |-
    {cond}
  output: |-
    {output}
  priority: WARNING
  warn_evttypes: false
""")


def matches(condition: str, values: dict[str, Any], evt_type: str | None = "open") -> bool:
    rs = one_rule(condition, evt_type)
    ev = dict(values)
    if evt_type is not None:
        ev.setdefault("evt.type", evt_type)
    return bool(rs.evaluate(DictEvent(ev)))
