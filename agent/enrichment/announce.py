"""Falco's synthetic ``container`` event: one per container, once its metadata is complete.

Falco's container plugin emits an event of type ``container`` (source syscall)
for every container it learns about -- those found running at start-up and
each one started later -- and rules such as "Launch Privileged Container"
match it through the ``container_started`` macro.  The kernel cannot produce
it, so the agent does: the :class:`ContainerAnnouncer` listens to the
:class:`~falcopy.agent.enrichment.store.MetadataStore` (on the store's thread)
and queues each container the first time its metadata is complete; the event
thread drains the queue between batches (``Pipeline.process_containers``), so
rule evaluation and the process table stay single-threaded.

:func:`container_event` builds the event: thread/process fields from the
container's init process (inspect ``State.Pid``) when the process table knows
it, otherwise read as ``<NA>`` (Falco's event has no thread either).
"""

from __future__ import annotations

import queue
import time
from collections import OrderedDict

from falcopy.agent.enrichment.model import HOST_CONTAINER_ID, ContainerInfo, MetadataLookup
from falcopy.agent.events.record import SyscallRecord
from falcopy.agent.fields.event import SyscallEvent
from falcopy.agent.state.model import ThreadInfo
from falcopy.agent.state.table import ProcessTable

#: event types the agent makes itself: never requested from the probe
SYNTHETIC_EVENT_TYPES: frozenset[str] = frozenset({"container"})

#: ids remembered as announced; the store republishes every entry on each kubelet
#: refresh, so this must outlast the store's own cache (default max_entries 4096)
MAX_ANNOUNCED = 65536


class ContainerAnnouncer:
    """Thread-safe hand-over of newly complete containers to the event thread."""

    def __init__(self, max_announced: int = MAX_ANNOUNCED) -> None:
        self._queue: queue.SimpleQueue[ContainerInfo] = queue.SimpleQueue()
        self._announced: OrderedDict[str, None] = OrderedDict()
        self._max = max_announced

    def offer(self, info: ContainerInfo) -> None:
        """Store listener (store thread): queue ``info`` if complete and not announced yet."""
        if not info.complete or info.id == HOST_CONTAINER_ID or not info.id:
            return
        if info.name is None and info.image is None:
            return  # no runtime or kubelet knew it (gone already): nothing to announce
        if info.id in self._announced:
            return
        self._announced[info.id] = None
        if len(self._announced) > self._max:
            self._announced.popitem(last=False)
        self._queue.put(info)

    def pending(self) -> bool:
        return not self._queue.empty()

    def drain(self) -> list[ContainerInfo]:
        out: list[ContainerInfo] = []
        get = self._queue.get_nowait
        while True:
            try:
                out.append(get())
            except queue.Empty:
                return out


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
