"""Reading one process from procfs.

Every read tolerates the process vanishing half-way (the kernel answers
ENOENT/ESRCH) and odd contents (non-UTF-8 names, huge command lines): values
that cannot be read stay at their defaults.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field

from falcopy.agent.events.text import decode, split_nul
from falcopy.agent.state.constants import ANON_INODE_TYPES
from falcopy.agent.state.model import FdInfo, ThreadInfo
from pydantic import ConfigDict

#: bytes kept of /proc/PID/cmdline and environ: bounded memory for huge argv
MAX_CMDLINE_BYTES = 64 * 1024


def _host_root() -> str:
    return os.environ.get("HOST_ROOT") or "/"


def _host_proc() -> str:
    root = os.environ.get("HOST_ROOT")
    return os.path.join(root, "proc") if root else "/proc"


@dataclass(frozen=True, slots=True)
class HostPaths:
    """Where the host's /proc and / are seen (the agent may run in a container
    with the host's /proc at /host/proc and its root at /host).  Also the
    ``falcopy.host`` section of the configuration; the defaults follow Falco's
    ``HOST_ROOT`` environment variable (unset = running on the host)."""

    __pydantic_config__ = ConfigDict(extra="forbid")

    #: the host's /proc (``/host/proc`` in the DaemonSet, with the host pid namespace)
    proc: str = field(default_factory=_host_proc)
    #: the host's root file system as the agent sees it (``/host`` in the DaemonSet)
    root: str = field(default_factory=_host_root)

    def host_file(self, path: str) -> str:
        return path if self.root in ("", "/") else os.path.join(self.root, path.lstrip("/"))


def _read(path: str, limit: int = MAX_CMDLINE_BYTES) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            return fh.read(limit)
    except OSError:
        return None


def read_cgroup(pid: int, proc_root: str = "/proc") -> str | None:
    """/proc/PID/cgroup text (bounded), or None when the process is gone."""
    raw = _read(f"{proc_root}/{pid}/cgroup", 65536)
    return None if raw is None else decode(raw)


def _readlink(path: str) -> str | None:
    try:
        return decode(os.readlink(os.fsencode(path)))
    except OSError:
        return None


def parse_stat(raw: bytes) -> dict[str, int | str] | None:
    """Fields of /proc/PID/stat; comm may hold spaces and parentheses."""
    try:
        lpar = raw.index(b"(")
        rpar = raw.rindex(b")")
    except ValueError:
        return None
    rest = raw[rpar + 2 :].split()
    if len(rest) < 20:
        return None
    return {
        "comm": decode(raw[lpar + 1 : rpar]),
        "ppid": int(rest[1]),
        "pgid": int(rest[2]),
        "sid": int(rest[3]),
        "tty": int(rest[4]),
        "starttime": int(rest[19]),
    }


def parse_status(raw: bytes) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in raw.split(b"\n"):
        key, sep, value = line.partition(b":")
        if sep:
            out[key.decode("ascii", "replace")] = value.decode("ascii", "replace").split()
    return out


_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def boot_time_ns(paths: HostPaths) -> int:
    raw = _read(f"{paths.proc}/stat", 1 << 20) or b""
    for line in raw.split(b"\n"):
        if line.startswith(b"btime "):
            return int(line.split()[1]) * 1_000_000_000
    return 0


class ProcReader:
    """Builds :class:`ThreadInfo` objects from a procfs mount."""

    def __init__(self, paths: HostPaths | None = None) -> None:
        self.paths = paths or HostPaths()
        self.boot_ns = boot_time_ns(self.paths)

    def pid_dir(self, pid: int) -> str:
        return f"{self.paths.proc}/{pid}"

    def exists(self, pid: int) -> bool:
        return os.path.exists(f"{self.paths.proc}/{pid}")

    def list_pids(self) -> list[int]:
        try:
            names = os.listdir(self.paths.proc)
        except OSError:
            return []
        return [int(n) for n in names if n.isdigit()]

    def list_tids(self, pid: int) -> list[int]:
        try:
            return [int(n) for n in os.listdir(f"{self.paths.proc}/{pid}/task") if n.isdigit()]
        except OSError:
            return []

    def tgid_of(self, tid: int) -> int | None:
        """Thread-group id of any thread id (/proc/TID works for non-leader threads too)."""
        st = parse_status(_read(f"{self.paths.proc}/{tid}/status", 8192) or b"")
        tgid = st.get("Tgid")
        return int(tgid[0]) if tgid else None

    def ppid_of(self, pid: int) -> int | None:
        raw = _read(f"{self.paths.proc}/{pid}/stat", 4096)
        stat = parse_stat(raw) if raw else None
        return int(stat["ppid"]) if stat else None

    def read_thread(self, pid: int) -> ThreadInfo | None:
        """A process as /proc shows it now; None when it is gone."""
        base = self.pid_dir(pid)
        raw_stat = _read(f"{base}/stat", 4096)
        raw_status = _read(f"{base}/status", 16384)
        if raw_stat is None or raw_status is None:
            return None
        stat = parse_stat(raw_stat)
        if stat is None:
            return None
        status = parse_status(raw_status)
        info = ThreadInfo(pid=pid, tid=pid, from_proc=True)
        info.comm = str(stat["comm"])
        info.ptid = int(stat["ppid"])
        info.pgid = int(stat["pgid"])
        info.sid = int(stat["sid"])
        info.tty = int(stat["tty"])
        info.start_ts = self.boot_ns + int(stat["starttime"]) * 1_000_000_000 // _CLK_TCK
        info.exec_ts = info.start_ts
        uids = status.get("Uid")
        gids = status.get("Gid")
        # libsinsp's user.uid/group.gid are the effective ids
        if uids and len(uids) > 1:
            info.uid = int(uids[1])
        if gids and len(gids) > 1:
            info.gid = int(gids[1])
        nspid = status.get("NSpid")
        info.vpid = int(nspid[-1]) if nspid else pid
        info.vtid = info.vpid
        nssid = status.get("NSsid")
        if nssid:
            info.sid = int(nssid[-1])
        nspgid = status.get("NSpgid")
        info.vpgid = int(nspgid[-1]) if nspgid else info.pgid
        _set_caps(info, status)
        raw_login = _read(f"{base}/loginuid", 64)
        if raw_login:
            try:
                login = int(raw_login.strip())
                info.loginuid = -1 if login == 0xFFFFFFFF else login
            except ValueError:
                pass
        args = split_nul(_read(f"{base}/cmdline") or b"")
        if args:
            info.exe = args[0]
            info.args = args[1:]
        else:
            # kernel threads: Falco shows the comm as the exe
            info.exe = info.comm
        exepath = _readlink(f"{base}/exe")
        if exepath is not None:
            self._set_exepath(info, exepath)
        cwd = _readlink(f"{base}/cwd")
        if cwd is not None:
            info.cwd = cwd
        root = _readlink(f"{base}/root")
        if root is not None:
            info.root = root
        self._set_exe_inode(info, base)
        return info

    @staticmethod
    def _set_exe_inode(info: ThreadInfo, base: str) -> None:
        # the executable's inode and times, as an execve record carries them (proc.exe_ino*)
        try:
            st = os.stat(f"{base}/exe")
        except OSError:
            return
        info.exe_ino = st.st_ino
        info.exe_ino_ctime = st.st_ctime_ns
        info.exe_ino_mtime = st.st_mtime_ns

    @staticmethod
    def _set_exepath(info: ThreadInfo, exepath: str) -> None:
        # readlink of /proc/PID/exe is d_path: " (deleted)" stays, as Falco shows it
        info.exepath = exepath
        info.exe_from_memfd = exepath.startswith("/memfd:")

    def refresh_exec(self, info: ThreadInfo) -> bool:
        """Re-read what an execve changes but the kernel record may not carry.
        False when the process is already gone."""
        base = self.pid_dir(info.pid)
        exepath = _readlink(f"{base}/exe")
        if exepath is None:
            return False
        self._set_exepath(info, exepath)
        raw_status = _read(f"{base}/status", 16384)
        if raw_status:
            _set_caps(info, parse_status(raw_status))
        self._set_exe_inode(info, base)
        return True

    def read_env(self, pid: int) -> list[str] | None:
        raw = _read(f"{self.pid_dir(pid)}/environ")
        return None if raw is None else split_nul(raw)

    def read_cmdline(self, pid: int) -> list[str] | None:
        raw = _read(f"{self.pid_dir(pid)}/cmdline")
        return None if raw is None else split_nul(raw)

    def read_cgroup(self, pid: int) -> str | None:
        return read_cgroup(pid, self.paths.proc)

    def root_of(self, pid: int) -> str:
        """Path under which this process's root filesystem is visible to the agent."""
        return f"{self.pid_dir(pid)}/root"

    def read_fds(self, pid: int) -> dict[int, FdInfo]:
        """fd table from /proc/PID/fd; sockets carry their inode in ``ino`` until
        the socket inventory gives them addresses."""
        fds: dict[int, FdInfo] = {}
        base = f"{self.pid_dir(pid)}/fd"
        try:
            names = os.listdir(base)
        except OSError:
            return fds
        for name in names:
            if not name.isdigit():
                continue
            num = int(name)
            target = _readlink(f"{base}/{name}")
            if target is None:
                continue
            fds[num] = fd_from_link(num, target, f"{base}/{name}")
        return fds


