"""The agent's ``syscall`` FieldSource: field values computed from a
:class:`~falcopy.agent.fields.event.SyscallEvent` (record + process state +
container metadata).

Every FieldDef of ``falcopy.engine.fields.syscall`` resolves to an accessor
here.  The few fields whose data the agent never has return None (rendered
``<NA>``); they are listed in :data:`ALWAYS_NONE` with the reason.

Size (~1,000 lines): the split into one module per field class is planned (issue 18)
and waits for the work in flight on this file to land.
"""

from __future__ import annotations

import logging
import posixpath
import socket
import time
from collections.abc import Callable
from operator import attrgetter
from typing import Any

from falcopy.agent.enrichment.dns import DnsNames
from falcopy.agent.fields import dnsnames, evtinfo
from falcopy.agent.fields.event import SyscallEvent
from falcopy.agent.fields.render import render_arg
from falcopy.agent.state.constants import FD_TYPECHARS, caps_to_str, errno_name
from falcopy.agent.state.model import FdInfo, ThreadInfo

from falcopy.common import timefmt
from falcopy.engine.fields.base import Accessor, FieldDef, FieldSource
from falcopy.engine.fields.syscall import SYSCALL_FIELDS

log = logging.getLogger(__name__)

Simple = Callable[[SyscallEvent], Any]
Factory = Callable[[str | None], Simple]

#: fields the agent cannot fill, and why (they are None on every event)
ALWAYS_NONE: dict[str, str] = {
    "evt.pluginname": "syscall events do not come from a plugin",
    "evt.plugininfo": "syscall events do not come from a plugin",
    "evt.asynctype": "the probe produces no asynchronous events",
    "evt.buffer": "the probe does not copy I/O buffers (read/write payloads)",
    "evt.around": "capture-file only (sysdig), not meaningful live",
    "thread.exectime": "needs scheduler switch events, which the probe does not capture",
    "thread.totexectime": "needs scheduler switch events, which the probe does not capture",
    "container.healthcheck": "the runtime clients do not report health checks",
    "container.liveness_probe": "the runtime clients do not report probes",
    "container.readiness_probe": "the runtime clients do not report probes",
    "container.cni.json": "CNI results are not read",
    "container.info": "plugin info events do not exist here",
    "k8s.pod.sandbox_id": "the kubelet /pods data carries no sandbox id",
    "k8s.pod.full_sandbox_id": "the kubelet /pods data carries no sandbox id",
    "k8s.pod.cni.json": "CNI results are not read",
    "k8smeta.pod.sandbox_id": "the kubelet /pods data carries no sandbox id",
}
#: k8s objects other than pods and namespaces (deprecated k8s.* aliases and the
#: k8smeta plugin's deployment/svc/rs/rc): no API watch for them in the agent
_K8S_UNKNOWN_KINDS = ("k8s.rc.", "k8s.svc.", "k8s.rs.", "k8s.deployment.", "k8smeta.deployment.",
                      "k8smeta.svc.", "k8smeta.rs.", "k8smeta.rc.")

_HOSTNAME = socket.gethostname()


def _none(ev: SyscallEvent) -> Any:
    return None


# ----------------------------------------------------------------- helpers
def _cmdline(t: ThreadInfo) -> str:
    return f"{t.comm} {' '.join(t.args)}" if t.args else t.comm


def _cwd(t: ThreadInfo) -> str:
    # libsinsp keeps the cwd with a trailing slash
    return t.cwd if t.cwd.endswith("/") else t.cwd + "/"


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
            return _none
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


# ----------------------------------------------------------------- fd helpers
def _fd(fn: Callable[[FdInfo], Any]) -> Simple:
    def get(ev: SyscallEvent) -> Any:
        fd = ev.fd
        return None if fd is None else fn(fd)
    return get


def _is_sock(fd: FdInfo) -> bool:
    return fd.type in ("ipv4", "ipv6")


def _cip(fd: FdInfo) -> Any:
    if not _is_sock(fd):
        return None
    return fd.laddr if fd.is_client else fd.raddr


def _sip(fd: FdInfo) -> Any:
    if not _is_sock(fd):
        return None
    return fd.raddr if fd.is_client else fd.laddr


def _cport(fd: FdInfo) -> Any:
    if not _is_sock(fd):
        return None
    return fd.lport if fd.is_client else fd.rport


def _sport(fd: FdInfo) -> Any:
    if not _is_sock(fd):
        return None
    return fd.rport if fd.is_client else fd.lport


def _sock(fn: Callable[[FdInfo], Any]) -> Callable[[FdInfo], Any]:
    return lambda fd: fn(fd) if _is_sock(fd) else None


