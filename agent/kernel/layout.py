"""Wire layout of the probe's records, shared knowledge with ``agent/bpf/record.h``.

A record is a fixed 96-byte header (``record.h: struct rec_hdr``) followed by
the event's scalar block (``u64`` each, in the order listed here) and then its
variable fields, each a ``u16`` length and that many bytes.  A length of
``0xFFFF`` means "unreadable" (the key is left out of ``args``); a record that
ends before all variable fields were written (the per-CPU buffer was full)
simply lacks the remaining keys and carries the truncated flag.

The event id of ``EVENTS[i]`` is ``i + 1``; ``agent/bpf/events.h`` declares
the same ids (a test checks both agree).
"""

from __future__ import annotations

from typing import Final

# scalar kinds: 'i' signed 64-bit, 'u' unsigned 64-bit, 'b' bool
# variable kinds: 's' string (NUL-terminated), 'L' NUL-separated string list,
# 'A' raw user sockaddr, 'T' socket tuple blob (record.h: struct sock_tuple),
# 'P' kernel-resolved absolute path (may carry the " (deleted)" mark)
Scalars = tuple[tuple[str, str], ...]
Variables = tuple[tuple[str, str], ...]

_PATH_AT = (("dirpath", "P"),)

#: the record type of generic.bpf.c (not an event name: the decoder names each record
#: after its syscall, like Falco's generic events)
GENERIC: Final = "syscall"

