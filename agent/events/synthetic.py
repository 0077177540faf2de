"""Event types the agent makes itself rather than capturing them: Falco's ``container``
event, built when a container's metadata is complete (agent/fields/container_event.py)."""

from __future__ import annotations

SYNTHETIC_EVENT_TYPES: frozenset[str] = frozenset({"container"})
