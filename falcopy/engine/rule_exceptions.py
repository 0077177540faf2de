"""A rule's ``exceptions``, in one place: decoded, validated, appended, compiled.

Falco reads each exception from the rule item (name, fields, comps, values),
checks comps and fields against the rule's source, merges the values of an
appended exception into the earlier one of the same name, and at compile
time turns every exception into ``and not (...)`` after the condition.  A
cluster rule gets that as condition text (lists substituted textually, as
Falco does); a namespaced FalcoRule's rule gets it as syntax nodes whose
values stay values (see :mod:`falcopy.engine.tenancy`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from falcopy.engine import ast
from falcopy.engine.items import ExceptionInfo, LoadFailure, RuleInfo, Warn
from falcopy.engine.messages import LoadCode
from falcopy.engine.parser import ParseError, Parser
from falcopy.engine.reader import YMap, YSeq, warn_unknown_keys
from falcopy.engine.resolve import LIST_OPS, ValueLists, item_value, quote_item, walk
from falcopy.engine.source_text import SourceText, concat

EXCEPTION_KEYS = frozenset({"name", "fields", "comps", "values"})
EXCEPTION_SINGLE_COMPS = ("in", "pmatch", "intersects")
_EXCEPTION_OPS = frozenset({"=", "==", "!=", "<", "<=", ">", ">=", "contains", "icontains", "bcontains",
                            "startswith", "bstartswith", "endswith", "glob", "iglob", "regex", "in",
                            "intersects", "pmatch"})

#: field expression -> known to the rule's source (None: the source is not checked)
FieldCheck = Callable[[str], bool] | None


def _fail(code: str, message: str, loc: int, name: str) -> LoadFailure:
    return LoadFailure(code, message, loc, "exception", name)


def _invalid(ex: ExceptionInfo, message: str) -> LoadFailure:
    return _fail(LoadCode.ERR_VALIDATE, message, ex.loc, ex.name)


def parse_field_expr(expr: str) -> ast.Node | None:
    """An exception's field: a field or a transformer over fields; None when it is neither."""
    p = Parser(expr)
    try:
        node = p.parse_transformer_arg()
    except ParseError:
        return None
    p.blank()
    return node if node is not None and p.i == p.n else None


# ---------------------------------------------------------------------------- decode


def decode(item: YMap, rule_name: str, need_fields: bool, warn: Warn) -> list[ExceptionInfo]:
    """The ``exceptions`` sequence of a rule item."""
    seq = item["exceptions"]
    if seq is None:
        return []
    if not isinstance(seq, YSeq):
        raise LoadFailure(LoadCode.ERR_YAML_VALIDATE, "Can't decode YAML sequence value",
                          item.vloc["exceptions"], "exceptions", rule_name)
    out: list[ExceptionInfo] = []
    seen: set[str] = set()
    for i, ex in enumerate(seq):
        eloc = seq.iloc[i]
        if not isinstance(ex, YMap):
            raise _fail(LoadCode.ERR_YAML_VALIDATE,
                        "Unexpected element type. Each element should be a yaml associative array.", eloc, "")
        if "name" not in ex or ex["name"] in (None, ""):
            raise _fail(LoadCode.ERR_YAML_VALIDATE, "Item has no mapping for key 'name'", eloc, "")
        ename = str(ex["name"])
        warn_unknown_keys(ex, EXCEPTION_KEYS, "exception", ename, warn)
        if ename in seen:
            warn(LoadCode.EXCEPTION_NAME_NOT_UNIQUE,
                 f"Multiple definitions of exception '{ename}' in the same rule", eloc, "exception", ename)
        seen.add(ename)
        out.append(_decode_one(ex, ename, eloc, need_fields))
    return out


