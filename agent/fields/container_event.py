"""The synthetic ``container`` event (Falco's container plugin event), as a SyscallEvent.

Thread/process fields come from the container's init process (inspect
``State.Pid``) when the process table knows it, otherwise they read as
``<NA>`` (Falco's event has no thread either).  Which containers are announced,
and when, is decided in :mod:`falcopy.agent.enrichment.announce`.
"""

from __future__ import annotations

import time

from falcopy.agent.enrichment.model import ContainerInfo, MetadataLookup
from falcopy.agent.events.record import SyscallRecord
from falcopy.agent.fields.event import SyscallEvent
from falcopy.agent.state.model import ThreadInfo
from falcopy.agent.state.table import ProcessTable

#: event types the agent makes itself: never requested from the probe


def _no_process(container_id: str) -> ThreadInfo:
    # every scalar None so proc.*/thread.*/user.* read <NA>; containers stay empty and
    # cwd keeps its type and ptid 0 means "no parent", so the accessors need no special case
    return ThreadInfo(pid=None, tid=None, ptid=0, vpid=None, vtid=None,  # type: ignore[arg-type]
                      sid=None, pgid=None, vpgid=None, comm=None, exe=None,  # type: ignore[arg-type]
                      exepath=None, tty=None, uid=None, gid=None, loginuid=None,  # type: ignore[arg-type]
                      start_ts=0, exec_ts=0, container_id=container_id, partial=True)


def container_event(info: ContainerInfo, state: ProcessTable, meta: MetadataLookup | None,
                    num: int = 0, ts: int | None = None) -> SyscallEvent:
    """The ``container`` event announcing ``info``."""
    thread = state.get(info.pid) if info.pid else None
    if thread is not None and thread.container_id != info.id:
        thread = None  # the pid was reused, or the table has not resolved its cgroup
    if thread is None:
        thread = _no_process(info.id)
    rec = SyscallRecord(
        type="container", ts=ts if ts is not None else time.time_ns(), cpu=-1,
        tid=thread.tid, pid=thread.pid, ppid=thread.ptid, vtid=thread.vtid, vpid=thread.vpid,
        uid=thread.uid, gid=thread.gid, euid=thread.uid, egid=thread.gid, loginuid=thread.loginuid,
        comm=thread.comm, cgroup_id=0, res=0,
        # the arguments of Falco's legacy container event
        args={"id": info.id, "type": info.type, "name": info.name, "image": info.image},
    )
    event = SyscallEvent(rec, thread, None, state, meta, num)
    # the announced metadata, even if the store has moved on (evicted, refreshed)
    event.memo["container"] = info
    return event
