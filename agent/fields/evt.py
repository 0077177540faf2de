"""evt.*, syscall.type and fs.path.* fields of live syscall events."""

from __future__ import annotations

import socket
import time
from operator import attrgetter
from typing import Any

from falcopy.agent.fields import evtinfo
from falcopy.agent.fields.accessor import Factory, Simple, none
from falcopy.agent.fields.event import SyscallEvent
from falcopy.agent.fields.render import render_arg
from falcopy.agent.state.constants import errno_name

from falcopy.common import timefmt

UNAVAILABLE: dict[str, str] = {
    "evt.pluginname": "syscall events do not come from a plugin",
    "evt.plugininfo": "syscall events do not come from a plugin",
    "evt.asynctype": "the probe produces no asynchronous events",
    "evt.buffer": "the probe does not copy I/O buffers (read/write payloads)",
    "evt.around": "capture-file only (sysdig), not meaningful live",
}

_HOSTNAME = socket.gethostname()
_OPEN_TYPES = evtinfo.OPEN_TYPES
_CREAT_FLAGS = 0o1101  # O_CREAT|O_WRONLY|O_TRUNC


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
            return none
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
    etype = ev.type
    if etype not in _OPEN_TYPES:
        return None
    if etype == "creat":
        return _CREAT_FLAGS
    flags = ev.rec.args.get("flags")
    return flags if isinstance(flags, int) else 0


def _open_mode(read: bool) -> Simple:
    """evt.is_open_read/write: read on every open by the stable rules, so one call."""
    want = (0, 2) if read else (1, 2)

    def get(ev: SyscallEvent) -> Any:
        etype = ev.type
        if etype not in _OPEN_TYPES:
            return False
        if etype == "creat":
            return (_CREAT_FLAGS & 3) in want
        flags = ev.rec.args.get("flags")
        return ((flags if isinstance(flags, int) else 0) & 3) in want
    return get


def _is_open_create(ev: SyscallEvent) -> Any:
    flags = _open_flags(ev)
    return False if flags is None else bool(flags & 0o100)


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


def _io_dir(ev: SyscallEvent) -> Any:
    if ev.type in evtinfo.IO_READ:
        return "r"
    return "w" if ev.type in evtinfo.IO_WRITE else None


def _const(value: Any) -> Simple:
    return lambda ev: value


FIELDS: dict[str, Simple] = {
    "evt.num": attrgetter("num"),
    "evt.time": _evt_time,
    "evt.time.s": lambda ev: time.strftime("%H:%M:%S", _ts_struct(ev)),
    "evt.time.iso8601": _evt_iso,
    "evt.datetime": _evt_datetime,
    "evt.datetime.s": lambda ev: time.strftime("%Y-%m-%d %H:%M:%S", _ts_struct(ev)),
    "evt.rawtime": attrgetter("ts"),
    "evt.rawtime.s": lambda ev: ev.ts // 1_000_000_000,
    "evt.rawtime.ns": lambda ev: ev.ts % 1_000_000_000,
    "evt.reltime": lambda ev: ev.ts - ev.state.start_ts,
    "evt.reltime.s": lambda ev: (ev.ts - ev.state.start_ts) // 1_000_000_000,
    "evt.reltime.ns": lambda ev: (ev.ts - ev.state.start_ts) % 1_000_000_000,
    "evt.source": _const("syscall"),
    "evt.is_async": _const(False),
    "evt.hostname": _const(_HOSTNAME),
    # enter events are gone (Falco 0.42): latencies are 0, the direction always exit
    "evt.latency": _const(0),
    "evt.latency.s": _const(0),
    "evt.latency.ns": _const(0),
    "evt.latency.human": _const("0ns"),
    "evt.wait_latency": _const(0),
    "evt.deltatime": _deltatime,
    "evt.deltatime.s": lambda ev: _deltatime(ev) // 1_000_000_000,
    "evt.deltatime.ns": lambda ev: _deltatime(ev) % 1_000_000_000,
    "evt.outputtime": attrgetter("ts"),
    "evt.dir": _const("<"),
    "evt.type": attrgetter("type"),
    "syscall.type": lambda ev: None if ev.type == "procexit" else ev.type,
    "evt.category": evtinfo.category,
    "evt.cpu": attrgetter("rec.cpu"),
    "evt.args": _evt_args,
    "evt.info": _evt_args,
    "evt.buflen": lambda ev: ev.rec.args.get("size"),
    "evt.res": _evt_res,
    "evt.rawres": attrgetter("rec.res"),
    "evt.failed": lambda ev: ev.rec.res < 0,
    "evt.is_io": lambda ev: ev.type in evtinfo.IO_READ or ev.type in evtinfo.IO_WRITE,
    "evt.is_io_read": lambda ev: ev.type in evtinfo.IO_READ,
    "evt.is_io_write": lambda ev: ev.type in evtinfo.IO_WRITE,
    "evt.io_dir": _io_dir,
    "evt.is_wait": lambda ev: ev.type in evtinfo.WAIT,
    "evt.is_syslog": lambda ev: ev.type in evtinfo.IO_WRITE and ev.fd is not None
    and ev.fd.name == "/dev/log",
    "evt.count": _const(1),
    "evt.count.error": _count_error(None),
    "evt.count.error.file": _count_error("file"),
    "evt.count.error.net": _count_error("net"),
    "evt.count.error.memory": _count_error("memory"),
    "evt.count.error.other": _count_error("other"),
    "evt.count.exit": _const(1),
    "evt.abspath": evtinfo.abspath("name"),
    "evt.abspath.src": evtinfo.abspath("src"),
    "evt.abspath.dst": evtinfo.abspath("dst"),
    "evt.is_open_read": _open_mode(read=True),
    "evt.is_open_write": _open_mode(read=False),
    "evt.is_open_exec": evtinfo.is_open_exec,
    "evt.is_open_create": _is_open_create,
    "fs.path.name": evtinfo.fs_path("name", resolved=True),
    "fs.path.nameraw": evtinfo.fs_path("name", resolved=False),
    "fs.path.source": evtinfo.fs_path("src", resolved=True),
    "fs.path.sourceraw": evtinfo.fs_path("src", resolved=False),
    "fs.path.target": evtinfo.fs_path("dst", resolved=True),
    "fs.path.targetraw": evtinfo.fs_path("dst", resolved=False),
}

WITH_ARG: dict[str, Factory] = {
    "evt.arg": _evt_arg(raw=False),
    "evt.rawarg": _evt_arg(raw=True),
    "evt.type.is": lambda arg: (lambda ev: 1 if ev.type == arg else 0),
}

DIRECT: frozenset[str] = frozenset({
    "evt.num", "evt.rawtime", "evt.outputtime", "evt.type", "evt.cpu", "evt.rawres",
    "evt.is_open_read", "evt.is_open_write",
})
