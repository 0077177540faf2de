"""The flight recorder: the recent events of each process tree or container, in
bounded memory, and the capture sessions alerts open (event thread only).

Each record is kept with its event number and an estimate of its size, in the
buffer of its *scope key*: (container id, session id) for ``process_tree``,
the container id for ``container`` (host processes stay per session: one key for
the whole host would mix everything).  The first time a process shows up in a
buffer, a copy of its state and of its ancestors' is taken: replaying the
buffer's records from those copies rebuilds the state each event saw.

Bounds: ``max_events`` per key (a capture takes at most that many events from
before the alert; the buffer is cut back once it holds a quarter more),
``max_age_s`` (by event time, swept about once a second), ``max_bytes`` for all
keys together (the oldest events anywhere go first).  When capture is off no
recorder exists and the pipeline skips it with one ``is None`` test.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from falcopy.agent.control.capture_config import CaptureConfig, RecorderConfig
from falcopy.agent.events.record import EVENT_ARGS, SyscallRecord
from falcopy.agent.state.model import ThreadInfo
from falcopy.agent.state.table import ProcessTable

log = logging.getLogger(__name__)

_NS = 1_000_000_000
#: a session ends by the clock this long after its deadline: events of its last
#: moments may still be in the ring buffer (an event past the deadline ends it at once)
CLOCK_GRACE_NS = 1_000_000_000
#: fixed part of a record's estimated footprint (object, slots, args dict)
_RECORD_BASE_BYTES = 360

ScopeKey = tuple[str, int]
Submit = Callable[["CaptureJob"], bool]


#: event types whose arguments carry lists (argv, env, cgroups)
_LIST_TYPES = frozenset({"execve", "execveat"})

#: per event type: its fixed footprint (the record, its int and dict arguments) and the
#: keys of its string arguments, the part that varies (paths up to 4 KiB): looking up
#: two keys costs less than walking seven values
_LAYOUT: dict[str, tuple[int, tuple[str, ...]]] = {
    etype: (_RECORD_BASE_BYTES + 240 * sum(kind == "dict" for kind in args.values()),
            tuple(key for key, kind in args.items() if kind == "str"))
    for etype, args in EVENT_ARGS.items()
}


def _list_bytes(args: dict[str, Any]) -> int:
    n = 0
    for v in args.values():
        if v.__class__ is list:
            n += 16 * len(v) + sum(len(x) for x in v if x.__class__ is str)
    return n


def record_size(rec: SyscallRecord) -> int:
    """Rough bytes a record holds: enough to bound memory, cheap enough per record."""
    args = rec.args
    layout = _LAYOUT.get(rec.type)
    if layout is None:  # a type without a known layout: every value looked at
        n = _RECORD_BASE_BYTES
        for v in args.values():
            if v.__class__ is str:
                n += len(v)
        return n + _list_bytes(args)
    n, keys = layout
    for key in keys:
        v = args.get(key)
        if v.__class__ is str:
            n += len(v)
    if rec.type in _LIST_TYPES:
        n += _list_bytes(args)
    return n


def snapshot_thread(info: ThreadInfo) -> ThreadInfo:
    """A copy no later event can change (the table updates its objects in place)."""
    snap = copy.copy(info)
    snap.fds = {num: copy.copy(fd) for num, fd in info.fds.items()}
    snap.threads = set()
    return snap


@dataclass(slots=True)
class _Buffer:
    key: ScopeKey
    #: (record, event number, estimated bytes), oldest first
    events: list[tuple[SyscallRecord, int, int]] = field(default_factory=list)
    #: pid -> state copy taken when the process (or a descendant) first showed up; a
    #: process whose events have all been dropped loses its copy (and gets a fresh one)
    snaps: dict[int, ThreadInfo] = field(default_factory=dict)
    #: pid -> event number of its latest record here (which copies a drop makes stale)
    last: dict[int, int] = field(default_factory=dict)
    session: CaptureSession | None = None


@dataclass(slots=True)
class CaptureSession:
    """One capture being collected: the events before the alert are fixed, the
    events after it come in until the duration, event count or size cap is reached."""

    path: str
    key: ScopeKey
    rule: str
    trigger_num: int
    trigger_ts: int
    deadline_ts: int
    max_after: int
    max_bytes: int
    before: list[tuple[SyscallRecord, int, int]]
    snaps: dict[int, ThreadInfo]
    #: (rule, evt.num) of every alert of this scope while the session was open
    alerts: list[tuple[str, int]] = field(default_factory=list)
    after: list[tuple[SyscallRecord, int, int]] = field(default_factory=list)
    bytes: int = 0
    ended_by: str = ""

    def add(self, item: tuple[SyscallRecord, int, int], thread: ThreadInfo,
            ancestors: Callable[[], list[ThreadInfo]]) -> bool:
        """Take one more event; False once the session is complete."""
        rec = item[0]
        if rec.ts > self.deadline_ts:
            self.ended_by = "duration"
            return False
        if rec.pid not in self.snaps:
            # a process that appears only after the alert (a fork of a process seen
            # before is rebuilt from its clone record; this covers the rest)
            self.snaps[rec.pid] = snapshot_thread(thread)
            for parent in ancestors():
                self.snaps.setdefault(parent.pid, snapshot_thread(parent))
        self.after.append(item)
        self.bytes += item[2]
        if self.max_after and len(self.after) >= self.max_after:
            self.ended_by = "events"
            return False
        if self.max_bytes and self.bytes >= self.max_bytes:
            self.ended_by = "filesize"
            return False
        return True


@dataclass(slots=True)
class CaptureJob:
    """A finished session plus what the file needs from the agent's state."""

    session: CaptureSession
    header: dict[str, Any]
    containers: dict[str, Any]
    #: container id -> uid -> [name, homedir, shell]
    users: dict[str, dict[str, list[str]]]
    #: container id -> gid -> name
    groups: dict[str, dict[str, str]]
    start_ts: int


