"""The decoded rules-file items: what the collector builds and the compile passes read.

Their own module so the collector (which decodes them), the exceptions module
and the list/macro passes all use them without importing each other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from falcopy.common.errors import FalcopyError
from falcopy.engine.alert_keys import AggregationSpec, ThresholdSpec
from falcopy.engine.priority import Priority
from falcopy.engine.source_text import SourceText


class LoadFailure(FalcopyError):
    def __init__(self, code: str, message: str, loc: int, item_type: str, item_name: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.loc = loc
        self.item_type = item_type
        self.item_name = item_name


@dataclass
class ExceptionInfo:
    name: str
    loc: int
    fields: list[str] | str | None = None
    comps: list[str] | str | None = None
    #: list of tuples (list of values, each a str or list[str]) or, single-field form, list of str
    values: list[Any] = field(default_factory=list)
    values_loc: int = 0


@dataclass
class Definition:
    """What every list, macro and rule has: its name, then its own keys, then these
    (keyword-only)."""

    name: str
    #: its place in definition order
    index: int = field(default=0, kw_only=True)
    #: the definitions it sees are those before this (moved on by an append or replace)
    visibility: int = field(default=0, kw_only=True)
    used: bool = field(default=False, kw_only=True)
    #: the namespace of the rules input that defined it (None: cluster-wide)
    namespace: str | None = field(default=None, kw_only=True)


@dataclass
class ListInfo(Definition):
    items: list[str]
    loc: int


@dataclass
class MacroInfo(Definition):
    cond: SourceText
    loc: int


@dataclass
class RuleInfo(Definition):
    cond: SourceText
    output: SourceText
    desc: str
    priority: Priority
    loc: int
    source: str = "syscall"
    enabled: bool = True
    tags: list[str] = field(default_factory=list)
    exceptions: list[ExceptionInfo] = field(default_factory=list)
    warn_evttypes: bool = True
    skip_if_unknown_filter: bool = False
    capture: bool = False
    capture_duration: int = 0
    #: falcopy's own keys (falcopy.engine.alert_keys); None: not given
    aggregation: AggregationSpec | None = None
    threshold: ThresholdSpec | None = None


#: (code, message, location, item type, item name): where a message about an item goes
Report = Callable[[str, str, int, str, str], None]
Warn = Report
