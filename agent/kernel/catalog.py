"""Every event type with its arguments and how (whether) this system captures it:
the data behind ``falcopy list-events`` (Falco's ``--list-events``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from falcopy.agent.events.record import EVENT_ARGS
from falcopy.agent.kernel import layout
from falcopy.agent.kernel.syscalls import (
    FALCO_NAMES,
    NO_EXIT_EVENT,
    SyscallTable,
    kernel_syscall_names,
    tracefs_args,
)

from falcopy.engine.evttypes import ALL_EVENT_TYPES

#: capture paths
DEDICATED = "dedicated"   # its own exit program (Falco's argument names)
GENERIC = "generic"       # the raw sys_exit hook: ID, nativeID and the raw arguments
SYNTHETIC = "synthetic"   # made by the agent (container)
NONE = "no"


@dataclass(frozen=True)
class EventInfo:
    name: str
    capture: str
    #: (name, type) of each argument the event carries
    args: tuple[tuple[str, str], ...]
    #: syscall number on this architecture (None: not a syscall here)
    nr: int | None
    #: whether the running kernel implements it (None: unknown or not a syscall)
    implemented: bool | None
    #: why it cannot be captured (capture == "no")
    reason: str = ""


def _tracefs() -> Path | None:
    for path in ("/sys/kernel/tracing", "/sys/kernel/debug/tracing"):
        if os.access(os.path.join(path, "events", "syscalls"), os.R_OK):
            return Path(path)
    return None


def event_catalog(tracefs: Path | None = None, table: SyscallTable | None = None) -> list[EventInfo]:
    """All event types the engine knows plus every syscall of this architecture, sorted."""
    from falcopy.agent.events.synthetic import SYNTHETIC_EVENT_TYPES

    tracefs = tracefs if tracefs is not None else _tracefs()
    table = table or SyscallTable.build(kernel_syscall_names(tracefs))
    dedicated = set(layout.EVENT_IDS) - {layout.GENERIC}
    # a dedicated program without a tracepoint on this kernel falls back to the generic hook
    if tracefs is not None:
        from falcopy.agent.kernel.probe import kernel_events

        dedicated = kernel_events(tracefs)
    out: list[EventInfo] = []
    for name in sorted(ALL_EVENT_TYPES | table.event_names() | set(SYNTHETIC_EVENT_TYPES)):
        nr = table.nr(name)
        implemented = table.implemented(nr) if nr is not None else None
        if name in dedicated:
            args = tuple(EVENT_ARGS.get(name, {}).items())
            out.append(EventInfo(name, DEDICATED, args, nr, implemented))
        elif name in SYNTHETIC_EVENT_TYPES:
            out.append(EventInfo(name, SYNTHETIC, (), None, None))
        elif name in NO_EXIT_EVENT and nr is not None:
            out.append(EventInfo(name, NONE, (), nr, implemented, NO_EXIT_EVENT[name]))
        elif nr is not None:
            kname = table.kernel_names.get(nr)
            decl = (tracefs_args(tracefs, kname) if kname else None) or \
                tuple((f"a{i}", "unsigned long") for i in range(6))
            out.append(EventInfo(name, GENERIC, (("ID", "syscall name"), ("nativeID", "u64"), *decl),
                                 nr, implemented))
        elif name in FALCO_NAMES:
            out.append(EventInfo(name, NONE, (), None, None,
                                 f"its events are named {FALCO_NAMES[name]} (Falco's name)"))
        else:
            out.append(EventInfo(name, NONE, (), None, None,
                                 "not a system call of this architecture and not produced by falcopy"))
    for kname in sorted(table.unnumbered):
        out.append(EventInfo(kname, NONE, tracefs_args(tracefs, kname) or (), None, True,
                             "implemented by this kernel, newer than the syscall table falcopy was built "
                             "with (rebuild the probe with newer kernel headers)"))
    return out
