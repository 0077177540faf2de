"""Rule output formats: ``%proc.name``, ``%proc.aname[2]``, ``%(fd.name)``,
``%tolower(proc.name)``, ``%container.info``.

Rendering gives the text (missing values as ``<NA>``) and Falco's
``output_fields``: one entry per field token, typed (numbers stay numbers),
``None`` for missing values.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from falcopy.common import timefmt
from falcopy.common.errors import FalcopyError
from falcopy.engine import ast
from falcopy.engine.compiler import CompileError, FieldInfo, compile_value_expr
from falcopy.engine.fields.base import FieldSource, FieldType
from falcopy.engine.parser import TRANSFORMERS, ParseError, Parser

#: what %container.info expands to (Falco's default when no -pc/-pk option is given)
CONTAINER_INFO = "%container.name (id=%container.id)"

_FIELD_TOKEN = re.compile(r"[A-Za-z0-9_.]+")
_TRANSFORMER_START = re.compile(r"(" + "|".join(re.escape(t[:-1]) for t in TRANSFORMERS) + r")\(")


class OutputError(FalcopyError, ValueError):
    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


# C0 controls, DEL, C1 controls (NEL among them) and Unicode's line and paragraph
# separators: in a field value they could end the alert's line and start a forged
# one in a text output (file, syslog, program, a terminal). JSON escapes them itself.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_control(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED_ESCAPES.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str) -> str:
    """``text`` with its control characters written as escapes (``\\n``, ``\\x1b``, ``\\u2028``)."""
    if _CONTROL.search(text) is None:
        return text
    return _CONTROL.sub(_escape_control, text)


def _text(value: Any, ftype: FieldType, name: str) -> str:
    if value is None:
        return "<NA>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(_text(v, ftype, name) for v in value) if name.startswith("ka.") or \
            name.startswith("jevt.") else " ".join(_text(v, ftype, name) for v in value)
    if isinstance(value, bytes | bytearray):
        return escape_controls(bytes(value).decode("utf-8", "backslashreplace"))
    if name == "evt.time" and isinstance(value, int):
        # recorded as ns since the epoch (Falco's output_fields value); text shows the clock
        return timefmt.clock(value, utc=True)
    return escape_controls(str(value))


def _json(value: Any, ftype: FieldType) -> Any:
    if value is None:
        return None
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, list):
        return [_json(v, ftype) for v in value]
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "backslashreplace")
    return value if isinstance(value, str) else str(value)


@dataclass(slots=True)
class _Token:
    name: str
    info: FieldInfo


class OutputFormat:
    """A compiled output format."""

    __slots__ = ("fields", "fmt", "parts")

    def __init__(self, fmt: str, parts: list[str | _Token]) -> None:
        self.fmt = fmt
        self.parts = parts
        self.fields = [p.name for p in parts if isinstance(p, _Token)]

    def field_names(self) -> list[str]:
        """The defined names of the fields printed (``k8s.pod.label`` for ``%k8s.pod.label[app]``)."""
        return [p.info.fdef.name for p in self.parts if isinstance(p, _Token) and p.info.fdef is not None]

    def render(self, event: Any, cache: dict[Any, Any] | None = None) -> tuple[str, dict[str, Any]]:
        c: dict[Any, Any] = {} if cache is None else cache
        out: list[str] = []
        values: dict[str, Any] = {}
        for p in self.parts:
            if isinstance(p, str):
                out.append(p)
                continue
            v = p.info.get(event, c)
            out.append(_text(v, p.info.ftype, p.name))
            values[p.name] = _json(v, p.info.ftype)
        return "".join(out), values


def _parse_expr(text: str, offset: int) -> ast.Node:
    p = Parser(text)
    node: ast.Node | None
    try:
        node = p.parse_transformer_arg()
    except ParseError as e:
        raise OutputError(f"invalid formatting token {text}: {e.message}", offset) from None
    p.blank()
    if node is None or p.i != p.n or isinstance(node, ast.Literal):
        raise OutputError(f"invalid formatting token {text}", offset)
    return node


def _matching_paren(fmt: str, start: int) -> int:
    depth = 0
    for i in range(start, len(fmt)):
        if fmt[i] == "(":
            depth += 1
        elif fmt[i] == ")":
            depth -= 1
            if depth == 0:
                return i
    return -1


def tokenize(fmt: str) -> list[tuple[str, str | None, int]]:
    """Split into ("lit", text, offset) and ("field", expression, offset)."""
    parts: list[tuple[str, str | None, int]] = []
    i = 0
    n = len(fmt)
    lit_start = 0
    while i < n:
        if fmt[i] != "%":
            i += 1
            continue
        if i > lit_start:
            parts.append(("lit", fmt[lit_start:i], lit_start))
        start = i
        j = i + 1
        if j < n and fmt[j] == "(":
            k = _matching_paren(fmt, j)
            if k < 0:
                raise OutputError("invalid formatting token: unbalanced '('", start)
            parts.append(("field", fmt[j + 1 : k].strip(), start))
            i = k + 1
        elif (m := _TRANSFORMER_START.match(fmt, j)) is not None:
            k = _matching_paren(fmt, m.end() - 1)
            if k < 0:
                raise OutputError(f"invalid formatting token {fmt[j:]}", start)
            parts.append(("field", fmt[j : k + 1], start))
            i = k + 1
        else:
            m = _FIELD_TOKEN.match(fmt, j)
            if m is None:
                raise OutputError("invalid formatting token: empty field after '%'", start)
            end = m.end()
            if end < n and fmt[end] == "[":
                close = fmt.find("]", end)
                if close < 0:
                    raise OutputError(f"invalid formatting token {fmt[j:]}", start)
                end = close + 1
            parts.append(("field", fmt[j:end], start))
            i = end
        lit_start = i
    if lit_start < n:
        parts.append(("lit", fmt[lit_start:], lit_start))
    return parts


def compile_output(fmt: str, source: FieldSource, on_token: Callable[[str], None] | None = None
                   ) -> OutputFormat:
    """Compile ``fmt`` for ``source``; raise :class:`OutputError` on an unknown field."""
    text = fmt.replace("%container.info", CONTAINER_INFO)
    parts: list[str | _Token] = []
    for kind, value, offset in tokenize(text):
        assert value is not None
        if kind == "lit":
            parts.append(value)
            continue
        expr = value
        # a trailing '.' ends a sentence, not a field name
        while expr.endswith(".") and "[" not in expr:
            expr = expr[:-1]
        node = _parse_expr(expr, offset)
        try:
            info = compile_value_expr(source, node)
        except CompileError as e:
            if e.unknown_filter:
                raise OutputError(f"invalid formatting token {expr}", offset) from None
            raise OutputError(f"invalid formatting token {expr}: {e.message}", offset) from None
        if on_token is not None:
            on_token(expr)
        parts.append(_Token(expr, info))
        if len(expr) < len(value):
            parts.append(value[len(expr):])
    return OutputFormat(fmt, parts)
