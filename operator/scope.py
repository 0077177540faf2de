"""What a FalcoRule may do, and how a namespaced one is confined to its namespace.

Falco's names are global: a macro, list or rule defined in one file is seen
(and can be redefined, appended to or disabled) by every other file.  A
namespaced FalcoRule must only affect events from its own namespace, so the
operator rewrites it before the engine sees it:

- the file is published with its namespace (the bundle manifest says so) and
  the *engine* confines it (:mod:`falcopy.engine.tenancy`): the guard
  ``k8s.ns.name = "<ns>"`` is put on each rule's final syntax tree as its first
  conjunct, list items and exception values are substituted as values, and
  names outside the namespace cannot be defined or changed.  Nothing here
  splices text into a condition; conditions are parsed to find references;
- rule names get the namespace appended (``Name [ns]``) so two namespaces can
  use the same rule name, and overrides / ``enabled`` toggles of a rule can
  only reach rules of the same namespace;
- macros and lists are private to the namespace: ``name`` becomes
  ``name__<ns>`` in their definitions and in every reference to them from the
  namespace's conditions and lists; references to other names resolve to the
  default (or cluster-scoped) items, read-only;
- refused: control characters other than newline and tab (and the Unicode line
  breaks U+0085, U+2028, U+2029) in any string of the object, since they can
  end a YAML scalar early; appending to a rule *condition* (the guard makes it
  harmless, but the appended text would not be the tenant's to reason about),
  appending to / overriding a macro or list not defined in the namespace, rules
  of a source other than ``syscall`` (no namespace field), and ``__`` in
  macro/list names (reserved for the qualification).

A ClusterFalcoRule is loaded as written; it may redefine, append to, override
or disable items of the *default* rules only when the operator runs with
``allow_default_overrides`` (a chart setting).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from falcopy.operator.model import ITEM_KINDS, RuleObject

from falcopy.common.errors import FalcopyError
from falcopy.engine import ast
from falcopy.engine.parser import ParseError, parse
from falcopy.engine.tenancy import qualified_name, qualified_rule

#: characters no string of a namespaced object may hold: C0 and C1 controls but
#: newline and tab, DEL, and the Unicode line and paragraph separators
_FORBIDDEN = frozenset(
    [chr(c) for c in range(0x20) if chr(c) not in "\n\t"]
    + [chr(0x7F)]
    + [chr(c) for c in range(0x80, 0xA0)]
    + ["\u2028", "\u2029"]
)


@dataclass
class DefaultNames:
    """Names defined by the default rules (what overrides are checked against)."""

    rules: set[str] = field(default_factory=set)
    macros: set[str] = field(default_factory=set)
    lists: set[str] = field(default_factory=set)

    def of(self, section: str) -> set[str]:
        return getattr(self, section)


@dataclass(frozen=True)
class Issue:
    path: str  # spec.rules[2]
    item: str  # rule 'x'
    message: str

    def __str__(self) -> str:
        return f"{self.path} ({self.item}): {self.message}"


class ScopeError(FalcopyError):
    def __init__(self, issues: list[Issue]) -> None:
        super().__init__("; ".join(map(str, issues)))
        self.issues = issues


def control_characters(value: Any, path: str = "spec") -> list[tuple[str, str]]:
    """(path, character) for every forbidden character in the strings of ``value`` (keys too)."""
    found: list[tuple[str, str]] = []
    if isinstance(value, str):
        bad = next((c for c in value if c in _FORBIDDEN), None)
        if bad is not None:
            found.append((path, bad))
    elif isinstance(value, dict):
        for k, v in value.items():
            found += control_characters(k, f"{path} key") + control_characters(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += control_characters(v, f"{path}[{i}]")
    return found


def namespace_local_names(objects: Iterable[RuleObject], namespace: str) -> dict[str, set[str]]:
    """Macro and list names defined by the namespace's objects (any order: Falco
    resolves references after every file is loaded)."""
    out: dict[str, set[str]] = {"macros": set(), "lists": set()}
    for obj in objects:
        if not obj.key.namespaced or obj.key.namespace != namespace:
            continue
        for section, _, item in obj.items():
            if section in out and isinstance(item, dict):
                kind = "macro" if section == "macros" else "list"
                name = item.get(kind)
                if isinstance(name, str) and not _is_modification(item, kind):
                    out[section].add(name)
    return out


def _is_modification(item: dict[str, Any], kind: str) -> bool:
    """Does the item change an existing item (rather than define a new one)?"""
    if item.get("append") or item.get("override"):
        return True
    if kind == "rule":
        # a rule item without a condition is an `enabled` toggle or a partial override
        return "condition" not in item
    return False


def _condition_appended(item: dict[str, Any]) -> bool:
    if "condition" not in item:
        return False
    if item.get("append"):
        return True
    override = item.get("override") or {}
    return isinstance(override, dict) and override.get("condition") == "append"


def scope_object(
    obj: RuleObject,
    defaults: DefaultNames,
    local: dict[str, set[str]] | None = None,
    *,
    allow_default_overrides: bool = False,
) -> list[tuple[str, dict[str, Any]]]:
    """The object's items, checked and (namespaced) rewritten; (spec path, item) pairs.

    Raises ScopeError listing every refused item."""
    issues: list[Issue] = []
    out: list[tuple[str, dict[str, Any]]] = []
    ns = obj.key.namespace if obj.key.namespaced else ""
    if ns:
        bad = control_characters(obj.spec)
        if bad:
            raise ScopeError(
                [
                    Issue(
                        path,
                        "string",
                        f"control character U+{ord(ch):04X} is not allowed (only newline and tab)",
                    )
                    for path, ch in bad
                ]
            )
        # this object's own names are local even if the caller's index is stale
        local = {k: set(v) for k, v in (local or {}).items()}
        for section, names in namespace_local_names([obj], ns).items():
            local.setdefault(section, set()).update(names)
    for section, kind in ITEM_KINDS:
        for i, item in enumerate(obj.spec.get(section) or []):
            path = f"spec.{section}[{i}]"
            if not isinstance(item, dict) or not isinstance(item.get(kind), str):
                issues.append(Issue(path, kind, f"an item of spec.{section} needs a '{kind}' name"))
                continue
            label = f"{kind} '{item[kind]}'"
            try:
                if ns:
                    assert local is not None
                    out.append((path, _scope_namespaced(item, kind, section, ns, local)))
                else:
                    _check_cluster(item, kind, section, defaults, allow_default_overrides)
                    out.append((path, dict(item)))
            except _Refused as exc:
                issues.append(Issue(path, label, str(exc)))
    if issues:
        raise ScopeError(issues)
    return out


class _Refused(Exception):
    pass


def _check_cluster(
    item: dict[str, Any], kind: str, section: str, defaults: DefaultNames, allowed: bool
) -> None:
    name = item[kind]
    if allowed or name not in defaults.of(section):
        return
    what = "modifies" if _is_modification(item, kind) else "redefines"
    raise _Refused(
        f"{what} the default {kind} '{name}'; overriding default rules is disabled "
        "(operator setting allow_default_overrides / chart value operator.allowDefaultOverrides)"
    )


def _scope_namespaced(
    item: dict[str, Any], kind: str, section: str, ns: str, local: dict[str, set[str]]
) -> dict[str, Any]:
    out = dict(item)
    name = item[kind]
    if kind in ("macro", "list"):
        if "__" in name:
            raise _Refused(f"'__' is reserved in {kind} names of a namespaced FalcoRule")
        if _is_modification(item, kind) and name not in local[section]:
            raise _Refused(
                f"changes the {kind} '{name}', which is not defined in namespace '{ns}': a namespaced "
                "FalcoRule may only change its namespace's own macros and lists (use a ClusterFalcoRule)"
            )
        out[kind] = qualified_name(name, ns)
        if kind == "macro" and isinstance(item.get("condition"), str):
            out["condition"] = _rename_refs(item["condition"], local, ns)
        if kind == "list" and isinstance(item.get("items"), list):
            out["items"] = [
                qualified_name(v, ns) if isinstance(v, str) and v in local["lists"] else v
                for v in item["items"]
            ]
        return out
    # rule
    source = item.get("source", "syscall")
    if source != "syscall":
        raise _Refused(
            f"source '{source}' has no namespace to scope to; namespaced rules must be syscall rules"
        )
    if _condition_appended(item):
        raise _Refused(
            "appending to a rule condition is not allowed in a namespaced FalcoRule (the appended text would "
            "follow the namespace scope and widen it); use override: {condition: replace} or a macro"
        )
    out["rule"] = qualified_rule(name, ns)
    if isinstance(item.get("condition"), str):
        # the engine adds the namespace guard to the final tree (falcopy.engine.tenancy)
        out["condition"] = _rename_refs(item["condition"], local, ns)
    return out


def _rename_refs(condition: str, local: dict[str, set[str]], ns: str) -> str:
    """Qualify references to the namespace's macros and lists in a condition.

    The condition is parsed on its own (a clear error for text that is not one
    complete expression) and the names are replaced at the offsets the parser
    reports."""
    try:
        tree = parse(condition)
    except ParseError as exc:
        pos = getattr(exc, "pos", None)
        where = f" at column {pos + 1}" if isinstance(pos, int) else ""
        raise _Refused(f"condition does not parse{where}: {exc}") from None
    if not local.get("macros") and not local.get("lists"):
        return condition
    edits: list[tuple[int, str]] = []
    for node in _walk(tree):
        if isinstance(node, ast.Identifier) and node.name in local["macros"]:
            edits.append((node.pos, node.name))
        elif isinstance(node, ast.ListValue):
            for value, pos in zip(node.values, node.positions, strict=False):
                if value in local["lists"] and condition[pos : pos + len(value)] == value:
                    edits.append((pos, value))
    for pos, name in sorted(set(edits), reverse=True):
        condition = condition[:pos] + qualified_name(name, ns) + condition[pos + len(name) :]
    return condition


def _walk(node: Any) -> Iterable[Any]:
    stack = [node]
    while stack:
        cur = stack.pop()
        if cur is None:
            continue
        yield cur
        if dataclasses.is_dataclass(cur):
            for f in dataclasses.fields(cur):
                if f.name == "text":
                    continue
                value = getattr(cur, f.name)
                if isinstance(value, ast.Node):
                    stack.append(value)
                elif isinstance(value, list):
                    stack.extend(v for v in value if isinstance(v, ast.Node))
