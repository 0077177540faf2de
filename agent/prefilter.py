"""A cheap test, per open record, of whether any rule could match it, before the
event is built and the rules are run.

Opens are most of what reaches user space (a build, a package manager, a log shipper)
and the rules on them name files: Falco's stable rules fire on an open only for a few
dozen paths, directories and basenames, or for a raw name with ``../``.  The in-kernel
interest filter (:mod:`falcopy.engine.kernel_filter`) already derives, per event type, a
sound over-approximation of what the rules can match; this module turns the open
family's clauses into set lookups on the fd the process table just built, so that an
open no rule can match costs a few dictionary probes instead of the condition trees
(about 40 Python calls per open with the stable rules).  Widening only: negative
constraints, process names and the call's result are ignored, so every open a rule
could match is evaluated, whether the kernel filter is on or off.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from falcopy.agent.state.model import FdInfo, ThreadInfo

try:
    import cython
except ImportError:  # no Cython where the agent runs: this file runs as plain Python
    import falcopy.agent.cython_shim as cython

from falcopy.engine.kernel_filter import (
    F_CREATE,
    F_DOTDOT,
    F_READ,
    F_TRUNC,
    F_WRITE,
    OPEN_TYPES,
    Clause,
    derive,
)

log = logging.getLogger(__name__)

#: (the record's fd, its thread) -> could a rule match this record; the pipeline's fast
#: path calls it before any record or event exists (it decodes one only for a candidate)
Check = Callable[[FdInfo | None, ThreadInfo], bool]

_ACCMODE = os.O_ACCMODE
_O_CREAT = os.O_CREAT
_O_TRUNC = os.O_TRUNC


def open_checks(ruleset: Any) -> dict[str, Check]:
    """Per open type, the check for ``ruleset`` (a type without one is always
    evaluated).  Empty when the ruleset is not a compiled one (a test's stand-in) or
    has namespace-scoped rules (evaluated with their tenant's tables)."""
    if not hasattr(ruleset, "enabled_rules") or getattr(ruleset, "_tenants", None):
        return {}
    try:
        kf = derive(ruleset, OPEN_TYPES)
    except Exception:  # a derivation bug must cost speed, never detection
        log.exception("open prefilter not derived; every open is evaluated")
        return {}
    out: dict[str, Check] = {}
    for t, tf in kf.types.items():
        if tf.clauses is not None:
            out[t] = _compile(tf.clauses)
    return out


def _compile(clauses: list[Clause]) -> Check:
    exact: set[str] = set()
    prefixes: list[str] = []
    dirs: set[str] = set()
    bases: set[str] = set()
    #: clauses constraining no file: the open-class bits they require
    free: set[int] = set()
    for c in clauses:
        # one positive anchor per clause: dropping the others only widens it
        if c.path is not None:
            for p in c.path:
                (exact.add(p.text) if p.exact else prefixes.append(p.text))
        elif c.dir is not None:
            dirs |= c.dir
        elif c.base is not None:
            bases |= c.base
        else:
            free.add(c.req)
    if 0 in free:
        return lambda fd, thread: True
    pre = tuple(sorted(set(prefixes)))
    exact_set, dir_set, base_set = frozenset(exact), frozenset(dirs), frozenset(bases)
    reqs = tuple(sorted(free))

    # compiled: the name a str and the cut a C index, so the slices, the find and the
    # prefix test are direct string calls (no slice objects, no argument parsing)
    @cython.locals(name=str, cut=cython.Py_ssize_t)
    def check(fd: FdInfo | None, thread: ThreadInfo) -> bool:
        if fd is None or fd.type != "file":
            return True  # directories (fd.directory is the name itself), odd records
        name = fd.name
        if name in exact_set or (pre and name.startswith(pre)):
            return True
        cut = name.rfind("/")
        if dir_set and (name[:cut] if cut > 0 else "/") in dir_set:
            return True
        if base_set and name[cut + 1:] in base_set:
            return True
        if reqs:
            # the open classes of kernel_filter, inline: most opens reach this line
            flags = fd.flags
            acc = flags & _ACCMODE
            bits = F_READ if acc == 0 or acc == 2 else 0
            if acc == 1 or acc == 2:
                bits |= F_WRITE
            if flags & _O_CREAT:
                bits |= F_CREATE
            if flags & _O_TRUNC:
                bits |= F_TRUNC
            raw = fd.nameraw
            if "../" in (raw if raw is not None else name):
                bits |= F_DOTDOT
            for req in reqs:
                if bits & req == req:
                    return True
        return False
    return check

