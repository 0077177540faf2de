"""The rules reader's C parser (ruamel.yaml.clib) gives what the pure-Python parser gives.

Every rules file at hand (Falco's, its test fixtures, the project's, the broken corpus) is
read both ways and compared value by value and location by location, including the
per-character locations conditions are mapped with and the error a broken file gets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML
from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

from falcopy.engine import reader
from falcopy.engine.source_text import FileTable

REPO = Path(__file__).resolve().parents[2]


def _files(compat: Path) -> list[Path]:
    found = [*compat.glob("*.yaml"), *compat.rglob("fixtures/**/rules/**/*.yaml"),
             *(REPO / "rules").rglob("*.yaml"), *(REPO / "tests/engine/broken").rglob("*.yaml")]
    return sorted(found)


def _shape(doc: reader.Document, value: Any) -> Any:
    """Values with every location the reader keeps, and each scalar's character map."""
    if isinstance(value, reader.YMap):
        return ("map", value.loc, [(k, value.kloc[k], value.vloc[k], _node(doc, value.vnode[k]),
                                    _shape(doc, v)) for k, v in value.items()])
    if isinstance(value, reader.YSeq):
        return ("seq", value.loc, value.iloc, [_node(doc, n) for n in value.inode],
                [_shape(doc, v) for v in value])
    return value


def _node(doc: reader.Document, node: Any) -> Any:
    if isinstance(node, ScalarNode):
        text = doc.source_text(node)
        return (node.tag, node.style, text.text, text.locs)
    return node.tag


@pytest.fixture
def pure_calls(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """The ``pure`` flag of every parser the reader makes, in order."""
    calls: list[bool] = []
    real = reader.YAML

    def spy(*, typ: str, pure: bool) -> YAML:
        calls.append(pure)
        return real(typ=typ, pure=pure)

    monkeypatch.setattr(reader, "YAML", spy)
    return calls


def _read(name: str, content: str, *, c: bool, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(reader, "_CParser", reader._CParser if c else None)
    monkeypatch.setattr(reader.compose_cache, "load", lambda content, name: None)
    monkeypatch.setattr(reader.compose_cache, "store", lambda content, roots: None)
    try:
        _, docs = reader.read_documents(name, content, FileTable())
    except reader.ReadError as e:
        return ("error", str(e), e.loc)
    return [None if d.root is None else _shape(d, d.convert(d.root)) for d in docs]


def test_the_c_parser_is_installed() -> None:
    # a pinned dependency: without it every first start reads the rules ~8x slower
    assert reader._CParser is not None


def test_every_rules_file_reads_the_same_with_either_parser(compat_dir: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    files = _files(compat_dir)
    assert len(files) > 100
    errors = 0
    for path in files:
        content = path.read_text(errors="surrogateescape")
        fast = _read(str(path), content, c=True, monkeypatch=monkeypatch)
        pure = _read(str(path), content, c=False, monkeypatch=monkeypatch)
        assert fast == pure, path
        errors += isinstance(pure, tuple)
    assert errors > 0  # the broken corpus: its errors are compared too


def test_falcos_rules_are_composed_by_the_c_parser(compat_dir: Path, pure_calls: list[bool]) -> None:
    content = (compat_dir / "falco_rules.yaml").read_text()
    reader._compose(content)
    assert pure_calls == [False]
    # plain scalars carry the pure parser's style
    roots = reader._compose(content)
    stack = [r for r in roots if r is not None]
    while stack:
        node = stack.pop()
        if isinstance(node, ScalarNode):
            assert node.style != ""
        elif isinstance(node, MappingNode):
            stack += [x for kv in node.value for x in kv]
        elif isinstance(node, SequenceNode):
            stack += node.value


@pytest.mark.parametrize("content", [
    "- rule:\n  desc: x\n",            # an empty plain value: the parsers mark it differently
    "- list: a\n  items: [\n",          # refused: the pure parser's message
    "- macro: m\n  condition: \"a\tb\n",
])
def test_what_the_c_parser_marks_differently_or_refuses_goes_to_the_pure_parser(
        content: str, pure_calls: list[bool], monkeypatch: pytest.MonkeyPatch) -> None:
    fast = _read("f.yaml", content, c=True, monkeypatch=monkeypatch)
    assert pure_calls == [False, True]
    assert fast == _read("f.yaml", content, c=False, monkeypatch=monkeypatch)


@pytest.mark.parametrize("br", ["\x85", "\u2028", "\u2029", "\u00e9"])
def test_text_beyond_ascii_is_composed_by_the_pure_parser(br: str, pure_calls: list[bool],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # libyaml (YAML 1.1) breaks lines at NEL, LS and PS, YAML 1.2 does not: the operator's
    # read-back check of a tenant's rules must see what the agents will read
    content = f"- rule: r\n  desc: a{br}- rule: injected\n  condition: evt.type = open\n"
    fast = _read("f.yaml", content, c=True, monkeypatch=monkeypatch)
    assert pure_calls == [True]
    assert fast == _read("f.yaml", content, c=False, monkeypatch=monkeypatch)
