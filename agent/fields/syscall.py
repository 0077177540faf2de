"""The agent's ``syscall`` FieldSource: field values computed from a
:class:`~falcopy.agent.fields.event.SyscallEvent` (record + process state +
container metadata).

Every FieldDef of ``falcopy.engine.fields.syscall`` resolves to one accessor of one
field-class module: :mod:`.evt` (evt.*, fs.path.*), :mod:`.proc` (proc.*, thread.*),
:mod:`.fd` (fd.*), :mod:`.user` (user.*, group.*), :mod:`.container` (container.*,
k8s.pod.*), :mod:`.k8smeta` (workload objects: k8smeta.*, k8s.deployment.* ...).
The few fields whose data the agent never has return None (rendered ``<NA>``); they
are listed in :data:`ALWAYS_NONE` with the reason, gathered from the modules'
``UNAVAILABLE``.
"""

from __future__ import annotations

import logging

from falcopy.agent.enrichment.dns import DnsNames
from falcopy.agent.fields import container, dnsnames, evt, fd, k8smeta, proc, user
from falcopy.agent.fields.accessor import Factory, Simple, none

from falcopy.engine.fields.base import Accessor, FieldDef, FieldSource
from falcopy.engine.fields.syscall import SYSCALL_FIELDS

log = logging.getLogger(__name__)

_MODULES = (evt, proc, fd, user, container, k8smeta)


def _merged(attr: str) -> dict:
    out: dict = {}
    for module in _MODULES:
        table = getattr(module, attr)
        overlap = out.keys() & table.keys()
        assert not overlap, f"fields defined twice: {sorted(overlap)}"
        out.update(table)
    return out


#: fields the agent cannot fill, and why (they are None on every event)
ALWAYS_NONE: dict[str, str] = _merged("UNAVAILABLE")
SIMPLE: dict[str, Simple] = {**_merged("FIELDS"), **dict.fromkeys(ALWAYS_NONE, none)}
WITH_ARG: dict[str, Factory] = _merged("WITH_ARG")
#: fields whose accessor costs less than the engine's per-event memo lookup
DIRECT: frozenset[str] = frozenset().union(*(m.DIRECT for m in _MODULES))
assert len(SIMPLE) == len(_merged("FIELDS")) + len(ALWAYS_NONE), "an unavailable field has an accessor"
assert DIRECT <= SIMPLE.keys()


class AgentSyscallSource(FieldSource):
    """Field accessors over live events (:class:`SyscallEvent`).

    Replay and tests with DictEvents use the engine's default syscall source;
    this one is built for the hot path (no per-access type dispatch)."""

    def __init__(self, fields: dict[str, FieldDef] | None = None, *, dns: DnsNames | None = None) -> None:
        super().__init__("syscall", fields if fields is not None else SYSCALL_FIELDS)
        #: the names the rules compare fd.*ip.name with, and their addresses (None: no resolver)
        self.dns = dns

    def name_matcher(self, fdef: FieldDef, arg: str | None) -> dnsnames.Matcher | None:
        """Engine hook: fd.*ip.name compared with names tests the address's membership."""
        address_of = fd.ADDRESS_OF.get(fdef.name)
        if address_of is None or self.dns is None:
            return None
        return dnsnames.name_matcher(self.dns, address_of)

    def memoize(self, fdef: FieldDef, arg: str | None) -> bool:
        """Engine hook: False for plain attribute reads, cheaper than the memo."""
        return not (arg is None and fdef.name in DIRECT)

    def accessor(self, fdef: FieldDef, arg: str | None) -> Accessor:
        address_of = fd.ADDRESS_OF.get(fdef.name)
        if address_of is not None and self.dns is not None:
            return dnsnames.name_accessor(self.dns, address_of)
        try:
            return self.live_accessor(fdef, arg)
        except KeyError:
            # a field defined after this module was written: rules still load, the value
            # is missing (tests/agent/state checks that every defined field has an accessor)
            log.warning("syscall field %s has no live accessor; it reads as <NA>", fdef.name)
            return none

    @staticmethod
    def live_accessor(fdef: FieldDef, arg: str | None) -> Simple:
        name = fdef.name
        factory = WITH_ARG.get(name)
        if factory is not None:
            return factory(arg)
        simple = SIMPLE.get(name)
        if simple is not None:
            return simple
        raise KeyError(f"no accessor for syscall field {name!r}")


def covered_fields(fields: dict[str, FieldDef] | None = None) -> tuple[list[str], list[str]]:
    """(fields with an accessor, fields without) -- used by the coverage test."""
    ok: list[str] = []
    missing: list[str] = []
    for name, fdef in (fields or SYSCALL_FIELDS).items():
        try:
            AgentSyscallSource.live_accessor(fdef, None if fdef.arg.value in ("none", "index?", "key?")
                                             else "x")
            ok.append(name)
        except KeyError:
            missing.append(name)
    return ok, missing
