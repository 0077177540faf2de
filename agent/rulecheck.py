"""What a rule needs from this node to ever fire: its event source switched on, its
event types capturable by the probe, the fields it reads filled.  The engine turns what
is missing into one warning per rule (``load_rules(disabled_sources=..., capturable=...,
unavailable_fields=...)``), in the agent's log and in ``falcopy validate``."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from falcopy.agent.control.config import AgentConfig


def disabled_sources(config: AgentConfig) -> dict[str, str]:
    """Sources this configuration switches off -> the setting that does it."""
    out: dict[str, str] = {}
    if not config.falcopy.k8s_audit.enabled:
        out["k8s_audit"] = "falcopy.k8s_audit.enabled is false"
    return out


def unavailable_fields(config: AgentConfig) -> dict[str, str]:
    """Fields that never have a value with this configuration -> why: the registry behind
    the ``LOAD_UNAVAILABLE_FIELD`` warning.  Keys are field names or ``prefix.*``; a
    collector or resolver the configuration switches off adds its fields here."""
    from falcopy.agent.fields import k8smeta
    from falcopy.agent.fields.fd import ADDRESS_OF
    from falcopy.agent.fields.syscall import ALWAYS_NONE

    out = dict(ALWAYS_NONE)
    if not config.falcopy.dns.enabled:
        out.update(dict.fromkeys(ADDRESS_OF, "falcopy.dns.enabled is false"))
    if not config.falcopy.enrichment.k8smeta.enabled:
        why = ("falcopy.enrichment.k8smeta.enabled is false: no workload metadata from the operator's "
               "collector")
        out.update(dict.fromkeys([*k8smeta.FIELDS, *k8smeta.WITH_ARG], why))
    return out


def capturable_event_types() -> frozenset[str]:
    """Syscall-source event types the agent can produce here: the probe's (dedicated
    programs and the running architecture's syscall table) and its synthetic ones."""
    from falcopy.agent.events.synthetic import SYNTHETIC_EVENT_TYPES
    from falcopy.agent.kernel.syscalls import capturable_syscall_events

    return capturable_syscall_events() | frozenset(SYNTHETIC_EVENT_TYPES)
