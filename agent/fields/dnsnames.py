"""``fd.cip.name``, ``fd.sip.name``, ``fd.lip.name``, ``fd.rip.name`` over live events.

As in libsinsp: compared with a name (``=``, ``!=``, ``in``) the field is true when the
address of that role is one of the name's current addresses (kept by
:class:`~falcopy.agent.enrichment.dns.DnsNames`, resolved off the event path); read for
an output it is a name the address is known to belong to, else ``<NA>``.  Only IPv4/IPv6
sockets have such addresses: on other events ``=`` and ``!=`` are both false.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from falcopy.agent.enrichment.dns import DnsNames
from falcopy.agent.fields.event import SyscallEvent
from falcopy.agent.state.model import FdInfo

#: an address of one role of a socket (None: not an IP socket, or unknown)
AddressOf = Callable[[FdInfo], Any]
#: (event, name) -> the address is the name's; None when the event has no such address
Matcher = Callable[[SyscallEvent, str], "bool | None"]


def name_accessor(dns: DnsNames, address_of: AddressOf) -> Callable[[SyscallEvent], Any]:
    names_of = dns.name_of

    def get(ev: SyscallEvent) -> Any:
        fd = ev.fd
        if fd is None:
            return None
        addr = address_of(fd)
        return None if addr is None else names_of(addr)
    return get


def name_matcher(dns: DnsNames, address_of: AddressOf) -> Matcher:
    contains = dns.contains

    def match(ev: SyscallEvent, name: str) -> bool | None:
        fd = ev.fd
        if fd is None:
            return None
        addr = address_of(fd)
        return None if addr is None else contains(name, addr)
    return match
