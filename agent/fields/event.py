"""The event the rule engine sees for one kernel record."""

from __future__ import annotations

from typing import Any

from falcopy.agent.enrichment.model import HOST_CONTAINER_ID, ContainerInfo, MetadataLookup
from falcopy.agent.events.record import SyscallRecord
from falcopy.agent.state.model import FdInfo, ThreadInfo
from falcopy.agent.state.table import ProcessTable

_HOST_INFO = ContainerInfo(id=HOST_CONTAINER_ID, full_id=HOST_CONTAINER_ID, name=HOST_CONTAINER_ID,
                           type="host", complete=True)


class SyscallEvent:
    """A record plus the state it refers to; expensive derived values are memoised
    in ``memo`` (one dict per event, so nothing outlives the event)."""

    __slots__ = ("fd", "memo", "meta", "num", "rec", "state", "thread", "ts", "type")

    #: the same for every event: a class attribute, one store fewer per event
    source = "syscall"

    def __init__(self, rec: SyscallRecord, thread: ThreadInfo, fd: FdInfo | None, state: ProcessTable,
                 meta: MetadataLookup | None = None, num: int = 0) -> None:
        self.type = rec.type
        self.ts = rec.ts
        self.rec = rec
        self.thread = thread
        self.fd = fd
        self.state = state
        self.meta = meta
        self.num = num
        self.memo: dict[str, Any] = {}

    def container(self) -> ContainerInfo:
        memo = self.memo
        info = memo.get("container")
        if info is None:
            cid = self.thread.container_id
            if cid == HOST_CONTAINER_ID or not cid:
                info = _HOST_INFO
            else:
                found = self.meta.get(cid) if self.meta is not None else None
                info = found if found is not None else ContainerInfo(id=cid)
            memo["container"] = info
        return info

    def ancestors(self) -> list[ThreadInfo]:
        memo = self.memo
        chain = memo.get("ancestors")
        if chain is None:
            chain = self.state.ancestors(self.thread)
            memo["ancestors"] = chain
        return chain

    def parent(self) -> ThreadInfo | None:
        chain = self.ancestors()
        return chain[0] if chain else None