EVENTS: Final[tuple[tuple[str, Scalars, Variables], ...]] = (
    # --- files ---
    ("open", (("flags", "u"), ("mode", "u"), ("dev", "u"), ("ino", "u")), (("name", "s"), *_PATH_AT)),
    ("openat", (("dirfd", "i"), ("flags", "u"), ("mode", "u"), ("dev", "u"), ("ino", "u")),
     (("name", "s"), *_PATH_AT)),
    ("openat2", (("dirfd", "i"), ("flags", "u"), ("mode", "u"), ("resolve", "u"), ("dev", "u"),
                 ("ino", "u")), (("name", "s"), *_PATH_AT)),
    ("creat", (("mode", "u"), ("dev", "u"), ("ino", "u")), (("name", "s"), *_PATH_AT)),
    ("close", (("fd", "i"),), ()),
    ("dup", (("oldfd", "i"),), ()),
    ("dup2", (("oldfd", "i"), ("newfd", "i")), ()),
    ("dup3", (("oldfd", "i"), ("newfd", "i"), ("flags", "u")), ()),
    ("fcntl", (("fd", "i"), ("cmd", "i")), ()),
    ("rename", (), (("oldpath", "s"), ("newpath", "s"), ("olddirpath", "P"), ("newdirpath", "P"))),
    ("renameat", (("olddirfd", "i"), ("newdirfd", "i")),
     (("oldpath", "s"), ("newpath", "s"), ("olddirpath", "P"), ("newdirpath", "P"))),
    ("renameat2", (("olddirfd", "i"), ("newdirfd", "i"), ("flags", "u")),
     (("oldpath", "s"), ("newpath", "s"), ("olddirpath", "P"), ("newdirpath", "P"))),
    ("unlink", (), (("path", "s"), *_PATH_AT)),
    ("unlinkat", (("dirfd", "i"), ("flags", "u")), (("name", "s"), *_PATH_AT)),
    ("mkdir", (("mode", "u"),), (("path", "s"), *_PATH_AT)),
    ("mkdirat", (("dirfd", "i"), ("mode", "u")), (("path", "s"), *_PATH_AT)),
    ("rmdir", (), (("path", "s"), *_PATH_AT)),
    ("link", (), (("oldpath", "s"), ("newpath", "s"), ("olddirpath", "P"), ("newdirpath", "P"))),
    ("linkat", (("olddir", "i"), ("newdir", "i"), ("flags", "u")),
     (("oldpath", "s"), ("newpath", "s"), ("olddirpath", "P"), ("newdirpath", "P"))),
    ("symlink", (), (("target", "s"), ("linkpath", "s"), ("linkdirpath", "P"))),
    ("symlinkat", (("linkdirfd", "i"),), (("target", "s"), ("linkpath", "s"), ("linkdirpath", "P"))),
    ("chmod", (("mode", "u"),), (("filename", "s"), *_PATH_AT)),
    ("fchmod", (("fd", "i"), ("mode", "u")), ()),
    ("fchmodat", (("dirfd", "i"), ("mode", "u")), (("filename", "s"), *_PATH_AT)),
    ("chown", (("uid", "i"), ("gid", "i")), (("path", "s"), *_PATH_AT)),
    ("lchown", (("uid", "i"), ("gid", "i")), (("path", "s"), *_PATH_AT)),
    ("fchown", (("fd", "i"), ("uid", "i"), ("gid", "i")), ()),
    ("fchownat", (("dirfd", "i"), ("uid", "i"), ("gid", "i"), ("flags", "u")),
     (("pathname", "s"), *_PATH_AT)),
    ("chdir", (), (("path", "s"), ("cwd", "P"))),
    ("fchdir", (("fd", "i"),), (("cwd", "P"),)),
    ("chroot", (), (("path", "s"), *_PATH_AT)),
    ("mount", (("flags", "u"),), (("dev", "s"), ("dir", "s"), ("type", "s"))),
    ("umount2", (("flags", "u"),), (("name", "s"),)),
    ("memfd_create", (("flags", "u"),), (("name", "s"),)),
    ("pipe", (("fd1", "i"), ("fd2", "i")), ()),
    ("pipe2", (("fd1", "i"), ("fd2", "i"), ("flags", "u")), ()),
    # --- network ---
    ("socket", (("domain", "i"), ("type", "i"), ("proto", "i")), ()),
    ("socketpair", (("domain", "i"), ("type", "i"), ("proto", "i"), ("fd1", "i"), ("fd2", "i")), ()),
    ("connect", (("fd", "i"),), (("addr", "A"), ("tuple", "T"))),
    ("accept", (("fd", "i"),), (("tuple", "T"),)),
    ("accept4", (("fd", "i"), ("flags", "u")), (("tuple", "T"),)),
    ("bind", (("fd", "i"),), (("addr", "A"),)),
    ("listen", (("fd", "i"), ("backlog", "i")), ()),
    ("sendto", (("fd", "i"), ("size", "u")), (("addr", "A"), ("tuple", "T"))),
    ("sendmsg", (("fd", "i"),), (("addr", "A"), ("tuple", "T"))),
    ("recvfrom", (("fd", "i"), ("size", "u")), (("addr", "A"), ("tuple", "T"))),
    ("recvmsg", (("fd", "i"),), (("addr", "A"), ("tuple", "T"))),
    # --- credentials / privileges ---
    ("setuid", (("uid", "i"),), ()),
    ("setgid", (("gid", "i"),), ()),
    ("setreuid", (("ruid", "i"), ("euid", "i")), ()),
    ("setregid", (("rgid", "i"), ("egid", "i")), ()),
    ("setresuid", (("ruid", "i"), ("euid", "i"), ("suid", "i")), ()),
    ("setresgid", (("rgid", "i"), ("egid", "i"), ("sgid", "i")), ()),
    ("capset", (("cap_inheritable", "u"), ("cap_permitted", "u"), ("cap_effective", "u")), ()),
    ("setsid", (), ()),
    ("setpgid", (("pid", "i"), ("pgid", "i")), ()),
    # --- misc ---
    ("ptrace", (("request", "i"), ("pid", "i"), ("addr", "u"), ("data", "u")), ()),
    ("init_module", (("length", "u"),), (("uargs", "s"),)),
    ("finit_module", (("fd", "i"), ("flags", "u")), (("uargs", "s"),)),
    ("bpf", (("cmd", "i"),), ()),
    ("unshare", (("flags", "u"),), ()),
    ("setns", (("fd", "i"), ("nstype", "u")), ()),
    ("userfaultfd", (("flags", "u"),), ()),
    ("prctl", (("option", "i"), ("arg2_int", "u")), (("arg2_str", "s"),)),
    ("kill", (("pid", "i"), ("sig", "i")), ()),
    ("tkill", (("tid", "i"), ("sig", "i")), ()),
    ("tgkill", (("pid", "i"), ("tid", "i"), ("sig", "i")), ()),
    # --- process lifecycle ---
    ("execve", (("pgid", "i"), ("vpgid", "i"), ("sid", "i"), ("tty", "u"), ("fdlimit", "u"),
                ("cap_inheritable", "u"), ("cap_permitted", "u"), ("cap_effective", "u"),
                ("exe_ino", "u"), ("exe_ino_ctime", "u"), ("exe_ino_mtime", "u"), ("exe_flags", "u")),
     (("filename", "s"), ("exe_args", "L"), ("env", "L"), ("cwd", "P"), ("trusted_exepath", "P"),
      ("cgroups", "L"))),
    ("execveat", (("pgid", "i"), ("vpgid", "i"), ("sid", "i"), ("tty", "u"), ("fdlimit", "u"),
                  ("cap_inheritable", "u"), ("cap_permitted", "u"), ("cap_effective", "u"),
                  ("exe_ino", "u"), ("exe_ino_ctime", "u"), ("exe_ino_mtime", "u"), ("exe_flags", "u"),
                  ("dirfd", "i"), ("flags", "u")),
     (("pathname", "s"), ("exe_args", "L"), ("env", "L"), ("cwd", "P"), ("trusted_exepath", "P"),
      ("cgroups", "L"))),
    ("clone", (("flags", "u"),), ()),
    ("clone3", (("flags", "u"),), ()),
    ("fork", (("flags", "u"),), ()),
    ("vfork", (("flags", "u"),), ()),
    ("procexit", (("status", "i"),), ()),
    # --- data I/O (io.bpf.c) ---
    ("read", (("fd", "i"), ("size", "u")), ()),
    ("write", (("fd", "i"), ("size", "u")), ()),
    ("pread", (("fd", "i"), ("size", "u"), ("pos", "u")), ()),
    ("pwrite", (("fd", "i"), ("size", "u"), ("pos", "u")), ()),
    ("readv", (("fd", "i"), ("iovcnt", "u")), ()),
    ("writev", (("fd", "i"), ("iovcnt", "u")), ()),
    ("preadv", (("fd", "i"), ("iovcnt", "u"), ("pos", "u")), ()),
    ("pwritev", (("fd", "i"), ("iovcnt", "u"), ("pos", "u")), ()),
    ("sendfile", (("out_fd", "i"), ("in_fd", "i"), ("offset", "u"), ("size", "u")), ()),
    ("splice", (("fd_in", "i"), ("fd_out", "i"), ("size", "u"), ("flags", "u")), ()),
    ("tee", (("fd_in", "i"), ("fd_out", "i"), ("size", "u"), ("flags", "u")), ()),
    ("ioctl", (("fd", "i"), ("request", "u"), ("argument", "u")), ()),
    # --- memory (mem.bpf.c) ---
    ("mmap", (("addr", "u"), ("length", "u"), ("prot", "u"), ("flags", "u"), ("fd", "i"), ("offset", "u")),
     ()),
    ("mprotect", (("addr", "u"), ("length", "u"), ("prot", "u")), ()),
    ("munmap", (("addr", "u"), ("length", "u")), ()),
    ("mremap", (("addr", "u"), ("old_len", "u"), ("new_len", "u"), ("flags", "u"), ("new_addr", "u")), ()),
    ("process_vm_readv", (("pid", "i"), ("flags", "u")), ()),
    ("process_vm_writev", (("pid", "i"), ("flags", "u")), ()),
    # --- io_uring (iouring.bpf.c) ---
    ("io_uring_setup", (("entries", "u"), ("sq_entries", "u"), ("cq_entries", "u"), ("flags", "u"),
                        ("sq_thread_cpu", "u"), ("sq_thread_idle", "u"), ("features", "u")), ()),
    ("io_uring_enter", (("fd", "i"), ("to_submit", "u"), ("min_complete", "u"), ("flags", "u")), ()),
    ("io_uring_register", (("fd", "i"), ("opcode", "u"), ("arg", "u"), ("nr_args", "u")), ()),
    # --- handles (handles.bpf.c) ---
    ("open_by_handle_at", (("mountfd", "i"), ("flags", "u"), ("dev", "u"), ("ino", "u")), (("path", "P"),)),
    ("name_to_handle_at", (("dirfd", "i"), ("flags", "u")), (("pathname", "s"),)),
    ("pidfd_open", (("pid", "i"), ("flags", "u")), ()),
    ("pidfd_getfd", (("pid_fd", "i"), ("target_fd", "i"), ("flags", "u")), ()),
    ("pidfd_send_signal", (("pidfd", "i"), ("sig", "i"), ("flags", "u")), ()),
    ("timerfd_create", (("clockid", "i"), ("flags", "u")), ()),
    ("timerfd_settime", (("fd", "i"), ("flags", "u")), ()),
    ("timerfd_gettime", (("fd", "i"),), ()),
    ("eventfd", (("initval", "u"),), ()),
    ("eventfd2", (("initval", "u"), ("flags", "u")), ()),
    ("signalfd", (("fd", "i"), ("mask", "u")), ()),
    ("signalfd4", (("fd", "i"), ("mask", "u"), ("flags", "u")), ()),
    # --- mount API, quotas (mounts.bpf.c) ---
    ("fsopen", (("flags", "u"),), (("fs_name", "s"),)),
    ("fsconfig", (("fd", "i"), ("cmd", "u"), ("aux", "i")), (("key", "s"), ("value_charbuf", "s"))),
    ("fsmount", (("fs_fd", "i"), ("flags", "u"), ("attr_flags", "u")), ()),
    ("move_mount", (("from_dfd", "i"), ("to_dfd", "i"), ("flags", "u")),
     (("from_pathname", "s"), ("to_pathname", "s"))),
    ("open_tree", (("dfd", "i"), ("flags", "u")), (("filename", "s"),)),
    ("quotactl", (("cmd", "u"), ("id", "i")), (("special", "s"),)),
    # --- security surfaces (security.bpf.c) ---
    ("keyctl", (("operation", "i"), ("arg2", "u"), ("arg3", "u"), ("arg4", "u"), ("arg5", "u")), ()),
    ("add_key", (("keyring", "i"),), (("type", "s"), ("description", "s"))),
    ("request_key", (("dest_keyring", "i"),), (("type", "s"), ("description", "s"))),
    ("seccomp", (("op", "u"), ("flags", "u")), ()),
    ("perf_event_open", (("pid", "i"), ("cpu", "i"), ("group_fd", "i"), ("flags", "u"), ("type", "u"),
                         ("config", "u")), ()),
    ("personality", (("persona", "u"),), ()),
    ("kcmp", (("pid1", "i"), ("pid2", "i"), ("type", "i"), ("idx1", "u"), ("idx2", "u")), ()),
    ("sched_setattr", (("pid", "i"), ("flags", "u"), ("sched_policy", "u")), ()),
    # --- extended attributes (xattr.bpf.c) ---
    ("setxattr", (("size", "u"), ("flags", "u")), (("path", "s"), ("name", "s"))),
    ("lsetxattr", (("size", "u"), ("flags", "u")), (("path", "s"), ("name", "s"))),
    ("fsetxattr", (("fd", "i"), ("size", "u"), ("flags", "u")), (("name", "s"),)),
    ("getxattr", (("size", "u"),), (("path", "s"), ("name", "s"))),
    ("lgetxattr", (("size", "u"),), (("path", "s"), ("name", "s"))),
    ("fgetxattr", (("fd", "i"), ("size", "u")), (("name", "s"),)),
    ("listxattr", (("size", "u"),), (("path", "s"),)),
    ("llistxattr", (("size", "u"),), (("path", "s"),)),
    ("flistxattr", (("fd", "i"), ("size", "u")), ()),
    ("removexattr", (), (("path", "s"), ("name", "s"))),
    ("lremovexattr", (), (("path", "s"), ("name", "s"))),
    ("fremovexattr", (("fd", "i"),), (("name", "s"),)),
    # --- any other syscall (generic.bpf.c): named from ``nativeID`` by the decoder ---
    (GENERIC, (("nativeID", "u"), ("a0", "u"), ("a1", "u"), ("a2", "u"), ("a3", "u"), ("a4", "u"),
               ("a5", "u")), ()),
)

