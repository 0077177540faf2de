"""What the agent captures for a ruleset: the rules files, the syscall event types
(Falco's ``base_syscalls``) and the in-kernel interest filter."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from falcopy.agent.control.config import AgentConfig
from falcopy.agent.preflight import StartupError

from falcopy.engine import Ruleset


def default_rules_paths() -> list[Path]:
    """``$FALCOPY_RULES`` (colon-separated), else the rules shipped with falcopy."""
    env = os.environ.get("FALCOPY_RULES")
    if env:
        return [Path(p) for p in env.split(":") if p]
    from falcopy.distribution.shipped import shipped_rules

    found = shipped_rules(Path("/etc/falcopy/rules.d"))
    if not found:
        raise StartupError("no rules given (-r / rules_files) and no default rules directory found")
    return found


def wanted_types(ruleset: Ruleset, config: AgentConfig) -> set[str] | None:
    """The syscall event types to capture (None = all), as Falco's ``base_syscalls``.

    The rules' types, plus the state set the process/fd tables need (``STATE_EVENT_TYPES``)
    unless ``custom_set`` is given, which then replaces it (``repair: true`` adds it back);
    ``!name`` removes a type; ``all: true`` captures everything.  The probe always adds the
    process lifecycle.
    """
    from falcopy.agent.events.synthetic import SYNTHETIC_EVENT_TYPES
    from falcopy.agent.state import STATE_EVENT_TYPES

    base = config.base_syscalls
    if base.all:
        return None
    types = ruleset.evttypes("syscall")
    if types is None:
        return None
    out = set(types)
    if not base.custom_set or base.repair:
        out |= STATE_EVENT_TYPES
    for name in base.custom_set:
        if name.startswith("!"):
            out.discard(name[1:])
        else:
            out.add(name)
    from falcopy.agent.capture.service import recorded_types

    out |= recorded_types(config)
    # the agent makes these itself (the container event): the probe is not asked for them
    return out - SYNTHETIC_EVENT_TYPES


def derive_kernel_filter(ruleset: Ruleset, config: AgentConfig) -> Any:
    """The in-kernel interest filter for ``ruleset`` (None: switched off by
    ``falcopy.kernel_filter.enabled``, or by capture: the flight recorder keeps what a
    process did whether or not a rule could match it, so every record must reach it).
    Types ``base_syscalls.custom_set`` names pass whole: the user asked for them."""
    from falcopy.agent.pipeline import kernel_filter

    if not config.falcopy.kernel_filter.enabled or config.capture.enabled:
        return None
    extra = [n for n in config.base_syscalls.custom_set if not n.startswith("!")]
    return kernel_filter(ruleset, always=extra)
