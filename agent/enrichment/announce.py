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

The event itself is built by :func:`falcopy.agent.fields.container_event.container_event`.
"""

from __future__ import annotations

import queue
from collections import OrderedDict

from falcopy.agent.enrichment.model import HOST_CONTAINER_ID, ContainerInfo

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
