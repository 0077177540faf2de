"""Process lifecycle records in the process table: clone/fork/vfork (a new process or
thread from its parent) and execve/execveat (a new image).  The fd-level records are in
:mod:`falcopy.agent.state.fdops`; exits and lookups stay in the table itself."""

from __future__ import annotations

from typing import TYPE_CHECKING

from falcopy.agent.events.record import SyscallRecord
from falcopy.agent.events.text import decode, split_nul
from falcopy.agent.state import cgroup, fdops
from falcopy.agent.state.coerce import as_int
from falcopy.agent.state.model import ThreadInfo
from falcopy.agent.state.overlay import exe_layer

if TYPE_CHECKING:
    from falcopy.agent.state.table import ProcessTable

CLONE_TYPES = frozenset({"clone", "clone3", "fork", "vfork"})
EXEC_TYPES = frozenset({"execve", "execveat"})
CLONE_THREAD = 0x00010000
CLONE_FILES = 0x00000400


def on_clone(table: ProcessTable, rec: SyscallRecord) -> ThreadInfo:
    """Clone/fork/vfork: the parent side adds the child (or a thread), the child side
    creates the child from its parent when the parent side was not seen first."""
    flags = as_int(rec.args.get("flags"))
    if rec.res > 0:
        # parent side: res is the child's tid (host pid namespace)
        parent = table.threads.get(rec.tid) or table.from_record(rec)
        child_tid = rec.res
        if child_tid not in table.threads:
            if flags & CLONE_THREAD:
                parent.threads.add(child_tid)
                table.threads[child_tid] = parent
            else:
                _new_child(table, parent, child_tid, rec.ts, flags, rec)
        return parent
    if rec.res == 0:
        # child side: the record's tid is the child
        known = table.threads.get(rec.tid)
        # an entry read from /proc after this fork already is this child (/proc start
        # times have btime's one-second precision); any other entry is a reused pid
        if known is not None and (rec.tid != rec.pid or (
                known.from_proc and known.start_ts >= rec.ts - 2_000_000_000)):
            return known
        if known is not None:
            # a pid reused after an exit we did not see: the old entry is stale
            table.remove(known, rec.tid)
        if rec.tid != rec.pid:
            group = table.threads.get(rec.pid) or table.from_record(rec)
            group.threads.add(rec.tid)
            table.threads[rec.tid] = group
            return group
        parent = table.threads.get(rec.ppid)
        if parent is None:
            return table.from_record(rec)
        child = _new_child(table, parent, rec.pid, rec.ts, flags, rec)
        child.vpid = rec.vpid
        child.vtid = rec.vtid
        return child
    return table.threads.get(rec.tid) or table.from_record(rec)

def _new_child(table: ProcessTable, parent: ThreadInfo, pid: int, ts: int, flags: int,
               rec: SyscallRecord) -> ThreadInfo:
    child = ThreadInfo(pid=pid, tid=pid, ptid=parent.pid, start_ts=ts, exec_ts=ts)
    inherit(child, parent, share_fds=bool(flags & CLONE_FILES))
    child.vpid = child.vtid = as_int(rec.args.get("vpid")) or pid
    table.threads[pid] = child
    if len(table.threads) > table.max_processes:
        table.purge(force=True)
    return child

def on_exec(table: ProcessTable, rec: SyscallRecord, info: ThreadInfo) -> None:
    """A successful execve/execveat: the new image, argv, env, credentials and container."""
    args = rec.args
    if rec.tid != info.pid:
        # the exec'ing thread becomes the group leader; the other threads are gone
        table.remove_threads(info)
    info.exec_ts = rec.ts
    argv = _argv(args.get("args"))
    exe = args.get("exe")
    from_kernel = exe is not None or argv is not None
    if not from_kernel:
        # a probe that could not read the new image's argv: /proc still can, if alive
        cmdline = table.reader.read_cmdline(info.pid) or []
        exe = cmdline[0] if cmdline else None
        argv = cmdline[1:]
    info.exe = _text(exe) if exe is not None else rec.comm
    info.args = argv or []
    env = args.get("env")
    info.env = _argv(env) if env is not None else None
    cwd = args.get("cwd")
    if isinstance(cwd, str) and cwd:
        info.cwd = cwd
    for key in ("pgid", "sid", "vpgid"):
        value = args.get(key)
        if isinstance(value, int) and value > 0:
            setattr(info, key, value)
    if isinstance(args.get("tty"), int):
        info.tty = args["tty"]
    for key in ("cap_inheritable", "cap_permitted", "cap_effective", "exe_ino", "exe_ino_ctime",
                "exe_ino_mtime"):
        value = args.get(key)
        if isinstance(value, int):
            setattr(info, key, value)
    trusted = args.get("trusted_exepath")
    alive = True
    if trusted:
        # as the kernel's d_path shows it (Falco's trusted_exepath): an unlinked file,
        # a memfd among them, keeps its " (deleted)" mark
        info.exepath = _text(trusted)
    else:
        alive = table.reader.refresh_exec(info)
        if not alive:
            target = _text(args.get("filename", args.get("pathname", info.exe)))
            info.exepath = fdops.resolve(info, target, as_int(args.get("dirfd"), fdops.AT_FDCWD))
    memfd_flag = args.get("exe_from_memfd")
    info.exe_from_memfd = (bool(memfd_flag) if memfd_flag is not None
                           else info.exepath.startswith("/memfd:"))
    info.exe_writable = bool(args.get("exe_writable", False))
    _exec_container(table, info, rec, alive)
    upper = args.get("exe_upper_layer")
    if upper is not None:
        info.exe_upper_layer = bool(upper)
        info.exe_lower_layer = bool(args.get("exe_lower_layer", False))
    elif alive and info.container_id != "host":
        info.exe_upper_layer, info.exe_lower_layer = exe_layer(
            table.paths, info.pid, info.exepath.removesuffix(" (deleted)"))
    else:
        info.exe_upper_layer = info.exe_lower_layer = False
    # fds opened with O_CLOEXEC are gone after a successful exec
    for num in [n for n, fd in info.fds.items() if fd.flags & fdops.O_CLOEXEC]:
        del info.fds[num]

