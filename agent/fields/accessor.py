"""What a live field accessor is, shared by the field-class modules
(:mod:`.evt`, :mod:`.proc`, :mod:`.fd`, :mod:`.user`, :mod:`.container`, :mod:`.k8smeta`).

Each of those modules exports, for its field class:

- ``FIELDS``: field name -> accessor (one accessor per field);
- ``WITH_ARG``: field name -> factory of an accessor for the field's argument (``proc.aname[2]``);
- ``DIRECT``: fields whose accessor costs less than the engine's per-event memo lookup;
- ``UNAVAILABLE``: fields the agent never has data for (always None), with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from falcopy.agent.fields.event import SyscallEvent

Simple = Callable[[SyscallEvent], Any]
Factory = Callable[[str | None], Simple]


def none(ev: SyscallEvent) -> Any:
    return None
