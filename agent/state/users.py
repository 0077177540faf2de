"""User and group names: the host's /etc/passwd and /etc/group, and each
container's own (read through /proc/PID/root), cached and re-read when the
file changes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

from falcopy.agent.events.text import decode


@dataclass(frozen=True, slots=True)
class UserEntry:
    uid: int
    name: str
    homedir: str
    shell: str


@dataclass(frozen=True, slots=True)
class GroupEntry:
    gid: int
    name: str


class _Db:
    __slots__ = ("groups", "key", "users")

    def __init__(self, key: tuple[int, int, int, int], users: dict[int, UserEntry],
                 groups: dict[int, GroupEntry]) -> None:
        self.key = key
        self.users = users
        self.groups = groups


def _stat_key(passwd: str, group: str) -> tuple[int, int, int, int]:
    keys: list[int] = []
    for path in (passwd, group):
        try:
            st = os.stat(path)
            keys += [st.st_ino, st.st_mtime_ns]
        except OSError:
            keys += [0, 0]
    return (keys[0], keys[1], keys[2], keys[3])


def _entries(path: str, min_fields: int) -> Iterator[tuple[int, list[bytes]]]:
    """(numeric id, fields) of each line of a passwd(5)/group(5) file; the id is
    the third field in both. An unreadable file has no entries."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(4 << 20)
    except OSError:
        return
    for line in raw.split(b"\n"):
        parts = line.split(b":")
        if len(parts) < min_fields or line.startswith(b"#"):
            continue
        try:
            num = int(parts[2])
        except ValueError:
            continue
        yield num, parts


def _parse_passwd(path: str) -> dict[int, UserEntry]:
    out: dict[int, UserEntry] = {}
    for uid, parts in _entries(path, 7):
        out.setdefault(uid, UserEntry(uid, decode(parts[0]), decode(parts[5]), decode(parts[6])))
    return out


def _parse_group(path: str) -> dict[int, GroupEntry]:
    out: dict[int, GroupEntry] = {}
    for gid, parts in _entries(path, 3):
        out.setdefault(gid, GroupEntry(gid, decode(parts[0])))
    return out


class UserDirectory:
    """uid/gid -> names, per root filesystem ("host" or a container id)."""

    #: seconds between checks of a cached database's files
    CHECK_INTERVAL = 5.0
    #: cached databases (containers) kept at most
    MAX_SCOPES = 1024

    def __init__(self, host_etc: str = "/etc") -> None:
        self.host_etc = host_etc
        self._dbs: dict[str, _Db] = {}
        self._checked: dict[str, float] = {}

    def _db(self, scope: str, etc: str, now: float) -> _Db:
        db = self._dbs.get(scope)
        if db is not None and now - self._checked.get(scope, 0.0) < self.CHECK_INTERVAL:
            return db
        passwd, group = f"{etc}/passwd", f"{etc}/group"
        key = _stat_key(passwd, group)
        self._checked[scope] = now
        if db is None or db.key != key:
            db = _Db(key, _parse_passwd(passwd), _parse_group(group))
            # an unreadable container root (its process already gone) must not pin an empty db
            if scope == "host" or key != (0, 0, 0, 0):
                if len(self._dbs) > self.MAX_SCOPES:
                    # bounded memory on a node that has run many containers
                    host = self._dbs.get("host")
                    self._dbs.clear()
                    self._checked.clear()
                    if host is not None:
                        self._dbs["host"] = host
                self._dbs[scope] = db
        return db

    def _scope(self, container_id: str, proc_root: str | None) -> tuple[str, str]:
        if container_id == "host" or not proc_root:
            return "host", self.host_etc
        return container_id, f"{proc_root}/etc"

    def user(self, uid: int, container_id: str = "host", proc_root: str | None = None,
             now: float = 0.0) -> UserEntry | None:
        scope, etc = self._scope(container_id, proc_root)
        entry = self._db(scope, etc, now).users.get(uid)
        if entry is None and scope != "host" and uid == 0:
            # a container without /etc/passwd still runs as root
            return UserEntry(0, "root", "/root", "")
        return entry

    def group(self, gid: int, container_id: str = "host", proc_root: str | None = None,
              now: float = 0.0) -> GroupEntry | None:
        scope, etc = self._scope(container_id, proc_root)
        return self._db(scope, etc, now).groups.get(gid)

    def forget(self, container_id: str) -> None:
        self._dbs.pop(container_id, None)
        self._checked.pop(container_id, None)
