"""Records built by hand, shaped like the probe's (agent/events/record.py conventions)."""

from __future__ import annotations

import os
import time
from typing import Any

from falcopy.agent.events.record import SyscallRecord


def rec(etype: str, pid: int, *, tid: int | None = None, ppid: int = 1, res: int = 0,
        comm: str = "test", uid: int = 0, loginuid: int = 0xFFFFFFFF, **args: Any) -> SyscallRecord:
    return SyscallRecord(
        type=etype, ts=time.time_ns(), cpu=0, tid=tid if tid is not None else pid, pid=pid, ppid=ppid,
        vtid=tid if tid is not None else pid, vpid=pid, uid=uid, gid=0, euid=uid, egid=0,
        loginuid=loginuid, comm=comm, cgroup_id=0, res=res, args=args,
    )


def me() -> int:
    return os.getpid()
