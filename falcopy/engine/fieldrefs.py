"""What the compiled conditions read: field references and the values fields are compared with.

Walks the resolved condition trees kept on :class:`~falcopy.engine.ruleset.CompiledRule`
(macros included, each macro body once).  Used to tell the agent which DNS names its
rules compare ``fd.*ip.name`` with, and which fields a rule reads (for the
"this field never has a value here" warning at load).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING

from falcopy.engine import ast
from falcopy.engine.compiler import NAME_OPS
from falcopy.engine.fields.base import FieldSource

if TYPE_CHECKING:
    from falcopy.engine.ruleset import Ruleset



def _nodes(node: ast.Node, seen: set[int]) -> Iterator[ast.Node]:
    """Every node under ``node``; a macro body reached twice is walked once."""
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, ast.MacroRef):
            if n.body is None or id(n.body) in seen:
                continue
            seen.add(id(n.body))
            stack.append(n.body)
        elif isinstance(n, ast.And | ast.Or):
            stack.extend(n.children)
        elif isinstance(n, ast.Not):
            if n.child is not None:
                stack.append(n.child)
        elif isinstance(n, ast.Check):
            yield n
            stack.extend(x for x in (n.left, n.right) if x is not None)
        elif isinstance(n, ast.Transform):
            stack.extend(n.args)
        else:
            yield n


def field_refs(node: ast.Node) -> Iterator[ast.FieldRef]:
    """The field references of a condition tree (fields inside transformers included)."""
    for n in _nodes(node, set()):
        if isinstance(n, ast.FieldRef):
            yield n


def canonical_names(refs: Iterable[ast.FieldRef], source: FieldSource) -> set[str]:
    """The defined names (``k8s.pod.label``, not ``k8s.pod.label[app]``) of ``refs``."""
    out: set[str] = set()
    for ref in refs:
        found = source.lookup(ref.name)
        if found is not None:
            out.add(found[0].name)
    return out


def compared_values(trees: Iterable[ast.Node], fields: Iterable[str],
                    ops: frozenset[str] = NAME_OPS) -> set[str]:
    """The values conditions compare any of ``fields`` with, through ``ops``
    (``fd.sip.name in (a, b)`` gives a and b)."""
    wanted = frozenset(fields)
    out: set[str] = set()
    seen: set[int] = set()
    for tree in trees:
        for n in _nodes(tree, seen):
            if not isinstance(n, ast.Check) or n.op not in ops or n.modifier is not None:
                continue
            left = n.left
            if not isinstance(left, ast.FieldRef) or left.name not in wanted or left.arg is not None:
                continue
            if isinstance(n.right, ast.Value):
                out.add(n.right.value)
            elif isinstance(n.right, ast.ListValue):
                out.update(n.right.values)
    return out


def unavailable_reads(fields: Iterable[str], unavailable: Mapping[str, str]) -> list[tuple[str, str]]:
    """(field, why) for each of ``fields`` that never has a value: ``unavailable`` maps a
    field name, or a prefix written ``k8smeta.deployment.*``, to the reason."""
    prefixes = [(k[:-1], why) for k, why in unavailable.items() if k.endswith(".*")]
    out: list[tuple[str, str]] = []
    for f in sorted(set(fields)):
        why = unavailable.get(f)
        if why is None:
            why = next((w for p, w in prefixes if f.startswith(p)), None)
        if why is not None:
            out.append((f, why))
    return out


#: the fields whose comparison with a name means "the address is one of the name's"
ADDRESS_NAME_FIELDS = ("fd.cip.name", "fd.sip.name", "fd.lip.name", "fd.rip.name")


def compared_names(ruleset: Ruleset, source: str = "syscall") -> set[str]:
    """The DNS names the enabled rules of ``ruleset`` compare ``fd.*ip.name`` with."""
    trees = [r.tree for r in ruleset.enabled_rules() if r.source == source and r.tree is not None]
    return compared_values(trees, ADDRESS_NAME_FIELDS)
