"""The condition parser: libsinsp's grammar, error texts and positions."""

from __future__ import annotations

import pytest

from falcopy.engine import ast, compile_output, default_sources
from falcopy.engine.event import DictEvent
from falcopy.engine.parser import ParseError, parse


def test_tree_shape_and_positions() -> None:
    tree = parse("evt.type = open and not proc.name in (a, 'b c') or m")
    assert isinstance(tree, ast.Or)
    left, right = tree.children
    assert isinstance(left, ast.And) and isinstance(right, ast.Identifier) and right.pos == 51
    check, neg = left.children
    assert isinstance(check, ast.Check) and check.op == "=" and check.pos == 0
    assert isinstance(neg, ast.Not) and isinstance(neg.child, ast.Check)
    lst = neg.child.right
    assert isinstance(lst, ast.ListValue) and lst.values == ["a", "b c"]


@pytest.mark.parametrize(("text", "message", "pos"), [
    ("evt.type=execve execve", "unexpected token after 'execve', expecting 'or', 'and'", 16),
    ("(proc.name=a", "expected a ')' token", 12),
    ("proc.name", "expected a valid check operator: one of 'exists', '<=', '<', '>=', '>', '==', '=', "
                  "'!=', 'glob', 'iglob', 'contains', 'icontains', 'bcontains', 'startswith', "
                  "'bstartswith', 'endswith', 'regex', 'intersects', 'in', 'pmatch'", 9),
    ("proc.name=a andx", "expected blank or '(' after 'and'", 15),
    ("proc.aname[2 = x", "expected a ']' token", 12),
    ("proc.pid > abc", "expected a number value or a field with a valid transformer: 'val', 'tolower', "
                       "'toupper', 'b64', 'basename', 'len', 'join', 'concat', 'getopt'", 11),
    ("", "filter input string is empty", 0),
    ("=x", "expected a '(' token, a field check, or an identifier", 0),
])
def test_errors_like_libsinsp(text: str, message: str, pos: int) -> None:
    with pytest.raises(ParseError) as exc:
        parse(text)
    assert (exc.value.message, exc.value.pos) == (message, pos)


def test_depth_limit() -> None:
    # like libsinsp, each nesting level costs five guarded calls (or, and, not, check, embedded)
    parse("(" * 150 + "a.b exists" + ")" * 150)
    with pytest.raises(ParseError, match="exceeded max depth limit of 1000"):
        parse("(" * 250 + "a.b exists" + ")" * 250)


def test_field_arguments_quoted_and_bare() -> None:
    for text, arg in (("proc.env[HOME] exists", "HOME"), ('proc.env["MY VAR"] exists', "MY VAR"),
                      ("jevt.value[/spec/containers/0] exists", "/spec/containers/0")):
        tree = parse(text)
        assert isinstance(tree, ast.Check) and isinstance(tree.left, ast.FieldRef)
        assert tree.left.arg == arg


def test_compile_output_public_api() -> None:
    fmt = compile_output("user=%user.name pid=%proc.pid %toupper(proc.name)", default_sources()["syscall"])
    assert fmt.fields == ["user.name", "proc.pid", "toupper(proc.name)"]
    assert fmt.render(DictEvent({"user.name": "bob", "proc.name": "sh"})) == (
        "user=bob pid=<NA> SH", {"user.name": "bob", "proc.pid": None, "toupper(proc.name)": "SH"})
