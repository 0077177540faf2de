"""The process table: bootstrapped from /proc, kept current by the kernel records.

:meth:`ProcessTable.apply` updates the table for one record *before* the
record is evaluated (so an execve is seen with its new image, an open with its
new fd) and returns the thread and fd the event refers to; removals (close,
procexit) are deferred to :meth:`ProcessTable.after`, so the closing event is
still evaluated with the fd / process it ends, as in libsinsp.  An exited process
stays findable as a parent for a short while (:meth:`ProcessTable.known_parent`).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

from falcopy.agent.events.record import SyscallRecord
from falcopy.agent.state import cgroup, fdops, lifecycle
from falcopy.agent.state.lifecycle import CLONE_TYPES, EXEC_TYPES
from falcopy.agent.state.model import FdInfo, ThreadInfo
from falcopy.agent.state.procfs import HostPaths, ProcReader
from falcopy.agent.state.sockets import SockEntry, inventory, proc_net_inventory
from falcopy.agent.state.users import UserDirectory

log = logging.getLogger(__name__)

_UNSET_LOGINUID = 0xFFFFFFFF

_HANDLERS_GET = fdops.HANDLERS.get
assert not (set(fdops.HANDLERS) & (EXEC_TYPES | {"procexit"}))

#: upper bound on tracked processes: a table that outgrows it is purged of dead pids
DEFAULT_MAX_PROCESSES = 131072
#: exited processes kept findable as parents (the older half goes at once)
DEFAULT_MAX_EXITED = 1024
#: for how long, in event time: a record samples its ppid when the syscall returns and is
#: submitted after the rest of it is read, so the parent's exit (the kernel reparents the
#: children after the exit tracepoint) can be in the ring first; that gap is microseconds
EXITED_PARENT_NS = 2_000_000_000

ContainerResolver = Callable[[int, int], str]

#: event types the process and fd tables need whatever the rules ask for (Falco's
#: base_syscalls idea): lifecycle, fd creation/duplication/closing, cwd, credentials
STATE_EVENT_TYPES: frozenset[str] = frozenset({
    "clone", "clone3", "fork", "vfork", "execve", "execveat", "procexit", "close", "socket", "connect",
    "accept", "accept4", "bind", "listen", "dup", "dup2", "dup3", "fcntl", "pipe", "pipe2", "socketpair",
    "memfd_create", "chdir", "fchdir", "chroot", "setuid", "setgid", "setresuid", "setresgid", "setreuid",
    "setregid", "capset", "setsid", "setpgid", "open", "openat", "openat2", "creat",
})


class ProcessTable:
    def __init__(self, paths: HostPaths | None = None, *,
                 container_resolver: ContainerResolver | None = None,
                 max_processes: int = DEFAULT_MAX_PROCESSES,
                 max_exited: int = DEFAULT_MAX_EXITED,
                 purge_interval_s: float = 30.0) -> None:
        self.paths = paths or HostPaths()
        self.reader = ProcReader(self.paths)
        self.users = UserDirectory(self.paths.host_file("/etc"))
        #: tid -> process (every thread id of a group maps to the same ThreadInfo)
        self.threads: dict[int, ThreadInfo] = {}
        self.resolve_container = container_resolver or self._container_from_proc
        self.max_processes = max_processes
        self.max_exited = max_exited
        #: pid -> (process, exit time) of the exits applied lately, in two generations: the
        #: current one is set aside whole when full or older than the window (one dict store
        #: per exit; a queue evicting one by one cost an exit twice as much)
        self._exited: dict[int, tuple[ThreadInfo, int]] = {}
        self._exited_before: dict[int, tuple[ThreadInfo, int]] = {}
        self._exited_since = 0
        self.purge_interval_s = purge_interval_s
        self._last_purge = time.monotonic()
        #: removals deferred to :meth:`after` (also set by the pipeline's fast path)
        self.pending_fd_close: tuple[ThreadInfo, int] | None = None
        self.pending_exit: ThreadInfo | None = None
        self._pending_exit_tid = 0
        self._pending_exit_ts = 0
        self.lazy_loads = 0
        self._listen_ports: frozenset[int] = frozenset()
        #: capture start and the previous event's time (evt.reltime / evt.deltatime)
        self.start_ts = time.time_ns()
        self.prev_ts = 0
        #: pids recently looked up in /proc and not found (monotonic time of the miss)
        self._missing: dict[int, float] = {}
        #: cgroup lists of execve records -> container id ("" when none matched)
        self.cgroup_ids: dict[tuple[object, ...], str] = {}

    # ------------------------------------------------------------ bootstrap
    def bootstrap(self, with_fds: bool = True) -> int:
        """Read every process (and its threads and fds) from /proc. Returns the count."""
        socks = inventory() if with_fds else {}
        self._listen_ports = frozenset(e.lport for e in socks.values() if e.listening)
        count = 0
        for pid in self.reader.list_pids():
            info = self._load(pid, with_fds=with_fds, socks=socks)
            if info is not None:
                count += 1
        if with_fds:
            self._resolve_other_netns_sockets()
        return count

    def _resolve_other_netns_sockets(self) -> None:
        """Sockets the agent's namespace did not list live in other network namespaces (containers):
        read them from /proc/PID/net of one process per namespace."""
        parsed: set[int] = set()
        for info in {id(i): i for i in self.threads.values()}.values():
            pending = [fd for fd in info.fds.values() if fd.type == "unknown" and fd.ino]
            if not pending:
                continue
            try:
                netns = os.stat(f"{self.paths.proc}/{info.pid}/ns/net").st_ino
            except OSError:
                continue
            if netns in parsed:
                continue
            parsed.add(netns)
            socks = proc_net_inventory(self.reader.pid_dir(info.pid))
            listen = frozenset(e.lport for e in socks.values() if e.listening)
            # every process of that namespace
            for other in {id(i): i for i in self.threads.values()}.values():
                for fd in other.fds.values():
                    if fd.type == "unknown" and fd.ino in socks:
                        fdops.fill_from_inventory(fd, socks[fd.ino], listen)

    def _load(self, pid: int, *, with_fds: bool = True,
              socks: dict[int, SockEntry] | None = None) -> ThreadInfo | None:
        info = self.reader.read_thread(pid)
        if info is None:
            return None
        info.container_id = self.resolve_container(pid, 0) or "host"
        if with_fds:
            info.fds = self.reader.read_fds(pid)
            if socks:
                for fd in info.fds.values():
                    if fd.type == "unknown" and fd.ino in socks:
                        fdops.fill_from_inventory(fd, socks[fd.ino], self._listen_ports)
        self.threads[pid] = info
        for tid in self.reader.list_tids(pid):
            if tid != pid:
                info.threads.add(tid)
                self.threads[tid] = info
        return info

    def _container_from_proc(self, pid: int, cgroup_id: int) -> str:
        """"" when the process is gone (unknown), else its container id or "host"."""
        text = self.reader.read_cgroup(pid)
        return "" if text is None else cgroup.container_id(text)

    # ------------------------------------------------------------ lookups
    def get(self, tid: int) -> ThreadInfo | None:
        return self.threads.get(tid)

    def parent(self, info: ThreadInfo) -> ThreadInfo | None:
        if info.ptid <= 0 or info.ptid == info.pid:
            return None
        parent = self.known_parent(info.ptid)
        if parent is None:
            now = time.monotonic()
            if now - self._missing.get(info.ptid, -1e9) < 1.0:
                return None
            parent = self._lazy(info.ptid)
            if parent is None:
                if len(self._missing) > 4096:
                    self._missing.clear()
                self._missing[info.ptid] = now
        return parent

    def known_parent(self, pid: int) -> ThreadInfo | None:
        """The process ``pid`` of the table or, for a record that names it as parent after
        its exit was applied, the exited one: the kernel read that ppid before the exit
        reparented the child (libsinsp, in the same race, has already moved the child to
        the reaper; either is a parent the process really had)."""
        info = self.threads.get(pid)
        if info is None:
            kept = self._exited.get(pid) or self._exited_before.get(pid)
            if kept is not None and self.prev_ts - kept[1] < EXITED_PARENT_NS:
                return kept[0]
        return info

    def ancestors(self, info: ThreadInfo, limit: int = 64) -> list[ThreadInfo]:
        """Parent first, up to init (or a cycle, or a parent the table cannot find)."""
        out: list[ThreadInfo] = []
        seen = {info.pid}
        cur = info
        while len(out) < limit:
            parent = self.parent(cur)
            if parent is None or parent.pid in seen:
                break
            seen.add(parent.pid)
            out.append(parent)
            cur = parent
        return out

    def _lazy(self, tid: int) -> ThreadInfo | None:
        """A process the table has not seen (started before the probe, or a missed fork)."""
        tgid = self.reader.tgid_of(tid)
        if tgid is None:
            return None
        existing = self.threads.get(tgid)
        if existing is None:
            self.lazy_loads += 1
            existing = self._load(tgid)
            if existing is None:
                return None
        if tid != tgid:
            existing.threads.add(tid)
            self.threads[tid] = existing
        return existing

    def from_record(self, rec: SyscallRecord) -> ThreadInfo:
        """The thread of a record, created from /proc or, when already gone, from the record."""
        info = self.threads.get(rec.pid)
        if info is None:
            info = self._lazy(rec.pid)
        if info is None:
            info = ThreadInfo(pid=rec.pid, tid=rec.pid, ptid=rec.ppid, vpid=rec.vpid, vtid=rec.vpid,
                              comm=rec.comm, exe=rec.comm, start_ts=rec.ts, exec_ts=rec.ts, partial=True)
            parent = self.known_parent(rec.ppid)
            if parent is not None:
                lifecycle.inherit(info, parent, share_fds=False)
                info.comm = rec.comm
            self.threads[rec.pid] = info
        if rec.tid != rec.pid:
            stale = self.threads.get(rec.tid)
            if stale is not None and stale is not info:
                stale.threads.discard(rec.tid)
            info.threads.add(rec.tid)
            self.threads[rec.tid] = info
        return info

    # ------------------------------------------------------------ updates
    def apply(self, rec: SyscallRecord) -> tuple[ThreadInfo, FdInfo | None]:
        """Update the table for ``rec`` (what must be visible when it is evaluated)
        and return the event's thread and fd."""
        if self.pending_fd_close is not None or self.pending_exit is not None:
            self.after()
        etype = rec.type
        if etype in CLONE_TYPES:
            info = lifecycle.on_clone(self, rec)
        else:
            info = self.threads.get(rec.tid)
            if info is None or info.pid != rec.pid:
                # unknown, or a thread id reused by another process since
                info = self.from_record(rec)
        # credentials and names as the kernel saw them for this very event
        info.uid = rec.euid
        info.gid = rec.egid
        loginuid = rec.loginuid
        info.loginuid = -1 if loginuid == _UNSET_LOGINUID or loginuid == -1 else loginuid
        info.comm = rec.comm
        ppid = rec.ppid
        if ppid > 0 and rec.pid == info.pid:
            info.ptid = ppid
        # fd handlers first: the hot types (open*, close, socket...); none of them is
        # an exec or an exit
        handler = _HANDLERS_GET(etype)
        if handler is not None:
            fd, closing = handler(self, info, rec)
            if closing is not None:
                self.pending_fd_close = (info, closing)
            return info, fd
        if etype in EXEC_TYPES:
            if rec.res == 0:
                lifecycle.on_exec(self, rec, info)
            return info, None
        if etype == "procexit":
            self.pending_exit = info
            self._pending_exit_tid = rec.tid
            self._pending_exit_ts = rec.ts
            return info, None
        return info, fdops.event_fd(info, rec)

    def after(self) -> None:
        """Apply the removals of the previous record (it has been evaluated)."""
        if self.pending_fd_close is not None:
            info, num = self.pending_fd_close
            info.fds.pop(num, None)
            self.pending_fd_close = None
        info = self.pending_exit
        if info is not None:
            self.remove(info, self._pending_exit_tid)
            if self._pending_exit_tid == info.pid:
                self._keep_exited(info, self._pending_exit_ts)
            self.pending_exit = None

    def _keep_exited(self, info: ThreadInfo, ts: int) -> None:
        exited = self._exited
        if len(exited) >= self.max_exited // 2 or ts - self._exited_since >= EXITED_PARENT_NS:
            # the current generation set aside whole, the one before it dropped
            self._exited_before = exited
            self._exited = exited = {}
            self._exited_since = ts
        if self.max_exited >= 2:
            exited[info.pid] = (info, ts)

    def remove(self, info: ThreadInfo, tid: int) -> None:
        if tid != info.pid:
            info.threads.discard(tid)
            if self.threads.get(tid) is info:
                del self.threads[tid]
            return
        for other in info.threads:
            if self.threads.get(other) is info:
                del self.threads[other]
        if self.threads.get(info.pid) is info:
            del self.threads[info.pid]

    def remove_threads(self, info: ThreadInfo) -> None:
        for other in info.threads:
            if self.threads.get(other) is info:
                del self.threads[other]
        info.threads.clear()

    # ------------------------------------------------------------ housekeeping
    def purge(self, force: bool = False) -> int:
        """Drop processes that no longer exist (their exit was not seen, e.g. on drops)."""
        now = time.monotonic()
        if not force and now - self._last_purge < self.purge_interval_s:
            return 0
        self._last_purge = now
        # exited processes out of the window (kept while no exit came to set them aside)
        self._exited, self._exited_before = (
            {pid: kept for pid, kept in gen.items() if self.prev_ts - kept[1] < EXITED_PARENT_NS}
            for gen in (self._exited, self._exited_before))
        dead = [tid for tid in self.threads if not os.path.exists(f"{self.paths.proc}/{tid}")]
        for tid in dead:
            info = self.threads.pop(tid, None)
            if info is not None:
                info.threads.discard(tid)
        return len(dead)

    def env(self, info: ThreadInfo) -> list[str]:
        if info.env is None:
            info.env = self.reader.read_env(info.pid) or []
        return info.env

    def __len__(self) -> int:
        return len({id(v) for v in self.threads.values()})

