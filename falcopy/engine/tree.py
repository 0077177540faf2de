"""Rule trees -> rule predicates: and/or/not structure, macros, and the
rewrites that make the hot path cheap without changing any verdict.

Rewrites (all disabled with ``optimize=False``, which tests compare against):
nested and/or flattened through macros compiled inline; ``or`` of string
checks on one field merged into one closure; ``not f = x`` / ``not f in (..)``
as one closure; macros shared by several rules memoised per event;
``evt.type`` conjuncts implied by the event-type index dropped; the first
conjunct exposed so consecutive rules starting alike evaluate it once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from falcopy.engine import ast
from falcopy.engine.compiler import CheckCompiler, CompileError, Pred, resolve_field
from falcopy.engine.fields.base import ArgMode, FieldSource, FieldType


@dataclass
class TreeCompiler:
    """Compiles a resolved tree; macros compiled once per source and memoised
    per event when they are shared."""

    checks: CheckCompiler
    macro_uses: dict[str, int]
    macro_preds: dict[str, Pred] = field(default_factory=dict)
    #: False compiles the tree literally (no memo, merging, dropping, grouping):
    #: the reference the tests compare the optimised predicates with
    optimize: bool = True

    def memoised(self, node: ast.MacroRef) -> bool:
        assert node.body is not None
        return self.optimize and self.macro_uses.get(node.name, 0) > 1 and _weight(node.body) >= 3

    def _flatten(self, node: ast.Node, kind: type) -> list[ast.Node]:
        """Children of nested and/or (also through macros compiled inline): fewer
        closure levels on the hot path."""
        if isinstance(node, kind):
            out: list[ast.Node] = []
            for c in node.children:  # type: ignore[attr-defined]
                out.extend(self._flatten(c, kind))
            return out
        if isinstance(node, ast.MacroRef) and not self.memoised(node):
            assert node.body is not None
            return self._flatten(node.body, kind)
        return [node]

    def compile_rule(self, node: ast.Node, implied: frozenset[str] | None) -> Pred:
        """The rule's predicate for events routed by the evttype index.

        ``implied`` is the rule's event-type set: every event reaching it has
        one of these types, so top-level ``evt.type`` conjuncts admitting all of
        them are always true there and are left out."""
        first, rest, _ = self.compile_rule_split(node, implied)
        if rest is None:
            return first
        return lambda ev, c: first(ev, c) and rest(ev, c)

    def compile_rule_split(self, node: ast.Node, implied: frozenset[str] | None
                           ) -> tuple[Pred, Pred | None, object]:
        """(first conjunct, the others, identity of the first): the ruleset calls
        the first directly, which is where most rules fail, and evaluates it once
        for consecutive rules starting with the same macro or check."""
        from falcopy.engine.evttypes import event_types, is_evttype_check

        preds: list[Pred] = []
        first_node: ast.Node | None = None
        for c in self._flatten(node, ast.And):
            pred = self.compile(c)      # compiled even when dropped: it must still be valid
            if self.optimize and implied and is_evttype_check(c) and event_types(c) >= implied:
                continue
            if first_node is None:
                first_node = c
            preds.append(pred)
        if not preds:
            return (lambda _e, _c: True), None, object()
        # resolved macro bodies are shared between rules: the node identity (or the
        # macro name for memoised macros) says "same first test"
        key: object = ("m", first_node.name) if isinstance(first_node, ast.MacroRef) else id(first_node)
        if not self.optimize:
            key = object()
        if len(preds) == 1:
            return preds[0], None, key
        return preds[0], (preds[1] if len(preds) == 2 else _and(preds[1:])), key

    def _negated_membership(self, node: ast.Node) -> Pred | None:
        """``not f = x`` / ``not f in (...)`` on a plain string field as one
        closure: a missing value (None) is neither equal nor a member, so
        ``!=`` / ``not in`` give exactly the negation."""
        if _mergeable(node, self.checks.source) is None:
            return None
        assert isinstance(node, ast.Check)
        if node.op in ("=", "=="):
            assert isinstance(node.right, ast.Value)
            rhs = node.right.value
        elif node.op == "in":
            assert isinstance(node.right, ast.ListValue)
            values = frozenset(node.right.values)
        else:
            return None
        left = node.left
        assert isinstance(left, ast.FieldRef)
        get = resolve_field(self.checks.source, left).get
        if node.op == "in":
            return lambda ev, c: get(ev, c) not in values
        return lambda ev, c: get(ev, c) != rhs

    def _compile_or(self, children: list[ast.Node]) -> Pred:
        """``or`` of string checks on one field (``proc.cmdline contains a or
        proc.cmdline contains b or proc.name in (...)``, common in upstream
        rules) reads the field once and tests all values in one closure."""
        keys = [_mergeable(c, self.checks.source) if self.optimize else None for c in children]
        counts: dict[str, int] = {}
        for k in keys:
            if k is not None:
                counts[k] = counts.get(k, 0) + 1
        out: list[Pred] = []
        done: set[str] = set()
        for c, key in zip(children, keys, strict=True):
            pred = self.compile(c)          # validates every check, merged or not
            if key is None or counts[key] < 2:
                out.append(pred)
                continue
            if key in done:
                continue
            done.add(key)
            group = [x for x, k in zip(children, keys, strict=True) if k == key]
            out.append(self._merged_or(group))  # type: ignore[arg-type]
        return out[0] if len(out) == 1 else _or(out)

    def _merged_or(self, checks: list[ast.Check]) -> Pred:
        left = checks[0].left
        assert isinstance(left, ast.FieldRef)
        get = resolve_field(self.checks.source, left).get
        eq: set[str] = set()
        prefixes: list[str] = []
        suffixes: list[str] = []
        subs: list[str] = []
        for c in checks:
            if c.op in ("=", "==") and isinstance(c.right, ast.Value):
                eq.add(c.right.value)
            elif c.op == "in" and isinstance(c.right, ast.ListValue):
                eq.update(c.right.values)
            elif c.op == "startswith" and isinstance(c.right, ast.Value):
                prefixes.append(c.right.value)
            elif c.op == "endswith" and isinstance(c.right, ast.Value):
                suffixes.append(c.right.value)
            elif c.op == "contains" and isinstance(c.right, ast.Value):
                subs.append(c.right.value)
        eqs = frozenset(eq)
        pre = tuple(prefixes)
        suf = tuple(suffixes)
        sub = tuple(subs)

        def merged(ev: Any, c: dict[Any, Any]) -> bool:
            v = get(ev, c)
            if v.__class__ is not str:
                return False
            if v in eqs or (pre and v.startswith(pre)) or (suf and v.endswith(suf)):
                return True
            for x in sub:
                if x in v:
                    return True
            return False
        return merged

    def compile(self, node: ast.Node) -> Pred:
        if isinstance(node, ast.And):
            return _and([self.compile(c) for c in self._flatten(node, ast.And)])
        if isinstance(node, ast.Or):
            return self._compile_or(self._flatten(node, ast.Or))
        if isinstance(node, ast.Not):
            assert node.child is not None
            p = self.compile(node.child)
            negated = self._negated_membership(node.child) if self.optimize else None
            if negated is not None:
                return negated
            return lambda ev, c: not p(ev, c)
        if isinstance(node, ast.MacroRef):
            cached = self.macro_preds.get(node.name)
            if cached is not None:
                return cached
            assert node.body is not None
            body = self.compile(node.body)
            if self.memoised(node):
                key = "m:" + node.name

                def memo(ev: Any, c: dict[Any, Any], _p: Pred = body, _k: Any = key) -> bool:
                    v = c.get(_k)
                    if v is None:
                        v = c[_k] = _p(ev, c)
                    return v
                pred = memo
            else:
                pred = body
            self.macro_preds[node.name] = pred
            return pred
        if isinstance(node, ast.Check):
            return self.checks.compile_check(node)
        if isinstance(node, ast.Identifier):
            raise CompileError(f"Undefined macro '{node.name}' used in filter.", node)
        raise CompileError("unexpected expression", node)


_MERGEABLE_OPS = frozenset({"=", "==", "in", "startswith", "endswith", "contains"})


def _mergeable(node: ast.Node, source: FieldSource) -> str | None:
    """The field text when ``node`` is a plain string check an ``or`` can merge."""
    if not isinstance(node, ast.Check) or node.modifier is not None or node.op not in _MERGEABLE_OPS:
        return None
    left = node.left
    if not isinstance(left, ast.FieldRef):
        return None
    if node.op == "in":
        if not isinstance(node.right, ast.ListValue):
            return None
    elif not isinstance(node.right, ast.Value):
        return None
    found = source.lookup(left.name)
    if found is None:
        return None
    fdef, dotted = found
    arg = left.arg if left.arg is not None else dotted
    if fdef.type is not FieldType.STRING or fdef.is_list or fdef.name == "evt.dir":
        return None
    if fdef.arg is ArgMode.INDEX_OPTIONAL and arg is None:
        return None
    matcher = getattr(source, "name_matcher", None)
    if matcher is not None and matcher(fdef, arg) is not None:
        return None     # compared by address membership, not by its text
    return left.name if left.arg is None else f"{left.name}[{left.arg}]"


def _weight(node: ast.Node) -> int:
    if isinstance(node, ast.And | ast.Or):
        return sum(_weight(c) for c in node.children)
    if isinstance(node, ast.Not):
        return _weight(node.child) if node.child else 0
    if isinstance(node, ast.MacroRef):
        return _weight(node.body) if node.body else 0
    return 1


def _and(preds: list[Pred]) -> Pred:
    if len(preds) == 2:
        a, b = preds
        return lambda ev, c: a(ev, c) and b(ev, c)
    if len(preds) == 3:
        a, b, d = preds
        return lambda ev, c: a(ev, c) and b(ev, c) and d(ev, c)
    ps = tuple(preds)

    def and_n(ev: Any, c: dict[Any, Any]) -> bool:
        for p in ps:
            if not p(ev, c):
                return False
        return True
    return and_n


def _or(preds: list[Pred]) -> Pred:
    if len(preds) == 2:
        a, b = preds
        return lambda ev, c: a(ev, c) or b(ev, c)
    if len(preds) == 3:
        a, b, d = preds
        return lambda ev, c: a(ev, c) or b(ev, c) or d(ev, c)
    ps = tuple(preds)

    def or_n(ev: Any, c: dict[Any, Any]) -> bool:
        for p in ps:
            if p(ev, c):
                return True
        return False
    return or_n
