"""Text that remembers where each character came from.

Falco builds a rule's condition by string operations (appends join texts
from several files, lists are substituted textually, exceptions are rendered
as text) before parsing it.  To point an error at the right file, line and
column after all that, every character carries a *location*: an int
``file_no << 32 | offset_in_file``.  Generated characters take the location
of the YAML value they were generated from.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

_SHIFT = 32
_MASK = (1 << _SHIFT) - 1


@dataclass(slots=True)
class _File:
    name: str
    content: str
    line_starts: list[int]


@dataclass(slots=True)
class FileTable:
    """The texts of the files being loaded, for offset -> line/column."""

    files: list[_File] = field(default_factory=list)

    def add(self, name: str, content: str) -> int:
        starts = [0]
        for i, ch in enumerate(content):
            if ch == "\n":
                starts.append(i + 1)
        self.files.append(_File(name, content, starts))
        return len(self.files) - 1

    def loc(self, file_no: int, offset: int) -> int:
        return (file_no << _SHIFT) | offset

    def resolve(self, loc: int) -> tuple[str, int, int]:
        """(file name, 1-based line, 1-based column) of a location."""
        f = self.files[loc >> _SHIFT]
        off = loc & _MASK
        line = bisect.bisect_right(f.line_starts, off) - 1
        return f.name, line + 1, off - f.line_starts[line] + 1

    def content(self, file_no: int) -> str:
        return self.files[file_no].content


class SourceText:
    """An immutable string plus one location per character (and one for the end)."""

    __slots__ = ("locs", "text")

    def __init__(self, text: str, locs: list[int]) -> None:
        if len(locs) != len(text) + 1:
            raise ValueError("one location per character plus the end")
        self.text = text
        self.locs = locs

    @classmethod
    def generated(cls, text: str, loc: int) -> SourceText:
        return cls(text, [loc] * (len(text) + 1))

    @classmethod
    def from_scalar(cls, value: str, raw: str, raw_start: int, raw_end: int, base_loc: int,
                    style: str | None) -> SourceText:
        """Map a YAML scalar's value back onto its raw text in the file.

        YAML folding and indentation only change whitespace, so walking the
        raw text to the next equal character maps every visible character of
        the value exactly; escapes in quoted scalars degrade gracefully.
        """
        ri = raw_start
        if style in (">", "|"):
            nl = raw.find("\n", raw_start, raw_end)
            ri = nl + 1 if nl >= 0 else raw_start
        elif style in ("'", '"'):
            ri = raw_start + 1
        locs: list[int] = []
        last = ri
        for ch in value:
            if ch in " \t\r\n":
                locs.append(base_loc + last)
                continue
            j = ri
            while j < raw_end and raw[j] != ch:
                j += 1
            if j < raw_end:
                ri = j + 1
                last = j
            locs.append(base_loc + last)
        locs.append(base_loc + min(ri, raw_end))
        return cls(value, locs)

    def __add__(self, other: SourceText) -> SourceText:
        return SourceText(self.text + other.text, self.locs[:-1] + other.locs)

    def slice(self, start: int, end: int) -> SourceText:
        return SourceText(self.text[start:end], [*self.locs[start:end], self.locs[min(end, len(self.text))]])

    def replace_span(self, start: int, end: int, new_text: str, loc: int) -> SourceText:
        return SourceText(
            self.text[:start] + new_text + self.text[end:],
            self.locs[:start] + [loc] * len(new_text) + self.locs[end:],
        )

    def loc_at(self, offset: int) -> int:
        return self.locs[max(0, min(offset, len(self.locs) - 1))]

    def __str__(self) -> str:
        return self.text

    def __len__(self) -> int:
        return len(self.text)


def concat(*parts: SourceText | tuple[str, int]) -> SourceText:
    """Join texts; a ``(text, loc)`` tuple is generated text at ``loc``."""
    text: list[str] = []
    locs: list[int] = []
    last = 0
    for p in parts:
        if isinstance(p, tuple):
            s, loc = p
            text.append(s)
            locs.extend([loc] * len(s))
            last = loc
        else:
            text.append(p.text)
            locs.extend(p.locs[:-1])
            last = p.locs[-1]
    locs.append(last)
    return SourceText("".join(text), locs)
