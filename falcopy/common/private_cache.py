"""Files in falcopy's cache directory that only the agent's own user can have written.

Where: ``$FALCOPY_CACHE_DIR`` (empty = no cache), else ``/var/cache/falcopy`` for root
and ``$XDG_CACHE_HOME/falcopy`` (``~/.cache/falcopy``) otherwise.  The directory is
created 0700 and an entry is only read if the directory and the entry belong to the
current user and are not writable by anyone else: another user must not be able to
feed the agent what it reads back (composed rules, the programs to load first).
Imports nothing heavy: read on the agent's start-up path.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)


def cache_dir() -> Path | None:
    env = os.environ.get("FALCOPY_CACHE_DIR")
    if env is not None:
        return Path(env) if env else None
    if os.geteuid() == 0:
        return Path("/var/cache/falcopy")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "falcopy"


def _private(st: os.stat_result) -> bool:
    return st.st_uid == os.geteuid() and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def read_private(directory: Path, name: str) -> bytes | None:
    """The content of entry ``name``, or None (absent, unreadable, not private)."""
    path = directory / name
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not (_private(os.stat(directory)) and _private(os.fstat(fd))):
            log.warning("ignoring the cache %s: not private to uid %d", directory, os.geteuid())
            return None
        with os.fdopen(os.dup(fd), "rb") as f:
            return f.read()
    except OSError as exc:
        log.debug("cache entry %s unreadable: %s", path, exc)
        return None
    finally:
        os.close(fd)


def write_private(directory: Path, name: str, data: bytes) -> bool:
    """Replace entry ``name`` atomically; False if the directory is not private (nothing
    written).  Raises OSError: a cache's callers decide what a failure costs."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not _private(os.stat(directory)):
        return False
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, directory / name)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return True


def prune(directory: Path, suffix: str, keep: int) -> None:
    """Remove all but the ``keep`` newest entries ending in ``suffix``."""
    entries = sorted(directory.glob(f"*{suffix}"), key=lambda p: p.stat().st_mtime)
    for old in entries[:-keep]:
        with contextlib.suppress(OSError):
            old.unlink()
