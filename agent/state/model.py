"""What the agent knows about a process and its file descriptors.

One :class:`ThreadInfo` per thread group (process); every thread id of the
group maps to the same object in the table, because what rules read (exe,
args, cwd, fd table, credentials) is shared by the threads of a process.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from falcopy.agent.state.constants import FD_TYPECHARS


@dataclass(slots=True)
class FdInfo:
    #: fd.type: "file", "directory", "ipv4", "ipv6", "unix", "pipe", "memfd", ...
    type: str
    #: fd.name (path, "cip:cport->sip:sport", "memfd:x", "pipe:[123]", unix path...)
    name: str
    num: int = -1
    #: open flags (Linux O_* bits) for files
    flags: int = 0
    ino: int = 0
    dev: int = 0
    # sockets
    l4proto: str | None = None
    family: int | None = None
    #: addresses in the socket's own terms: local (this end) and remote (the peer)
    laddr: str | None = None
    lport: int | None = None
    raddr: str | None = None
    rport: int | None = None
    #: True when this end initiated the connection (connect), False when it accepted it
    is_client: bool | None = None
    connected: bool = False
    listening: bool = False
    #: fd.name_changed: the name was rewritten by a later event (connect on a bound socket...)
    name_changed: bool = False
    #: fd.nameraw: the path as passed to the system call, before resolution
    nameraw: str | None = None

    @property
    def typechar(self) -> str:
        return FD_TYPECHARS.get(self.type, "o")

    def copy(self, num: int) -> FdInfo:
        # dup* share the open file description: same name, type and socket tuple
        dup = FdInfo(
            type=self.type, name=self.name, num=num, flags=self.flags, ino=self.ino, dev=self.dev,
            l4proto=self.l4proto, family=self.family, laddr=self.laddr, lport=self.lport,
            raddr=self.raddr, rport=self.rport, is_client=self.is_client, connected=self.connected,
            listening=self.listening, nameraw=self.nameraw,
        )
        return dup


@dataclass(slots=True, eq=False)
class ThreadInfo:
    pid: int
    tid: int
    ptid: int = 0
    vpid: int = 0
    vtid: int = 0
    #: session id and process group as seen in the process's own pid namespace (Falco's
    #: proc.sid / proc.vpgid); pgid in the host namespace
    sid: int = 0
    pgid: int = 0
    vpgid: int = 0
    #: proc.name: the kernel's comm (16 chars max), as Falco shows it
    comm: str = ""
    #: proc.exe: argv[0] as passed to execve
    exe: str = ""
    #: proc.exepath: the resolved executable path (/proc/PID/exe)
    exepath: str = ""
    args: list[str] = field(default_factory=list)
    cwd: str = "/"
    root: str = "/"
    tty: int = 0
    uid: int = -1
    gid: int = -1
    loginuid: int = -1
    cap_inheritable: int | None = None
    cap_permitted: int | None = None
    cap_effective: int | None = None
    #: environment strings "K=V"; None until read (lazily, on first proc.env access)
    env: list[str] | None = None
    #: process start time (clone), ns since the epoch
    start_ts: int = 0
    #: last execve time, ns since the epoch
    exec_ts: int = 0
    exe_ino: int = 0
    exe_ino_ctime: int = 0
    exe_ino_mtime: int = 0
    exe_from_memfd: bool = False
    exe_upper_layer: bool = False
    exe_writable: bool = False
    exe_lower_layer: bool = False
    container_id: str = "host"
    #: start time of the pid namespace's init, to compute proc.pidns_init_start_ts
    pidns_init_start_ts: int = 0
    fds: dict[int, FdInfo] = field(default_factory=dict)
    #: thread ids of this group other than the leader (to drop them with the group)
    threads: set[int] = field(default_factory=set)
    #: created from a record without /proc data (process vanished first): values are partial
    partial: bool = False
    #: read from /proc at start-up (not seen being created)
    from_proc: bool = False
