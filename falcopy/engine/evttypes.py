"""The set of event types a condition can match (libs ``ppm_codes.cpp``).

``and`` intersects, ``or`` unions, ``evt.type`` checks give explicit sets,
every other check is neutral (all types); ``not`` is pushed down to the
leaves with De Morgan's laws, so ``not proc.name = x`` stays "all types"
while ``not evt.type = open`` is every type but ``open``.
"""

from __future__ import annotations

from falcopy.engine import ast
from falcopy.engine.fields.evttypes import META_EVENT_TYPES, SYSCALL_EVENT_TYPES

#: every event type name of the syscall source
ALL_EVENT_TYPES: frozenset[str] = frozenset(SYSCALL_EVENT_TYPES | META_EVENT_TYPES)

#: Falco warns (LOAD_NO_EVTTYPE) when a rule matches none or more than this many types
MAX_EVTTYPES_WITHOUT_WARNING = 100


def is_evttype_check(node: ast.Node) -> bool:
    return (isinstance(node, ast.Check) and isinstance(node.left, ast.FieldRef)
            and node.left.name == "evt.type" and node.left.arg is None)


def _check_types(node: ast.Check) -> frozenset[str]:
    right = node.right
    if node.op in ("=", "==") and isinstance(right, ast.Value):
        return frozenset({right.value}) & ALL_EVENT_TYPES
    if node.op == "!=" and isinstance(right, ast.Value):
        return ALL_EVENT_TYPES - {right.value}
    if node.op in ("in", "intersects") and isinstance(right, ast.ListValue):
        return frozenset(right.values) & ALL_EVENT_TYPES
    return ALL_EVENT_TYPES


def event_types(node: ast.Node, negated: bool = False) -> frozenset[str]:
    if isinstance(node, ast.And):
        sets = [event_types(c, negated) for c in node.children]
        out = sets[0]
        for s in sets[1:]:
            out = (out | s) if negated else (out & s)
        return out
    if isinstance(node, ast.Or):
        sets = [event_types(c, negated) for c in node.children]
        out = sets[0]
        for s in sets[1:]:
            out = (out & s) if negated else (out | s)
        return out
    if isinstance(node, ast.Not):
        assert node.child is not None
        return event_types(node.child, not negated)
    if isinstance(node, ast.MacroRef):
        assert node.body is not None
        return event_types(node.body, negated)
    if is_evttype_check(node):
        assert isinstance(node, ast.Check)
        s = _check_types(node)
        if s is ALL_EVENT_TYPES:
            return ALL_EVENT_TYPES
        return (ALL_EVENT_TYPES - s) if negated else s
    return ALL_EVENT_TYPES


def fold_for_type(node: ast.Node, evt_type: str) -> ast.Node | bool:
    """``node`` for events of type ``evt_type`` only: every ``evt.type`` check
    becomes a constant and constants are propagated (True/False returned when
    the whole tree is decided).  Unchanged subtrees are returned as they are, so
    shared macro nodes keep their identity."""
    if is_evttype_check(node):
        assert isinstance(node, ast.Check)
        if node.right is None or not isinstance(node.right, ast.Value | ast.ListValue):
            return node
        if node.op not in ("=", "==", "!=", "in", "intersects"):
            return node
        return evt_type in event_types(node)
    if isinstance(node, ast.And | ast.Or):
        is_and = isinstance(node, ast.And)
        kept: list[ast.Node] = []
        changed = False
        for c in node.children:
            f = fold_for_type(c, evt_type)
            if f is True or f is False:
                changed = True
                if f is not is_and:       # a False in an and / a True in an or decides it
                    return f
                continue
            if f is not c:
                changed = True
            kept.append(f)
        if not changed:
            return node
        if not kept:
            return is_and
        if len(kept) == 1:
            return kept[0]
        return (ast.And if is_and else ast.Or)(node.pos, children=kept, text=node.text)
    if isinstance(node, ast.Not):
        assert node.child is not None
        f = fold_for_type(node.child, evt_type)
        if f is True or f is False:
            return not f
        return node if f is node.child else ast.Not(node.pos, child=f, text=node.text)
    if isinstance(node, ast.MacroRef):
        assert node.body is not None
        f = fold_for_type(node.body, evt_type)
        if f is True or f is False:
            return f
        return node if f is node.body else ast.MacroRef(node.pos, name=node.name, body=f, text=node.text)
    return node
