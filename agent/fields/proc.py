"""proc.* and thread.* fields of live syscall events: the event's process (its
:class:`~falcopy.agent.state.model.ThreadInfo`), its ancestors and the /proc data read
on demand (memory, limits, cgroups, environment)."""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import Any

from falcopy.agent.fields.accessor import Factory, Simple, none
from falcopy.agent.fields.event import SyscallEvent
from falcopy.agent.state.constants import caps_to_str
from falcopy.agent.state.model import ThreadInfo

UNAVAILABLE: dict[str, str] = {
    "thread.exectime": "needs scheduler switch events, which the probe does not capture",
    "thread.totexectime": "needs scheduler switch events, which the probe does not capture",
}


def _th(fn: Callable[[ThreadInfo], Any]) -> Simple:
    return lambda ev: fn(ev.thread)


def _cmdline(t: ThreadInfo) -> str:
    return f"{t.comm} {' '.join(t.args)}" if t.args else t.comm


def _cwd(ev: SyscallEvent) -> str:
    # libsinsp keeps the cwd with a trailing slash
    cwd = ev.thread.cwd
    return cwd if cwd.endswith("/") else cwd + "/"


def _parent_attr(fn: Callable[[ThreadInfo], Any]) -> Simple:
    def get(ev: SyscallEvent) -> Any:
        p = ev.parent()
        return None if p is None else fn(p)
    return get


def _ancestor(fn: Callable[[ThreadInfo], Any]) -> Factory:
    """proc.aname[N]-style fields: N=0 is the process itself, no index means all ancestors."""
    def factory(arg: str | None) -> Simple:
        if arg is None:
            def all_(ev: SyscallEvent) -> Any:
                return [fn(a) for a in ev.ancestors()]
            return all_
        try:
            n = int(arg)
        except ValueError:
            return none
        if n == 0:
            return lambda ev: fn(ev.thread)

        def nth(ev: SyscallEvent) -> Any:
            chain = ev.ancestors()
            return fn(chain[n - 1]) if 0 < n <= len(chain) else None
        return nth
    return factory


def _env_of(ev: SyscallEvent, t: ThreadInfo) -> list[str]:
    return ev.state.env(t)


def _env_lookup(env: list[str], key: str) -> str | None:
    prefix = key + "="
    for item in env:
        if item.startswith(prefix):
            return item[len(prefix):]
    return None


def _proc_env(arg: str | None) -> Simple:
    if arg is None:
        return lambda ev: " ".join(_env_of(ev, ev.thread))
    return lambda ev: _env_lookup(_env_of(ev, ev.thread), arg)


def _proc_aenv(arg: str | None) -> Simple:
    """proc.aenv[KEY]: the first ancestor (parent first) defining KEY; proc.aenv[N]: the
    whole environment of the Nth ancestor."""
    def get(ev: SyscallEvent) -> Any:
        if arg is None:
            return None
        if arg.isdigit():
            n = int(arg)
            if n == 0:
                return " ".join(_env_of(ev, ev.thread))
            chain = ev.ancestors()
            return " ".join(_env_of(ev, chain[n - 1])) if n <= len(chain) else None
        for t in ev.ancestors():
            value = _env_lookup(_env_of(ev, t), arg)
            if value is not None:
                return value
        return None
    return get


def _status_kb(key: str) -> Simple:
    def get(ev: SyscallEvent) -> Any:
        memo = ev.memo
        status = memo.get("status")
        if status is None:
            from falcopy.agent.state.procfs import parse_status
            try:
                with open(f"{ev.state.paths.proc}/{ev.thread.pid}/status", "rb") as fh:
                    status = parse_status(fh.read(16384))
            except OSError:
                status = {}
            memo["status"] = status
        value = status.get(key)
        return int(value[0]) if value else None
    return get


def _fdlimit(ev: SyscallEvent) -> Any:
    limit = ev.rec.args.get("fdlimit") if ev.type in ("execve", "execveat") else None
    if isinstance(limit, int):
        return limit
    try:
        with open(f"{ev.state.paths.proc}/{ev.thread.pid}/limits", "rb") as fh:
            for line in fh.read(8192).split(b"\n"):
                if line.startswith(b"Max open files"):
                    soft = line.split()[3]
                    return -1 if soft == b"unlimited" else int(soft)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _fdusage(ev: SyscallEvent) -> Any:
    limit = _fdlimit(ev)
    if not limit or limit < 0:
        return None
    return len(ev.thread.fds) * 100 // limit


