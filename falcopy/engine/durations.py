"""Falco's duration spelling (``1h``, ``15m``, ``30s``, ``100ms``, ``1h30m``), shared by
falco.yaml settings and rule keys such as ``threshold.window``."""

from __future__ import annotations

import re
from typing import Any

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|us|ns|s|m|h|d)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: Any) -> float:
    """``1h``, ``15m``, ``30s``, ``100ms``, ``1h30m`` -> seconds; a bare number is seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a duration such as 1h, 30s or 100ms, got {value!r}")
    text = value.strip()
    pos = 0
    total = 0.0
    for m in _DURATION_RE.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text) or pos == 0:
        raise ValueError(f"expected a duration such as 1h, 30s or 100ms, got {value!r}")
    return total
