"""Container id of a process, from its /proc/PID/cgroup text.

The runtime-specific cgroup patterns live in the enrichment package; the
process table only needs Falco's 12-char ``container.id``.
"""

from __future__ import annotations

from falcopy.agent.enrichment.cgroup import container_id_from_cgroup
from falcopy.agent.enrichment.model import HOST_CONTAINER_ID as HOST


def full_container_id(cgroup_text: str | None) -> str:
    """64-hex id, or "" for a host process."""
    if not cgroup_text:
        return ""
    _short, full, _runtime = container_id_from_cgroup(cgroup_text)
    return "" if full == HOST else full


def container_id(cgroup_text: str | None) -> str:
    """Falco's container.id: 12 hex chars, or "host"."""
    full = full_container_id(cgroup_text)
    return full[:12] if full else HOST
