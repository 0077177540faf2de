"""A FalcoRule's (scoped) items as a Falco rules file, with a map from lines to items."""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from typing import Any

from falcopy.operator.model import ObjKey, RuleObject
from ruamel.yaml import YAML
from ruamel.yaml.scalarstring import LiteralScalarString

from falcopy.engine import LoadMessage, RulesInput
from falcopy.engine.reader import ReadError, read_documents
from falcopy.engine.source_text import FileTable


@dataclass(frozen=True)
class ItemSpan:
    first: int  # 1-based line of the item's first line in the rendered text
    last: int
    path: str  # spec.rules[2]
    #: the condition's block scalar: first and last rendered line, its indentation
    cond_first: int = 0
    cond_last: int = 0
    cond_indent: int = 0


@dataclass(frozen=True)
class Rendered:
    key: ObjKey
    generation: int
    priority: int
    text: str
    spans: tuple[ItemSpan, ...] = ()
    counts: dict[str, int] = field(default_factory=dict, compare=False)

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    def input(self) -> RulesInput:
        # a namespaced object's file is confined by the engine to its namespace
        return RulesInput(self.key.label, self.text, self.key.namespace or None)

    def order(self) -> tuple[int, int, str, str]:
        return (self.priority, 1 if self.key.namespaced else 0, self.key.namespace, self.key.name)

    def locate(self, msg: LoadMessage) -> str:
        """An engine message in the user's terms: spec path and line within the item."""
        for span in self.spans:
            if span.first <= msg.line <= span.last:
                item = f" ({msg.item_type} '{msg.item_name}')" if msg.item_name else ""
                where = ""
                if span.cond_first and span.cond_first <= msg.line <= span.cond_last:
                    line = msg.line - span.cond_first + 1
                    column = max(1, msg.column - span.cond_indent)
                    where = f" at condition line {line} column {column}"
                place = f"{msg.file}:{msg.line}:{msg.column}"
                return f"{span.path}{item}{where}: {msg.code}: {msg.message} ({place})"
        return str(msg)


def _yaml() -> YAML:
    yaml = YAML()
    yaml.default_flow_style = False
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=2, offset=0)
    return yaml


def _condition_block(chunk: list[str]) -> tuple[int, int, int]:
    """(first, last, indentation) of the condition's lines within the chunk (0-based), or (-1, -1, 0)."""
    for i, line in enumerate(chunk):
        stripped = line.lstrip("- ")
        if stripped.startswith("condition: |"):
            key_indent = len(line) - len(stripped)
            j = i + 1
            while j < len(chunk) and (
                not chunk[j].strip() or len(chunk[j]) - len(chunk[j].lstrip(" ")) > key_indent
            ):
                j += 1
            first = chunk[i + 1] if i + 1 < len(chunk) else ""
            return i + 1, j - 1, len(first) - len(first.lstrip(" "))
    return -1, -1, 0


class RenderMismatch(ValueError):
    """The rendered file does not read back as the items it was written from."""


def plain(item: dict[str, Any]) -> Any:
    """An item as JSON-shaped data (what the object holds, and what must read back)."""
    return json.loads(json.dumps(item))


def read_back(rendered: Rendered, items: list[tuple[str, dict[str, Any]]]) -> None:
    """Read the rendered text as the agents will and compare with the intended items.

    Whatever a string holds (line breaks YAML knows and JSON does not, quotes,
    comment markers), the file must yield exactly these items, in this order,
    and nothing else; otherwise raises RenderMismatch naming the first difference.
    The text is read by the engine's own reader, so its composed tree is what the
    validation load (and, through the cache, the next loads) reuses."""
    try:
        _, docs = read_documents(rendered.key.label, rendered.text, FileTable())
    except ReadError as exc:  # any YAML error: the file is not what we meant to write
        raise RenderMismatch(f"the rendered rules file does not parse: {exc}") from None
    if len(docs) != 1:
        raise RenderMismatch(f"the rendered rules file holds {len(docs)} YAML documents instead of one")
    doc = docs[0].convert(docs[0].root)
    got = doc if isinstance(doc, list) else [doc]
    want = [plain(item) for _, item in items]
    if got == want:
        return
    if len(got) != len(want):
        raise RenderMismatch(f"the rendered rules file reads back as {len(got)} items instead of {len(want)}")
    path = next(p for (p, _), g, w in zip(items, got, want, strict=True) if g != w)
    raise RenderMismatch(f"{path} does not read back as written from the rendered rules file")


def render(obj: RuleObject, items: list[tuple[str, dict[str, Any]]]) -> Rendered:
    """The rules file of ``items``; raises RenderMismatch unless it reads back as exactly them."""
    yaml = _yaml()
    header = [
        f"# {obj.key} generation {obj.generation} (written by falcopy-operator)",
        "",
    ]
    lines = list(header)
    spans = []
    counts = {"rules": 0, "macros": 0, "lists": 0}
    for path, item in items:
        buf = io.StringIO()
        # a JSON round trip: plain types only, keys in the user's order
        data = plain(item)
        if isinstance(data.get("condition"), str):
            # a literal block keeps the user's line breaks: error lines map back
            data["condition"] = LiteralScalarString(data["condition"])
        yaml.dump([data], buf)
        chunk = buf.getvalue().rstrip("\n").split("\n")
        first = len(lines) + 1
        c_first, c_last, c_indent = _condition_block(chunk)
        lines.extend(chunk)
        spans.append(
            ItemSpan(
                first,
                len(lines),
                path,
                cond_first=first + c_first if c_first >= 0 else 0,
                cond_last=first + c_last if c_first >= 0 else 0,
                cond_indent=c_indent,
            )
        )
        lines.append("")
        counts[path.split(".")[1].split("[")[0]] += 1
    if not items:
        lines.append("[]")
    out = Rendered(obj.key, obj.generation, obj.priority, "\n".join(lines) + "\n", tuple(spans), counts)
    read_back(out, items)
    return out
