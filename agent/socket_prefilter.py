"""A cheap test, per socket and connect record, of whether any rule could match it,
before the record is decoded in full and its event built.

A client's connection loop makes a socket and a connect record per connection, and the
rules on them are about containers and services: Falco's stable rules fire on a connect
only from a container (the K8S API server) or to an SSH port that is not 22, on a socket
only for AF_PACKET in a container.  The in-kernel interest filter
(:mod:`falcopy.engine.kernel_filter`) cannot check those (it knows files, names, uids);
the fast path can, once the fd table holds the socket the record made or named: the
thread's container, the fd's type, protocol and ports, the process name.  Each rule
indexed for the type is widened to a disjunction of :class:`SockClause` over those
facts (``not`` pushed to the leaves, every other check and every negative one replaced
by "any value"), so a record no clause admits cannot match any rule: it is not
evaluated.  Namespaced (tenant) and stand-in rulesets are always evaluated.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any

from falcopy.agent.state.constants import FD_TYPECHARS
from falcopy.agent.state.model import FdInfo, ThreadInfo

from falcopy.engine import ast, clause_algebra
from falcopy.engine.kernel_filter import check_values

log = logging.getLogger(__name__)

#: (the record's fd, its thread) -> could a rule match it (agent.prefilter.Check; a
#: sibling module, so not imported from there)
SocketCheck = Callable[[FdInfo | None, ThreadInfo], bool]

#: the record types this module derives a check for
SOCKET_TYPES: frozenset[str] = frozenset({"socket", "connect"})
#: clauses kept per type: beyond, a conjunct is dropped (widening) or the type always
#: evaluated
_CAP = 64
_INET = frozenset({"ipv4", "ipv6"})
#: the port fields, by which end of the connection they read (fd.sport: the server's)
_PORTS = ("fd.sport", "fd.cport", "fd.lport", "fd.rport")


@dataclass(frozen=True)
class SockClause:
    """A conjunction of positive constraints; None: any value."""

    #: True: in a container (``container.id != host``); False: on the host
    container: bool | None = None
    comm: frozenset[str] | None = None
    #: fd.type values (``fd.typechar`` translated)
    fd_type: frozenset[str] | None = None
    l4proto: frozenset[str] | None = None
    sport: frozenset[int] | None = None
    cport: frozenset[int] | None = None
    lport: frozenset[int] | None = None
    rport: frozenset[int] | None = None

    def unconstrained(self) -> bool:
        return self == SockClause()


_ANY = [SockClause()]


def socket_checks(ruleset: Any) -> dict[str, SocketCheck]:
    """Per socket type, the check for ``ruleset`` (a type without one is always
    evaluated).  Empty for a stand-in ruleset or one with namespace-scoped rules."""
    if not hasattr(ruleset, "enabled_rules") or getattr(ruleset, "_tenants", None):
        return {}
    out: dict[str, SocketCheck] = {}
    try:
        rules = [r for r in ruleset.enabled_rules() if r.source == "syscall"]
        for t in sorted(SOCKET_TYPES):
            clauses = derive_type(t, rules)
            if clauses is not None:
                out[t] = compile_clauses(clauses)
    except Exception:  # a derivation bug must cost speed, never detection
        log.exception("socket prefilter not derived; every socket and connect is evaluated")
        return {}
    return out


def derive_type(t: str, rules: list[Any]) -> list[SockClause] | None:
    """The clauses admitting every ``t`` record some rule could match; None: any record."""
    out: list[SockClause] = []
    for r in clause_algebra.rules_for(t, rules):
        got = clause_algebra.condition_clauses(r, t, lambda node: _dnf(node, False), _ANY)
        if got is None:
            return None
        out.extend(got)
    out = _merge(list(dict.fromkeys(out)))
    if len(out) > _CAP or any(c.unconstrained() for c in out):
        return None
    return out


def _merge(clauses: list[SockClause]) -> list[SockClause]:
    """Clauses that differ in one set only, as one (their union): fewer rows to test."""
    for f in fields(SockClause)[1:]:
        groups: dict[SockClause, frozenset[Any] | None] = {}
        for c in clauses:
            key, val = replace(c, **{f.name: None}), getattr(c, f.name)
            if key in groups:
                prev = groups[key]
                groups[key] = None if prev is None or val is None else prev | val
            else:
                groups[key] = val
        clauses = [replace(k, **{f.name: v}) for k, v in groups.items()]
    return clauses


def _dnf(node: ast.Node, neg: bool) -> list[SockClause]:
    if isinstance(node, ast.MacroRef):
        return _ANY if node.body is None else _dnf(node.body, neg)
    if isinstance(node, ast.Not):
        return _ANY if node.child is None else _dnf(node.child, not neg)
    if isinstance(node, ast.And | ast.Or):
        parts = [_dnf(c, neg) for c in node.children]
        return _product(parts) if isinstance(node, ast.And) != neg else _union(parts)
    if isinstance(node, ast.Check):
        return _atom(node, neg)
    return _ANY


def _product(parts: list[list[SockClause]]) -> list[SockClause]:
    return clause_algebra.product(parts, _conj, _CAP, _ANY)


def _union(parts: list[list[SockClause]]) -> list[SockClause]:
    return clause_algebra.union(parts, _CAP, _ANY)


def _conj(a: SockClause, b: SockClause) -> SockClause | None:
    """``a and b``; None when no record satisfies both."""
    if a.container is not None and b.container is not None and a.container != b.container:
        return None
    merged: dict[str, Any] = {"container": a.container if a.container is not None else b.container}
    for f in fields(SockClause)[1:]:
        x, y = getattr(a, f.name), getattr(b, f.name)
        v = y if x is None else x if y is None else x & y
        if v is not None and not v:
            return None
        merged[f.name] = v
    return SockClause(**merged)


def _atom(node: ast.Check, neg: bool) -> list[SockClause]:
    """A check as clauses implied by it: positive constraints only (a negative one, a
    field the fast path does not have, an operator other than equality: any value)."""
    left = node.left
    if not isinstance(left, ast.FieldRef) or left.arg is not None or node.modifier:
        return _ANY
    name, op = left.name, node.op
    if op == "!=":
        neg, op = not neg, "="
    vals = check_values(node)
    if op not in ("=", "==", "in") or vals is None:
        return _ANY
    if name == "container.id":
        # the field is the thread's container id, "host" outside any container
        if neg:
            return [SockClause(container=True)] if set(vals) == {"host"} else _ANY
        return [SockClause(container=False)] if set(vals) == {"host"} else \
            [SockClause(container=True)] if "host" not in vals else _ANY
    if neg:
        return _ANY
    if name == "proc.name":
        return [SockClause(comm=frozenset(vals))]
    if name == "fd.type":
        return [SockClause(fd_type=frozenset(vals))]
    if name == "fd.typechar":
        if "o" in vals:  # every other type reads "o"
            return _ANY
        return [SockClause(fd_type=frozenset(t for t, c in FD_TYPECHARS.items() if c in vals))]
    if name == "fd.l4proto":
        return [SockClause(l4proto=frozenset(vals))]
    if name in _PORTS:
        try:
            ports = frozenset(int(v) for v in vals)
        except ValueError:
            return _ANY
        return [replace(SockClause(), **{name[3:]: ports})]
    return _ANY


def compile_clauses(clauses: list[SockClause]) -> SocketCheck:
    """The clauses as one function of the record's fd and thread."""
    rows = tuple((c.container, c.comm, c.fd_type, c.l4proto, c.sport, c.cport, c.lport, c.rport)
                 for c in clauses)

    def check(fd: FdInfo | None, thread: ThreadInfo) -> bool:
        in_container = (thread.container_id or "host") != "host"
        for container, comm, fd_type, l4proto, sport, cport, lport, rport in rows:
            if container is not None and container != in_container:
                continue
            if comm is not None and thread.comm not in comm:
                continue
            if fd_type is not None and (fd is None or fd.type not in fd_type):
                continue
            if l4proto is None and sport is None and cport is None and lport is None and rport is None:
                return True
            # the socket fields have a value only for an inet socket (agent.fields.fd)
            if fd is None or fd.type not in _INET:
                continue
            if l4proto is not None and fd.l4proto not in l4proto:
                continue
            client = fd.is_client
            if sport is not None and (fd.rport if client else fd.lport) not in sport:
                continue
            if cport is not None and (fd.lport if client else fd.rport) not in cport:
                continue
            if lport is not None and fd.lport not in lport:
                continue
            if rport is not None and fd.rport not in rport:
                continue
            return True
        return False
    return check
