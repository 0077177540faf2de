"""Macro and list resolution: its own pass, over a graph, memoised, capped.

Lists and macros name each other.  Resolution treats them as a graph: each
list is flattened once and each macro body resolved once (by name), and their
sizes are known from the memo before anything is copied, so a chain of macros
that each use the previous one twice costs one step per macro, and an item
that would expand past :class:`~falcopy.engine.limits.Caps` is refused with an
error naming it instead of being built.

Also here: substitution of list items into a parsed tree *as values* (the
path for namespaced rules files, which are never spliced into condition
text), and exceptions built as syntax nodes for the same files.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from falcopy.engine import ast
from falcopy.engine.items import ListInfo, MacroInfo
from falcopy.engine.limits import Caps
from falcopy.engine.parser import unescape

LIST_OPS = ("in", "intersects", "pmatch")


class ResolveError(Exception):
    """A macro problem at ``node`` (None: at the item being resolved); ``silent``
    when the cause (a broken macro) was reported already."""

    def __init__(self, message: str, node: ast.Node | None, silent: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.node = node
        self.silent = silent


# ---------------------------------------------------------------------------- lists


def flatten_lists(
    lists: dict[str, ListInfo], caps: Caps, fail: Callable[[ListInfo, str], None]
) -> dict[str, tuple[str, ...]]:
    """Each list with the lists it names (defined before it) expanded, like
    Falco's ``compile_list_infos``, in definition order so every reference is
    flattened already.  A list's size and depth are computed from its
    references' before its items are copied.  A namespaced list may name its
    namespace's lists and the cluster's; a cluster list only the cluster's."""
    out: dict[str, tuple[str, ...]] = {}
    depth: dict[str, int] = {}
    broken: set[str] = set()
    for info in sorted(lists.values(), key=lambda i: i.visibility):
        refs: list[ListInfo | None] = []
        size = 0
        deepest = 0
        for it in info.items:
            ref = lists.get(it)
            visible = (
                ref is not None and ref.index < info.visibility and ref.namespace in (None, info.namespace)
            )
            if visible and it in broken:
                break  # reported at the list that failed
            if visible and ref is not None and ref.name in out:
                refs.append(ref)
                size += len(out[ref.name])
                deepest = max(deepest, depth[ref.name])
            else:
                refs.append(None)
                size += 1
        else:
            if deepest + 1 > caps.list_depth:
                fail(info, f"List nests other lists deeper than the limit of {caps.list_depth}")
            elif size > caps.list_items:
                fail(info, f"List expands to {size} items, more than the limit of {caps.list_items}")
            else:
                refs.append(None)  # sentinel popped below: the list is within the caps
        if len(refs) != len(info.items) + 1:
            broken.add(info.name)
            continue
        refs.pop()
        items: list[str] = []
        for it, ref in zip(info.items, refs, strict=True):
            if ref is None:
                items.append(it)
            else:
                ref.used = True
                items.extend(out[ref.name])
        out[info.name] = tuple(items)
        depth[info.name] = deepest + 1
    return out


def item_value(raw: str) -> str:
    """A list item or exception value as the value it denotes: quoted items
    lose their quotes (as Falco's textual substitution would parse them),
    anything else is taken literally, whatever characters it holds."""
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        return unescape(raw[1:-1])
    return raw


def quote_item(v: str) -> str:
    """A list item or exception value as condition text (Falco's ``quote_item``)."""
    if " " in v and not (v.startswith('"') or v.startswith("'")):
        return f'"{v}"'
    return v


@dataclass
class ValueLists:
    """List lookup for value substitution, limited to what one item may see."""

    flat: dict[str, tuple[str, ...]]
    infos: dict[str, ListInfo]
    namespace: str | None

    def get(self, name: str) -> tuple[str, ...] | None:
        info = self.infos.get(name)
        if info is None or name not in self.flat or info.namespace not in (None, self.namespace):
            return None
        info.used = True
        return self.flat[name]

    def expand(self, values: Iterable[tuple[str, int, bool]]) -> tuple[list[str], list[int]]:
        """(value, position, quoted) -> values with bare list names replaced by the list's items."""
        out: list[str] = []
        positions: list[int] = []
        for value, pos, quoted in values:
            items = None if quoted else self.get(value)
            if items is None:
                out.append(value)
                positions.append(pos)
            else:
                out.extend(item_value(i) for i in items)
                positions.extend([pos] * len(items))
        return out, positions


