"""The fd objects the hot handlers build (open_fd, socket_fd, connected_fd, accepted_fd):
compiled, fdops makes them by storing FdInfo's slots in C instead of calling the
dataclass's __init__.  Each shape they build must be an FdInfo equal, field by field, to
the one ``FdInfo(...)`` makes from the same values, behave as one (repr, copy, garbage
collection) and hold its values' references exactly once.  `make test` runs this file
compiled and with FALCOPY_NO_ACCEL=1."""

from __future__ import annotations

import dataclasses
import gc
import socket
import sys
from typing import Any

import pytest
from falcopy.agent import accel
from falcopy.agent.state import fdops
from falcopy.agent.state.model import FdInfo, ThreadInfo

O_DIRECTORY = 0o200000
O_CLOEXEC = 0o2000000


def _thread() -> ThreadInfo:
    return ThreadInfo(pid=4242, tid=4242, cwd="/srv/app")


def _same(got: Any, want: FdInfo) -> None:
    assert type(got) is FdInfo
    for f in dataclasses.fields(FdInfo):
        a, b = getattr(got, f.name), getattr(want, f.name)
        assert a == b and type(a) is type(b), (f.name, a, b)
    assert got == want
    assert repr(got) == repr(want)
    assert gc.is_tracked(got)
    # dup* copy every field but the number and name_changed
    dup = got.copy(99)
    assert dup.num == 99
    assert dataclasses.replace(dup, num=got.num) == dataclasses.replace(got, name_changed=False)


def test_the_compiled_module_builds_by_slot_stores() -> None:
    # which path this run proves: the slot stores when the extension is imported
    assert fdops.slot_factory() is (accel.is_compiled(fdops) and not accel.disabled())
    if accel.disabled():
        assert not accel.is_compiled(fdops)


@pytest.mark.parametrize(("name", "flags", "res", "want_type", "want_name", "want_num"), [
    ("/etc/hostname", 0, 5, "file", "/etc/hostname", 5),
    ("/etc/", O_DIRECTORY, 6, "directory", "/etc", 6),
    ("conf/../app.yaml", 0o1101, 7, "file", "/srv/app/app.yaml", 7),
    ("/missing", 0, -2, "file", "/missing", -1),
])
def test_open_fd(name: str, flags: int, res: int, want_type: str, want_name: str, want_num: int) -> None:
    info = _thread()
    fd = fdops.open_fd(info, name, -100, None, flags, 2049, 131, res)
    _same(fd, FdInfo(type=want_type, name=want_name, num=want_num, flags=flags, ino=131, dev=2049,
                     nameraw=name))
    assert (info.fds.get(res) is fd) if res >= 0 else not info.fds


@pytest.mark.parametrize(("family", "stype", "proto", "want_type", "want_l4", "want_flags"), [
    (socket.AF_INET, socket.SOCK_STREAM, 0, "ipv4", "tcp", 0),
    (socket.AF_INET6, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC, 0, "ipv6", "udp", O_CLOEXEC),
    (socket.AF_INET, socket.SOCK_RAW, 1, "ipv4", "icmp", 0),
    (socket.AF_UNIX, socket.SOCK_STREAM, 0, "unix", None, 0),
    (socket.AF_PACKET, socket.SOCK_RAW, 768, "unknown", None, 0),
])
def test_socket_fd(family: int, stype: int, proto: int, want_type: str, want_l4: str | None,
                   want_flags: int) -> None:
    info = _thread()
    # the kernel's plain ints, as the fast path passes them
    fd = fdops.socket_fd(info, 9, int(family), int(stype), proto)
    _same(fd, FdInfo(type=want_type, name="", num=9, flags=want_flags, l4proto=want_l4, family=int(family)))
    assert info.fds[9] is fd
    assert fdops.socket_fd(info, -24, int(family), int(stype), proto) is None


def test_connected_fd_new_and_known() -> None:
    info = _thread()
    # a socket made before the agent watched: built by the factory, then named
    fd = fdops.connected_fd(info, 3, 0, socket.AF_INET, "10.0.0.9", 443, None, "10.0.0.1", 40000)
    _same(fd, FdInfo(type="ipv4", name="10.0.0.1:40000->10.0.0.9:443", num=3, l4proto="tcp",
                     family=socket.AF_INET, laddr="10.0.0.1", lport=40000, raddr="10.0.0.9", rport=443,
                     is_client=True, connected=True))
    # a known socket (socket_fd's) connecting without a local end yet: EINPROGRESS
    fdops.socket_fd(info, 4, socket.AF_INET6, socket.SOCK_STREAM, 0)
    fd = fdops.connected_fd(info, 4, -115, socket.AF_INET6, "::1", 8080, "tcp", None, 0)
    _same(fd, FdInfo(type="ipv6", name=":0->::1:8080", num=4, l4proto="tcp", family=socket.AF_INET6,
                     raddr="::1", rport=8080, is_client=True, connected=False))
    assert fdops.connected_fd(info, -1, 0, socket.AF_INET, "10.0.0.9", 443, None, None, 0) is None


def test_accepted_fd() -> None:
    info = _thread()
    listener = fdops.socket_fd(info, 3, socket.AF_INET, socket.SOCK_STREAM, 0)
    fd = fdops.accepted_fd(info, listener, 11, socket.AF_INET, None, "192.0.2.7", 51000, "192.0.2.1", 22)
    _same(fd, FdInfo(type="ipv4", name="192.0.2.7:51000->192.0.2.1:22", num=11, l4proto="tcp",
                     family=socket.AF_INET, laddr="192.0.2.1", lport=22, raddr="192.0.2.7", rport=51000,
                     is_client=False, connected=True))
    assert info.fds[11] is fd


def test_each_value_is_held_once_and_released() -> None:
    info = _thread()
    name = "".join(["/var/lib/falcopy-factory-", str(id(info))])  # a string of this test only
    base = sys.getrefcount(name)
    fds = [fdops.open_fd(info, name, -100, None, 0, 1, 2, 5) for _ in range(1000)]
    # each fd holds the name twice (name and nameraw: an absolute path in normal form)
    assert sys.getrefcount(name) - base == 2 * len(fds)
    del fds
    info.fds.clear()
    gc.collect()
    assert sys.getrefcount(name) == base