def _decode_one(ex: YMap, ename: str, eloc: int, need_fields: bool) -> ExceptionInfo:
    info = ExceptionInfo(ename, eloc)
    if "fields" in ex and ex["fields"] is not None:
        f = ex["fields"]
        if isinstance(f, YSeq):
            info.fields = [str(x) for x in f]
        elif isinstance(f, YMap):
            raise _fail(LoadCode.ERR_YAML_VALIDATE, "Can't decode YAML scalar value", ex.vloc["fields"],
                        ename)
        else:
            info.fields = str(f)
    elif need_fields:
        raise _fail(LoadCode.ERR_YAML_VALIDATE, "Item has no mapping for key 'fields'", eloc, ename)
    if "comps" in ex and ex["comps"] is not None:
        c = ex["comps"]
        info.comps = [str(x) for x in c] if isinstance(c, YSeq) else str(c)
    if "values" in ex and ex["values"] is not None:
        vals = ex["values"]
        info.values_loc = ex.vloc["values"]
        if not isinstance(vals, YSeq):
            raise _fail(LoadCode.ERR_YAML_VALIDATE, "Can't decode YAML sequence value", ex.vloc["values"],
                        ename)
        for v in vals:
            if isinstance(v, YSeq):
                info.values.append([[str(y) for y in x] if isinstance(x, YSeq) else str(x) for x in v])
            elif isinstance(v, YMap):
                raise _fail(LoadCode.ERR_YAML_VALIDATE, "Can't decode YAML scalar value", ex.vloc["values"],
                            ename)
            else:
                info.values.append(str(v))
    return info


def validate(ex: ExceptionInfo, known: FieldCheck) -> None:
    """Comps against fields (defaulting them as Falco does), fields against the source."""
    if isinstance(ex.fields, list):
        if ex.comps is None:
            ex.comps = ["="] * len(ex.fields)
        if not isinstance(ex.comps, list) or len(ex.comps) != len(ex.fields):
            raise _invalid(ex, "Fields and comps lists must have equal length")
        for c in ex.comps:
            if c not in _EXCEPTION_OPS:
                raise _invalid(ex, f"'{c}' is not a supported comparison operator")
        for f in ex.fields:
            if known is not None and not known(f):
                raise _invalid(ex, f"'{f}' is not a supported filter field")
    elif isinstance(ex.fields, str):
        if ex.comps is None:
            ex.comps = "in"
        if isinstance(ex.comps, list):
            raise _invalid(ex, "When fields is a single value, comps must also be a single value")
        if ex.comps not in EXCEPTION_SINGLE_COMPS:
            raise _invalid(ex, "When fields is a single value, comps must be one of (in, pmatch, intersects)")
        if known is not None and not known(ex.fields):
            raise _invalid(ex, f"'{ex.fields}' is not a supported filter field")


def append(existing: list[ExceptionInfo], new: list[ExceptionInfo], warn: Warn, known: FieldCheck) -> None:
    """An appended rule's exceptions: a new name is added, a known name gets the values."""
    for ex in new:
        old = next((e for e in existing if e.name == ex.name), None)
        if old is None:
            if ex.fields is None:
                raise _invalid(ex, "Rule exception must have fields property with a list of fields")
            if not ex.values:
                warn(LoadCode.APPEND_NO_VALUES, "Overriding/appending exception with no values", ex.loc,
                     "exception", ex.name)
            validate(ex, known)
            existing.append(ex)
            continue
        if ex.fields is not None:
            raise _invalid(ex, "Can not append exception fields to existing exception, only values")
        if ex.comps is not None:
            raise _invalid(ex, "Can not append exception comps to existing exception, only values")
        if not ex.values:
            warn(LoadCode.APPEND_NO_VALUES, "Overriding/appending exception with no values", ex.loc,
                 "exception", ex.name)
        old.values = old.values + ex.values


# ---------------------------------------------------------------------------- as condition text


def _paren_item(v: str) -> str:
    return v if v.startswith("(") else f"({v})"


def condition_text(r: RuleInfo) -> SourceText:
    """A cluster rule's condition with its exceptions: ``(cond) and not (...)``, as Falco builds it."""
    if not r.exceptions:
        return r.cond
    loc0 = r.cond.loc_at(0)
    parts: list[Any] = [("(", loc0), r.cond, (")", r.cond.locs[-1])]
    for ex in r.exceptions:
        text = _exception_text(ex)
        if text:
            parts.append((" and not " + text, ex.values_loc or ex.loc))
    return concat(*parts)


