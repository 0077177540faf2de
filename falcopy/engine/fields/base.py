"""Field definitions and the per-source accessor contract.

A :class:`FieldDef` describes one field (`proc.name`, `fd.name`,
`k8s.pod.label`...): what the engine needs to validate a rule (type, whether it
takes an argument, whether it holds a list).  A :class:`FieldSource` groups the
fields of one event source and turns a field reference into an accessor: a
function ``event -> value`` used on the hot path.  Accessors return plain
Python values: ``str``, ``int``, ``bool``, ``bytes`` (buffers), ``list`` of
those for list fields, and ``None`` when the value is missing (rendered
``<NA>`` in text output, ``null`` in JSON).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Accessor = Callable[[Any], Any]


class FieldType(enum.StrEnum):
    STRING = "string"          # CHARBUF, FSPATH, FSRELPATH in libsinsp
    INT = "int64"              # signed numbers (INT8..INT64, ERRNO, PID, FD)
    UINT = "uint64"            # unsigned numbers, flags rendered as numbers
    BOOL = "bool"
    ABSTIME = "abstime"        # ns since epoch
    RELTIME = "reltime"        # ns duration
    IPADDR = "ipaddr"          # "10.0.0.1" / "::1"
    IPNET = "ipnet"            # "10.0.0.0/8"
    PORT = "port"
    BYTEBUF = "bytebuf"        # evt.buffer, compared with bcontains/bstartswith
    FLAGS = "flags"            # string rendering of a flags value; `contains X` tests a flag


class ArgMode(enum.StrEnum):
    NONE = "none"              # proc.name
    INDEX_OPTIONAL = "index?"  # proc.aname, proc.aname[2]
    KEY_REQUIRED = "key"       # proc.env[HOME], k8s.pod.label[app], jevt.value[/ptr]
    KEY_OPTIONAL = "key?"      # evt.arg[0] / evt.arg.name: handled by the registry


@dataclass(frozen=True, slots=True)
class FieldDef:
    name: str
    type: FieldType
    desc: str
    arg: ArgMode = ArgMode.NONE
    #: True when the value is a list (proc.aname without index, container.mounts,
    #: ka.req.pod.containers.image...): `=` means "any element equals", `in`
    #: means every element is in the set, `intersects` means at least one.
    is_list: bool = False
    #: accepted by the engine but deprecated (warning LOAD_DEPRECATED_ITEM)
    deprecated: bool = False


class FieldSource:
    """The fields of one event source and how their values are read.

    Subclasses override :meth:`accessor`; the base implementation reads
    :class:`~falcopy.engine.event.DictEvent` values keyed by the field text.
    """

    def __init__(self, name: str, fields: dict[str, FieldDef]) -> None:
        self.name = name
        self.fields = fields
        #: fields whose value is the same for every event (``static_fields``)
        self.constants: dict[str, object] = {}

    def lookup(self, name: str) -> tuple[FieldDef, str | None] | None:
        """Resolve ``name`` (possibly ``k8s.pod.label.app`` / ``evt.arg.flags``
        dotted-argument forms) to its definition and argument."""
        fdef = self.fields.get(name)
        if fdef is not None:
            return fdef, None
        # dotted argument forms: the longest defined prefix taking an argument
        head = name
        while "." in head:
            head, _, _ = head.rpartition(".")
            fdef = self.fields.get(head)
            if fdef is not None and fdef.arg is not ArgMode.NONE:
                return fdef, name[len(head) + 1 :]
        return None

    def accessor(self, fdef: FieldDef, arg: str | None) -> Accessor:
        key = fdef.name if arg is None else f"{fdef.name}[{arg}]"

        def from_dict(event: Any) -> Any:
            return event.values.get(key)

        return from_dict