@dataclass(slots=True)
class RecorderStats:
    #: captures opened / refused because too many were pending
    sessions: int = 0
    refused: int = 0


def rules_digest(ruleset: Any) -> str:
    """What identifies the rules a capture was taken with (name, condition, output, priority)."""
    h = hashlib.sha256()
    for r in getattr(ruleset, "rules", ()):
        if not getattr(r, "enabled", True):
            continue
        h.update(json.dumps([r.name, r.condition, r.output, r.priority.falco_name]).encode())
    return "sha256:" + h.hexdigest()


class FlightRecorder:
    def __init__(self, falco: CaptureConfig, config: RecorderConfig, state: ProcessTable, submit: Submit, *,
                 metadata: Any = None, header: dict[str, Any] | None = None) -> None:
        self.falco = falco
        self._prefix = os.path.abspath(falco.path_prefix)
        self.config = config
        self.state = state
        self.metadata = metadata
        self._submit = submit
        self._header = dict(header or {})
        self._keys: dict[ScopeKey, _Buffer] = {}
        self._open: dict[ScopeKey, CaptureSession] = {}
        self.bytes = 0
        #: records kept since start (a plain attribute: counted per record)
        self.recorded = 0
        self.stats = RecorderStats()
        self._max_events = config.max_events
        #: a key is cut back to max_events once it holds a quarter more (amortised drops)
        self._limit = config.max_events + max(1, config.max_events // 4)
        self._max_age_ns = int(config.max_age_s * _NS)
        self._max_bytes = config.max_bytes
        self._by_container = config.scope == "container"
        self._last_sweep = 0.0
        self._digest: tuple[int, str] = (0, "")
        self.ruleset: Any = None

    def keys(self) -> int:
        return len(self._keys)

    def open_sessions(self) -> int:
        return len(self._open)

    def held(self) -> int:
        """Events in the buffers now."""
        return sum(len(b.events) for b in list(self._keys.values()))

    def evicted(self) -> int:
        """Events dropped by the bounds since start (derived: nothing counted per event)."""
        return self.recorded - self.held()

    # ------------------------------------------------------------ event path
    def key_of(self, thread: ThreadInfo) -> ScopeKey:
        cid = thread.container_id
        if self._by_container and cid != "host":
            return (cid, 0)
        return (cid, thread.sid or thread.pid)

    def record(self, rec: SyscallRecord, thread: ThreadInfo, num: int) -> None:
        """Keep one record (after the table applied it, before rules see it).  Runs for
        every record: written flat; drops happen per chunk, ageing in :meth:`tick`."""
        cid = thread.container_id
        key = (cid, 0) if self._by_container and cid != "host" else (cid, thread.sid or thread.pid)
        buf = self._keys.get(key)
        if buf is None:
            buf = self._keys[key] = _Buffer(key)
        # record_size(), inlined
        layout = _LAYOUT.get(rec.type)
        if layout is None:
            size = record_size(rec)
        else:
            size, keys = layout
            args = rec.args
            for k in keys:
                v = args.get(k)
                if v.__class__ is str:
                    size += len(v)
            if rec.type in _LIST_TYPES:
                size += _list_bytes(args)
        item = (rec, num, size)
        events = buf.events
        events.append(item)
        total = self.bytes + size
        self.bytes = total
        self.recorded += 1
        pid = rec.pid
        if pid not in buf.snaps:
            self._first_sight(buf, thread)
        buf.last[pid] = num
        if len(events) > self._limit:
            self._drop(buf, len(events) - self._max_events)
        if total > self._max_bytes:
            self._shrink()
        session = buf.session
        if session is not None and not session.add(item, thread, lambda: self.state.ancestors(thread)):
            self._close(buf)

    def _first_sight(self, buf: _Buffer, thread: ThreadInfo) -> None:
        snaps = buf.snaps
        snaps[thread.pid] = snapshot_thread(thread)
        for parent in self.state.ancestors(thread):
            if parent.pid not in snaps:
                snaps[parent.pid] = snapshot_thread(parent)

    def _drop(self, buf: _Buffer, n: int) -> None:
        """Drop the ``n`` oldest events of a key, and the state copies no event left needs.
        Called per chunk (``max_events`` is exceeded by a quarter first), not per event."""
        events = buf.events
        n = min(n, len(events))
        if n <= 0:
            return
        self.bytes -= sum([item[2] for item in events[:n]])
        del events[:n]
        first_kept = events[0][1] if events else 1 << 62
        last = buf.last
        gone = [pid for pid, num in last.items() if num < first_kept]
        if not gone:
            return
        for pid in gone:
            del last[pid]
        # keep the copies of the processes still here and of their ancestors
        snaps = buf.snaps
        keep: dict[int, ThreadInfo] = {}
        for pid in last:
            cur = snaps.get(pid)
            while cur is not None and cur.pid not in keep:
                keep[cur.pid] = cur
                cur = snaps.get(cur.ptid) if cur.ptid != cur.pid else None
        buf.snaps = keep

    def _drop_older(self, buf: _Buffer, oldest_ts: int) -> None:
        events = buf.events
        n = 0
        while n < len(events) and events[n][0].ts < oldest_ts:
            n += 1
        self._drop(buf, n)

    def _shrink(self) -> None:
        """Over the memory cap: drop the oldest events anywhere down to 90 % of it."""
        target = self._max_bytes * 9 // 10
        live = [b for b in self._keys.values() if b.events]
        while self.bytes > target and live:
            buf = min(live, key=lambda b: b.events[0][0].ts)
            # a chunk at a time: one scan of the keys per chunk, not per event
            events = buf.events
            n, freed = 0, 0
            while n < len(events) and n < 256 and self.bytes - freed > target:
                freed += events[n][2]
                n += 1
            self._drop(buf, n)
            if not events:
                live.remove(buf)

    # ------------------------------------------------------------ alerts
    def wants(self, rule: Any) -> bool:
        return self.falco.mode == "all_rules" or bool(getattr(rule, "capture", False))

    def on_alert(self, rule: Any, event: Any) -> str | None:
        """An alert was raised on ``event``: the capture file that will hold it, or None
        (not a capturing rule, not a kernel event, or too many captures pending)."""
        rec = getattr(event, "rec", None)
        thread = getattr(event, "thread", None)
        if rec is None or thread is None or not self.wants(rule):
            return None
        key = self.key_of(thread)
        buf = self._keys.get(key)
        if buf is None:
            return None
        session = buf.session
        if session is not None:
            # the alert is inside a capture already being collected: one file tells both
            session.alerts.append((rule.name, event.num))
            return session.path
        if len(self._open) >= self.config.max_pending:
            self.stats.refused += 1
            return None
        duration_ms = getattr(rule, "capture_duration", 0) or self.falco.default_duration
        before = buf.events[-self._max_events:]
        snaps = dict(buf.snaps)
        if not before or before[-1][1] != event.num:
            # an event the pipeline made itself (the container event): the file holds it too
            before.append((rec, event.num, record_size(rec)))
            snaps.setdefault(thread.pid, snapshot_thread(thread))
        session = CaptureSession(
            path=self._path(rec.ts, event.num),
            key=key,
            rule=rule.name,
            trigger_num=event.num,
            trigger_ts=rec.ts,
            deadline_ts=rec.ts + duration_ms * 1_000_000,
            max_after=self.falco.capture_events,
            max_bytes=self.falco.capture_filesize * 1024,
            before=before,
            snaps=snaps,
            alerts=[(rule.name, event.num)],
        )
        self.stats.sessions += 1
        if duration_ms <= 0:
            session.ended_by = "duration"
            self._finish(session)
            return session.path
        buf.session = session
        self._open[key] = session
        return session.path

    def _path(self, ts: int, num: int) -> str:
        sec, frac = divmod(ts, _NS)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(sec)) + f".{frac:09d}Z"
        return f"{self._prefix}_{stamp}_{num}.jsonl"

    def _close(self, buf: _Buffer) -> None:
        session = buf.session
        buf.session = None
        if session is not None:
            self._open.pop(session.key, None)
            self._finish(session)

    def tick(self, now_ns: int | None = None) -> None:
        """Between batches: end sessions whose duration has passed (their tree went
        quiet), and age out idle keys about once a second."""
        now = time.time_ns() if now_ns is None else now_ns
        for key, session in list(self._open.items()):
            if now > session.deadline_ts + CLOCK_GRACE_NS:
                session.ended_by = session.ended_by or "duration"
                buf = self._keys.get(key)
                if buf is not None and buf.session is session:
                    self._close(buf)
                else:
                    self._open.pop(key, None)
                    self._finish(session)
        mono = time.monotonic()
        if mono - self._last_sweep < 1.0:
            return
        self._last_sweep = mono
        oldest = now - self._max_age_ns
        for key, buf in list(self._keys.items()):
            self._drop_older(buf, oldest)
            if not buf.events and buf.session is None:
                del self._keys[key]

    def close_all(self) -> None:
        """Shutting down: write what the open sessions have."""
        for buf in list(self._keys.values()):
            if buf.session is not None:
                buf.session.ended_by = buf.session.ended_by or "shutdown"
                self._close(buf)

    # ------------------------------------------------------------ hand-over
    def _finish(self, session: CaptureSession) -> None:
        """Gather what replay needs from the live state (names, container metadata)
        and hand the session to the writer thread; never blocks."""
        job = CaptureJob(
            session=session,
            header=self._file_header(session),
            containers=self._containers(session),
            users={},
            groups={},
            start_ts=self.state.start_ts,
        )
        self._names(session, job)
        if not self._submit(job):
            log.warning("capture %s not written: the writer queue is full", session.path)

    def _file_header(self, session: CaptureSession) -> dict[str, Any]:
        ruleset = self.ruleset
        if ruleset is not None and self._digest[0] != id(ruleset):
            self._digest = (id(ruleset), rules_digest(ruleset))
        cid, sid = session.key
        scope = {"kind": self.config.scope, "container_id": cid}
        if not (self._by_container and cid != "host"):
            scope["session"] = sid
        return {
            **self._header,
            "rules_hash": self._digest[1],
            "scope": scope,
            "trigger": {"rule": session.rule, "evt.num": session.trigger_num, "ts": session.trigger_ts},
            "alerts": [{"rule": r, "evt.num": n} for r, n in session.alerts],
            # events_before/after, time_range and truncated: set by the writer, which may trim
            "ended_by": session.ended_by,
        }

    def _containers(self, session: CaptureSession) -> dict[str, Any]:
        from dataclasses import asdict

        out: dict[str, Any] = {}
        if self.metadata is None:
            return out
        for snap in session.snaps.values():
            cid = snap.container_id
            if cid in out or cid in ("", "host"):
                continue
            info = self.metadata.get(cid)
            if info is not None:
                out[cid] = asdict(info)
        return out

    def _names(self, session: CaptureSession, job: CaptureJob) -> None:
        """uid/gid -> names as the live agent resolves them, per container."""
        users = self.state.users
        root_of = self.state.reader.root_of
        wanted: set[tuple[str, int, int, str]] = set()
        for snap in session.snaps.values():
            for uid in (snap.uid, snap.loginuid):
                wanted.add((snap.container_id, snap.pid, uid, "u"))
            wanted.add((snap.container_id, snap.pid, snap.gid, "g"))
        cids = {s.pid: s.container_id for s in session.snaps.values()}
        for rec, _, _ in session.before + session.after:
            cid = cids.get(rec.pid, "host")
            for uid in (rec.euid, rec.uid):
                wanted.add((cid, rec.pid, uid, "u"))
            wanted.add((cid, rec.pid, rec.egid, "g"))
        now = time.monotonic()
        for cid, pid, num, kind in wanted:
            if num < 0:
                continue
            try:
                if kind == "u":
                    entry = users.user(num, cid, root_of(pid), now)
                    if entry is not None:
                        job.users.setdefault(cid, {})[str(num)] = [entry.name, entry.homedir, entry.shell]
                else:
                    group = users.group(num, cid, root_of(pid), now)
                    if group is not None:
                        job.groups.setdefault(cid, {})[str(num)] = group.name
            except OSError:
                continue
