"""Where the rules shipped with falcopy are found (agent and operator load the same defaults)."""

from __future__ import annotations

import sys
from pathlib import Path


def shipped_rules(*system_dirs: Path) -> list[Path]:
    """The first directory that exists of: the repository's ``rules/`` (editable install),
    ``<prefix>/share/falcopy/rules`` (installed), then ``system_dirs``; [] if none does."""
    for candidate in (
        Path(__file__).resolve().parents[2] / "rules",
        Path(sys.prefix) / "share" / "falcopy" / "rules",
        *system_dirs,
    ):
        if candidate.is_dir():
            return [candidate]
    return []
