"""Load rules: read -> collect -> compile -> ruleset, with Falco's messages.

Compilation follows Falco's ``rule_loader_compiler``: lists are flattened
(a list may use lists defined before it), substituted textually into
conditions, exceptions are rendered as condition text, conditions parsed,
macro references resolved (a macro only sees macros defined before it; rules
see all), then every rule (enabled or not) is compiled for its source.
List flattening and macro resolution are the memoised, capped graph pass of
:mod:`falcopy.engine.resolve`.  Files of a namespaced FalcoRule take the
confined path of :mod:`falcopy.engine.tenancy`: no text substitution, values
substituted into the tree, and the namespace guard first on the final tree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from falcopy.common.errors import FalcopyError
from falcopy.engine import ast, tenancy
from falcopy.engine.alert_keys import field_reader
from falcopy.engine.collector import Collector, ExceptionInfo, ListInfo, LoadFailure, MacroInfo, RuleInfo
from falcopy.engine.compiler import CheckCompiler, CompileError, resolve_field
from falcopy.engine.evttypes import (
    ALL_EVENT_TYPES,
    MAX_EVTTYPES_WITHOUT_WARNING,
    event_types,
    fold_for_type,
)
from falcopy.engine.fieldrefs import canonical_names, field_refs, unavailable_reads
from falcopy.engine.fields import default_sources
from falcopy.engine.fields.base import FieldSource
from falcopy.engine.limits import DEFAULT_CAPS, Budget, BudgetExceeded, Caps
from falcopy.engine.messages import LoadCode, LoadMessage, LoadResult
from falcopy.engine.output import OutputError, compile_output
from falcopy.engine.parser import ParseError, Parser
from falcopy.engine.priority import Priority
from falcopy.engine.reader import ReadError, read_documents
from falcopy.engine.resolve import (
    MacroResolver,
    ResolveError,
    ValueLists,
    exception_tree,
    flatten_lists,
    substitute_values,
)
from falcopy.engine.ruleset import CompiledRule, Ruleset
from falcopy.engine.source_text import FileTable, SourceText, concat
from falcopy.engine.tree import TreeCompiler

_BLANKS = " \t\n\r"
#: rules matching more event types keep one generic predicate (bounded compile time)
_MAX_SPECIALISED_TYPES = 16
_DELIMS = _BLANKS + "(),="
_LIST_OPS = ("in", "intersects", "pmatch")


@dataclass(frozen=True, slots=True)
class RulesInput:
    name: str
    content: str
    #: a namespaced FalcoRule's file: its items are confined (see falcopy.engine.tenancy)
    namespace: str | None = None


def quote_item(v: str) -> str:
    if " " in v and not (v.startswith('"') or v.startswith("'")):
        return f'"{v}"'
    return v


def paren_item(v: str) -> str:
    return v if v.startswith("(") else f"({v})"


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


def _attach(node: ast.Node, st: SourceText) -> None:
    node.text = st
    if isinstance(node, ast.And | ast.Or):
        for c in node.children:
            _attach(c, st)
    elif isinstance(node, ast.Not) and node.child is not None:
        _attach(node.child, st)
    elif isinstance(node, ast.Check):
        for part in (node.left, node.right):
            if part is not None:
                _attach(part, st)
    elif isinstance(node, ast.Transform):
        for a in node.args:
            _attach(a, st)


class _Stopped(FalcopyError):
    """The budget ran out; the error is recorded already."""


class Loader:
    def __init__(self, sources: dict[str, FieldSource], optimize: bool = True,
                 keep_going: bool = False, *, caps: Caps = DEFAULT_CAPS, budget: Budget | None = None,
                 disabled_sources: Mapping[str, str] | None = None,
                 capturable: frozenset[str] | None = None,
                 unavailable_fields: Mapping[str, str] | None = None) -> None:
        self.sources = sources
        self.optimize = optimize
        self.keep_going = keep_going
        self.caps = caps
        self.budget = budget or Budget()
        #: source -> why it is switched off here: its rules are skipped with a warning
        self.disabled_sources = dict(disabled_sources or {})
        #: the syscall event types this system can produce (None: not checked)
        self.capturable = capturable
        #: field (or ``prefix.*``) -> why it never has a value here: rules reading one are told
        self.unavailable_fields = dict(unavailable_fields or {})
        self.table = FileTable()
        self.errors: list[LoadMessage] = []
        self.warnings: list[LoadMessage] = []
        self.collector = Collector(self._warn_loc, self._field_known, set(sources))
        if keep_going:
            self.collector.item_errors = []

    # ------------------------------------------------------------ messages
    def _msg(self, code: str, message: str, loc: int, item_type: str, item_name: str) -> LoadMessage:
        file, line, col = self.table.resolve(loc)
        f = self.table.files[loc >> 32]
        off = loc & ((1 << 32) - 1)
        line_start = f.line_starts[line - 1]
        line_end = f.content.find("\n", line_start)
        snippet = f.content[line_start: line_end if line_end >= 0 else len(f.content)]
        return LoadMessage(code, message, file, line, col, item_type, item_name, off, snippet)

    def _warn_loc(self, code: str, message: str, loc: int, item_type: str, item_name: str) -> None:
        m = self._msg(code, message, loc, item_type, item_name)
        if m not in self.warnings:
            self.warnings.append(m)

    def _error_loc(self, code: str, message: str, loc: int, item_type: str, item_name: str) -> None:
        self.errors.append(self._msg(code, message, loc, item_type, item_name))

    def _field_known(self, source: str, expr: str) -> bool:
        src = self.sources.get(source)
        if src is None:
            return True
        p = Parser(expr)
        try:
            node = p.parse_transformer_arg()
        except ParseError:
            return False
        p.blank()
        if node is None or p.i != p.n:
            return False

        def known(n: ast.Node) -> bool:
            if isinstance(n, ast.FieldRef):
                return src.lookup(n.name) is not None
            if isinstance(n, ast.Transform):
                return all(known(a) for a in n.args)
            return isinstance(n, ast.Literal)
        return known(node)

    # ------------------------------------------------------------ collect
    def collect(self, inputs: Iterable[RulesInput]) -> None:
        """Read every item.  Like Falco, the first error ends the load, unless ``keep_going``:
        then every broken item and unreadable file is reported and the rest still compiles."""
        for inp in inputs:
            self.collector.namespace = inp.namespace
            try:
                self.budget.check()
            except BudgetExceeded as e:
                self.errors.append(LoadMessage(LoadCode.ERR_VALIDATE, str(e), inp.name, 1, 1, "rules content",
                                               ""))
                return
            try:
                _, docs = read_documents(inp.name, inp.content, self.table)
                for doc in docs:
                    self.collector.read_document(doc)
            except ReadError as e:
                self._error_loc(e.code, e.message, e.loc, e.item_type, "")
                if not self.keep_going:
                    return
            except LoadFailure as e:
                self._error_loc(e.code, e.message, e.loc, e.item_type, e.item_name)
                if not self.keep_going:
                    return
            finally:
                for f in self.collector.item_errors or ():
                    self._error_loc(f.code, f.message, f.loc, f.item_type, f.item_name)
                if self.collector.item_errors:
                    self.collector.item_errors.clear()
        try:
            self.collector.check_plugin_requirements()
        except LoadFailure as e:
            self._error_loc(e.code, e.message, e.loc, e.item_type, e.item_name)

    # ------------------------------------------------------------ compile
    def _checkpoint(self, loc: int, item_type: str, name: str) -> None:
        """Stop at the item being worked on when the budget is spent or the caller gone."""
        try:
            self.budget.check()
        except BudgetExceeded as e:
            self._error_loc(LoadCode.ERR_VALIDATE, str(e), loc, item_type, name)
            raise _Stopped from None

    def _parse(self, st: SourceText, namespace: str | None, item_type: str, name: str,
               lists: dict[str, tuple[str, ...]], substitute: Any) -> ast.Node | None:
        """A condition's tree.  Cluster items get Falco's textual list substitution;
        a namespaced item's lists are substituted into the tree as values."""
        if namespace is None:
            st = substitute(st)
        try:
            tree = Parser(st.text).parse()
        except ParseError as e:
            self._error_loc(LoadCode.ERR_COMPILE_CONDITION, e.message, st.loc_at(e.pos), item_type, name)
            return None
        _attach(tree, st)
        if namespace is not None:
            substitute_values(tree, st.text, ValueLists(lists, self.collector.lists, namespace))
        return tree

    def _namespaced_condition(self, r: RuleInfo, lists: dict[str, tuple[str, ...]],
                              substitute: Any) -> ast.Node | None:
        tree = self._parse(r.cond, r.namespace, "rule", r.name, lists, substitute)
        if tree is None or not r.exceptions:
            return tree
        value_lists = ValueLists(lists, self.collector.lists, r.namespace)
        children = [tree]
        for ex in r.exceptions:
            text = SourceText.generated(ex.name or "exception", ex.values_loc or ex.loc)
            node = exception_tree(ex, value_lists, text)
            if node is not None:
                children.append(ast.Not(0, child=node, text=text))
        return ast.And(tree.pos, children=children, text=tree.text) if len(children) > 1 else tree

    def compile(self) -> list[CompiledRule]:
        try:
            return self._compile()
        except _Stopped:
            return []

    def _compile(self) -> list[CompiledRule]:
        col = self.collector
        caps = self.caps

        def list_failed(info: ListInfo, message: str) -> None:
            self._error_loc(LoadCode.ERR_VALIDATE, message, info.loc, "list", info.name)

        lists = flatten_lists(col.lists, caps, list_failed)
        # namespaced lists are private to their namespace: never spliced into cluster text
        cluster_lists = {n: v for n, v in lists.items() if col.lists[n].namespace is None}

        def substitute(st: SourceText) -> SourceText:
            for lname, litems in cluster_lists.items():
                if lname in st.text:
                    st, used = resolve_list(st, lname, litems)
                    if used:
                        col.lists[lname].used = True
            return st

        # macros: parse
        parsed: dict[str, ast.Node] = {}
        broken: set[str] = set()
        for m in col.macros.values():
            self._checkpoint(m.loc, "macro", m.name)
            tree = self._parse(m.cond, m.namespace, "macro", m.name, lists, substitute)
            if tree is None:
                broken.add(m.name)
                continue
            parsed[m.name] = tree
        resolver = MacroResolver(col.macros, parsed, broken, caps)
        # macros: resolve with visibility, to validate each macro on its own
        for m in col.macros.values():
            if m.name not in parsed:
                continue
            self._checkpoint(m.loc, "macro", m.name)

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
                    self._error_loc(LoadCode.ERR_VALIDATE, e.message, loc, "macro", m.name)

        compilers: dict[str, TreeCompiler] = {}
        per_type: dict[str, TreeCompiler] = {}
        macro_uses: dict[str, int] = {}
        rules: list[CompiledRule] = []
        prepared: list[tuple[RuleInfo, ast.Node]] = []
        total = 0
        for r in col.rules.values():
            self._checkpoint(r.loc, "rule", r.name)
            if r.source not in self.sources:
                self._warn_loc(LoadCode.UNKNOWN_SOURCE, f"Unknown source {r.source}, skipping", r.loc, "rule",
                               r.name)
                continue
            if r.source in self.disabled_sources:
                # Falco's wording: to Falco a switched-off source is one whose plugin is not loaded
                self._warn_loc(LoadCode.UNKNOWN_SOURCE, f"Unknown source {r.source}, skipping: the rule can "
                               f"never fire ({self.disabled_sources[r.source]})", r.loc, "rule", r.name)
                continue
            try:
                if r.namespace is None:
                    tree = self._parse(self._with_exceptions(r), None, "rule", r.name, lists, substitute)
                else:
                    tree = self._namespaced_condition(r, lists, substitute)
            except LoadFailure as e:
                self._error_loc(e.code, e.message, e.loc, e.item_type, e.item_name)
                continue
            if tree is None:
                continue

            def scope(i: MacroInfo, _ns: str | None = r.namespace) -> bool:
                return i.namespace in (None, _ns)
            try:
                tree, size = resolver.resolve(tree, scope)
            except ResolveError as e:
                if not e.silent:
                    loc = e.node.text.loc_at(e.node.pos) if e.node is not None and e.node.text else r.loc
                    self._error_loc(LoadCode.ERR_VALIDATE, e.message, loc, "rule", r.name)
                continue
            total += size
            if size > caps.expanded_nodes or total > caps.total_nodes:
                what = (f"expands to {size} nodes, more than the limit of {caps.expanded_nodes}"
                        if size > caps.expanded_nodes else
                        f"brings the rules to {total} expanded nodes, more than the limit of "
                        f"{caps.total_nodes}")
                self._error_loc(LoadCode.ERR_VALIDATE, f"Rule {what}", r.loc, "rule", r.name)
                continue
            if r.namespace is not None:
                # the guard goes on the final tree, first: nothing in the tenant's text can get around it
                tree = tenancy.guarded(r.namespace, tree, SourceText.generated(r.name, r.loc))
            _count_macros(tree, macro_uses, set())
            prepared.append((r, tree))

        for r, tree in prepared:
            self._checkpoint(r.loc, "rule", r.name)
            tc = compilers.get(r.source)
            if tc is None:
                tc = compilers[r.source] = TreeCompiler(CheckCompiler(self.sources[r.source], r.source),
                                                        macro_uses, optimize=self.optimize)
            compiled = self._compile_rule(r, tree, tc)
            if compiled is not None:
                if self.optimize and compiled.evttypes and len(compiled.evttypes) <= _MAX_SPECIALISED_TYPES:
                    compiled.by_type = self._specialise(r, tree, compiled.evttypes, macro_uses, per_type)
                rules.append(compiled)

        for m in col.macros.values():
            if not m.used:
                self._warn_loc(LoadCode.UNUSED_MACRO, "Macro not referred to by any other rule/macro", m.loc,
                               "macro", m.name)
        for li in col.lists.values():
            if not li.used:
                self._warn_loc(LoadCode.UNUSED_LIST, "List not referred to by any other rule/macro", li.loc,
                               "list", li.name)
        return rules

    def _compile_rule(self, r: RuleInfo, tree: ast.Node, tc: TreeCompiler) -> CompiledRule | None:
        tc.checks.warnings = []
        types: frozenset[str] | None = event_types(tree) if r.source == "syscall" else None
        implied = None if types is None or types == ALL_EVENT_TYPES else types
        try:
            first, rest, first_key = tc.compile_rule_split(tree, implied)
            fast = first if rest is None else (lambda ev, c, _a=first, _b=rest: _a(ev, c) and _b(ev, c))
        except CompileError as e:
            loc = e.node.text.loc_at(e.pos) if e.node is not None and e.node.text is not None else r.loc
            if e.unknown_filter and r.skip_if_unknown_filter:
                self._warn_loc(LoadCode.UNKNOWN_FILTER, e.message, loc, "rule", r.name)
            else:
                self._error_loc(LoadCode.ERR_COMPILE_CONDITION, e.message, loc, "rule", r.name)
            return None
        for w in tc.checks.warnings:
            loc = w.node.text.loc_at(w.node.pos) if w.node.text is not None else r.loc
            self._warn_loc(w.code, w.message, loc, "rule", r.name)
        if implied is not None and self.capturable is not None:
            self._warn_uncapturable(r, implied)
        if types is not None and r.warn_evttypes and (not types or len(types) > MAX_EVTTYPES_WITHOUT_WARNING):
            self._warn_loc(LoadCode.NO_EVTTYPE,
                           "Rule matches too many evt.type values. This has a significant performance "
                           "penalty.", r.loc, "rule", r.name)
        evttypes = implied
        if implied is None:
            pred = fast
        else:
            # usable on any event: the type test stands for the conjuncts the index made redundant
            def pred(ev: Any, c: dict[Any, Any], _t: frozenset[str] = implied, _f: Any = fast) -> bool:
                return ev.type in _t and _f(ev, c)
        try:
            fmt = compile_output(r.output.text, self.sources[r.source])
        except OutputError as e:
            loc = r.output.loc_at(e.offset)
            if r.skip_if_unknown_filter:
                self._warn_loc(LoadCode.UNKNOWN_FILTER, e.message, loc, "rule", r.name)
            else:
                self._error_loc(LoadCode.ERR_COMPILE_OUTPUT, e.message, loc, "rule", r.name)
            return None
        try:
            agg_key = field_reader(r.aggregation.key if r.aggregation else (), self.sources[r.source])
            group = field_reader(r.threshold.group_by if r.threshold else (), self.sources[r.source])
            distinct = field_reader((r.threshold.distinct,) if r.threshold and r.threshold.distinct else (),
                                     self.sources[r.source])
        except OutputError as e:
            self._error_loc(LoadCode.ERR_VALIDATE, e.message, r.loc, "rule", r.name)
            return None
        if self.unavailable_fields:
            self._warn_unavailable(r, tree, fmt)
        ex_fields = sorted({f for ex in r.exceptions for f in
                            (ex.fields if isinstance(ex.fields, list) else [ex.fields] if ex.fields else [])})
        return CompiledRule(name=r.name, desc=r.desc, priority=r.priority, tags=list(r.tags), source=r.source,
                            enabled=r.enabled, evttypes=evttypes, condition=r.cond.text, output=r.output.text,
                            predicate=pred, indexed_predicate=fast, indexed_split=(first, rest),
                            first_key=first_key,
                            output_format=fmt, index=r.index, default_enabled=r.enabled,
                            capture=r.capture, capture_duration=r.capture_duration,
                            exception_fields=ex_fields, namespace=r.namespace, tree=tree,
                            aggregation=r.aggregation, aggregation_key=agg_key,
                            threshold=r.threshold, threshold_group=group, threshold_distinct=distinct)

    def _warn_uncapturable(self, r: RuleInfo, types: frozenset[str]) -> None:
        assert self.capturable is not None
        missing = sorted(types - self.capturable)
        if not missing:
            return
        names = ", ".join(missing)
        if len(missing) == len(types):
            message = f"Rule can never fire: event type(s) {names} cannot be captured on this system"
        else:
            message = f"Event type(s) {names} cannot be captured on this system: the rule only fires on " \
                      f"{', '.join(sorted(types & self.capturable))}"
        self._warn_loc(LoadCode.UNCAPTURABLE_EVTTYPE, message, r.loc, "rule", r.name)

    def _warn_unavailable(self, r: RuleInfo, tree: ast.Node, fmt: Any) -> None:
        """One warning per rule naming each field it reads (condition or output) that is
        empty in the running configuration, and why."""
        read = canonical_names(field_refs(tree), self.sources[r.source])
        read.update(fmt.field_names())
        found = unavailable_reads(read, self.unavailable_fields)
        if not found:
            return
        what = "; ".join(f"{f} ({why})" for f, why in found)
        self._warn_loc(LoadCode.UNAVAILABLE_FIELD, f"Rule reads field(s) that never have a value here, "
                       f"they read as <NA>: {what}", r.loc, "rule", r.name)

    def _specialise(self, r: RuleInfo, tree: ast.Node, types: frozenset[str], macro_uses: dict[str, int],
                    per_type: dict[str, TreeCompiler]) -> dict[str, tuple[Any, Any, object]]:
        """One predicate per event type of the rule, with the ``evt.type`` checks
        decided: branches for other types vanish and no type test runs per event."""
        out: dict[str, tuple[Any, Any, object]] = {}
        for t in types:
            folded = fold_for_type(tree, t)
            if folded is True or folded is False:
                const = folded
                out[t] = ((lambda _e, _c, _v=const: _v), None, ("const", const))
                continue
            tc = per_type.get(t)
            if tc is None:
                tc = per_type[t] = TreeCompiler(CheckCompiler(self.sources[r.source], r.source), macro_uses)
            out[t] = tc.compile_rule_split(folded, None)
            tc.checks.warnings = []       # already reported by the generic compilation
        return out

    # ------------------------------------------------------------ exceptions
    def _with_exceptions(self, r: RuleInfo) -> SourceText:
        if not r.exceptions:
            return r.cond
        loc0 = r.cond.loc_at(0)
        parts: list[Any] = [("(", loc0), r.cond, (")", r.cond.locs[-1])]
        for ex in r.exceptions:
            text = self._exception_text(ex)
            if text:
                loc = ex.values_loc or ex.loc
                parts.append((" and not " + text, loc))
        return concat(*parts)

    def _exception_text(self, ex: ExceptionInfo) -> str:
        if ex.fields is None:
            return ""
        if isinstance(ex.fields, str):
            vals = []
            for v in ex.values:
                if isinstance(v, list):
                    raise LoadFailure(LoadCode.ERR_VALIDATE,
                                      "Expected values array to contain a list of strings",
                                      ex.loc, "exception", ex.name)
                vals.append(quote_item(v))
            if not vals:
                return ""
            return f"({ex.fields} {ex.comps} ({', '.join(vals)}))"
        comps = ex.comps if isinstance(ex.comps, list) else ["="] * len(ex.fields)
        groups = []
        for tup in ex.values:
            if not isinstance(tup, list):
                raise LoadFailure(LoadCode.ERR_VALIDATE, "Expected values array to contain a list of lists",
                                  ex.loc, "exception", ex.name)
            if len(tup) != len(ex.fields):
                raise LoadFailure(LoadCode.ERR_VALIDATE, "Fields and values lists must have equal length",
                                  ex.loc, "exception", ex.name)
            conds = []
            for fld, comp, val in zip(ex.fields, comps, tup, strict=True):
                if isinstance(val, list):
                    rhs = "(" + ", ".join(quote_item(v) for v in val) + ")"
                elif comp in _LIST_OPS:
                    rhs = paren_item(val)
                else:
                    rhs = quote_item(val)
                conds.append(f"{fld} {comp} {rhs}")
            groups.append("(" + " and ".join(conds) + ")")
        if not groups:
            return ""
        return "(" + " or ".join(groups) + ")"


