"""The list and macro passes of a load, and its closing warnings.

Falco's compiler runs in stages over the collected items: lists
(``compile_list_infos``), then macros (``compile_macros_infos``), then rules
(``compile_rule_infos``, in :mod:`falcopy.engine.loader`), then the warnings
about lists and macros nothing used.  The first two stages are here:

- the list pass flattens the lists within the caps and gives
  :class:`Conditions`, which parses any condition with the lists substituted
  (textually for cluster items, as Falco does; as values for namespaced ones);
- the macro pass parses every macro and resolves it with the macros defined
  before it, so a broken macro is reported once, at itself, and the
  :class:`~falcopy.engine.resolve.MacroResolver` it returns (one memo, capped)
  resolves the rules' references afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from falcopy.engine import ast
from falcopy.engine.items import ListInfo, MacroInfo, Report
from falcopy.engine.limits import Caps
from falcopy.engine.messages import LoadCode
from falcopy.engine.parser import ParseError, Parser
from falcopy.engine.resolve import (
    MacroResolver,
    ResolveError,
    ValueLists,
    flatten_lists,
    quote_item,
    substitute_values,
    walk,
)
from falcopy.engine.source_text import SourceText

#: (location, item type, item name): stops the load there when its budget is spent
Checkpoint = Callable[[int, str, str], None]

_BLANKS = " \t\n\r"
_DELIMS = _BLANKS + "(),="


def resolve_list(st: SourceText, name: str, items: Sequence[str]) -> tuple[SourceText, bool]:
    """Falco's textual list substitution (``resolve_list``)."""
    text = st.text
    used = False
    start = text.find(name)
    while start != -1:
        end = start + len(name)
        if (start == 0 or text[start - 1] in _DELIMS) and (end >= len(text) or text[end] in _DELIMS):
            name_loc = st.loc_at(start)
            while start > 0 and text[start - 1] in _BLANKS:
                start -= 1
            while end < len(text) and text[end] in _BLANKS:
                end += 1
            sub = ", ".join(quote_item(v) for v in items)
            if not sub:
                if start > 0 and text[start - 1] == ",":
                    start -= 1
                elif end < len(text) and text[end] == ",":
                    end += 1
            new = (" " if start > 0 else "") + sub + " "
            st = st.replace_span(start, end, new, name_loc)
            text = st.text
            start = start + len(new) - 1
            used = True
        start = text.find(name, start + 1)
    return st, used


class Conditions:
    """The list pass: the lists flattened (errors reported at the list), and
    conditions parsed with them substituted."""

    def __init__(self, lists: dict[str, ListInfo], caps: Caps, error: Report) -> None:
        self.infos = lists
        self.error = error

        def failed(info: ListInfo, message: str) -> None:
            error(LoadCode.ERR_VALIDATE, message, info.loc, "list", info.name)
        self.flat = flatten_lists(lists, caps, failed)
        # namespaced lists are private to their namespace: never spliced into cluster text
        self._cluster = {n: v for n, v in self.flat.items() if lists[n].namespace is None}

    def value_lists(self, namespace: str | None) -> ValueLists:
        """The lists an item of ``namespace`` may name, for substitution as values."""
        return ValueLists(self.flat, self.infos, namespace)

    def _substitute(self, st: SourceText) -> SourceText:
        for name, items in self._cluster.items():
            if name in st.text:
                st, used = resolve_list(st, name, items)
                if used:
                    self.infos[name].used = True
        return st

    def parse(self, st: SourceText, namespace: str | None, item_type: str, name: str) -> ast.Node | None:
        """A condition's tree, None (reported) when it does not parse.  Cluster items get
        Falco's textual list substitution; a namespaced item's lists are substituted into
        the tree as values."""
        if namespace is None:
            st = self._substitute(st)
        try:
            tree = Parser(st.text).parse()
        except ParseError as e:
            self.error(LoadCode.ERR_COMPILE_CONDITION, e.message, st.loc_at(e.pos), item_type, name)
            return None
        for node in walk(tree):
            node.text = st
        if namespace is not None:
            substitute_values(tree, st.text, self.value_lists(namespace))
        return tree


def resolve_macros(macros: dict[str, MacroInfo], conditions: Conditions, caps: Caps, error: Report,
                   checkpoint: Checkpoint) -> MacroResolver:
    """The macro pass: each macro parsed, then resolved with the macros it may see
    (defined before it, in its namespace or the cluster's) to validate it on its own."""
    parsed: dict[str, ast.Node] = {}
    broken: set[str] = set()
    for m in macros.values():
        checkpoint(m.loc, "macro", m.name)
        tree = conditions.parse(m.cond, m.namespace, "macro", m.name)
        if tree is None:
            broken.add(m.name)
            continue
        parsed[m.name] = tree
    resolver = MacroResolver(macros, parsed, broken, caps)
    for m in macros.values():
        if m.name not in parsed:
            continue
        checkpoint(m.loc, "macro", m.name)

        def before(i: MacroInfo, _m: MacroInfo = m) -> bool:
            return i.index < _m.visibility and i.namespace in (None, _m.namespace)
        try:
            _, size = resolver.resolve(parsed[m.name], before, m.name)
            if size > caps.expanded_nodes:
                raise ResolveError(f"macro '{m.name}' expands to {size} nodes, more than the limit of "
                                   f"{caps.expanded_nodes}", None)
        except ResolveError as e:
            broken.add(m.name)
            if not e.silent:
                loc = e.node.text.loc_at(e.node.pos) if e.node is not None and e.node.text else m.loc
                error(LoadCode.ERR_VALIDATE, e.message, loc, "macro", m.name)
    return resolver


def warn_unused(macros: dict[str, MacroInfo], lists: dict[str, ListInfo], warn: Report) -> None:
    """The closing warnings: macros, then lists, that nothing referred to."""
    for m in macros.values():
        if not m.used:
            warn(LoadCode.UNUSED_MACRO, "Macro not referred to by any other rule/macro", m.loc, "macro",
                 m.name)
    for li in lists.values():
        if not li.used:
            warn(LoadCode.UNUSED_LIST, "List not referred to by any other rule/macro", li.loc, "list",
                 li.name)
