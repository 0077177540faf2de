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
#: - procexit: ``status`` is the raw wait status, ``ret``/``sig``/``core`` decoded from it;
#: - the data I/O, memory, io_uring, handle, mount-API, security and xattr events carry their
#:   syscall's arguments under Falco's names where Falco has a dedicated event (``pread``/``pwrite``
#:   are Falco's names of pread64/pwrite64), under the kernel's own names otherwise; pointers to
#:   strings are read (``str``), pointers to structs give the fields listed (io_uring_setup's
#:   params as the kernel filled them in, perf_event_open's ``type``/``config``, sched_setattr's
#:   ``sched_policy``), sendfile's ``offset`` is ``*offset`` after the call;
#: - generic events (every other syscall, and a dedicated one whose tracepoint the kernel lacks):
#:   ``SyscallRecord.type`` is the syscall's name, ``args`` has ``ID`` (the name), ``nativeID``
#:   (its number) and the six argument registers under the names the kernel declares for them
#:   (tracefs), ints sign-corrected, or ``a0``..``a5`` when the kernel declares none.
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
    "read": {"fd": "int", "size": "int"},
    "write": {"fd": "int", "size": "int"},
    "pread": {"fd": "int", "size": "int", "pos": "int"},
    "pwrite": {"fd": "int", "size": "int", "pos": "int"},
    "readv": {"fd": "int", "iovcnt": "int"},
    "writev": {"fd": "int", "iovcnt": "int"},
    "preadv": {"fd": "int", "iovcnt": "int", "pos": "int"},
    "pwritev": {"fd": "int", "iovcnt": "int", "pos": "int"},
    "sendfile": {"out_fd": "int", "in_fd": "int", "offset": "int", "size": "int"},
    "splice": {"fd_in": "int", "fd_out": "int", "size": "int", "flags": "int"},
    "tee": {"fd_in": "int", "fd_out": "int", "size": "int", "flags": "int"},
    "ioctl": {"fd": "int", "request": "int", "argument": "int"},
    "mmap": {"addr": "int", "length": "int", "prot": "int", "flags": "int", "fd": "int", "offset": "int"},
    "mprotect": {"addr": "int", "length": "int", "prot": "int"},
    "munmap": {"addr": "int", "length": "int"},
    "mremap": {"addr": "int", "old_len": "int", "new_len": "int", "flags": "int", "new_addr": "int"},
    "process_vm_readv": {"pid": "int", "flags": "int"},
    "process_vm_writev": {"pid": "int", "flags": "int"},
    "io_uring_setup": {
        "entries": "int", "sq_entries": "int", "cq_entries": "int", "flags": "int", "sq_thread_cpu": "int",
        "sq_thread_idle": "int", "features": "int",
    },
    "io_uring_enter": {"fd": "int", "to_submit": "int", "min_complete": "int", "flags": "int"},
    "io_uring_register": {"fd": "int", "opcode": "int", "arg": "int", "nr_args": "int"},
    "open_by_handle_at": {"mountfd": "int", "flags": "int", "dev": "int", "ino": "int", "path": "str"},
    "name_to_handle_at": {"dirfd": "int", "flags": "int", "pathname": "str"},
    "pidfd_open": {"pid": "int", "flags": "int"},
    "pidfd_getfd": {"pid_fd": "int", "target_fd": "int", "flags": "int"},
    "pidfd_send_signal": {"pidfd": "int", "sig": "int", "flags": "int"},
    "timerfd_create": {"clockid": "int", "flags": "int"},
    "timerfd_settime": {"fd": "int", "flags": "int"},
    "timerfd_gettime": {"fd": "int"},
    "eventfd": {"initval": "int"},
    "eventfd2": {"initval": "int", "flags": "int"},
    "signalfd": {"fd": "int", "mask": "int"},
    "signalfd4": {"fd": "int", "mask": "int", "flags": "int"},
    "fsopen": {"flags": "int", "fs_name": "str"},
    "fsconfig": {"fd": "int", "cmd": "int", "aux": "int", "key": "str", "value_charbuf": "str"},
    "fsmount": {"fs_fd": "int", "flags": "int", "attr_flags": "int"},
    "move_mount": {
        "from_dfd": "int", "to_dfd": "int", "flags": "int", "from_pathname": "str", "to_pathname": "str",
    },
    "open_tree": {"dfd": "int", "flags": "int", "filename": "str"},
    "quotactl": {"cmd": "int", "id": "int", "special": "str"},
    "keyctl": {"operation": "int", "arg2": "int", "arg3": "int", "arg4": "int", "arg5": "int"},
    "add_key": {"keyring": "int", "type": "str", "description": "str"},
    "request_key": {"dest_keyring": "int", "type": "str", "description": "str"},
    "seccomp": {"op": "int", "flags": "int"},
    "perf_event_open": {
        "pid": "int", "cpu": "int", "group_fd": "int", "flags": "int", "type": "int", "config": "int",
    },
    "personality": {"persona": "int"},
    "kcmp": {"pid1": "int", "pid2": "int", "type": "int", "idx1": "int", "idx2": "int"},
    "sched_setattr": {"pid": "int", "flags": "int", "sched_policy": "int"},
    "setxattr": {"size": "int", "flags": "int", "path": "str", "name": "str"},
    "lsetxattr": {"size": "int", "flags": "int", "path": "str", "name": "str"},
    "fsetxattr": {"fd": "int", "size": "int", "flags": "int", "name": "str"},
    "getxattr": {"size": "int", "path": "str", "name": "str"},
    "lgetxattr": {"size": "int", "path": "str", "name": "str"},
    "fgetxattr": {"fd": "int", "size": "int", "name": "str"},
    "listxattr": {"size": "int", "path": "str"},
    "llistxattr": {"size": "int", "path": "str"},
    "flistxattr": {"fd": "int", "size": "int"},
    "removexattr": {"path": "str", "name": "str"},
    "lremovexattr": {"path": "str", "name": "str"},
    "fremovexattr": {"fd": "int", "name": "str"},
    # generic events (any other syscall): ``type`` is the syscall's name; see the note above
    "syscall": {"ID": "str", "nativeID": "int"},
}