#: fd.*ip.name: the address each one names (see falcopy.agent.fields.dnsnames)
ADDRESS_OF: dict[str, Callable[[FdInfo], Any]] = {
    "fd.cip.name": _cip,
    "fd.sip.name": _sip,
    "fd.lip.name": _sock(lambda fd: fd.laddr),
    "fd.rip.name": _sock(lambda fd: fd.raddr),
}


def _service(port_fn: Callable[[FdInfo], Any]) -> Callable[[FdInfo], Any]:
    def get(fd: FdInfo) -> Any:
        port = port_fn(fd)
        if not port:
            return None
        try:
            return socket.getservbyport(int(port), fd.l4proto or "tcp")
        except (OSError, OverflowError):
            return None
    return get


def _fd_num(ev: SyscallEvent) -> Any:
    fd = ev.fd
    if fd is not None:
        return fd.num
    raw = ev.rec.args.get("fd")
    return raw if isinstance(raw, int) else None


def _fd_directory(fd: FdInfo) -> Any:
    if fd.type == "directory":
        return fd.name
    if fd.type == "file":
        return posixpath.dirname(fd.name) or "/"
    return None


def _fd_filename(fd: FdInfo) -> Any:
    if fd.type != "file":
        return None
    return posixpath.basename(fd.name)


def _sockfamily(fd: FdInfo) -> Any:
    if fd.type in ("ipv4", "ipv6"):
        return "ip"
    if fd.type == "unix":
        return "unix"
    return None


def _fd_types(arg: str | None) -> Simple:
    def get(ev: SyscallEvent) -> Any:
        fds = ev.thread.fds
        if arg is not None:
            try:
                fd = fds.get(int(arg))
            except ValueError:
                return None
            return [fd.type] if fd is not None else None
        return sorted({fd.type for fd in fds.values()})
    return get


# ----------------------------------------------------------------- users
def _root(ev: SyscallEvent) -> str | None:
    if ev.thread.container_id == "host":
        return None
    return ev.state.reader.root_of(ev.thread.pid)


def _user(ev: SyscallEvent, uid: int) -> Any:
    key = ("user", uid)
    memo = ev.memo
    if key not in memo:
        memo[key] = ev.state.users.user(uid, ev.thread.container_id, _root(ev), time.monotonic())
    return memo[key]


def _user_field(attr: str) -> Simple:
    def get(ev: SyscallEvent) -> Any:
        entry = _user(ev, ev.thread.uid)
        return getattr(entry, attr) if entry is not None else None
    return get


def _loginname(ev: SyscallEvent) -> Any:
    uid = ev.thread.loginuid
    if uid is None or uid < 0:  # None: the container event without an init process
        return None
    entry = _user(ev, uid)
    return entry.name if entry is not None else None


def _group_name(ev: SyscallEvent) -> Any:
    entry = ev.state.users.group(ev.thread.gid, ev.thread.container_id, _root(ev), time.monotonic())
    return entry.name if entry is not None else None


# ----------------------------------------------------------------- container / k8s
def _c(attr: str) -> Simple:
    return lambda ev: getattr(ev.container(), attr)


def _container_id(ev: SyscallEvent) -> Any:
    return ev.thread.container_id or "host"


def _container_full_id(ev: SyscallEvent) -> Any:
    info = ev.container()
    return info.full_id or info.id


def _mount_str(m: Any) -> str:
    return f"{m.source}:{m.dest}:{m.mode}:{'true' if m.rw else 'false'}:{m.propagation}"


def _find_mount(ev: SyscallEvent, arg: str | None) -> Any:
    mounts = ev.container().mounts
    if arg is None:
        return None
    if arg.isdigit():
        idx = int(arg)
        return mounts[idx] if idx < len(mounts) else None
    for m in mounts:
        if m.dest == arg or posixpath.normpath(m.dest) == posixpath.normpath(arg):
            return m
    return None


def _mount_field(fn: Callable[[Any], Any]) -> Factory:
    def factory(arg: str | None) -> Simple:
        def get(ev: SyscallEvent) -> Any:
            m = _find_mount(ev, arg)
            return fn(m) if m is not None else None
        return get
    return factory


def _mounts(arg: str | None) -> Simple:
    return lambda ev: [_mount_str(m) for m in ev.container().mounts]


def _labels_text(labels: dict[str, str]) -> str | None:
    if not labels:
        return None
    return ", ".join(f"{k}:{v}" for k, v in labels.items())


def _label(attr: str) -> Factory:
    def factory(arg: str | None) -> Simple:
        def get(ev: SyscallEvent) -> Any:
            labels = getattr(ev.container(), attr)
            return labels.get(arg) if arg is not None else _labels_text(labels)
        return get
    return factory


def _labels_list(attr: str) -> Factory:
    def factory(arg: str | None) -> Simple:
        def get(ev: SyscallEvent) -> Any:
            labels = getattr(ev.container(), attr)
            return [f"{k}:{v}" for k, v in labels.items()]
        return get
    return factory


