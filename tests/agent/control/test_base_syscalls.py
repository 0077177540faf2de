"""base_syscalls: which event types the agent asks the probe for, as Falco decides."""

from __future__ import annotations

from falcopy.agent.app import wanted_types
from falcopy.agent.control.config import load_config
from falcopy.agent.state import STATE_EVENT_TYPES

from falcopy.engine import RulesInput, load_rules

RULES = """
- rule: r
  desc: d
  condition: evt.type in (openat, mkdir) and fd.name = /x
  output: o %fd.name
  priority: INFO
"""


def _ruleset():
    return load_rules([RulesInput("r.yaml", RULES)]).ruleset


def test_rules_plus_state_set_by_default() -> None:
    types = wanted_types(_ruleset(), load_config(None))
    assert {"openat", "mkdir"} <= types and STATE_EVENT_TYPES <= types


def test_custom_set_replaces_state_set_unless_repair() -> None:
    cfg = load_config(None, ['base_syscalls.custom_set=[ptrace, "!openat"]'])
    assert wanted_types(_ruleset(), cfg) == {"mkdir", "ptrace"}
    cfg = load_config(None, ["base_syscalls.custom_set=[ptrace]", "base_syscalls.repair=true"])
    assert wanted_types(_ruleset(), cfg) == {"openat", "mkdir", "ptrace"} | STATE_EVENT_TYPES


def test_all() -> None:
    assert wanted_types(_ruleset(), load_config(None, ["base_syscalls.all=true"])) is None
