"""falcopy's rule engine: Falco's rule language, loaded and evaluated in Python.

Stages (one module each): :mod:`reader` (YAML with positions) ->
:mod:`collector` (items, appends, overrides) -> :mod:`parser` (conditions) ->
:mod:`compiler` (predicates) / :mod:`output` (formats) -> :mod:`ruleset`
(index by source and event type).  :mod:`loader` runs them.
"""

from __future__ import annotations

from falcopy.engine.fields import default_sources
from falcopy.engine.loader import RulesInput, load_rules, load_rules_files
from falcopy.engine.messages import LoadCode, LoadMessage, LoadResult
from falcopy.engine.output import OutputFormat, compile_output
from falcopy.engine.priority import Priority
from falcopy.engine.ruleset import CompiledRule, Ruleset
from falcopy.engine.versions import ENGINE_VERSION, PROVIDED_PLUGINS

__all__ = [
    "ENGINE_VERSION",
    "PROVIDED_PLUGINS",
    "CompiledRule",
    "LoadCode",
    "LoadMessage",
    "LoadResult",
    "OutputFormat",
    "Priority",
    "RulesInput",
    "Ruleset",
    "compile_output",
    "default_sources",
    "load_rules",
    "load_rules_files",
]
