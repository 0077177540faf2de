"""Rules YAML -> documents of positioned values.

ruamel.yaml composes node trees that keep the start offset of every key and
value (its libyaml-based C parser where the trees come out the same as the
pure-Python parser's: :func:`_compose`); we turn them into :class:`YMap` /
:class:`YSeq` (plain ``dict`` and ``list`` subclasses) that remember those
locations, and keep the scalar nodes so conditions can be mapped character by
character back to the file.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

try:
    from _ruamel_yaml import CParser as _CParser
except ImportError:  # the C parser is an optional speed-up: the pure parser composes the same
    _CParser = None

from falcopy.common.errors import FalcopyError
from falcopy.engine import compose_cache
from falcopy.engine.items import Warn
from falcopy.engine.messages import LoadCode
from falcopy.engine.source_text import FileTable, SourceText


class YMap(dict):  # type: ignore[type-arg]
    """A mapping with the location of itself, its keys and its values."""

    loc: int
    kloc: dict[str, int]
    vloc: dict[str, int]
    vnode: dict[str, Node]


def warn_unknown_keys(item: YMap, allowed: frozenset[str], itype: str, iname: str, warn: Warn) -> None:
    for k in item:
        if k not in allowed:
            warn(LoadCode.UNKNOWN_KEY, f"Unknown key '{k}'. The key will be ignored.", item.kloc[k], itype,
                 iname)


class YSeq(list):  # type: ignore[type-arg]
    loc: int
    iloc: list[int]
    inode: list[Node]


@dataclass(slots=True)
class ReadError(FalcopyError):
    code: str
    message: str
    loc: int
    item_type: str = "rules content"

    def __str__(self) -> str:
        return self.message


_BOOL_TRUE = {"true", "yes", "on", "y"}
_BOOL_FALSE = {"false", "no", "off", "n"}


def scalar_value(node: ScalarNode) -> Any:
    tag = node.tag.value if hasattr(node.tag, "value") else str(node.tag)
    v = node.value
    if tag.endswith(":int"):
        try:
            return int(v.replace("_", ""), 0)
        except ValueError:
            try:
                return int(v, 10)
            except ValueError:
                return v
    if tag.endswith(":bool"):
        low = v.lower()
        if low in _BOOL_TRUE:
            return True
        if low in _BOOL_FALSE:
            return False
        return v
    if tag.endswith(":null"):
        return None
    if tag.endswith(":float"):
        try:
            return float(v)
        except ValueError:
            return v
    return v


class Document:
    """One YAML document of a rules file."""

    def __init__(self, root: Node | None, file_no: int, table: FileTable) -> None:
        self.root = root
        self.file_no = file_no
        self.table = table

    def loc(self, node: Node) -> int:
        return self.table.loc(self.file_no, node.start_mark.index)

    def convert(self, node: Node) -> Any:
        if isinstance(node, ScalarNode):
            return scalar_value(node)
        if isinstance(node, SequenceNode):
            seq = YSeq(self.convert(n) for n in node.value)
            seq.loc = self.loc(node)
            seq.iloc = [self.loc(n) for n in node.value]
            seq.inode = list(node.value)
            return seq
        if isinstance(node, MappingNode):
            m = YMap()
            m.loc = self.loc(node)
            m.kloc, m.vloc, m.vnode = {}, {}, {}
            for k, v in node.value:
                key = k.value if isinstance(k, ScalarNode) else str(self.convert(k))
                m[key] = self.convert(v)
                m.kloc[key] = self.loc(k)
                m.vloc[key] = self.loc(v)
                m.vnode[key] = v
            return m
        return None

    def source_text(self, node: Node) -> SourceText:
        """The scalar's string value with per-character file locations."""
        value = node.value if isinstance(node, ScalarNode) else ""
        content = self.table.content(self.file_no)
        base = self.table.loc(self.file_no, 0)
        style = getattr(node, "style", None)
        return SourceText.from_scalar(str(value), content, node.start_mark.index, node.end_mark.index,
                                      base, style)


def _compose(content: str) -> list[Node | None]:
    """The documents' node trees, as ruamel.yaml's pure-Python parser composes them.

    Its C parser (ruamel.yaml.clib, libyaml) composes Falco's stable rules ~8x faster
    (0.03 against 0.22 s of CPU: most of a first start's rules load) into the same
    trees: the same tags, values and scalar marks, with ruamel's own resolver.  Two
    differences were found over every rules, config and fixture file at hand: a plain
    scalar's style is ``''`` rather than None, and an empty plain value (``name:`` with
    nothing after it) is marked at the end of its key rather than where the pure
    parser puts it, which is where error messages point.  So the style is mended, a
    tree with an empty plain value is composed again by the pure parser, and so is
    anything the C parser refuses (its messages differ from the pure parser's, which
    are the ones users see).  Only ASCII text is given to it: libyaml reads YAML 1.1,
    where NEL, LS and PS (U+0085, U+2028, U+2029) break lines and YAML 1.2 has them as
    content: a tenant's rule could read back other than the operator wrote it."""
    if _CParser is not None and content.isascii():
        roots: list[Node | None] | None = None
        with contextlib.suppress(Exception):  # whatever it refuses, the pure parser reports
            roots = list(YAML(typ="safe", pure=False).compose_all(content))
        if roots is not None and _mend_plain_styles(roots):
            return roots
    return list(YAML(typ="safe", pure=True).compose_all(content))


def _mend_plain_styles(roots: list[Node | None]) -> bool:
    """Give the C parser's plain scalars the pure parser's style (None); False when a
    tree has an empty plain scalar, whose mark the two parsers put differently."""
    stack: list[Any] = [r for r in roots if r is not None]
    pop, push = stack.pop, stack.extend
    while stack:
        node = pop()
        if node.__class__ is ScalarNode:
            if node.style == "":
                if node.value == "":
                    return False
                node.style = None
        elif node.__class__ is MappingNode:
            for k, v in node.value:
                stack.append(k)
                stack.append(v)
        else:
            push(node.value)
    return True


def read_documents(name: str, content: str, table: FileTable) -> tuple[int, list[Document]]:
    """Parse ``content``; raise :class:`ReadError` on YAML syntax errors."""
    file_no = table.add(name, content)
    cached = compose_cache.load(content, name)
    if cached is not None:
        return file_no, [Document(root, file_no, table) for root in cached]
    docs: list[Document] = []
    try:
        for root in _compose(content):
            docs.append(Document(root, file_no, table))
    except MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        idx = mark.index if mark is not None else 0
        line = (mark.line + 1) if mark is not None else 1
        col = (mark.column + 1) if mark is not None else 1
        problem = e.problem or e.context or "invalid yaml"
        raise ReadError(LoadCode.ERR_YAML_PARSE, f"yaml: error at line {line}, column {col}: {problem}",
                        table.loc(file_no, min(idx, len(content)))) from e
    except YAMLError as e:
        raise ReadError(LoadCode.ERR_YAML_PARSE, f"yaml: {e}", table.loc(file_no, 0)) from e
    compose_cache.store(content, [d.root for d in docs])
    return file_no, docs
