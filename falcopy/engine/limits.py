"""What one rules load may cost: nesting, expansion and time caps.

Macros and lists are references: a 1.5 KB rules file whose macros each use the
previous one twice expands to a tree of a million nodes, and nested lists
multiply the same way.  Resolution (:mod:`falcopy.engine.resolve`) measures
every macro and list as a graph, memoised by name, and refuses an item whose
nesting or expanded size passes these caps *before* building it, with an
error naming the item.  The operator and the agents load with the same caps,
so an object the operator publishes is one the agents can compile.

A :class:`Budget` adds a deadline and a cancellation flag that the loader
checks between items: an admission request whose caller has gone, or a
validation that outlives its time budget, stops at the next item with an
error located at the item it was working on.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Caps:
    #: macro references nested deeper than this (a macro using a macro using ...)
    macro_depth: int = 32
    #: list references nested deeper than this
    list_depth: int = 16
    #: values of one list once the lists it names are expanded
    list_items: int = 20_000
    #: nodes (checks, and/or/not) of one rule or macro with every macro expanded; the
    #: largest upstream Falco rule has about 1,000 (list values are capped by list_items)
    expanded_nodes: int = 5_000
    #: the same, summed over every rule of the load
    total_nodes: int = 2_000_000


DEFAULT_CAPS = Caps()


class BudgetExceeded(Exception):
    """The load ran out of time or its caller went away."""


#: how the errors of a spent budget start (callers tell them from rule errors)
BUDGET_MESSAGES = ("validation cancelled", "validation exceeded its time budget")


@dataclass
class Budget:
    """A deadline (monotonic seconds) and a flag the caller sets when it is gone."""

    seconds: float | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)
    _deadline: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.seconds is not None:
            self._deadline = time.monotonic() + self.seconds

    def cancel(self) -> None:
        self.cancelled.set()

    def check(self) -> None:
        if self.cancelled.is_set():
            raise BudgetExceeded("validation cancelled: its caller has gone")
        if self._deadline is not None and time.monotonic() > self._deadline:
            raise BudgetExceeded(f"validation exceeded its time budget of {self.seconds:g} s")