def _probe_command(attr: str) -> Simple:
    """proc.is_container_healthcheck & co: the process runs the container's health-check
    (or k8s liveness/readiness probe) command.  ContainerInfo carries the command as an
    optional ``healthcheck``/``liveness_probe``/``readiness_probe`` argv list when the
    enrichment layer knows it; without it the answer is false, as Falco's default."""
    def get(ev: SyscallEvent) -> bool:
        if ev.thread.container_id == "host":
            return False
        command = getattr(ev.container(), attr, None)
        if not command:
            return False
        t = ev.thread
        argv = [t.exe, *t.args]
        if argv == list(command):
            return True
        # docker's CMD-SHELL form runs `/bin/sh -c "<cmd>"`
        return len(command) == 1 and t.args[-1:] == [command[0]]
    return get


def _container_duration(ev: SyscallEvent) -> Any:
    start = ev.container().start_ts
    return ev.ts - start if start else None


def _k8s(attr: str) -> Simple:
    def get(ev: SyscallEvent) -> Any:
        if ev.thread.container_id == "host":
            return None
        return getattr(ev.container(), attr)
    return get


# ----------------------------------------------------------------- evt
def _ts_struct(ev: SyscallEvent) -> time.struct_time:
    memo = ev.memo
    st = memo.get("tm")
    if st is None:
        st = time.localtime(ev.ts // 1_000_000_000)
        memo["tm"] = st
    return st


def _evt_time(ev: SyscallEvent) -> str:
    return timefmt.with_fraction(timefmt.CLOCK, _ts_struct(ev), ev.ts)


def _evt_datetime(ev: SyscallEvent) -> str:
    return timefmt.with_fraction(timefmt.DATE_TIME, _ts_struct(ev), ev.ts)


def _evt_iso(ev: SyscallEvent) -> str:
    return timefmt.iso8601(ev.ts)


def _evt_arg(raw: bool) -> Factory:
    def factory(arg: str | None) -> Simple:
        if arg is None:
            return _none
        if arg.isdigit():
            idx = int(arg)

            def by_index(ev: SyscallEvent) -> Any:
                if idx == 0:
                    return ev.rec.res if raw else _res_text(ev)
                items = list(ev.rec.args.items())
                if idx > len(items):
                    return None
                name, value = items[idx - 1]
                return value if raw else render_arg(ev, name, value)
            return by_index
        if arg == "res":
            return (lambda ev: ev.rec.res) if raw else _res_text

        def by_name(ev: SyscallEvent) -> Any:
            value = ev.rec.args.get(arg)
            if value is None:
                return None
            return value if raw else render_arg(ev, arg, value)
        return by_name
    return factory


def _res_text(ev: SyscallEvent) -> str:
    res = ev.rec.res
    if res < 0:
        return errno_name(res)
    if ev.type in evtinfo.FD_RETURNING:
        return str(res)
    return "SUCCESS" if res == 0 else str(res)


def _evt_res(ev: SyscallEvent) -> str:
    res = ev.rec.res
    return "SUCCESS" if res >= 0 else errno_name(res)


def _evt_args(ev: SyscallEvent) -> str:
    parts = [f"res={_res_text(ev)}"]
    for name, value in ev.rec.args.items():
        parts.append(f"{name}={render_arg(ev, name, value)}")
    return " ".join(parts)


def _open_flags(ev: SyscallEvent) -> int | None:
    if ev.type not in evtinfo.OPEN_TYPES:
        return None
    flags = ev.rec.args.get("flags")
    if ev.type == "creat":
        return 0o1101  # O_CREAT|O_WRONLY|O_TRUNC
    return flags if isinstance(flags, int) else 0


def _is_open(check: Callable[[int], bool]) -> Simple:
    def get(ev: SyscallEvent) -> Any:
        flags = _open_flags(ev)
        return False if flags is None else check(flags)
    return get


def _count_error(kind: str | None) -> Simple:
    def get(ev: SyscallEvent) -> int:
        if ev.rec.res >= 0 or ev.type in evtinfo.FD_NEUTRAL_FAIL:
            return 0
        if kind is None:
            return 1
        return 1 if evtinfo.error_kind(ev) == kind else 0
    return get


def _deltatime(ev: SyscallEvent) -> int:
    prev = ev.state.prev_ts
    return ev.ts - prev if prev else 0


# ----------------------------------------------------------------- the table
def _simple_fields() -> dict[str, Simple]:
    th: Callable[[Callable[[ThreadInfo], Any]], Simple] = lambda fn: (lambda ev: fn(ev.thread))  # noqa: E731
    fdf = _fd
    vmsize, vmrss = _status_kb("VmSize"), _status_kb("VmRSS")
    f: dict[str, Simple] = {
        # evt
        "evt.num": lambda ev: ev.num,
        "evt.time": _evt_time,
        "evt.time.s": lambda ev: time.strftime("%H:%M:%S", _ts_struct(ev)),
        "evt.time.iso8601": _evt_iso,
        "evt.datetime": _evt_datetime,
        "evt.datetime.s": lambda ev: time.strftime("%Y-%m-%d %H:%M:%S", _ts_struct(ev)),
        "evt.rawtime": lambda ev: ev.ts,
        "evt.rawtime.s": lambda ev: ev.ts // 1_000_000_000,
        "evt.rawtime.ns": lambda ev: ev.ts % 1_000_000_000,
        "evt.reltime": lambda ev: ev.ts - ev.state.start_ts,
        "evt.reltime.s": lambda ev: (ev.ts - ev.state.start_ts) // 1_000_000_000,
        "evt.reltime.ns": lambda ev: (ev.ts - ev.state.start_ts) % 1_000_000_000,
        "evt.source": lambda ev: "syscall",
        "evt.is_async": lambda ev: False,
        "evt.hostname": lambda ev: _HOSTNAME,
        # enter events are gone (Falco 0.42): latencies are 0, the direction always exit
        "evt.latency": lambda ev: 0,
        "evt.latency.s": lambda ev: 0,
        "evt.latency.ns": lambda ev: 0,
        "evt.latency.human": lambda ev: "0ns",
        "evt.wait_latency": lambda ev: 0,
        "evt.deltatime": _deltatime,
        "evt.deltatime.s": lambda ev: _deltatime(ev) // 1_000_000_000,
        "evt.deltatime.ns": lambda ev: _deltatime(ev) % 1_000_000_000,
        "evt.outputtime": lambda ev: ev.ts,
        "evt.dir": lambda ev: "<",
        "evt.type": lambda ev: ev.type,
        "syscall.type": lambda ev: None if ev.type == "procexit" else ev.type,
        "evt.category": evtinfo.category,
        "evt.cpu": lambda ev: ev.rec.cpu,
        "evt.args": _evt_args,
        "evt.info": _evt_args,
        "evt.buflen": lambda ev: ev.rec.args.get("size"),
        "evt.res": _evt_res,
        "evt.rawres": lambda ev: ev.rec.res,
        "evt.failed": lambda ev: ev.rec.res < 0,
        "evt.is_io": lambda ev: ev.type in evtinfo.IO_READ or ev.type in evtinfo.IO_WRITE,
        "evt.is_io_read": lambda ev: ev.type in evtinfo.IO_READ,
        "evt.is_io_write": lambda ev: ev.type in evtinfo.IO_WRITE,
        "evt.io_dir": lambda ev: "r" if ev.type in evtinfo.IO_READ else "w" if ev.type in evtinfo.IO_WRITE
        else None,
        "evt.is_wait": lambda ev: ev.type in evtinfo.WAIT,
        "evt.is_syslog": lambda ev: ev.type in evtinfo.IO_WRITE and ev.fd is not None
        and ev.fd.name == "/dev/log",
        "evt.count": lambda ev: 1,
        "evt.count.error": _count_error(None),
        "evt.count.error.file": _count_error("file"),
        "evt.count.error.net": _count_error("net"),
        "evt.count.error.memory": _count_error("memory"),
        "evt.count.error.other": _count_error("other"),
        "evt.count.exit": lambda ev: 1,
        "evt.abspath": evtinfo.abspath("name"),
        "evt.abspath.src": evtinfo.abspath("src"),
        "evt.abspath.dst": evtinfo.abspath("dst"),
        "evt.is_open_read": _is_open(lambda fl: (fl & 3) in (0, 2)),
        "evt.is_open_write": _is_open(lambda fl: (fl & 3) in (1, 2)),
        "evt.is_open_exec": evtinfo.is_open_exec,
        "evt.is_open_create": _is_open(lambda fl: bool(fl & 0o100)),
        # proc
        "proc.exe": th(lambda t: t.exe),
        "proc.pexe": _parent_attr(lambda t: t.exe),
        "proc.exepath": th(lambda t: t.exepath),
        "proc.pexepath": _parent_attr(lambda t: t.exepath),
        "proc.name": th(lambda t: t.comm),
        "proc.pname": _parent_attr(lambda t: t.comm),
        "proc.args": th(lambda t: " ".join(t.args)),
        "proc.cmdline": th(_cmdline),
        "proc.cmdnargs": th(lambda t: len(t.args)),
        "proc.cmdlenargs": th(lambda t: sum(len(a) for a in t.args)),
        "proc.pcmdline": _parent_attr(_cmdline),
        "proc.exeline": th(lambda t: f"{t.exe} {' '.join(t.args)}"),
        "proc.cwd": th(_cwd),
        "proc.loginshellid": _loginshellid,
        "proc.tty": th(lambda t: t.tty),
        "proc.pid": th(lambda t: t.pid),
        "proc.ppid": th(lambda t: t.ptid),
        "proc.vpid": th(lambda t: t.vpid),
        "proc.pvpid": _parent_attr(lambda t: t.vpid),
        "proc.sid": th(lambda t: t.sid),
        "proc.sname": _group_leader("sid", "vpid", lambda t: t.comm),
        "proc.sid.exe": _group_leader("sid", "vpid", lambda t: t.exe),
        "proc.sid.exepath": _group_leader("sid", "vpid", lambda t: t.exepath),
        "proc.vpgid": th(lambda t: t.vpgid),
        "proc.vpgid.name": _group_leader("vpgid", "vpid", lambda t: t.comm),
        "proc.vpgid.exe": _group_leader("vpgid", "vpid", lambda t: t.exe),
        "proc.vpgid.exepath": _group_leader("vpgid", "vpid", lambda t: t.exepath),
        "proc.pgid": th(lambda t: t.pgid),
        "proc.pgid.name": _group_leader("pgid", "pid", lambda t: t.comm),
        "proc.pgid.exe": _group_leader("pgid", "pid", lambda t: t.exe),
        "proc.pgid.exepath": _group_leader("pgid", "pid", lambda t: t.exepath),
        "proc.duration": lambda ev: ev.ts - ev.thread.start_ts if ev.thread.start_ts else None,
        "proc.ppid.duration": lambda ev: (ev.ts - p.start_ts) if (p := ev.parent()) and p.start_ts else None,
        "proc.pid.ts": th(lambda t: t.start_ts or None),
        "proc.ppid.ts": _parent_attr(lambda t: t.start_ts or None),
        "proc.is_exe_writable": th(lambda t: t.exe_writable),
        "proc.is_exe_upper_layer": th(lambda t: t.exe_upper_layer),
        "proc.is_exe_lower_layer": th(lambda t: t.exe_lower_layer),
        "proc.is_exe_from_memfd": th(lambda t: t.exe_from_memfd),
        "proc.is_sid_leader": th(lambda t: t.sid == t.vpid),
        "proc.is_vpgid_leader": th(lambda t: t.vpgid == t.vpid),
        "proc.exe_ino": th(lambda t: t.exe_ino or None),
        "proc.exe_ino.ctime": th(lambda t: t.exe_ino_ctime or None),
        "proc.exe_ino.mtime": th(lambda t: t.exe_ino_mtime or None),
        "proc.exe_ino.ctime_duration_proc_start": th(
            lambda t: t.start_ts - t.exe_ino_ctime if t.exe_ino_ctime and t.start_ts else None),
        "proc.exe_ino.ctime_duration_pidns_start": lambda ev: (
            (s - ev.thread.exe_ino_ctime) if ev.thread.exe_ino_ctime and (s := _pidns_start(ev)) else None),
        "proc.pidns_init_start_ts": _pidns_start,
        "proc.fdopencount": th(lambda t: len(t.fds)),
        "proc.fdlimit": _fdlimit,
        "proc.fdusage": _fdusage,
        "proc.vmsize": vmsize,
        "proc.vmrss": vmrss,
        "proc.vmswap": _status_kb("VmSwap"),
        "proc.nthreads": th(lambda t: len(t.threads) + 1),
        "proc.nchilds": th(lambda t: len(t.threads)),
        "proc.stdin.type": _std(0, "type"),
        "proc.stdout.type": _std(1, "type"),
        "proc.stderr.type": _std(2, "type"),
        "proc.stdin.name": _std(0, "name"),
        "proc.stdout.name": _std(1, "name"),
        "proc.stderr.name": _std(2, "name"),
        # thread
        "thread.tid": lambda ev: ev.rec.tid,
        "thread.ismain": lambda ev: ev.rec.tid == ev.rec.pid,
        "thread.vtid": lambda ev: ev.rec.vtid,
        "thread.cgroups": lambda ev: " ".join(f"{s}={p}" for s, p in _thread_cgroups(ev)) or None,
        "thread.nametid": lambda ev: f"{ev.thread.comm}{ev.rec.tid}",
        "thread.cap_permitted": th(lambda t: caps_to_str(t.cap_permitted)),
        "thread.cap_inheritable": th(lambda t: caps_to_str(t.cap_inheritable)),
        "thread.cap_effective": th(lambda t: caps_to_str(t.cap_effective)),
        # libsinsp reports memory on the main thread only
        "thread.vmsize": lambda ev: vmsize(ev) if ev.rec.tid == ev.rec.pid else 0,
        "thread.vmrss": lambda ev: vmrss(ev) if ev.rec.tid == ev.rec.pid else 0,
        # fd
        "fd.num": _fd_num,
        "fd.type": fdf(lambda fd: fd.type),
        "fd.typechar": fdf(lambda fd: fd.typechar),
        "fd.name": fdf(lambda fd: fd.name),
        "fd.directory": fdf(_fd_directory),
        "fd.filename": fdf(_fd_filename),
        # filter-only "either end" fields answer with the server end (the service a
        # connection is about, remote for outbound, local for inbound)
        "fd.ip": fdf(_sip),
        "fd.cip": fdf(_cip),
        "fd.sip": fdf(_sip),
        "fd.lip": fdf(_sock(lambda fd: fd.laddr)),
        "fd.rip": fdf(_sock(lambda fd: fd.raddr)),
        "fd.port": fdf(_sport),
        "fd.cport": fdf(_cport),
        "fd.sport": fdf(_sport),
        "fd.lport": fdf(_sock(lambda fd: fd.lport)),
        "fd.rport": fdf(_sock(lambda fd: fd.rport)),
        "fd.l4proto": fdf(lambda fd: fd.l4proto if _is_sock(fd) else None),
        "fd.sockfamily": fdf(_sockfamily),
        "fd.is_server": fdf(lambda fd: (not fd.is_client) if fd.type in ("ipv4", "ipv6", "unix") else None),
        "fd.uid": lambda ev: f"{ev.rec.tid}{ev.fd.num}" if ev.fd is not None else None,
        "fd.containername": lambda ev: (f"{ev.container().name or ev.thread.container_id}:{ev.fd.name}"
                                        if ev.fd is not None else None),
        "fd.containerdirectory": lambda ev: (
            f"{ev.container().name or ev.thread.container_id}:{d}"
            if ev.fd is not None and (d := _fd_directory(ev.fd)) is not None else None),
        "fd.proto": fdf(_service(_sport)),
        "fd.cproto": fdf(_service(_cport)),
        "fd.sproto": fdf(_service(_sport)),
        "fd.lproto": fdf(_service(lambda fd: fd.lport)),
        "fd.rproto": fdf(_service(lambda fd: fd.rport)),
        "fd.net": fdf(_sip),
        "fd.cnet": fdf(_cip),
        "fd.snet": fdf(_sip),
        "fd.lnet": fdf(_sock(lambda fd: fd.laddr)),
        "fd.rnet": fdf(_sock(lambda fd: fd.raddr)),
        "fd.connected": fdf(lambda fd: fd.connected),
        "fd.name_changed": fdf(lambda fd: fd.name_changed),
        "fd.dev": fdf(lambda fd: fd.dev),
        "fd.dev.major": fdf(lambda fd: (fd.dev & 0xFFF00) >> 8),
        "fd.dev.minor": fdf(lambda fd: (fd.dev & 0xFF) | ((fd.dev >> 12) & 0xFFF00)),
        "fd.ino": fdf(lambda fd: fd.ino),
        "fd.nameraw": fdf(lambda fd: fd.nameraw if fd.nameraw is not None else fd.name),
        "fs.path.name": evtinfo.fs_path("name", resolved=True),
        "fs.path.nameraw": evtinfo.fs_path("name", resolved=False),
        "fs.path.source": evtinfo.fs_path("src", resolved=True),
        "fs.path.sourceraw": evtinfo.fs_path("src", resolved=False),
        "fs.path.target": evtinfo.fs_path("dst", resolved=True),
        "fs.path.targetraw": evtinfo.fs_path("dst", resolved=False),
        # user / group
        "user.uid": th(lambda t: t.uid),
        "user.name": _user_field("name"),
        "user.homedir": _user_field("homedir"),
        "user.shell": _user_field("shell"),
        "user.loginuid": th(lambda t: t.loginuid),
        "user.loginname": _loginname,
        "group.gid": th(lambda t: t.gid),
        "group.name": _group_name,
        # container
        "container.id": _container_id,
        "container.full_id": _container_full_id,
        "container.name": _c("name"),
        "container.image": _c("image"),
        "container.image.id": _c("image_id"),
        "container.type": lambda ev: ev.container().type or None,
        "container.privileged": _c("privileged"),
        "container.image.repository": _c("image_repository"),
        "container.image.tag": _c("image_tag"),
        "container.image.digest": _c("image_digest"),
        "container.start_ts": _c("start_ts"),
        "container.duration": _container_duration,
        "container.ip": _c("ip"),
        "container.host_pid": _c("host_pid"),
        "container.host_network": _c("host_network"),
        "container.host_ipc": _c("host_ipc"),
        "container.labels": lambda ev: _labels_text(ev.container().labels),
        "proc.is_container_healthcheck": _probe_command("healthcheck"),
        "proc.is_container_liveness_probe": _probe_command("liveness_probe"),
        "proc.is_container_readiness_probe": _probe_command("readiness_probe"),
        # k8s
        "k8s.pod.name": _k8s("k8s_pod_name"),
        "k8s.pod.uid": _k8s("k8s_pod_uid"),
        "k8s.pod.id": _k8s("k8s_pod_uid"),
        "k8s.pod.labels": lambda ev: _labels_text(ev.container().k8s_pod_labels),
        "k8s.pod.ip": _k8s("k8s_pod_ip"),
        "k8s.ns.name": _k8s("k8s_ns_name"),
        "k8smeta.pod.name": _k8s("k8s_pod_name"),
        "k8smeta.pod.uid": _k8s("k8s_pod_uid"),
        "k8smeta.pod.ip": _k8s("k8s_pod_ip"),
        "k8smeta.ns.name": _k8s("k8s_ns_name"),
    }
    for name in ALWAYS_NONE:
        f[name] = _none
    # without a resolver (validate, replay): no name is known
    for name in ADDRESS_OF:
        f[name] = _none
    return f


def _arg_fields() -> dict[str, Factory]:
    return {
        "evt.arg": _evt_arg(raw=False),
        "evt.rawarg": _evt_arg(raw=True),
        "evt.type.is": lambda arg: (lambda ev: 1 if ev.type == arg else 0),
        "proc.aexe": _ancestor(lambda t: t.exe),
        "proc.aexepath": _ancestor(lambda t: t.exepath),
        "proc.aname": _ancestor(lambda t: t.comm),
        "proc.acmdline": _ancestor(_cmdline),
        "proc.apid": _ancestor(lambda t: t.pid),
        "proc.env": _proc_env,
        "proc.aenv": _proc_aenv,
        "thread.cgroup": _thread_cgroup,
        "fd.types": _fd_types,
        "container.mounts": _mounts,
        "container.mount": _mount_field(_mount_str),
        "container.mount.source": _mount_field(lambda m: m.source),
        "container.mount.dest": _mount_field(lambda m: m.dest),
        "container.mount.mode": _mount_field(lambda m: m.mode),
        "container.mount.rdwr": _mount_field(lambda m: "true" if m.rw else "false"),
        "container.mount.propagation": _mount_field(lambda m: m.propagation),
        "container.label": _label("labels"),
        "k8s.pod.label": _label("k8s_pod_labels"),
        "k8smeta.pod.label": _label("k8s_pod_labels"),
        "k8smeta.pod.labels": _labels_list("k8s_pod_labels"),
    }


SIMPLE: dict[str, Simple] = _simple_fields()


# ----------------------------------------------------------------- hot-path variants
# The fields the rules read on every open/exec: one C-level attrgetter or one Python
# call each, instead of a wrapper calling a lambda.  Values are the same as above.
def _fd_name(ev: SyscallEvent) -> Any:
    fd = ev.fd
    return None if fd is None else fd.name


def _fd_type(ev: SyscallEvent) -> Any:
    fd = ev.fd
    return None if fd is None else fd.type


def _fd_typechar(ev: SyscallEvent) -> Any:
    fd = ev.fd
    return None if fd is None else _TYPECHARS.get(fd.type, "o")


def _fd_nameraw(ev: SyscallEvent) -> Any:
    fd = ev.fd
    if fd is None:
        return None
    raw = fd.nameraw
    return raw if raw is not None else fd.name


def _fd_directory_fast(ev: SyscallEvent) -> Any:
    fd = ev.fd
    if fd is None:
        return None
    kind = fd.type
    if kind == "directory":
        return fd.name
    if kind != "file":
        return None
    # posixpath.dirname inlined
    name = fd.name
    head = name[:name.rfind("/") + 1]
    if head and head != "/" * len(head):
        head = head.rstrip("/")
    return head or "/"


def _open_mode_check(read: bool) -> Simple:
    want = (0, 2) if read else (1, 2)

    def get(ev: SyscallEvent) -> Any:
        etype = ev.type
        if etype not in _OPEN_TYPES:
            return False
        if etype == "creat":
            return (0o1101 & 3) in want
        flags = ev.rec.args.get("flags")
        return ((flags if isinstance(flags, int) else 0) & 3) in want
    return get


_TYPECHARS = FD_TYPECHARS
_OPEN_TYPES = evtinfo.OPEN_TYPES

_FAST: dict[str, Simple] = {
    "evt.num": attrgetter("num"),
    "evt.rawtime": attrgetter("ts"),
    "evt.outputtime": attrgetter("ts"),
    "evt.type": attrgetter("type"),
    "evt.cpu": attrgetter("rec.cpu"),
    "evt.rawres": attrgetter("rec.res"),
    "evt.is_open_read": _open_mode_check(read=True),
    "evt.is_open_write": _open_mode_check(read=False),
    "proc.exe": attrgetter("thread.exe"),
    "proc.exepath": attrgetter("thread.exepath"),
    "proc.name": attrgetter("thread.comm"),
    "proc.tty": attrgetter("thread.tty"),
    "proc.pid": attrgetter("thread.pid"),
    "proc.ppid": attrgetter("thread.ptid"),
    "proc.vpid": attrgetter("thread.vpid"),
    "proc.sid": attrgetter("thread.sid"),
    "proc.vpgid": attrgetter("thread.vpgid"),
    "proc.pgid": attrgetter("thread.pgid"),
    "proc.is_exe_writable": attrgetter("thread.exe_writable"),
    "proc.is_exe_upper_layer": attrgetter("thread.exe_upper_layer"),
    "proc.is_exe_lower_layer": attrgetter("thread.exe_lower_layer"),
    "proc.is_exe_from_memfd": attrgetter("thread.exe_from_memfd"),
    "thread.tid": attrgetter("rec.tid"),
    "thread.vtid": attrgetter("rec.vtid"),
    "user.uid": attrgetter("thread.uid"),
    "user.loginuid": attrgetter("thread.loginuid"),
    "group.gid": attrgetter("thread.gid"),
    "fd.num": _fd_num,
    "fd.name": _fd_name,
    "fd.type": _fd_type,
    "fd.typechar": _fd_typechar,
    "fd.nameraw": _fd_nameraw,
    "fd.directory": _fd_directory_fast,
    "proc.cwd": lambda ev: _cwd(ev.thread),
    "container.id": _container_id,
}
SIMPLE.update(_FAST)
#: fields whose accessor costs less than the engine's per-event memo lookup
DIRECT: frozenset[str] = frozenset(_FAST)
WITH_ARG: dict[str, Factory] = _arg_fields()


def _unknown_k8s_kind(name: str) -> bool:
    return name.startswith(_K8S_UNKNOWN_KINDS) or (name.startswith("k8s.ns.") and name != "k8s.ns.name") \
        or (name.startswith("k8smeta.ns.") and name != "k8smeta.ns.name")


class AgentSyscallSource(FieldSource):
    """Field accessors over live events (:class:`SyscallEvent`).

    Replay and tests with DictEvents use the engine's default syscall source;
    this one is built for the hot path (no per-access type dispatch)."""

    def __init__(self, fields: dict[str, FieldDef] | None = None, *, dns: DnsNames | None = None) -> None:
        super().__init__("syscall", fields if fields is not None else SYSCALL_FIELDS)
        #: the names the rules compare fd.*ip.name with, and their addresses (None: no resolver)
        self.dns = dns

    def name_matcher(self, fdef: FieldDef, arg: str | None) -> dnsnames.Matcher | None:
        """Engine hook: fd.*ip.name compared with names tests the address's membership."""
        address_of = ADDRESS_OF.get(fdef.name)
        if address_of is None or self.dns is None:
            return None
        return dnsnames.name_matcher(self.dns, address_of)

    def memoize(self, fdef: FieldDef, arg: str | None) -> bool:
        """Engine hook: False for plain attribute reads, cheaper than the memo."""
        return not (arg is None and fdef.name in DIRECT)

    def accessor(self, fdef: FieldDef, arg: str | None) -> Accessor:
        address_of = ADDRESS_OF.get(fdef.name)
        if address_of is not None and self.dns is not None:
            return dnsnames.name_accessor(self.dns, address_of)
        try:
            return self.live_accessor(fdef, arg)
        except KeyError:
            # a field defined after this module was written: rules still load, the value
            # is missing (tests/state checks that every defined field has an accessor)
            log.warning("syscall field %s has no live accessor; it reads as <NA>", fdef.name)
            return _none

    @staticmethod
    def live_accessor(fdef: FieldDef, arg: str | None) -> Simple:
        name = fdef.name
        factory = WITH_ARG.get(name)
        if factory is not None:
            return factory(arg)
        simple = SIMPLE.get(name)
        if simple is not None:
            return simple
        if _unknown_k8s_kind(name):
            return _none
        raise KeyError(f"no accessor for syscall field {name!r}")


def covered_fields(fields: dict[str, FieldDef] | None = None) -> tuple[list[str], list[str]]:
    """(fields with an accessor, fields without) -- used by the coverage test."""
    ok: list[str] = []
    missing: list[str] = []
    for name, fdef in (fields or SYSCALL_FIELDS).items():
        try:
            AgentSyscallSource.live_accessor(fdef, None if fdef.arg.value in ("none", "index?", "key?")
                                             else "x")
            ok.append(name)
        except KeyError:
            missing.append(name)
    return ok, missing
