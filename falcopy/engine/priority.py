"""Rule priorities, ordered like Falco's (0 = most severe)."""

from __future__ import annotations

import enum

_FALCO_NAMES = ("Emergency", "Alert", "Critical", "Error", "Warning", "Notice", "Informational", "Debug")
_ALIASES = {"info": 6}


class Priority(enum.IntEnum):
    EMERGENCY = 0
    ALERT = 1
    CRITICAL = 2
    ERROR = 3
    WARNING = 4
    NOTICE = 5
    INFORMATIONAL = 6
    DEBUG = 7

    @classmethod
    def parse(cls, text: str) -> Priority:
        """Case-insensitive, as Falco's ``parse_priority`` (``info`` accepted)."""
        t = str(text).strip().lower()
        for p in cls:
            if p.name.lower() == t:
                return p
        if t in _ALIASES:
            return cls(_ALIASES[t])
        raise ValueError(f"Invalid priority '{text}'")

    @classmethod
    def spellings(cls) -> list[str]:
        """Every accepted spelling, lower case (for error messages)."""
        return [p.name.lower() for p in cls] + list(_ALIASES)

    @classmethod
    def from_falco_name(cls, name: str) -> Priority:
        """The priority of an alert's capitalised name (``Warning``)."""
        return _BY_FALCO_NAME[name]

    @property
    def falco_name(self) -> str:
        return _FALCO_NAMES[self.value]


_BY_FALCO_NAME = {p.falco_name: p for p in Priority}
