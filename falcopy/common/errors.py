"""The base class of falcopy's own errors.

Every error the project raises on purpose (bad configuration, a rules file
that does not load, a sink that cannot start, a bundle mid-update, a BPF call
that failed) derives from :class:`FalcopyError`, so a caller can tell an
expected, reportable condition from a bug.
"""

from __future__ import annotations


class FalcopyError(Exception):
    """An expected, reportable failure (as opposed to a bug)."""
