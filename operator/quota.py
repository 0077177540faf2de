"""Per-namespace quotas: what the FalcoRules of one namespace may spend together.

Like a ResourceQuota, a quota bounds what one namespace costs everyone else:
bytes in the rules ConfigMaps (shared with every other namespace and the
cluster's objects), rules, and the costly pattern checks (``regex``, ``glob``,
``iglob``) that run on the events of that namespace.  Objects are admitted in
load order; the first that would take its namespace past a limit is refused
with reason ``QuotaExceeded`` and a message naming the limit and the setting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from falcopy.operator.render import Rendered
from falcopy.operator.settings import Quotas
from ruamel.yaml import YAML

from falcopy.engine import ast
from falcopy.engine.parser import ParseError, parse
from falcopy.engine.resolve import walk

PATTERN_OPS = frozenset({"regex", "glob", "iglob"})


@dataclass
class Usage:
    bytes: int = 0
    rules: int = 0
    patterns: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.bytes + other.bytes, self.rules + other.rules, self.patterns + other.patterns)


def _patterns(condition: Any) -> int:
    if not isinstance(condition, str):
        return 0
    try:
        tree = parse(condition)
    except ParseError:
        return 0
    return sum(1 for n in walk(tree) if isinstance(n, ast.Check) and n.op.strip() in PATTERN_OPS)


def _exception_patterns(exceptions: Any) -> int:
    count = 0
    for ex in exceptions if isinstance(exceptions, list) else []:
        comps = ex.get("comps") if isinstance(ex, dict) else None
        comps = comps if isinstance(comps, list) else [comps]
        values = ex.get("values") if isinstance(ex, dict) else None
        per_tuple = sum(1 for c in comps if c in PATTERN_OPS)
        count += per_tuple * max(1, len(values) if isinstance(values, list) else 1) if per_tuple else 0
    return count


def usage(rendered: Rendered) -> Usage:
    """What one rendered object costs (counted from the file the agents load)."""
    items = YAML(typ="safe", pure=True).load(rendered.text) or []
    out = Usage(bytes=len(rendered.text.encode()))
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        if "rule" in item and "condition" in item and not item.get("append") and not item.get("override"):
            out.rules += 1
        if "rule" in item or "macro" in item:
            out.patterns += _patterns(item.get("condition")) + _exception_patterns(item.get("exceptions"))
    return out


def exceeded(total: Usage, quotas: Quotas) -> str | None:
    """Which limit ``total`` passes, as a status message; None when within all."""
    for what, used, limit, setting in (
        ("bytes of rules files", total.bytes, quotas.bytes, "bytes"),
        ("rules", total.rules, quotas.rules, "rules"),
        ("regex/glob checks", total.patterns, quotas.patterns, "patterns"),
    ):
        if limit and used > limit:
            return (
                f"the FalcoRules of this namespace would use {used} {what}, over its quota of {limit} "
                f"(operator setting quotas.{setting} / chart value operator.quotas.{setting})"
            )
    return None
