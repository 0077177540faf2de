"""Checks (``field op value``) and field expressions -> closures.

Predicates have the signature ``(event, cache) -> bool`` and are plain
closures built from the tree (never generated source code).  ``cache`` is a
dict living for one evaluation of one event: field values read through
non-trivial accessors (and, see :mod:`tree`, macros shared by several rules)
are stored in it, so each is computed at most once per event whatever the
number of rules looking at it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from falcopy.common.errors import FalcopyError
from falcopy.engine import ast, operators, transformers
from falcopy.engine.fields.base import ArgMode, FieldDef, FieldSource, FieldType
from falcopy.engine.fields.evttypes import is_known_event_type
from falcopy.engine.messages import LoadCode

Pred = Callable[[Any, dict[Any, Any]], bool]
Getter = Callable[[Any, dict[Any, Any]], Any]

_MISS = object()


class CompileError(FalcopyError):
    """A condition/output problem at ``node`` (offset ``pos`` in ``node.text``)."""

    def __init__(self, message: str, node: ast.Node | None, *, unknown_filter: bool = False,
                 pos: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.node = node
        self.unknown_filter = unknown_filter
        self.pos = pos if pos is not None else (node.pos if node is not None else 0)


@dataclass
class CompileWarning:
    code: str
    message: str
    node: ast.Node


@dataclass
class FieldInfo:
    get: Getter
    ftype: FieldType
    is_list: bool
    name: str
    fdef: FieldDef | None = None


def _is_dict_source(source: FieldSource) -> bool:
    return type(source).accessor is FieldSource.accessor


def field_getter(source: FieldSource, fdef: FieldDef, arg: str | None, written: str) -> Getter:
    """A getter for one field reference; memoised per event unless the
    accessor is a plain DictEvent lookup (cheaper than the memo itself)."""
    canonical = fdef.name if arg is None else f"{fdef.name}[{arg}]"
    if arg is None and fdef.name in source.constants:
        def get_const(ev: Any, _c: dict[Any, Any], _v: Any = source.constants[fdef.name]) -> Any:
            return _v
        return get_const
    if _is_dict_source(source):
        if written == canonical:
            def get_dict(ev: Any, _c: dict[Any, Any], _k: str = canonical) -> Any:
                return ev.values.get(_k)
            return get_dict

        def get_dict2(ev: Any, _c: dict[Any, Any], _k: str = written, _k2: str = canonical) -> Any:
            v = ev.values.get(_k)
            return ev.values.get(_k2) if v is None else v
        return get_dict2
    acc = source.accessor(fdef, arg)
    # Optional FieldSource hook: a source whose accessor for a field is a plain
    # attribute read says so (memoize() -> False) and skips the per-event memo,
    # which would cost more than the read.
    memoize = getattr(source, "memoize", None)
    if memoize is not None and not memoize(fdef, arg):
        def get_direct(ev: Any, _c: dict[Any, Any], _a: Callable[[Any], Any] = acc) -> Any:
            return _a(ev)
        return get_direct
    # str keys: their hash is cached, a tuple's is recomputed on every lookup
    key = "f:" + canonical

    def get_memo(ev: Any, c: dict[Any, Any], _a: Callable[[Any], Any] = acc, _k: Any = key) -> Any:
        v = c.get(_k, _MISS)
        if v is _MISS:
            v = c[_k] = _a(ev)
        return v
    return get_memo


def _event_type(ev: Any, _c: dict[Any, Any]) -> Any:
    return ev.type


def resolve_field(source: FieldSource, ref: ast.FieldRef) -> FieldInfo:
    found = source.lookup(ref.name)
    if found is None:
        raise CompileError(f"filter_check called with nonexistent field {ref.name}", ref, unknown_filter=True)
    fdef, dotted = found
    arg = ref.arg if ref.arg is not None else dotted
    if ref.arg is not None and dotted is not None:
        raise CompileError(f"field '{ref.name}' does not accept an argument", ref)
    if arg is not None and fdef.arg is ArgMode.NONE:
        raise CompileError(f"field '{fdef.name}' does not accept an argument", ref)
    if arg is None and fdef.arg is ArgMode.KEY_REQUIRED:
        raise CompileError(f"field '{fdef.name}' requires an argument", ref)
    if arg is not None and fdef.arg is ArgMode.INDEX_OPTIONAL and not arg.strip().isdigit():
        raise CompileError(f"invalid index '{arg}' for field '{fdef.name}': expected a number", ref)
    written = ref.name if ref.arg is None else f"{ref.name}[{ref.arg}]"
    is_list = fdef.is_list or (fdef.arg is ArgMode.INDEX_OPTIONAL and arg is None)
    if fdef.name == "evt.type" and arg is None and source.name == "syscall":
        # every event carries its type (the index key): no accessor needed
        return FieldInfo(_event_type, fdef.type, False, written, fdef)
    return FieldInfo(field_getter(source, fdef, arg, written), fdef.type, is_list, written, fdef)


def expr_text(node: ast.Node) -> str:
    if isinstance(node, ast.FieldRef):
        return node.name if node.arg is None else f"{node.name}[{node.arg}]"
    if isinstance(node, ast.Transform):
        return f"{node.name}(" + ", ".join(expr_text(a) for a in node.args) + ")"
    if isinstance(node, ast.Literal):
        return '"' + node.value + '"'
    return "?"


def compile_value_expr(source: FieldSource, node: ast.Node) -> FieldInfo:
    """A field or a transformer applied to fields: the getter and its type."""
    if isinstance(node, ast.FieldRef):
        return resolve_field(source, node)
    if isinstance(node, ast.Literal):
        value = node.value
        return FieldInfo(lambda _e, _c, _v=value: _v, FieldType.STRING, False, expr_text(node))
    if isinstance(node, ast.Transform):
        if node.name == "val":
            return compile_value_expr(source, node.args[0])
        sig = transformers.SIGNATURES.get(node.name)
        if sig is None:
            raise CompileError(f"unknown transformer '{node.name}'", node)
        lo, hi, rtype = sig
        if len(node.args) < lo or (hi is not None and len(node.args) > hi):
            raise CompileError(f"wrong number of arguments for transformer '{node.name}'", node)
        args = [compile_value_expr(source, a) for a in node.args]
        if node.name in transformers.STRING_INPUT:
            for a, an in zip(args, node.args, strict=True):
                if a.ftype not in (FieldType.STRING, FieldType.FLAGS, FieldType.BYTEBUF):
                    raise CompileError(f"transformer '{node.name}' is not supported on field "
                                       f"'{a.name}' of type {a.ftype}", an)
        getters = [a.get for a in args]
        name = node.name
        if len(getters) == 1:
            g0 = getters[0]

            def get1(ev: Any, c: dict[Any, Any]) -> Any:
                return transformers.apply(name, [g0(ev, c)])
            getter: Getter = get1
        else:
            def getn(ev: Any, c: dict[Any, Any]) -> Any:
                return transformers.apply(name, [g(ev, c) for g in getters])
            getter = getn
        is_list = args[0].is_list and node.name in transformers.STRING_INPUT
        if node.name == "getopt":
            is_list = True
        return FieldInfo(getter, rtype or args[0].ftype, is_list, expr_text(node))
    raise CompileError("expected a field or a transformer", node)


class CheckCompiler:
    """Compiles Check nodes for one source; collects warnings."""

    def __init__(self, source: FieldSource, source_name: str) -> None:
        self.source = source
        self.source_name = source_name
        self.warnings: list[CompileWarning] = []

    # -------------------------------------------------------------- checks
    def compile_check(self, node: ast.Check) -> Pred:
        try:
            return self._compile_check(node)
        except operators.OperatorError as e:
            raise CompileError(str(e), node.right if node.right is not None else node) from None

    def _compile_check(self, node: ast.Check) -> Pred:
        left = node.left
        assert left is not None
        if isinstance(left, ast.FieldRef) and left.name == "evt.dir" and left.arg is None:
            const = self._evt_dir(node)
            if const is not None:
                return (lambda _e, _c: True) if const else (lambda _e, _c: False)
        lhs = compile_value_expr(self.source, left)
        if lhs.fdef is not None and lhs.fdef.deprecated:
            self.warnings.append(CompileWarning(
                LoadCode.DEPRECATED_ITEM,
                f"field '{lhs.fdef.name}' is deprecated", left))
        op = node.op
        if op == "exists":
            get = lhs.get
            return lambda ev, c: get(ev, c) is not None
        named = self._name_match(left, lhs, node)
        if named is not None:
            return named
        try:
            operators.check_operator(op, lhs.ftype, lhs.name)
        except operators.OperatorError as e:
            raise CompileError(str(e), node) from None
        is_evttype = isinstance(left, ast.FieldRef) and left.name == "evt.type" and left.arg is None
        right = node.right
        if isinstance(right, ast.Transform):
            if is_evttype:
                raise CompileError("evt.type cannot be compared with a transformer or val()", right)
            other = compile_value_expr(self.source, right)
            return self._dynamic(lhs, op, other)
        if isinstance(right, ast.ListValue):
            values = right.values
            if is_evttype:
                self._check_evttypes(values, right)
            self._na_check(lhs, op, values, node)
            conv = self._convert_all(values, lhs.ftype, op, right)
            if node.modifier is not None:
                pred = operators.modifier_pred(op, node.modifier, conv, lhs.ftype)
                return self._wrap_scalar(lhs, pred)
            if op not in operators.LIST_OPS:
                if len(conv) != 1:
                    raise CompileError(f"operator '{op}' needs a single value", right)
                return self._scalar(lhs, op, conv[0])
            return self._set(lhs, op, conv)
        assert isinstance(right, ast.Value)
        if op in operators.LIST_OPS:
            conv = self._convert_all([right.value], lhs.ftype, op, right)
            return self._set(lhs, op, conv)
        if is_evttype:
            self._check_evttypes([right.value], right)
        self._na_check(lhs, op, [right.value], node)
        rhs = self._convert_all([right.value], lhs.ftype, op, right)[0]
        return self._scalar(lhs, op, rhs)

    def _name_match(self, left: ast.Node, lhs: FieldInfo, node: ast.Check) -> Pred | None:
        """``fd.sip.name = example.com`` / ``!=`` / ``in``: true when the event's address is
        one of the name's (libsinsp's compare_domain), not a comparison of the field's
        text.  Offered by a source through the optional ``name_matcher(fdef, arg)`` hook:
        a ``(event, name) -> True/False, or None when the event has no address``."""
        hook = getattr(self.source, "name_matcher", None)
        if hook is None or lhs.fdef is None or not isinstance(left, ast.FieldRef) or node.modifier:
            return None
        if node.op not in NAME_OPS or not isinstance(node.right, ast.Value | ast.ListValue):
            return None
        match = hook(lhs.fdef, left.arg)
        if match is None:
            return None
        right = node.right
        names = tuple(right.values) if isinstance(right, ast.ListValue) else (right.value,)
        if node.op == "in":
            def any_of(ev: Any, c: dict[Any, Any]) -> bool:
                for n in names:
                    if match(ev, n):
                        return True
                return False
            return any_of
        if len(names) != 1:
            raise CompileError(f"operator '{node.op}' needs a single value", right)
        name = names[0]
        if node.op == "!=":
            return lambda ev, c: match(ev, name) is False
        return lambda ev, c: match(ev, name) is True

    def _evt_dir(self, node: ast.Check) -> bool | None:
        """Since Falco 0.42 only exit events exist: '<' always, '>' never."""
        if node.op not in ("=", "==", "!=") or not isinstance(node.right, ast.Value):
            return None
        val = node.right.value
        if val not in ("<", ">"):
            return None
        self.warnings.append(CompileWarning(
            LoadCode.DEPRECATED_ITEM,
            "field 'evt.dir' is deprecated: enter events are not generated, evt.dir is always '<'", node))
        is_exit = val == "<"
        return is_exit if node.op != "!=" else not is_exit

    def _check_evttypes(self, values: list[str], node: ast.Node) -> None:
        if self.source_name != "syscall":
            return
        for v in values:
            if not is_known_event_type(v):
                raise CompileError(f"unknown event type {v}", node, unknown_filter=True)

    def _na_check(self, lhs: FieldInfo, op: str, values: list[str], node: ast.Node) -> None:
        if op not in ("=", "==", "!=", "in", "intersects", "pmatch"):
            return
        if not (lhs.name.startswith("ka.") or lhs.name.startswith("jevt.")):
            return
        if "<NA>" in values:
            self.warnings.append(CompileWarning(
                LoadCode.UNSAFE_NA_CHECK,
                f"Comparing '{lhs.name}' with \"<NA>\" is unsafe: a missing value never equals it. "
                "Use 'exists' to check whether the field has a value.", node))

    def _convert_all(self, values: list[str], ftype: FieldType, op: str, node: ast.Node) -> list[Any]:
        out = []
        for v in values:
            try:
                out.append(operators.convert(v, ftype, op))
            except operators.OperatorError as e:
                raise CompileError(str(e), node) from None
        return out

    # -------------------------------------------------------------- builders
    def _wrap_scalar(self, lhs: FieldInfo, pred: Callable[[Any], bool]) -> Pred:
        get = lhs.get
        if lhs.is_list:
            def list_any(ev: Any, c: dict[Any, Any]) -> bool:
                v = get(ev, c)
                if v is None:
                    return False
                if not isinstance(v, list):
                    return pred(v)
                for x in v:
                    if x is not None and pred(x):
                        return True
                return False
            return list_any

        def scalar(ev: Any, c: dict[Any, Any]) -> bool:
            v = get(ev, c)
            return v is not None and pred(v)
        return scalar

    def _scalar(self, lhs: FieldInfo, op: str, rhs: Any) -> Pred:
        get = lhs.get
        t = lhs.ftype
        if not lhs.is_list and t in operators.NUMERIC_TYPES and op in _INT_OPS:
            return _int_check(get, op, rhs, operators.scalar_pred(op, rhs, t))
        if not lhs.is_list and t is FieldType.BOOL and op in ("=", "==", "!="):
            slow = operators.scalar_pred(op, rhs, t)
            want = rhs if op != "!=" else not rhs

            def boolean(ev: Any, c: dict[Any, Any]) -> bool:
                v = get(ev, c)
                if v.__class__ is bool:
                    return v is want
                return v is not None and slow(v)
            return boolean
        if not lhs.is_list and t in (FieldType.STRING, FieldType.FLAGS):
            # the hot cases, specialised to one closure call per check
            if op in ("=", "=="):
                return lambda ev, c: get(ev, c) == rhs
            if op == "!=":
                def ne(ev: Any, c: dict[Any, Any]) -> bool:
                    v = get(ev, c)
                    return v is not None and v != rhs
                return ne
            if op == "startswith":
                def sw(ev: Any, c: dict[Any, Any]) -> bool:
                    v = get(ev, c)
                    return v.__class__ is str and v.startswith(rhs)
                return sw
            if op == "endswith":
                def ew(ev: Any, c: dict[Any, Any]) -> bool:
                    v = get(ev, c)
                    return v.__class__ is str and v.endswith(rhs)
                return ew
            if op == "contains":
                def ct(ev: Any, c: dict[Any, Any]) -> bool:
                    v = get(ev, c)
                    return v.__class__ is str and rhs in v
                return ct
        return self._wrap_scalar(lhs, operators.scalar_pred(op, rhs, t))

    def _set(self, lhs: FieldInfo, op: str, values: list[Any]) -> Pred:
        get = lhs.get
        pred = operators.set_pred(op, values, lhs.ftype)
        # An index-optional ancestor field written without index (proc.aname,
        # proc.apid...) matches when ANY ancestor is in the set, as libsinsp's
        # compare_full_aname does; real list fields need every element in it.
        any_ancestor = (
            lhs.fdef is not None and lhs.fdef.arg is ArgMode.INDEX_OPTIONAL and not lhs.fdef.is_list
        )
        if lhs.is_list:
            if op == "in" and not any_ancestor:
                def all_in(ev: Any, c: dict[Any, Any]) -> bool:
                    v = get(ev, c)
                    if v is None:
                        return False
                    if not isinstance(v, list):
                        return pred(v)
                    if not v:
                        return False
                    return all(x is not None and pred(x) for x in v)
                return all_in
            return self._wrap_scalar(lhs, pred)
        if op == "in" and lhs.ftype in (FieldType.STRING, FieldType.FLAGS):
            vals = frozenset(values)
            return lambda ev, c: get(ev, c) in vals
        return self._wrap_scalar(lhs, pred)

    def _dynamic(self, lhs: FieldInfo, op: str, other: FieldInfo) -> Pred:
        get = lhs.get
        oget = other.get
        dpred = operators.dynamic_pred(op, lhs.ftype)

        def dyn(ev: Any, c: dict[Any, Any]) -> bool:
            v = get(ev, c)
            o = oget(ev, c)
            if v is None or o is None:
                return False
            if isinstance(v, list) and op not in ("in", "intersects"):
                return any(x is not None and dpred(x, o) for x in v)
            if isinstance(v, list):
                others = o if isinstance(o, list) else [o]
                if op == "in":
                    return bool(v) and all(x in others for x in v)
                return any(x in others for x in v)
            return dpred(v, o)
        return dyn


_INT_OPS = frozenset({"=", "==", "!=", "<", "<=", ">", ">="})
#: the operators a name-matched field (``name_matcher``) answers by address membership
NAME_OPS = frozenset({"=", "==", "!=", "in"})


def _int_check(get: Getter, op: str, rhs: Any, slow: Callable[[Any], bool]) -> Pred:
    """Numeric check with a fast path for int values (the common case); other
    representations (text recorded by replay files) go through ``slow``."""
    if op in ("=", "=="):
        def eq(ev: Any, c: dict[Any, Any]) -> bool:
            v = get(ev, c)
            return v == rhs if v.__class__ is int else (v is not None and slow(v))
        return eq
    if op == "!=":
        def ne(ev: Any, c: dict[Any, Any]) -> bool:
            v = get(ev, c)
            return v != rhs if v.__class__ is int else (v is not None and slow(v))
        return ne
    if op == "<":
        def lt(ev: Any, c: dict[Any, Any]) -> bool:
            v = get(ev, c)
            return v < rhs if v.__class__ is int else (v is not None and slow(v))
        return lt
    if op == "<=":
        def le(ev: Any, c: dict[Any, Any]) -> bool:
            v = get(ev, c)
            return v <= rhs if v.__class__ is int else (v is not None and slow(v))
        return le
    if op == ">":
        def gt(ev: Any, c: dict[Any, Any]) -> bool:
            v = get(ev, c)
            return v > rhs if v.__class__ is int else (v is not None and slow(v))
        return gt

    def ge(ev: Any, c: dict[Any, Any]) -> bool:
        v = get(ev, c)
        return v >= rhs if v.__class__ is int else (v is not None and slow(v))
    return ge