_CAP_KEYS = (("CapInh", "cap_inheritable"), ("CapPrm", "cap_permitted"), ("CapEff", "cap_effective"))


def _set_caps(info: ThreadInfo, status: dict[str, list[str]]) -> None:
    for key, attr in _CAP_KEYS:
        val = status.get(key)
        if val:
            setattr(info, attr, int(val[0], 16))


def fd_from_link(num: int, target: str, proc_path: str | None = None) -> FdInfo:
    if target.startswith("socket:["):
        ino = _bracket_int(target)
        return FdInfo(type="unknown", name=target, num=num, ino=ino)
    if target.startswith("pipe:["):
        return FdInfo(type="pipe", name=target, num=num, ino=_bracket_int(target))
    if target.startswith("anon_inode:"):
        kind = target[len("anon_inode:") :].strip("[]")
        return FdInfo(type=ANON_INODE_TYPES.get(kind, "unknown"), name=target, num=num)
    if target.startswith("/memfd:"):
        return FdInfo(type="memfd", name=target[1:].removesuffix(" (deleted)"), num=num)
    try:
        # stat through /proc/PID/fd/N: the target path is in the process's mount namespace
        is_dir = stat.S_ISDIR(os.stat(proc_path or target).st_mode)
    except OSError:
        is_dir = False
    return FdInfo(type="directory" if is_dir else "file", name=target, num=num)


def _bracket_int(text: str) -> int:
    try:
        return int(text[text.index("[") + 1 : text.index("]")])
    except ValueError:
        return 0