def _group_leader(attr: str, own_id: str, fn: Callable[[ThreadInfo], Any]) -> Simple:
    """proc.sname & co: the process whose pid is the session (group) id, else the eldest
    ancestor sharing it (libsinsp's definition)."""
    def get(ev: SyscallEvent) -> Any:
        t = ev.thread
        value = getattr(t, attr)
        found = t if getattr(t, own_id) == value else None
        if found is None:
            for a in ev.ancestors():
                if getattr(a, attr) != value:
                    break
                found = a
                if getattr(a, own_id) == value:
                    break
        return fn(found) if found is not None else None
    return get


def _loginshellid(ev: SyscallEvent) -> Any:
    # libsinsp: the oldest process of the lineage whose name ends in "sh"
    found = None
    for t in [ev.thread, *ev.ancestors()]:
        if t.comm and len(t.comm) >= 2 and t.comm.endswith("sh"):
            found = t.pid
    return found


def _pidns_start(ev: SyscallEvent) -> Any:
    t = ev.thread
    if t.pidns_init_start_ts:
        return t.pidns_init_start_ts
    if t.vpid == t.pid:
        init = ev.state.get(1)
        return init.start_ts if init is not None else None
    # walk up to the namespace's init (vpid 1)
    for a in ev.ancestors():
        if a.vpid == 1:
            return a.start_ts
    return None


def _std(num: int, what: str) -> Simple:
    def get(ev: SyscallEvent) -> Any:
        fd = ev.thread.fds.get(num)
        if fd is None:
            return None
        return fd.type if what == "type" else fd.name
    return get


def _thread_cgroups(ev: SyscallEvent) -> list[tuple[str, str]]:
    memo = ev.memo
    groups = memo.get("cgroups")
    if groups is None:
        text = ev.state.reader.read_cgroup(ev.thread.pid) or ""
        groups = []
        for line in text.splitlines():
            parts = line.split(":", 2)
            if len(parts) == 3:
                for subsys in (parts[1] or "unified").split(","):
                    groups.append((subsys.removeprefix("name="), parts[2]))
        memo["cgroups"] = groups
    return groups


def _thread_cgroup(arg: str | None) -> Simple:
    def get(ev: SyscallEvent) -> Any:
        for subsys, path in _thread_cgroups(ev):
            if subsys == arg:
                return path
        return None
    return get


def _exe_ctime_since_pidns(ev: SyscallEvent) -> Any:
    ctime = ev.thread.exe_ino_ctime
    if not ctime:
        return None
    start = _pidns_start(ev)
    return start - ctime if start else None


_vmsize, _vmrss = _status_kb("VmSize"), _status_kb("VmRSS")