def _exec_container(table: ProcessTable, info: ThreadInfo, rec: SyscallRecord, alive: bool) -> None:
    """Container of the new image: from the record's cgroup data when the probe sends
    it, else from /proc while the process is alive; a process already gone keeps the
    container it inherited at fork (its cgroup cannot have changed since)."""
    cgroups = rec.args.get("cgroups", rec.args.get("cgroup"))
    if isinstance(cgroups, list) and cgroups:
        # the same few cgroup sets recur on every exec: match each set once
        key: tuple[object, ...] | None = tuple(cgroups)
        try:
            found = table.cgroup_ids.get(key)  # type: ignore[arg-type]
        except TypeError:  # odd, unhashable entries: no caching
            key, found = None, None
        if found is None:
            # the probe sends Falco's "controller=/path" entries: shaped as
            # /proc/PID/cgroup lines they go through the same matcher
            entries = [_text(e).partition("=") for e in cgroups]
            lines = [f"0:{ctrl}:{path}" for ctrl, sep, path in entries if sep]
            found = cgroup.container_id("\n".join(lines)) if lines else ""
            if key is not None:
                if len(table.cgroup_ids) >= 4096:
                    table.cgroup_ids.clear()
                table.cgroup_ids[key] = found
        if found:
            info.container_id = found
            return
    if isinstance(cgroups, str | bytes) and cgroups:
        text = _text(cgroups)
        # a bare path or leaf name is matched like one /proc/PID/cgroup line
        info.container_id = cgroup.container_id(text if ":" in text else f"0::/{text.lstrip('/')}")
        return
    if not alive:
        return
    found = table.resolve_container(info.pid, rec.cgroup_id)
    if found:
        info.container_id = found


def inherit(child: ThreadInfo, parent: ThreadInfo, share_fds: bool) -> None:
    child.comm = parent.comm
    child.exe = parent.exe
    child.exepath = parent.exepath
    child.args = parent.args
    child.cwd = parent.cwd
    child.root = parent.root
    child.tty = parent.tty
    child.sid = parent.sid
    child.pgid = parent.pgid
    child.vpgid = parent.vpgid
    child.uid = parent.uid
    child.gid = parent.gid
    child.loginuid = parent.loginuid
    child.cap_inheritable = parent.cap_inheritable
    child.cap_permitted = parent.cap_permitted
    child.cap_effective = parent.cap_effective
    child.env = parent.env
    child.exe_ino = parent.exe_ino
    child.exe_ino_ctime = parent.exe_ino_ctime
    child.exe_ino_mtime = parent.exe_ino_mtime
    child.exe_from_memfd = parent.exe_from_memfd
    child.exe_upper_layer = parent.exe_upper_layer
    child.exe_lower_layer = parent.exe_lower_layer
    child.exe_writable = parent.exe_writable
    child.container_id = parent.container_id
    child.pidns_init_start_ts = parent.pidns_init_start_ts
    # a forked child gets a copy of the table whose entries point at the same
    # open file descriptions; CLONE_FILES shares the table itself
    child.fds = parent.fds if share_fds else dict(parent.fds)


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return decode(value)
    return str(value)


def _argv(value: object) -> list[str] | None:
    """argv/env from the record: the decoder's list of text; odd items are made text."""
    if value.__class__ is list and all(v.__class__ is str for v in value):
        return value  # the decoder's lists: already text (shared, never mutated in place)
    if isinstance(value, list | tuple):
        return [_text(v) for v in value]
    if isinstance(value, bytes):
        return split_nul(value)
    return None
