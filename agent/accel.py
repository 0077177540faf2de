"""Which implementation of the compiled modules is imported: the Cython extension
(``make accel``) or the ``.py`` it was built from.

The ``.py`` is the one implementation; the extension is that file compiled (typed by its
``.pxd``).  The extension is imported only when it was built from the ``.py`` and ``.pxd``
now beside it (the SHA-256 of both, written beside the extension by the build: an
extension of older sources would run old code, so the ``.py`` is taken instead, with a
warning; a digest rather than mtimes, which a checkout or a wheel's install reorders) and
``FALCOPY_NO_ACCEL`` is unset or ``0`` (set: the ``.py``, always).  Installed by
:mod:`falcopy.agent`'s ``__init__``, before any of those modules is imported.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

log = logging.getLogger(__name__)

#: the modules ``make accel`` compiles (scripts/build_accel.py): the pipeline's fast loop
#: (typed by fastpath.pxd) and what it calls per record, compiled as they are
ACCELERATED: tuple[str, ...] = (
    "falcopy.agent.fastpath",
    "falcopy.agent.prefilter",
    "falcopy.agent.socket_prefilter",
    "falcopy.agent.state.fdops",
)
ENV = "FALCOPY_NO_ACCEL"


def disabled() -> bool:
    """True when ``FALCOPY_NO_ACCEL`` asks for the plain-Python modules."""
    return os.environ.get(ENV, "") not in ("", "0")


def source_digest(source: Path) -> str:
    """The digest of ``source`` and its ``.pxd``: what an extension was built from."""
    import hashlib  # only where an extension exists: the agent's plain runs never pay it

    digest = hashlib.sha256()
    for p in (source, source.with_suffix(".pxd")):
        if p.exists():
            digest.update(p.name.encode() + b"\0" + p.read_bytes())
    return digest.hexdigest()


def digest_file(ext: Path) -> Path:
    """Where the build writes the digest of the sources ``ext`` was compiled from."""
    return ext.with_name(ext.name + ".sha256")


def is_compiled(module: ModuleType) -> bool:
    """Whether ``module`` was imported from its extension."""
    return Path(module.__file__ or "").suffix not in (".py", ".pyc")


class _Chooser:
    """A meta-path finder for :data:`ACCELERATED` only: answers with the ``.py`` when the
    extension must not be used, and leaves every other case to the default finders."""

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in ACCELERATED:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.origin is None or not spec.origin.endswith(
                tuple(importlib.machinery.EXTENSION_SUFFIXES)):
            return None  # no extension built: the default finders take the .py
        ext = Path(spec.origin)
        source = ext.with_name(fullname.rpartition(".")[2] + ".py")
        if disabled():
            return importlib.util.spec_from_file_location(fullname, source)
        try:
            built_from = digest_file(ext).read_text().strip()
        except OSError:
            built_from = ""
        if built_from != source_digest(source):
            log.warning("%s: the compiled module %s was not built from %s as it is now: running "
                        "the .py (make accel rebuilds it)", fullname, ext.name, source.name)
            return importlib.util.spec_from_file_location(fullname, source)
        return None


def install() -> None:
    """Put the chooser first on ``sys.meta_path`` (once)."""
    if not any(isinstance(f, _Chooser) for f in sys.meta_path):
        sys.meta_path.insert(0, _Chooser())
