"""The record the kernel capture hands to the rest of the agent.

One :class:`SyscallRecord` per captured system call (or process lifecycle
event), decoded from the ring buffer by ``falcopy.agent.kernel``.  Argument
names follow Falco's event table (libs ``driver/event_table.c``), so that
``evt.arg.<name>`` and ``evt.rawarg.<name>`` resolve the way Falco users expect.
The exact argument keys of each event type are listed in ``EVENT_ARGS`` below
(maintained with the probe).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class SyscallRecord:
    #: Falco event name: "openat", "execve", "connect", "clone", "procexit", ...
    type: str
    #: wall clock, nanoseconds since the epoch (converted from the kernel's boot clock)
    ts: int
    cpu: int
    #: thread id and thread-group id in the host (initial) pid namespace
    tid: int
    pid: int
    #: tgid of the real parent
    ppid: int
    #: tid / tgid as seen inside the process's own pid namespace
    vtid: int
    vpid: int
    uid: int
    gid: int
    euid: int
    egid: int
    #: audit login uid; 0xFFFFFFFF (-1) when unset, as Falco's user.loginuid shows -1
    loginuid: int
    comm: str
    #: cgroup v2 id of the task's default cgroup (0 when unknown)
    cgroup_id: int
    #: return value of the system call (negative errno on failure); 0 for lifecycle events
    res: int
    #: decoded arguments keyed by Falco's argument names (see EVENT_ARGS)
    args: dict[str, Any] = field(default_factory=dict)
    #: some string/path/list argument was cut to the probe's limit (4096 bytes per path,
    #: 4096 bytes of argv/env) or a key had no room left in the record
    truncated: bool = False


#: Argument keys carried by each event type, with their Python types.
#: Consumers must tolerate a missing key (value unreadable in the kernel).
#:
#: Conventions (see docs/kernel.md for the full list):
#: - the return value is ``SyscallRecord.res`` (the new fd for open*/socket/accept*/dup*...),
#:   never repeated in ``args``;
#: - integers are the raw Linux values (open flags are ``O_*`` bits, not Falco's PPM_O_*;
#:   caps are kernel capability bitmasks; ``dev`` is ``new_encode_dev`` like Falco's);
#: - strings are decoded from bytes with ``surrogateescape`` (``os.fsencode`` gives the bytes back);
#: - path arguments are the strings the process passed; when such a path is relative the probe
#:   adds the absolute directory it is resolved against (``dirpath``, ``olddirpath``,
#:   ``newdirpath``, ``linkdirpath``: the dirfd's path, or the cwd for AT_FDCWD), read in the
#:   kernel relative to the process's root; ``cwd`` (chdir/fchdir/execve) is the absolute cwd after
#:   the call;
#: - ``addr`` is the user sockaddr decoded as ``{"family": "inet"|"inet6"|"unix"|<int>,
#:   "ip": str, "port": int}`` or ``{"family": "unix", "path": str}`` (abstract: ``"@name"``);
#: - ``tuple`` is read from the kernel socket, in Falco's client->server order:
#:   ``{"family", "l4proto": "tcp"|"udp"|"raw"|..., "sip", "sport", "dip", "dport"}`` for inet,
#:   ``{"family": "unix", "path"}`` for unix sockets; on receives (accept*, recvfrom, recvmsg) the
#:   peer is the source (Falco's inbound order), on sends the destination;
#: - sendto/sendmsg ``addr``: the destination the caller named (sendmsg: ``msg_name``), recvfrom/
#:   recvmsg ``addr``: the source the kernel reported; on an unconnected (datagram) socket the
#:   tuple's peer end is completed from it, as Falco builds the tuple from the user sockaddr;
#: - execve/execveat: ``exe`` is argv[0] (Falco's proc.exe), ``args`` argv[1:], ``env`` a list of
#:   ``K=V``, ``trusted_exepath`` the path of the executable file (proc.exepath; memfd files show
#:   as ``/memfd:<name> (deleted)``), ``filename``/``pathname`` only on failure (the caller's memory is
#:   gone after a successful exec); the caller's parent is ``SyscallRecord.ppid``, loginuid/uids in
#:   the record; ``exe_flags`` has Falco's PPM_EXE_* bits mirrored by the four booleans;
#:   ``cgroups`` lists ``<controller>=<path>`` for every cgroup controller (Falco's format; controllers
#:   on the unified v2 hierarchy show the v2 path), read in the kernel so even a process that exits at
#:   once carries its container's cgroup;
#: - clone/clone3/fork/vfork are the child's side (``res`` == 0, ``tid``/``pid`` the child,
#:   ``ppid`` its parent); ``flags`` are the clone flags;
#: - procexit: ``status`` is the raw wait status, ``ret``/``sig``/``core`` decoded from it.
EVENT_ARGS: dict[str, dict[str, str]] = {
    "open": {"flags": "int", "mode": "int", "dev": "int", "ino": "int", "name": "str", "dirpath": "str"},
    "openat": {
        "dirfd": "int", "flags": "int", "mode": "int", "dev": "int", "ino": "int", "name": "str",
        "dirpath": "str",
    },
    "openat2": {
        "dirfd": "int", "flags": "int", "mode": "int", "resolve": "int", "dev": "int", "ino": "int",
        "name": "str", "dirpath": "str",
    },
    "creat": {"mode": "int", "dev": "int", "ino": "int", "name": "str", "dirpath": "str"},
    "close": {"fd": "int"},
    "dup": {"oldfd": "int"},
    "dup2": {"oldfd": "int", "newfd": "int"},
    "dup3": {"oldfd": "int", "newfd": "int", "flags": "int"},
    "fcntl": {"fd": "int", "cmd": "int"},
    "rename": {"oldpath": "str", "newpath": "str", "olddirpath": "str", "newdirpath": "str"},
    "renameat": {
        "olddirfd": "int", "newdirfd": "int", "oldpath": "str", "newpath": "str", "olddirpath": "str",
        "newdirpath": "str",
    },
    "renameat2": {
        "olddirfd": "int", "newdirfd": "int", "flags": "int", "oldpath": "str", "newpath": "str",
        "olddirpath": "str", "newdirpath": "str",
    },
    "unlink": {"path": "str", "dirpath": "str"},
    "unlinkat": {"dirfd": "int", "flags": "int", "name": "str", "dirpath": "str"},
    "mkdir": {"mode": "int", "path": "str", "dirpath": "str"},
    "mkdirat": {"dirfd": "int", "mode": "int", "path": "str", "dirpath": "str"},
    "rmdir": {"path": "str", "dirpath": "str"},
    "link": {"oldpath": "str", "newpath": "str", "olddirpath": "str", "newdirpath": "str"},
    "linkat": {
        "olddir": "int", "newdir": "int", "flags": "int", "oldpath": "str", "newpath": "str",
        "olddirpath": "str", "newdirpath": "str",
    },
    "symlink": {"target": "str", "linkpath": "str", "linkdirpath": "str"},
    "symlinkat": {"linkdirfd": "int", "target": "str", "linkpath": "str", "linkdirpath": "str"},
    "chmod": {"mode": "int", "filename": "str", "dirpath": "str"},
    "fchmod": {"fd": "int", "mode": "int"},
    "fchmodat": {"dirfd": "int", "mode": "int", "filename": "str", "dirpath": "str"},
    "chown": {"uid": "int", "gid": "int", "path": "str", "dirpath": "str"},
    "lchown": {"uid": "int", "gid": "int", "path": "str", "dirpath": "str"},
    "fchown": {"fd": "int", "uid": "int", "gid": "int"},
    "fchownat": {
        "dirfd": "int", "uid": "int", "gid": "int", "flags": "int", "pathname": "str", "dirpath": "str",
    },
    "chdir": {"path": "str", "cwd": "str"},
    "fchdir": {"fd": "int", "cwd": "str"},
    "chroot": {"path": "str", "dirpath": "str"},
    "mount": {"flags": "int", "dev": "str", "dir": "str", "type": "str"},
    "umount2": {"flags": "int", "name": "str"},
    "memfd_create": {"flags": "int", "name": "str"},
    "pipe": {"fd1": "int", "fd2": "int"},
    "pipe2": {"fd1": "int", "fd2": "int", "flags": "int"},
    "socket": {"domain": "int", "type": "int", "proto": "int"},
    "socketpair": {"domain": "int", "type": "int", "proto": "int", "fd1": "int", "fd2": "int"},
    "connect": {"fd": "int", "addr": "dict", "tuple": "dict"},
    "accept": {"fd": "int", "tuple": "dict"},
    "accept4": {"fd": "int", "flags": "int", "tuple": "dict"},
    "bind": {"fd": "int", "addr": "dict"},
    "listen": {"fd": "int", "backlog": "int"},
    "sendto": {"fd": "int", "size": "int", "addr": "dict", "tuple": "dict"},
    "sendmsg": {"fd": "int", "addr": "dict", "tuple": "dict"},
    "recvfrom": {"fd": "int", "size": "int", "addr": "dict", "tuple": "dict"},
    "recvmsg": {"fd": "int", "addr": "dict", "tuple": "dict"},
    "setuid": {"uid": "int"},
    "setgid": {"gid": "int"},
    "setreuid": {"ruid": "int", "euid": "int"},
    "setregid": {"rgid": "int", "egid": "int"},
    "setresuid": {"ruid": "int", "euid": "int", "suid": "int"},
    "setresgid": {"rgid": "int", "egid": "int", "sgid": "int"},
    "capset": {"cap_inheritable": "int", "cap_permitted": "int", "cap_effective": "int"},
    "setsid": {},
    "setpgid": {"pid": "int", "pgid": "int"},
    "ptrace": {"request": "int", "pid": "int", "addr": "int", "data": "int"},
    "init_module": {"length": "int", "uargs": "str"},
    "finit_module": {"fd": "int", "flags": "int", "uargs": "str"},
    "bpf": {"cmd": "int"},
    "unshare": {"flags": "int"},
    "setns": {"fd": "int", "nstype": "int"},
    "userfaultfd": {"flags": "int"},
    "prctl": {"option": "int", "arg2_int": "int", "arg2_str": "str"},
    "kill": {"pid": "int", "sig": "int"},
    "tkill": {"tid": "int", "sig": "int"},
    "tgkill": {"pid": "int", "tid": "int", "sig": "int"},
    "execve": {
        "pgid": "int", "vpgid": "int", "sid": "int", "tty": "int", "fdlimit": "int",
        "cap_inheritable": "int", "cap_permitted": "int", "cap_effective": "int", "exe_ino": "int",
        "exe_ino_ctime": "int", "exe_ino_mtime": "int", "exe_flags": "int", "filename": "str",
        "env": "list[str]", "cwd": "str", "trusted_exepath": "str", "cgroups": "list[str]", "exe": "str",
        "args": "list[str]", "exe_writable": "bool", "exe_upper_layer": "bool", "exe_lower_layer": "bool",
        "exe_from_memfd": "bool",
    },
    "execveat": {
        "pgid": "int", "vpgid": "int", "sid": "int", "tty": "int", "fdlimit": "int",
        "cap_inheritable": "int", "cap_permitted": "int", "cap_effective": "int", "exe_ino": "int",
        "exe_ino_ctime": "int", "exe_ino_mtime": "int", "exe_flags": "int", "dirfd": "int", "flags": "int",
        "pathname": "str", "env": "list[str]", "cwd": "str", "trusted_exepath": "str", "cgroups": "list[str]",
        "exe": "str", "args": "list[str]", "exe_writable": "bool", "exe_upper_layer": "bool",
        "exe_lower_layer": "bool", "exe_from_memfd": "bool",
    },
    "clone": {"flags": "int"},
    "clone3": {"flags": "int"},
    "fork": {"flags": "int"},
    "vfork": {"flags": "int"},
    "procexit": {"status": "int", "ret": "int", "sig": "int", "core": "bool"},
}
