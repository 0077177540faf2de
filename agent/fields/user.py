"""user.* and group.* fields of live syscall events: the ids come with every record,
the names from the passwd/group files of the process's root (host or container)."""

from __future__ import annotations

import time
from operator import attrgetter
from typing import Any

from falcopy.agent.fields.accessor import Factory, Simple
from falcopy.agent.fields.event import SyscallEvent

UNAVAILABLE: dict[str, str] = {}


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


FIELDS: dict[str, Simple] = {
    "user.uid": attrgetter("thread.uid"),
    "user.name": _user_field("name"),
    "user.homedir": _user_field("homedir"),
    "user.shell": _user_field("shell"),
    "user.loginuid": attrgetter("thread.loginuid"),
    "user.loginname": _loginname,
    "group.gid": attrgetter("thread.gid"),
    "group.name": _group_name,
}

WITH_ARG: dict[str, Factory] = {}

DIRECT: frozenset[str] = frozenset({"user.uid", "user.loginuid", "group.gid"})
