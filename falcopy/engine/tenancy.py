"""Namespaced rules files: what a tenant's items may name, and the namespace guard.

A rules input loaded with a ``namespace`` (a namespaced FalcoRule's file in the
operator's bundle) is confined by the engine itself, whatever its text says:

- it may only define or change items carrying its namespace's qualification
  (``Rule [ns]``, ``macro__ns``, ``list__ns``) and only items first defined by
  the same namespace: one namespace never reaches another's items, the
  cluster's or the defaults';
- its macros and lists are visible only to its own items, and its list items
  and exception values are substituted into its conditions as values in the
  syntax tree, never spliced into condition text;
- every rule it defines gets ``k8s.ns.name = "<ns>"`` as the first top-level
  conjunct of its final tree (after lists, macros, exceptions and overrides),
  built as a syntax node, not as text.
"""

from __future__ import annotations

from falcopy.engine import ast

NS_FIELD = "k8s.ns.name"


def qualified_rule(name: str, namespace: str) -> str:
    return f"{name} [{namespace}]"


def qualified_name(name: str, namespace: str) -> str:
    return f"{name}__{namespace.replace('-', '_')}"


def name_allowed(kind: str, name: str, namespace: str) -> bool:
    """Does ``name`` (of a rule, macro or list) carry ``namespace``'s qualification?"""
    if kind == "rule":
        suffix = f" [{namespace}]"
    else:
        suffix = "__" + namespace.replace("-", "_")
    return name.endswith(suffix) and len(name) > len(suffix)


def guard(namespace: str, text: object) -> ast.Check:
    """``k8s.ns.name = "<namespace>"`` as a node: the namespace is a value, never parsed."""
    return ast.Check(
        0,
        left=ast.FieldRef(0, name=NS_FIELD, text=text),
        op="=",
        right=ast.Value(0, value=namespace, text=text),
        text=text,
    )


def guarded(namespace: str, tree: ast.Node, text: object) -> ast.And:
    return ast.And(0, children=[guard(namespace, text), tree], text=text)


def is_guarded(tree: ast.Node, namespace: str) -> bool:
    """Is the guard of ``namespace`` the first top-level conjunct of ``tree``?"""
    if not isinstance(tree, ast.And) or not tree.children:
        return False
    first = tree.children[0]
    return (
        isinstance(first, ast.Check)
        and isinstance(first.left, ast.FieldRef)
        and first.left.name == NS_FIELD
        and first.left.arg is None
        and first.op == "="
        and first.modifier is None
        and isinstance(first.right, ast.Value)
        and first.right.value == namespace
    )
