"""Which probe programs to load first: the ones the agent's rules needed at its last start.

Verifying programs is most of the probe's start-up, and the BPF load begins before the
configuration and the rules are read (:mod:`falcopy.agent.runtime.probe_loader`), so
the set the rules will need is not known yet.  The set the same command line needed
last time (same arguments, ``$FALCOPY_CONFIG``, working directory and object file) is
a good guess: the load verifies those, and once the rules are compiled any program
still missing is loaded before attaching (``Probe._load_programs``); one too many only
costs its verification.  A miss (first start, new command line or object) loads every
program of the main object, as without the cache.  Stored as a JSON list of event
names in the private cache directory (:mod:`falcopy.common.private_cache`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from falcopy.common import private_cache

log = logging.getLogger(__name__)

FORMAT = 1
SUFFIX = ".programs"
#: entries kept (one per command line and object file); the oldest go beyond this
MAX_ENTRIES = 16


def command_key(argv: Sequence[str]) -> str:
    """What identifies one agent's configuration before it is read."""
    h = hashlib.sha256(f"falcopy-programs/{FORMAT}\n".encode())
    for part in (*argv, os.environ.get("FALCOPY_CONFIG", ""), os.getcwd()):
        h.update(part.encode("utf-8", "surrogateescape") + b"\0")
    return h.hexdigest()


def _entry(key: str, obj: Path) -> str | None:
    try:
        st = obj.stat()
    except OSError:
        return None
    h = hashlib.sha256(f"{key}\n{obj.resolve()}\n{st.st_size}\n{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:32] + SUFFIX


def remembered(key: str, obj: Path) -> frozenset[str] | None:
    """The event types whose programs were needed last time, or None (unknown)."""
    directory, entry = private_cache.cache_dir(), _entry(key, obj)
    if directory is None or entry is None:
        return None
    raw = private_cache.read_private(directory, entry)
    if raw is None:
        return None
    try:
        names = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        return None
    return frozenset(names)


def remember(key: str, obj: Path, events: Iterable[str]) -> None:
    """Record the event types the rules need now; failures only cost the guess."""
    directory, entry = private_cache.cache_dir(), _entry(key, obj)
    if directory is None or entry is None:
        return
    try:
        if private_cache.write_private(directory, entry, json.dumps(sorted(events)).encode()):
            private_cache.prune(directory, SUFFIX, MAX_ENTRIES)
    except OSError as exc:
        log.debug("probe program cache not written in %s: %s", directory, exc)