def _exception_text(ex: ExceptionInfo) -> str:
    if ex.fields is None:
        return ""
    if isinstance(ex.fields, str):
        vals = []
        for v in ex.values:
            if isinstance(v, list):
                raise _invalid(ex, "Expected values array to contain a list of strings")
            vals.append(quote_item(v))
        if not vals:
            return ""
        return f"({ex.fields} {ex.comps} ({', '.join(vals)}))"
    comps = ex.comps if isinstance(ex.comps, list) else ["="] * len(ex.fields)
    groups = []
    for tup in ex.values:
        _check_tuple(ex, tup)
        conds = []
        for fld, comp, val in zip(ex.fields, comps, tup, strict=True):
            if isinstance(val, list):
                rhs = "(" + ", ".join(quote_item(v) for v in val) + ")"
            elif comp in LIST_OPS:
                rhs = _paren_item(val)
            else:
                rhs = quote_item(val)
            conds.append(f"{fld} {comp} {rhs}")
        groups.append("(" + " and ".join(conds) + ")")
    if not groups:
        return ""
    return "(" + " or ".join(groups) + ")"


def _check_tuple(ex: ExceptionInfo, tup: Any) -> None:
    assert isinstance(ex.fields, list)
    if not isinstance(tup, list):
        raise _invalid(ex, "Expected values array to contain a list of lists")
    if len(tup) != len(ex.fields):
        raise _invalid(ex, "Fields and values lists must have equal length")


# ---------------------------------------------------------------------------- as syntax nodes


def with_exception_nodes(tree: ast.Node, r: RuleInfo, lists: ValueLists) -> ast.Node:
    """A namespaced rule's parsed condition with its exceptions as ``and not`` nodes."""
    children = [tree]
    for ex in r.exceptions:
        text = SourceText.generated(ex.name or "exception", ex.values_loc or ex.loc)
        node = exception_tree(ex, lists, text)
        if node is not None:
            children.append(ast.Not(0, child=node, text=text))
    return ast.And(tree.pos, children=children, text=tree.text) if len(children) > 1 else tree


def exception_tree(ex: ExceptionInfo, lists: ValueLists, text: SourceText) -> ast.Node | None:
    """An exception as ``(f1 c1 v1 and f2 c2 v2) or ...`` built from nodes: the
    values are values, whatever characters they hold.  None when it has no values."""

    def lhs(expr: str) -> ast.Node:
        node = parse_field_expr(expr)
        if node is None:
            raise _invalid(ex, f"'{expr}' is not a supported filter field")
        return node

    def list_value(values: list[str], text_form: str | None = None) -> ast.ListValue:
        if text_form is not None:
            # Falco accepts a list written as text: "(a, b)"; it must be exactly one list value
            p = Parser(text_form)
            try:
                node = p.parse_list_value()
            except ParseError:
                node = None
            if not isinstance(node, ast.ListValue) or p.i != p.n:
                raise _invalid(ex, f"exception value {text_form!r} is not a list of values")
            vals, pos = lists.expand(
                (v, 0, text_form[q] in "\"'") for v, q in zip(node.values, node.positions, strict=True)
            )
        else:
            vals, pos = lists.expand((item_value(v), 0, v[:1] in ("'", '"')) for v in values)
        return ast.ListValue(0, values=vals, positions=pos, text=text)

    def check(field_expr: str, comp: str, right: ast.Node) -> ast.Check:
        return ast.Check(0, left=_with_text(lhs(field_expr), text), op=comp, right=right, text=text)

    if ex.fields is None:
        return None
    if isinstance(ex.fields, str):
        vals = []
        for v in ex.values:
            if isinstance(v, list):
                raise _invalid(ex, "Expected values array to contain a list of strings")
            vals.append(v)
        if not vals:
            return None
        return check(ex.fields, str(ex.comps), list_value(vals))
    comps = ex.comps if isinstance(ex.comps, list) else ["="] * len(ex.fields)
    groups: list[ast.Node] = []
    for tup in ex.values:
        _check_tuple(ex, tup)
        conds: list[ast.Node] = []
        for fld, comp, val in zip(ex.fields, comps, tup, strict=True):
            right: ast.Node
            if isinstance(val, list):
                right = list_value(val)
            elif comp in LIST_OPS:
                right = list_value([], val) if val.startswith("(") else list_value([val])
            else:
                right = ast.Value(0, value=item_value(val), text=text)
            conds.append(check(fld, comp, right))
        groups.append(conds[0] if len(conds) == 1 else ast.And(0, children=conds, text=text))
    if not groups:
        return None
    return groups[0] if len(groups) == 1 else ast.Or(0, children=groups, text=text)


def _with_text(node: ast.Node, text: SourceText) -> ast.Node:
    for n in walk(node):
        n.text = text
        n.pos = 0
    return node
