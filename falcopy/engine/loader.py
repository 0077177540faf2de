"""Load rules: read -> collect -> compile -> ruleset, with Falco's messages.

Compilation runs in the stages of Falco's ``rule_loader_compiler``, each its
own pass over the collected items:

1. lists (:class:`~falcopy.engine.passes.Conditions`): flattened, a list
   using lists defined before it, within the caps;
2. macros (:func:`~falcopy.engine.passes.resolve_macros`): parsed with the
   lists substituted and resolved with Falco's visibility (a macro only sees
   macros defined before it), each reported once at itself;
3. rules (here): the condition with its exceptions
   (:mod:`falcopy.engine.rule_exceptions`) parsed, its macro references
   resolved through the macro pass's memo (rules see all macros), the caps
   checked, then every rule (enabled or not) compiled for its source, with
   its event types and warnings;
4. the unused macro and list warnings.

Resolution is the memoised, capped graph of :mod:`falcopy.engine.resolve`.
Files of a namespaced FalcoRule take the confined path of
:mod:`falcopy.engine.tenancy`: no text substitution, values substituted into
the tree, and the namespace guard first on the final tree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from falcopy.common.errors import FalcopyError
from falcopy.engine import ast, rule_exceptions, tenancy
from falcopy.engine.alert_keys import field_reader
from falcopy.engine.collector import Collector
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
from falcopy.engine.items import LoadFailure, MacroInfo, RuleInfo
from falcopy.engine.limits import DEFAULT_CAPS, Budget, BudgetExceeded, Caps
from falcopy.engine.messages import LoadCode, LoadMessage, LoadResult
from falcopy.engine.output import OutputError, compile_output
from falcopy.engine.passes import Conditions, resolve_macros, warn_unused
from falcopy.engine.priority import Priority
from falcopy.engine.reader import ReadError, read_documents
from falcopy.engine.resolve import MacroResolver, ResolveError
from falcopy.engine.ruleset import CompiledRule, Ruleset
from falcopy.engine.source_text import FileTable, SourceText
from falcopy.engine.tree import TreeCompiler

#: rules matching more event types keep one generic predicate (bounded compile time)
_MAX_SPECIALISED_TYPES = 16


@dataclass(frozen=True, slots=True)
class RulesInput:
    name: str
    content: str
    #: a namespaced FalcoRule's file: its items are confined (see falcopy.engine.tenancy)
    namespace: str | None = None


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

        def known(n: ast.Node) -> bool:
            if isinstance(n, ast.FieldRef):
                return src.lookup(n.name) is not None
            if isinstance(n, ast.Transform):
                return all(known(a) for a in n.args)
            return isinstance(n, ast.Literal)
        node = rule_exceptions.parse_field_expr(expr)
        return node is not None and known(node)

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

    def compile(self) -> list[CompiledRule]:
        try:
            return self._compile()
        except _Stopped:
            return []

    def _compile(self) -> list[CompiledRule]:
        col = self.collector
        caps = self.caps

        conditions = Conditions(col.lists, caps, self._error_loc)
        resolver = resolve_macros(col.macros, conditions, caps, self._error_loc, self._checkpoint)

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
            resolved = self._rule_tree(r, conditions, resolver)
            if resolved is None:
                continue
            tree, size = resolved
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

        warn_unused(col.macros, col.lists, self._warn_loc)
        return rules

    def _rule_tree(self, r: RuleInfo, conditions: Conditions,
                   resolver: MacroResolver) -> tuple[ast.Node, int] | None:
        """A rule's condition with its exceptions, parsed, its macros resolved: (tree,
        expanded size), or None when that failed (reported)."""
        try:
            if r.namespace is None:
                tree = conditions.parse(rule_exceptions.condition_text(r), None, "rule", r.name)
            else:
                tree = conditions.parse(r.cond, r.namespace, "rule", r.name)
                if tree is not None:
                    tree = rule_exceptions.with_exception_nodes(tree, r, conditions.value_lists(r.namespace))
        except LoadFailure as e:
            self._error_loc(e.code, e.message, e.loc, e.item_type, e.item_name)
            return None
        if tree is None:
            return None

        def scope(i: MacroInfo, _ns: str | None = r.namespace) -> bool:
            return i.namespace in (None, _ns)
        try:
            return resolver.resolve(tree, scope)
        except ResolveError as e:
            if not e.silent:
                loc = e.node.text.loc_at(e.node.pos) if e.node is not None and e.node.text else r.loc
                self._error_loc(LoadCode.ERR_VALIDATE, e.message, loc, "rule", r.name)
            return None

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
