"""Condition syntax tree produced by :mod:`falcopy.engine.parser`.

Every node carries ``pos``: the offset of its first character in the
condition text it was parsed from; :class:`falcopy.engine.source_text.SourceText`
maps that offset back to file, line and column for messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True, eq=False)
class Node:
    pos: int
    #: the text the offsets refer to (a SourceText); set by the parser
    text: Any = field(default=None, repr=False, kw_only=True)


@dataclass(slots=True, eq=False)
class And(Node):
    children: list[Node] = field(default_factory=list)


@dataclass(slots=True, eq=False)
class Or(Node):
    children: list[Node] = field(default_factory=list)


@dataclass(slots=True, eq=False)
class Not(Node):
    child: Node | None = None


@dataclass(slots=True, eq=False)
class Identifier(Node):
    """A bare identifier in boolean position: a macro reference."""

    name: str = ""


@dataclass(slots=True, eq=False)
class MacroRef(Node):
    """A resolved macro reference: the macro's own (resolved) tree."""

    name: str = ""
    body: Node | None = None


@dataclass(slots=True, eq=False)
class FieldRef(Node):
    name: str = ""
    arg: str | None = None


@dataclass(slots=True, eq=False)
class Transform(Node):
    """``tolower(proc.name)``, ``val(proc.pname)``, ``concat(a, b)``...; args are
    FieldRef / Transform / Literal."""

    name: str = ""
    args: list[Node] = field(default_factory=list)


@dataclass(slots=True, eq=False)
class Literal(Node):
    """A string literal argument of a transformer (``join(",", ...)``)."""

    value: str = ""


@dataclass(slots=True, eq=False)
class Value(Node):
    value: str = ""


@dataclass(slots=True, eq=False)
class ListValue(Node):
    values: list[str] = field(default_factory=list)
    #: offsets of each value (for error positions)
    positions: list[int] = field(default_factory=list)


@dataclass(slots=True, eq=False)
class Check(Node):
    left: Node | None = None           # FieldRef or Transform
    op: str = ""
    right: Node | None = None          # Value, ListValue, Transform, or None (exists)
    modifier: str | None = None        # oneof / anyof / allof
