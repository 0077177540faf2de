"""Comparison operators: right-hand-side conversion and value predicates.

Semantics follow libsinsp: a check on a missing value (``None``) is false
for every operator except that ``exists`` tests presence; on list-valued
fields ``in`` means every element is in the set, ``intersects`` at least one,
and every other operator is true when any element satisfies it.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
from collections.abc import Callable
from typing import Any

from falcopy.common.errors import FalcopyError
from falcopy.engine.fields.base import FieldType

NUMERIC_TYPES = frozenset({FieldType.INT, FieldType.UINT, FieldType.ABSTIME, FieldType.RELTIME,
                           FieldType.PORT})
STRING_OPS = frozenset({"contains", "icontains", "startswith", "endswith", "glob", "iglob", "regex"})
BYTE_OPS = frozenset({"bcontains", "bstartswith"})
ORDER_OPS = frozenset({"<", "<=", ">", ">="})
LIST_OPS = frozenset({"in", "intersects", "pmatch"})
EQ_OPS = frozenset({"=", "==", "!="})
ALL_OPS = STRING_OPS | BYTE_OPS | ORDER_OPS | LIST_OPS | EQ_OPS | {"exists"}

Pred = Callable[[Any], bool]


class OperatorError(FalcopyError, ValueError):
    pass


def check_operator(op: str, ftype: FieldType, field_name: str) -> None:
    """Reject operator/type combinations libsinsp rejects."""
    if op in BYTE_OPS and ftype not in (FieldType.BYTEBUF, FieldType.STRING):
        raise OperatorError(f"operator '{op}' is not supported by field '{field_name}' of type {ftype}")
    if op in STRING_OPS and ftype in NUMERIC_TYPES | {FieldType.BOOL}:
        raise OperatorError(f"operator '{op}' is not supported by field '{field_name}' of type {ftype}")
    if op in ORDER_OPS and ftype in (FieldType.BOOL, FieldType.IPADDR, FieldType.IPNET,
                                     FieldType.BYTEBUF):
        raise OperatorError(f"operator '{op}' is not supported by field '{field_name}' of type {ftype}")
    if op == "pmatch" and ftype not in (FieldType.STRING,):
        raise OperatorError(f"operator '{op}' is not supported by field '{field_name}' of type {ftype}")


def parse_number(text: str) -> int | float:
    t = text.strip()
    try:
        if t[:2].lower() in ("0x",) or t[:3].lower() in ("+0x", "-0x"):
            return int(t, 16)
        return int(t, 10)
    except ValueError:
        pass
    try:
        return float(t)
    except ValueError as e:
        raise OperatorError(f"'{text}' is not a valid number") from e


def parse_bool(text: str) -> bool:
    t = text.strip().lower()
    if t in ("true", "1"):
        return True
    if t in ("false", "0"):
        return False
    raise OperatorError(f"'{text}' is not a valid boolean (true or false)")


def parse_hex_bytes(text: str) -> bytes:
    t = text.strip()
    if len(t) % 2:
        raise OperatorError(f"'{text}' is not a valid hex string: odd number of digits")
    try:
        return bytes.fromhex(t)
    except ValueError as e:
        raise OperatorError(f"'{text}' is not a valid hex string") from e


def convert(text: str, ftype: FieldType, op: str) -> Any:
    """Right-hand-side text to the comparable Python value for ``ftype``."""
    if op in BYTE_OPS:
        return parse_hex_bytes(text)
    if ftype in NUMERIC_TYPES:
        return parse_number(text)
    if ftype is FieldType.BOOL:
        return parse_bool(text)
    if ftype is FieldType.IPADDR:
        try:
            if "/" in text:
                return ipaddress.ip_network(text, strict=False)
            return ipaddress.ip_address(text)
        except ValueError as e:
            raise OperatorError(f"'{text}' is not a valid IP address") from e
    if ftype is FieldType.IPNET:
        try:
            return ipaddress.ip_network(text, strict=False)
        except ValueError as e:
            raise OperatorError(f"'{text}' is not a valid IP network") from e
    if ftype is FieldType.BYTEBUF:
        return text.encode("utf-8", "surrogateescape")
    return text


def _num(v: Any) -> int | float | None:
    if v.__class__ is int or v.__class__ is float:
        return v
    if isinstance(v, bool):
        return int(v)
    try:
        return parse_number(str(v))
    except (OperatorError, IndexError):
        return None


def _bool(v: Any) -> bool | None:
    if v.__class__ is bool:
        return v
    if isinstance(v, int):
        return v != 0
    if isinstance(v, str):
        try:
            return parse_bool(v)
        except OperatorError:
            return None
    return None


_IP_CACHE: dict[str, Any] = {}


def _ip(v: Any) -> Any:
    if isinstance(v, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return v
    ip = _IP_CACHE.get(v)
    if ip is None:
        try:
            ip = ipaddress.ip_address(v)
        except ValueError:
            return None
        if len(_IP_CACHE) < 65536:
            _IP_CACHE[v] = ip
    return ip


def glob_regex(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    # fnmatch's translation matches '/' with '*' like libsinsp's fnmatch(3) without FNM_PATHNAME
    return re.compile(fnmatch.translate(pattern), re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def compile_regex(pattern: str) -> Any:
    # imported on the first `regex` condition: RE2 and the C++ runtime it loads are
    # ~2.5 MiB of RSS that rulesets without the operator (Falco's own) never use
    import re2

    opts = re2.Options()
    opts.posix_syntax = True
    opts.longest_match = True
    opts.log_errors = False
    try:
        return re2.compile(pattern, opts)
    except re2.error as e:
        detail = e.args[0].decode("utf-8", "replace") if e.args and isinstance(e.args[0], bytes) else str(e)
        raise OperatorError(f"invalid regular expression '{pattern}': {detail}") from e


def _path_components(p: str) -> list[str]:
    return [c for c in p.split("/") if c]


class PathPrefixSet:
    """``pmatch``: a path matches when one of the prefixes is a leading run of
    its components; prefix components may be globs (libsinsp path_prefix_search)."""

    def __init__(self, prefixes: list[str]) -> None:
        self.exact: set[tuple[str, ...]] = set()
        self.globs: list[list[re.Pattern[str] | str]] = []
        self.max_len = 0
        for p in prefixes:
            comps = _path_components(p)
            self.max_len = max(self.max_len, len(comps))
            if any(ch in p for ch in "*?["):
                self.globs.append([glob_regex(c, False) if any(ch in c for ch in "*?[") else c
                                   for c in comps])
            else:
                self.exact.add(tuple(comps))

    def match(self, path: Any) -> bool:
        if not isinstance(path, str):
            return False
        comps = _path_components(path)
        for n in range(min(len(comps), self.max_len) + 1):
            if tuple(comps[:n]) in self.exact:
                return True
        for g in self.globs:
            if len(g) > len(comps):
                continue
            ok = True
            for pat, comp in zip(g, comps, strict=False):
                if isinstance(pat, str):
                    if pat != comp:
                        ok = False
                        break
                elif pat.fullmatch(comp) is None:
                    ok = False
                    break
            if ok:
                return True
        return False


def scalar_pred(op: str, rhs: Any, ftype: FieldType) -> Pred:
    """Predicate on a present (non-None) scalar value against a constant."""
    numeric = ftype in NUMERIC_TYPES
    if op in ("=", "=="):
        if numeric:
            return lambda v: _num(v) == rhs
        if ftype is FieldType.BOOL:
            return lambda v: _bool(v) is rhs
        if ftype is FieldType.IPADDR:
            if isinstance(rhs, ipaddress.IPv4Network | ipaddress.IPv6Network):
                return lambda v: (ip := _ip(v)) is not None and ip in rhs
            return lambda v: _ip(v) == rhs
        if ftype is FieldType.IPNET:
            return lambda v: (ip := _ip(v)) is not None and ip in rhs
        return lambda v: v == rhs
    if op == "!=":
        eq = scalar_pred("=", rhs, ftype)
        return lambda v: not eq(v)
    if op in ORDER_OPS:
        if numeric or not isinstance(rhs, str):
            def cmp_num(v: Any, _op: str = op) -> bool:
                n = _num(v)
                if n is None:
                    return False
                return n < rhs if _op == "<" else n <= rhs if _op == "<=" else n > rhs if _op == ">" \
                    else n >= rhs
            return cmp_num
        if op == "<":
            return lambda v: str(v) < rhs
        if op == "<=":
            return lambda v: str(v) <= rhs
        if op == ">":
            return lambda v: str(v) > rhs
        return lambda v: str(v) >= rhs
    if op == "contains":
        return lambda v: rhs in v if v.__class__ is str else rhs in str(v)
    if op == "icontains":
        low = rhs.lower()
        return lambda v: low in str(v).lower()
    if op == "startswith":
        return lambda v: str(v).startswith(rhs)
    if op == "endswith":
        return lambda v: str(v).endswith(rhs)
    if op == "bcontains":
        return lambda v: rhs in _as_bytes(v)
    if op == "bstartswith":
        return lambda v: _as_bytes(v).startswith(rhs)
    if op in ("glob", "iglob"):
        rx = glob_regex(rhs, op == "iglob")
        return lambda v: rx.fullmatch(str(v)) is not None
    if op == "regex":
        crx = compile_regex(rhs)
        return lambda v: crx.fullmatch(str(v)) is not None
    raise OperatorError(f"operator '{op}' needs a list value")


def _as_bytes(v: Any) -> bytes:
    if isinstance(v, bytes):
        return v
    if isinstance(v, bytearray | memoryview):
        return bytes(v)
    return str(v).encode("utf-8", "surrogateescape")


def set_pred(op: str, values: list[Any], ftype: FieldType) -> Pred:
    """``in`` / ``intersects`` / ``pmatch`` on a present scalar value."""
    if op == "pmatch":
        ps = PathPrefixSet([str(x) for x in values])
        return ps.match
    if ftype in NUMERIC_TYPES:
        nums = frozenset(values)
        return lambda v: _num(v) in nums
    if ftype is FieldType.BOOL:
        bools = frozenset(values)
        return lambda v: _bool(v) in bools
    if ftype in (FieldType.IPADDR, FieldType.IPNET):
        nets = [x if isinstance(x, ipaddress.IPv4Network | ipaddress.IPv6Network)
                else ipaddress.ip_network(x) for x in values]

        def in_nets(v: Any) -> bool:
            ip = _ip(v)
            return ip is not None and any(ip in n for n in nets)
        return in_nets
    strs = frozenset(values)
    return lambda v: v in strs


def modifier_pred(op: str, modifier: str, values: list[Any], ftype: FieldType) -> Pred:
    """``startswith oneof (a, b)``: oneof/anyof = some value satisfies the
    operator, allof = every value does."""
    preds = [scalar_pred(op, x, ftype) for x in values]
    if op == "startswith" and ftype is FieldType.STRING:
        prefixes = tuple(values)
        if modifier != "allof":
            return lambda v: str(v).startswith(prefixes)
    if op == "endswith" and ftype is FieldType.STRING and modifier != "allof":
        suffixes = tuple(values)
        return lambda v: str(v).endswith(suffixes)
    if modifier == "allof":
        return lambda v: all(p(v) for p in preds)
    return lambda v: any(p(v) for p in preds)


def dynamic_pred(op: str, ftype: FieldType) -> Callable[[Any, Any], bool]:
    """Predicate for ``field op val(other)``: both values are runtime values."""
    def pred(v: Any, other: Any) -> bool:
        if op in LIST_OPS:
            others = other if isinstance(other, list) else [other]
            if op == "pmatch":
                return PathPrefixSet([str(x) for x in others]).match(v)
            return v in others
        rhs = other
        if ftype in NUMERIC_TYPES:
            rhs = _num(other)
            if rhs is None:
                return False
        elif isinstance(v, str) and not isinstance(other, str):
            rhs = str(other)
        try:
            return scalar_pred(op, rhs, ftype if ftype in NUMERIC_TYPES else FieldType.STRING)(v)
        except (OperatorError, TypeError):
            return False
    return pred
