"""Reading a capture file back: the events as the live agent evaluated them.

The process table is rebuilt from the file's snapshot and then updated by the
recorded kernel records with the agent's own :class:`ProcessTable`, so every
field (``proc.*``, ``fd.*``, ``user.*``, ``container.*``) is computed by the same
code as live, from the file alone: nothing of the replaying machine (its /proc,
its /etc/passwd, its containers) is read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from falcopy.agent.capture.fileformat import (
    CaptureFormatError,
    decode_record,
    decode_thread,
    is_header,
)
from falcopy.agent.enrichment.model import ContainerInfo, Mount, PodMeta
from falcopy.agent.events.record import SyscallRecord
from falcopy.agent.fields.event import SyscallEvent
from falcopy.agent.state.procfs import HostPaths
from falcopy.agent.state.table import ProcessTable
from falcopy.agent.state.users import GroupEntry, UserEntry

#: replay reads nothing of the machine it runs on: the table looks here and finds nothing
_NOWHERE = HostPaths(proc="/nonexistent/falcopy-replay/proc", root="/nonexistent/falcopy-replay")


@dataclass
class Capture:
    name: str
    header: dict[str, Any]
    snapshot: dict[str, Any]
    records: list[tuple[SyscallRecord, int]] = field(default_factory=list)

    @property
    def trigger(self) -> dict[str, Any]:
        return dict(self.header.get("trigger") or {})

    @property
    def live_alerts(self) -> list[tuple[str, int]]:
        return [(str(a.get("rule")), int(a.get("evt.num", 0))) for a in self.header.get("alerts") or []]


def first_line_is_header(line: str) -> bool:
    try:
        return is_header(json.loads(line))
    except ValueError:
        return False


def parse_capture(lines: Iterable[str], name: str) -> Capture:
    """Parse a capture (header line first); errors name the file and line."""
    header: dict[str, Any] | None = None
    snapshot: dict[str, Any] | None = None
    records: list[tuple[SyscallRecord, int]] = []
    for lineno, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise CaptureFormatError(f"{name}:{lineno}:{e.colno}: invalid JSON: {e.msg}") from None
        if not isinstance(obj, dict):
            raise CaptureFormatError(f"{name}:{lineno}:1: each line must be a JSON object")
        if header is None:
            if not is_header(obj):
                raise CaptureFormatError(f"{name}:{lineno}:1: not a falcopy capture (no header line)")
            header = obj
        elif snapshot is None:
            snap = obj.get("snapshot")
            if not isinstance(snap, dict):
                raise CaptureFormatError(f"{name}:{lineno}:1: expected the state snapshot line")
            snapshot = snap
        else:
            try:
                records.append(decode_record(obj))
            except ValueError as e:
                raise CaptureFormatError(f"{name}:{lineno}:1: {e}") from None
    if header is None or snapshot is None:
        raise CaptureFormatError(f"{name}: truncated capture (header or snapshot missing)")
    return Capture(name, header, snapshot, records)


def read_capture(path: str) -> Capture:
    with open(path, encoding="utf-8") as fh:
        return parse_capture(fh, path)


class SnapshotUsers:
    """The uid/gid names the live agent resolved, per container (``UserDirectory``'s interface)."""

    def __init__(self, users: dict[str, Any], groups: dict[str, Any]) -> None:
        self._users = {(cid, int(uid)): UserEntry(int(uid), *v)
                       for cid, by_uid in users.items() for uid, v in by_uid.items()}
        self._groups = {(cid, int(gid)): GroupEntry(int(gid), v)
                        for cid, by_gid in groups.items() for gid, v in by_gid.items()}

    def user(self, uid: int, container_id: str = "host", proc_root: str | None = None,
             now: float = 0.0) -> UserEntry | None:
        return self._users.get((container_id, uid))

    def group(self, gid: int, container_id: str = "host", proc_root: str | None = None,
              now: float = 0.0) -> GroupEntry | None:
        return self._groups.get((container_id, gid))


class SnapshotMetadata:
    """Container metadata as it was when the capture was written."""

    def __init__(self, containers: dict[str, Any]) -> None:
        self._infos: dict[str, ContainerInfo] = {}
        for cid, values in containers.items():
            values = dict(values)
            values["mounts"] = [Mount(**m) for m in values.get("mounts") or []]
            if values.get("k8smeta"):
                values["k8smeta"] = PodMeta.from_dict(values["k8smeta"])
            self._infos[cid] = ContainerInfo(**values)

    def get(self, container_id: str) -> ContainerInfo | None:
        return self._infos.get(container_id)


def build_state(capture: Capture) -> tuple[ProcessTable, SnapshotMetadata]:
    snap = capture.snapshot
    table = ProcessTable(_NOWHERE, container_resolver=lambda pid, cgroup_id: "")
    table.users = SnapshotUsers(snap.get("users") or {}, snap.get("groups") or {})  # type: ignore[assignment]
    table.start_ts = int(snap.get("start_ts") or 0)
    for obj in snap.get("threads") or []:
        info = decode_thread(obj)
        table.threads[info.pid] = info
    return table, SnapshotMetadata(snap.get("containers") or {})


def replay_events(capture: Capture) -> Iterator[SyscallEvent]:
    """The capture's events in order, each with the state it had live; evaluate each
    one before asking for the next (the table moves on)."""
    state, meta = build_state(capture)
    for rec, num in capture.records:
        thread, fd = state.apply(rec)
        yield SyscallEvent(rec, thread, fd, state, meta, num)
        state.prev_ts = rec.ts
    state.after()
