"""The record the kernel capture hands to the rest of the agent.

One :class:`SyscallRecord` per captured system call (or process lifecycle
event), decoded from the ring buffer by ``falcopy.agent.kernel``.  Argument
names follow Falco's event table (libs ``driver/event_table.c``), so that
``evt.arg.<name>`` and ``evt.rawarg.<name>`` resolve the way Falco users expect.
The exact argument keys of each event type are listed in ``EVENT_ARGS`` below
(maintained with the probe).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class SyscallRecord:
    #: Falco event name: "openat", "execve", "connect", "clone", "procexit", ...
    type: str
    #: wall clock, nanoseconds since the epoch (converted from the kernel's boot clock)
    ts: int
    cpu: int
    #: thread id and thread-group id in the host (initial) pid namespace
    tid: int
    pid: int
    #: tgid of the real parent
    ppid: int
    #: tid / tgid as seen inside the process's own pid namespace
    vtid: int
    vpid: int
    uid: int
    gid: int
    euid: int
    egid: int
    #: audit login uid; 0xFFFFFFFF (-1) when unset, as Falco's user.loginuid shows -1
    loginuid: int
    comm: str
    #: cgroup v2 id of the task's default cgroup (0 when unknown)
    cgroup_id: int
    #: return value of the system call (negative errno on failure); 0 for lifecycle events
    res: int
    #: decoded arguments keyed by Falco's argument names (see EVENT_ARGS)
    args: dict[str, Any] = field(default_factory=dict)


#: Argument keys carried by each event type, with their Python types.
#: Filled in with the probe; consumers must tolerate a missing key (value unreadable).
EVENT_ARGS: dict[str, dict[str, str]] = {}