def _count_macros(node: ast.Node, uses: dict[str, int], seen: set[int]) -> None:
    """How many rules reach each macro (decides which are worth memoising)."""
    if isinstance(node, ast.MacroRef):
        uses[node.name] = uses.get(node.name, 0) + 1
        if node.body is not None and id(node.body) not in seen:
            seen.add(id(node.body))
            _count_macros(node.body, uses, seen)
    elif isinstance(node, ast.And | ast.Or):
        for c in node.children:
            _count_macros(c, uses, seen)
    elif isinstance(node, ast.Not) and node.child is not None:
        _count_macros(node.child, uses, seen)


def _namespace_getters(sources: dict[str, FieldSource], rules: list[CompiledRule]) -> dict[str, Any]:
    """Per source with namespaced rules: the event's namespace (the guard's field)."""
    out: dict[str, Any] = {}
    for source in {r.source for r in rules if r.namespace is not None}:
        out[source] = resolve_field(sources[source], ast.FieldRef(0, name=tenancy.NS_FIELD)).get
    return out


def load_rules(inputs: Iterable[RulesInput], *, sources: dict[str, FieldSource] | None = None,
               selection: Iterable[Any] = (), min_priority: Priority = Priority.DEBUG,
               rule_matching: str = "first", keep_going: bool = False, caps: Caps = DEFAULT_CAPS,
               budget: Budget | None = None, tenant_precedence: bool = False,
               disabled_sources: Mapping[str, str] | None = None,
               capturable: frozenset[str] | None = None,
               unavailable_fields: Mapping[str, str] | None = None) -> LoadResult:
    """``caps`` bound what one load may expand; ``budget`` adds a deadline and
    cancellation (an error at the item being worked on).  ``tenant_precedence``:
    a namespaced rule may take the first-match slot from a cluster rule for
    events of its namespace (by load order); by default cluster rules go first.
    ``disabled_sources`` (source -> reason) and ``capturable`` (the syscall event types
    this system can produce) turn rules that can never fire into warnings;
    ``unavailable_fields`` (field or ``prefix.*`` -> reason) does the same for the fields
    that never have a value in the running configuration."""
    inputs = list(inputs)
    sources = sources if sources is not None else default_sources()
    loader = Loader(sources, keep_going=keep_going, caps=caps, budget=budget,
                    disabled_sources=disabled_sources, capturable=capturable,
                    unavailable_fields=unavailable_fields)
    result = LoadResult(names=[i.name for i in inputs])
    loader.collect(inputs)
    rules: list[CompiledRule] = []
    if not loader.errors or keep_going:
        rules = loader.compile()
    result.errors = loader.errors
    result.warnings = loader.warnings
    col = loader.collector
    result.counts = {"rules": len(col.rules), "macros": len(col.macros), "lists": len(col.lists)}
    if not result.errors:
        result.ruleset = Ruleset(rules, rule_matching=rule_matching, min_priority=min_priority,
                                 selection=selection, namespace_of=_namespace_getters(sources, rules),
                                 tenant_precedence=tenant_precedence)
    return result


def rules_inputs(paths: Iterable[str | Path]) -> list[RulesInput]:
    """Files as given; directories expanded to their .yml/.yaml files, sorted."""
    out: list[RulesInput] = []
    for p in paths:
        path = Path(p)
        files = sorted(f for f in path.iterdir() if f.is_file() and f.suffix in (".yml", ".yaml")) \
            if path.is_dir() else [path]
        for f in files:
            out.append(RulesInput(str(f), f.read_text(encoding="utf-8", errors="replace")))
    return out


def load_rules_files(paths: Iterable[str | Path], **kwargs: Any) -> LoadResult:
    inputs: list[RulesInput] = []
    missing: list[LoadMessage] = []
    for p in paths:
        try:
            inputs.extend(rules_inputs([p]))
        except OSError as e:
            missing.append(LoadMessage(LoadCode.ERR_FILE_READ, f"Could not read rules file: {e.strerror}",
                                       str(p), 0, 0, "rules content", ""))
    if missing:
        return LoadResult(errors=missing, names=[str(p) for p in paths])
    return load_rules(inputs, **kwargs)
