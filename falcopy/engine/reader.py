"""Rules YAML -> documents of positioned values.

ruamel.yaml composes node trees that keep the start offset of every key and
value; we turn them into :class:`YMap` / :class:`YSeq` (plain ``dict`` and
``list`` subclasses) that remember those locations, and keep the scalar
nodes so conditions can be mapped character by character back to the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

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


def read_documents(name: str, content: str, table: FileTable) -> tuple[int, list[Document]]:
    """Parse ``content``; raise :class:`ReadError` on YAML syntax errors."""
    file_no = table.add(name, content)
    cached = compose_cache.load(content, name)
    if cached is not None:
        return file_no, [Document(root, file_no, table) for root in cached]
    yaml = YAML(typ="safe", pure=True)
    docs: list[Document] = []
    try:
        for root in yaml.compose_all(content):
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
