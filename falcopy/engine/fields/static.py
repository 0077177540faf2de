"""Falco's ``static_fields``: constants from the configuration, readable as ``static.<key>``.

Falco adds them as a filter check to every source (``evt.type=open and
static.cluster=prod``) and, with ``append_output.suggested_output``, appends
``static_<key>=<value>`` to every rule's output.  Values are plain strings;
``${VAR}`` was already expanded by the configuration loader.
"""

from __future__ import annotations

from collections.abc import Mapping

from falcopy.engine.fields.base import FieldDef, FieldSource, FieldType

PREFIX = "static."


def static_field_name(key: str) -> str:
    return PREFIX + key


def add_static_fields(sources: Mapping[str, FieldSource], values: Mapping[str, str]) -> None:
    """Define ``static.<key>`` with its constant value in every source."""
    if not values:
        return
    for src in sources.values():
        src.fields = dict(src.fields)  # a source may share a module-level table: never mutate it
        for key, value in values.items():
            name = static_field_name(key)
            src.fields[name] = FieldDef(name, FieldType.STRING, f"static field from the configuration: {key}")
            src.constants[name] = str(value)
