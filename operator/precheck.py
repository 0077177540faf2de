"""Compile-cost caps checked on one object's own items before anything costly is done.

A macro chain or nested lists inside one object (issue 23's compile-time bombs)
are measured here on the object's own names, as a graph memoised by name, with
the engine's caps (:mod:`falcopy.engine.limits`) and its measure (a check is
one node, ``and``/``or``/``not`` one node plus their operands, a macro
reference the size of the macro's body; a list the sum of its items, a list
it names counting as that list's items).  An object past a cap is refused
before it is rendered, read back and loaded after the default rules, so a bomb
costs milliseconds, not a load.  A name the object does not define counts as
one node or one item: the measure is a lower bound, so nothing within the caps
is refused here, and the engine still applies the caps to the whole set.
"""

from __future__ import annotations

from typing import Any

from falcopy.operator.model import RuleObject
from falcopy.operator.scope import Issue, ScopeError

from falcopy.engine import ast
from falcopy.engine.limits import DEFAULT_CAPS, Caps
from falcopy.engine.parser import ParseError, parse
from falcopy.engine.tenancy import qualified_name

CODE = "LOAD_ERR_VALIDATE"


class CostError(ScopeError):
    """The object would pass a compile-cost cap (reported like the engine's validation error)."""


def _named(items: Any, kind: str) -> list[tuple[int, str, dict[str, Any]]]:
    out = []
    for i, item in enumerate(items if isinstance(items, list) else []):
        if isinstance(item, dict) and isinstance(item.get(kind), str) and not item.get("append"):
            out.append((i, item[kind], item))
    return out


def _lists(obj: RuleObject, caps: Caps, shown: Any) -> list[Issue]:
    issues = []
    sizes: dict[str, tuple[int, int]] = {}  # name -> (items, depth), lists defined so far
    broken: set[str] = set()  # refused: the lists using them are not reported again
    for i, name, item in _named(obj.spec.get("lists"), "list"):
        values = item.get("items") if isinstance(item.get("items"), list) else []
        if broken.intersection(v for v in values if isinstance(v, str)):
            broken.add(name)
            continue
        size = deepest = 0
        for it in values:
            n, d = sizes.get(it, (1, 0)) if isinstance(it, str) else (1, 0)
            size, deepest = size + n, max(deepest, d)
        if deepest + 1 > caps.list_depth:
            message = f"List nests other lists deeper than the limit of {caps.list_depth}"
        elif size > caps.list_items:
            message = f"List expands to {size} items, more than the limit of {caps.list_items}"
        else:
            sizes[name] = (size, deepest + 1)
            continue
        issues.append(Issue(f"spec.lists[{i}]", f"list '{shown(name)}'", f"{CODE}: {message}"))
        broken.add(name)
    return issues


def _macros(obj: RuleObject, caps: Caps, shown: Any) -> list[Issue]:
    trees: dict[str, ast.Node | None] = {}
    where: dict[str, int] = {}
    for i, name, item in _named(obj.spec.get("macros"), "macro"):
        where[name] = i
        try:
            trees[name] = parse(item["condition"]) if isinstance(item.get("condition"), str) else None
        except ParseError:
            trees[name] = None  # the engine reports it
    memo: dict[str, tuple[int, int]] = {}

    def macro(name: str, chain: tuple[str, ...]) -> tuple[int, int]:
        if name in memo:
            return memo[name]
        if name in chain or len(chain) > caps.macro_depth or trees.get(name) is None:
            return 1, len(chain) if len(chain) > caps.macro_depth else 0  # a cycle: the engine says so
        size, depth = measure(trees[name], (*chain, name))  # type: ignore[arg-type]
        memo[name] = (size, depth + 1)
        return memo[name]

    def measure(node: ast.Node, chain: tuple[str, ...]) -> tuple[int, int]:
        if isinstance(node, ast.Identifier):
            return macro(node.name, chain) if node.name in trees else (1, 0)
        if isinstance(node, ast.And | ast.Or):
            parts = [measure(c, chain) for c in node.children]
            return 1 + sum(s for s, _ in parts), max((d for _, d in parts), default=0)
        if isinstance(node, ast.Not) and node.child is not None:
            size, depth = measure(node.child, chain)
            return size + 1, depth
        return 1, 0

    issues = []
    for name, i in where.items():
        size, depth = macro(name, ())
        label = f"macro '{shown(name)}'"
        if depth > caps.macro_depth:
            message = f"{label} is nested deeper than the limit of {caps.macro_depth} macros"
        elif size > caps.expanded_nodes:
            message = f"{label} expands to {size} nodes, more than the limit of {caps.expanded_nodes}"
        else:
            continue
        issues.append(Issue(f"spec.macros[{i}]", label, f"{CODE}: {message}"))
        if len(issues) >= 3:  # the first few name the chain; the rest follow from them
            break
    if issues:
        return issues
    for i, name, item in _named(obj.spec.get("rules"), "rule"):
        if not isinstance(item.get("condition"), str):
            continue
        try:
            size, _ = measure(parse(item["condition"]), ())
        except ParseError:
            continue
        if size > caps.expanded_nodes:
            issues.append(
                Issue(
                    f"spec.rules[{i}]",
                    f"rule '{name}'",
                    f"{CODE}: Rule expands to {size} nodes, more than the limit of {caps.expanded_nodes}",
                )
            )
    return issues


def check_cost(obj: RuleObject, caps: Caps = DEFAULT_CAPS) -> None:
    """Raise CostError naming the items of ``obj`` past a cap, measured on its own items."""
    ns = obj.key.namespace if obj.key.namespaced else None

    def shown(name: str) -> str:
        return qualified_name(name, ns) if ns else name

    issues = _lists(obj, caps, shown) + _macros(obj, caps, shown)
    if issues:
        raise CostError(issues)
