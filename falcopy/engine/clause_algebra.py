"""Sound over-approximations of a condition as a disjunction of clauses.

The kernel filter (:mod:`falcopy.engine.kernel_filter`) and the agent's socket prefilter
each reduce a rule's condition to "one of these clauses must hold", over clause types of
their own, walking the rules of a record type the same way (:func:`rules_for`,
:func:`condition_clauses`).  Both widen whenever a form grows past a cap: a dropped conjunct, or the
clause that holds for everything, can only let more events through, never fewer.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

from falcopy.engine import ast
from falcopy.engine.evttypes import fold_for_type


class ClauseLike(Protocol):
    def unconstrained(self) -> bool: ...


C = TypeVar("C", bound=ClauseLike)


def product(parts: Sequence[list[C]], conj: Callable[[C, C], C | None], cap: int,
            true: list[C]) -> list[C]:
    """``p1 and p2 and ...``; ``conj`` gives None for a pair no event satisfies."""
    out = true
    for part in sorted(parts, key=len):
        if not part:
            return []
        if len(out) * len(part) > cap:
            continue  # dropping a conjunct only widens
        nxt = [c for a, b in itertools.product(out, part) if (c := conj(a, b)) is not None]
        out = list(dict.fromkeys(nxt))
        if not out:
            return []
    return out


def union(parts: Sequence[list[C]], cap: int, true: list[C]) -> list[C]:
    """``p1 or p2 or ...``; ``true`` when it is past the cap or a clause holds for everything."""
    out = list(dict.fromkeys(c for p in parts for c in p))
    return true if len(out) > cap or any(c.unconstrained() for c in out) else out


def rules_for(t: str, rules: Iterable[Any]) -> Iterator[Any]:
    """The rules indexed for records of type ``t`` (those without a type set: every type)."""
    return (r for r in rules if r.evttypes is None or t in r.evttypes)


def condition_clauses(rule: Any, t: str, dnf: Callable[[ast.Node], list[C]],
                      true: list[C]) -> list[C] | None:
    """``rule``'s condition on a record of type ``t`` as clauses (``dnf`` of what is left
    once the type is known): [] when no such record can match it, None when the rule has
    no condition tree to read (any record may match)."""
    tree = getattr(rule, "tree", None)
    if tree is None:
        return None
    folded = fold_for_type(tree, t)
    if folded is False:
        return []
    return true if folded is True else dnf(folded)