EVENT_IDS: Final[dict[str, int]] = {name: i + 1 for i, (name, _, _) in enumerate(EVENTS)}

#: always delivered whatever the rules ask for: the process table depends on them
LIFECYCLE: Final[frozenset[str]] = frozenset(
    {"clone", "clone3", "fork", "vfork", "execve", "execveat", "procexit"}
)

#: never dropped because file events filled the ring: they may use the ring's
#: reserved part (agent/bpf/helpers.h ring_submit); drops are counted per class
CRITICAL: Final[frozenset[str]] = LIFECYCLE | frozenset({
    "connect", "accept", "accept4", "bind", "listen", "ptrace", "init_module", "finit_module",
    "setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "capset", "memfd_create",
    "bpf", "mount", "umount2", "unshare", "setns",
})
DROP_CLASSES: Final = ("bulk", "critical")

HDR_SIZE: Final = 96
ABSENT: Final = 0xFFFF

# header flags (record.h)
F_TRUNCATED: Final = 1

# exe_flags bits, Falco's PPM_EXE_* values (libs ppm_events_public.h)
EXE_WRITABLE: Final = 1 << 0
EXE_UPPER_LAYER: Final = 1 << 1
EXE_FROM_MEMFD: Final = 1 << 2
EXE_LOWER_LAYER: Final = 1 << 3
EXE_DELETED: Final = 1 << 8  # falcopy's own: the exe file has no link left