FIELDS: dict[str, Simple] = {
    "proc.exe": attrgetter("thread.exe"),
    "proc.pexe": _parent_attr(lambda t: t.exe),
    "proc.exepath": attrgetter("thread.exepath"),
    "proc.pexepath": _parent_attr(lambda t: t.exepath),
    "proc.name": attrgetter("thread.comm"),
    "proc.pname": _parent_attr(lambda t: t.comm),
    "proc.args": _th(lambda t: " ".join(t.args)),
    "proc.cmdline": _th(_cmdline),
    "proc.cmdnargs": _th(lambda t: len(t.args)),
    "proc.cmdlenargs": _th(lambda t: sum(len(a) for a in t.args)),
    "proc.pcmdline": _parent_attr(_cmdline),
    "proc.exeline": _th(lambda t: f"{t.exe} {' '.join(t.args)}"),
    "proc.cwd": _cwd,
    "proc.loginshellid": _loginshellid,
    "proc.tty": attrgetter("thread.tty"),
    "proc.pid": attrgetter("thread.pid"),
    "proc.ppid": attrgetter("thread.ptid"),
    "proc.vpid": attrgetter("thread.vpid"),
    "proc.pvpid": _parent_attr(lambda t: t.vpid),
    "proc.sid": attrgetter("thread.sid"),
    "proc.sname": _group_leader("sid", "vpid", lambda t: t.comm),
    "proc.sid.exe": _group_leader("sid", "vpid", lambda t: t.exe),
    "proc.sid.exepath": _group_leader("sid", "vpid", lambda t: t.exepath),
    "proc.vpgid": attrgetter("thread.vpgid"),
    "proc.vpgid.name": _group_leader("vpgid", "vpid", lambda t: t.comm),
    "proc.vpgid.exe": _group_leader("vpgid", "vpid", lambda t: t.exe),
    "proc.vpgid.exepath": _group_leader("vpgid", "vpid", lambda t: t.exepath),
    "proc.pgid": attrgetter("thread.pgid"),
    "proc.pgid.name": _group_leader("pgid", "pid", lambda t: t.comm),
    "proc.pgid.exe": _group_leader("pgid", "pid", lambda t: t.exe),
    "proc.pgid.exepath": _group_leader("pgid", "pid", lambda t: t.exepath),
    "proc.duration": lambda ev: ev.ts - ev.thread.start_ts if ev.thread.start_ts else None,
    "proc.ppid.duration": lambda ev: (ev.ts - p.start_ts) if (p := ev.parent()) and p.start_ts else None,
    "proc.pid.ts": _th(lambda t: t.start_ts or None),
    "proc.ppid.ts": _parent_attr(lambda t: t.start_ts or None),
    "proc.is_exe_writable": attrgetter("thread.exe_writable"),
    "proc.is_exe_upper_layer": attrgetter("thread.exe_upper_layer"),
    "proc.is_exe_lower_layer": attrgetter("thread.exe_lower_layer"),
    "proc.is_exe_from_memfd": attrgetter("thread.exe_from_memfd"),
    "proc.is_sid_leader": _th(lambda t: t.sid == t.vpid),
    "proc.is_vpgid_leader": _th(lambda t: t.vpgid == t.vpid),
    "proc.exe_ino": _th(lambda t: t.exe_ino or None),
    "proc.exe_ino.ctime": _th(lambda t: t.exe_ino_ctime or None),
    "proc.exe_ino.mtime": _th(lambda t: t.exe_ino_mtime or None),
    "proc.exe_ino.ctime_duration_proc_start": _th(
        lambda t: t.start_ts - t.exe_ino_ctime if t.exe_ino_ctime and t.start_ts else None),
    "proc.exe_ino.ctime_duration_pidns_start": _exe_ctime_since_pidns,
    "proc.pidns_init_start_ts": _pidns_start,
    "proc.fdopencount": _th(lambda t: len(t.fds)),
    "proc.fdlimit": _fdlimit,
    "proc.fdusage": _fdusage,
    "proc.vmsize": _vmsize,
    "proc.vmrss": _vmrss,
    "proc.vmswap": _status_kb("VmSwap"),
    "proc.nthreads": _th(lambda t: len(t.threads) + 1),
    "proc.nchilds": _th(lambda t: len(t.threads)),
    "proc.stdin.type": _std(0, "type"),
    "proc.stdout.type": _std(1, "type"),
    "proc.stderr.type": _std(2, "type"),
    "proc.stdin.name": _std(0, "name"),
    "proc.stdout.name": _std(1, "name"),
    "proc.stderr.name": _std(2, "name"),
    # thread
    "thread.tid": attrgetter("rec.tid"),
    "thread.ismain": lambda ev: ev.rec.tid == ev.rec.pid,
    "thread.vtid": attrgetter("rec.vtid"),
    "thread.cgroups": lambda ev: " ".join(f"{s}={p}" for s, p in _thread_cgroups(ev)) or None,
    "thread.nametid": lambda ev: f"{ev.thread.comm}{ev.rec.tid}",
    "thread.cap_permitted": _th(lambda t: caps_to_str(t.cap_permitted)),
    "thread.cap_inheritable": _th(lambda t: caps_to_str(t.cap_inheritable)),
    "thread.cap_effective": _th(lambda t: caps_to_str(t.cap_effective)),
    # libsinsp reports memory on the main thread only
    "thread.vmsize": lambda ev: _vmsize(ev) if ev.rec.tid == ev.rec.pid else 0,
    "thread.vmrss": lambda ev: _vmrss(ev) if ev.rec.tid == ev.rec.pid else 0,
}

WITH_ARG: dict[str, Factory] = {
    "proc.aexe": _ancestor(lambda t: t.exe),
    "proc.aexepath": _ancestor(lambda t: t.exepath),
    "proc.aname": _ancestor(lambda t: t.comm),
    "proc.acmdline": _ancestor(_cmdline),
    "proc.apid": _ancestor(lambda t: t.pid),
    "proc.env": _proc_env,
    "proc.aenv": _proc_aenv,
    "thread.cgroup": _thread_cgroup,
}

DIRECT: frozenset[str] = frozenset({
    "proc.exe", "proc.exepath", "proc.name", "proc.tty", "proc.pid", "proc.ppid", "proc.vpid",
    "proc.sid", "proc.vpgid", "proc.pgid", "proc.is_exe_writable", "proc.is_exe_upper_layer",
    "proc.is_exe_lower_layer", "proc.is_exe_from_memfd", "thread.tid", "thread.vtid", "proc.cwd",
})