def substitute_values(tree: ast.Node, text: str, lists: ValueLists) -> None:
    """Replace list names in the list values of ``tree`` by the lists' items, in place."""
    for node in walk(tree):
        if isinstance(node, ast.ListValue):
            quoted = [0 <= p < len(text) and text[p] in "\"'" for p in node.positions]
            node.values, node.positions = lists.expand(zip(node.values, node.positions, quoted, strict=False))


def walk(node: ast.Node) -> Iterable[ast.Node]:
    stack: list[ast.Node] = [node]
    while stack:
        cur = stack.pop()
        yield cur
        if isinstance(cur, ast.And | ast.Or):
            stack.extend(cur.children)
        elif isinstance(cur, ast.Not) and cur.child is not None:
            stack.append(cur.child)
        elif isinstance(cur, ast.Check):
            stack.extend(n for n in (cur.left, cur.right) if n is not None)
        elif isinstance(cur, ast.Transform):
            stack.extend(cur.args)


# ---------------------------------------------------------------------------- macros


@dataclass
class MacroResolver:
    """Resolves macro references of parsed trees, one memo for the whole load.

    A macro's resolved body does not depend on who uses it (a name has one
    definition, and a macro that resolved in its own scope resolves to the same
    definitions everywhere), so each body is built once and shared; its size
    and depth are memoised with it and checked against the caps."""

    macros: dict[str, MacroInfo]
    parsed: dict[str, ast.Node]
    broken: set[str]
    caps: Caps
    bodies: dict[str, tuple[ast.Node, int, int]] = field(default_factory=dict)  # name -> body, size, depth

    def resolve(
        self, node: ast.Node, visible: Callable[[MacroInfo], bool], macro: str | None = None
    ) -> tuple[ast.Node, int]:
        """(resolved tree, expanded size) of a rule's tree, or of ``macro``'s body."""
        out, size, _ = self._resolve(node, visible, [macro] if macro else [])
        return out, size

    def _macro(
        self, node: ast.Identifier, visible: Callable[[MacroInfo], bool], chain: list[str]
    ) -> tuple[ast.Node, int, int]:
        name = node.name
        if name in self.broken:
            raise ResolveError("", node, silent=True)
        info = self.macros.get(name)
        if info is None or not visible(info) or name not in self.parsed:
            raise ResolveError(f"Undefined macro '{name}' used in filter.", node)
        if name in chain:
            raise ResolveError(f"reference loop in macro '{name}'", node)
        info.used = True
        hit = self.bodies.get(name)
        if hit is None:
            if len(chain) >= self.caps.macro_depth:
                raise ResolveError(
                    f"macro '{name}' is nested deeper than the limit of {self.caps.macro_depth} macros", node
                )
            # a macro's own references resolve in the macro's scope (its namespace)
            ns = info.namespace

            def own(m: MacroInfo, _ns: str | None = ns) -> bool:
                return m.namespace in (None, _ns)

            body, size, depth = self._resolve(self.parsed[name], own, [*chain, name])
            if size > self.caps.expanded_nodes:
                raise ResolveError(
                    f"macro '{name}' expands to {size} nodes, more than the limit of "
                    f"{self.caps.expanded_nodes}",
                    node,
                )
            hit = self.bodies[name] = (body, size, depth + 1)
        body, size, depth = hit
        if len(chain) + depth > self.caps.macro_depth:
            raise ResolveError(
                f"macro '{name}' is nested deeper than the limit of {self.caps.macro_depth} macros", node
            )
        return ast.MacroRef(node.pos, name=name, body=body, text=node.text), size, depth

    def _resolve(
        self, node: ast.Node, visible: Callable[[MacroInfo], bool], chain: list[str]
    ) -> tuple[ast.Node, int, int]:
        if isinstance(node, ast.Identifier):
            return self._macro(node, visible, chain)
        if isinstance(node, ast.And | ast.Or):
            children = []
            size, depth = 1, 0
            for c in node.children:
                r, s, d = self._resolve(c, visible, chain)
                children.append(r)
                size += s
                depth = max(depth, d)
            return type(node)(node.pos, children=children, text=node.text), size, depth
        if isinstance(node, ast.Not):
            assert node.child is not None
            r, s, d = self._resolve(node.child, visible, chain)
            return ast.Not(node.pos, child=r, text=node.text), s + 1, d
        return node, 1, 0
