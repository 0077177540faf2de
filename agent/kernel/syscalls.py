"""The system call table of the running kernel: number <-> name, with Falco's names.

Two sources, merged:

- the architecture's ABI table, the kernel's own syscall table as it exports it
  to user space (``<asm/unistd.h>``, captured by ``make bpf`` as
  ``agent/bpf/syscalls.tbl``): every number, including those a kernel leaves
  unimplemented (``init_module`` on a kernel without ``CONFIG_MODULES`` still has
  its number, fails with ``ENOSYS``, and a rule on it must still fire);
- the running kernel's syscall tracepoints (tracefs ``events/syscalls``): which
  syscalls this kernel implements, under their ``SYSCALL_DEFINE`` names, with the
  names and C types of their arguments.

The running kernel does not expose its number -> function table at run time (x86
dispatches through a switch since 6.9, and the tracing metadata that holds the
numbers is not reachable without ``CONFIG_KALLSYMS_ALL``), so a syscall newer
than the build's ABI header is listed as implemented but has no number to filter
on: ``unnumbered`` names them, and rules on them get the "cannot be captured"
warning.

Names are the ABI's (``umount2``, ``uname``), renamed where Falco's event names
differ (``pread64`` -> ``pread``).  Argument names and types of each syscall come
from tracefs (``events/syscalls/sys_enter_<name>/format``), as the kernel declares
them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

ABI_TABLE = Path(__file__).resolve().parent.parent / "bpf" / "syscalls.tbl"
#: the header itself, when the table was not built (a checkout without ``make bpf``)
_ABI_HEADERS = (
    "/usr/include/x86_64-linux-gnu/asm/unistd_64.h",
    "/usr/include/asm/unistd_64.h",
    "/usr/include/aarch64-linux-gnu/asm/unistd.h",
    "/usr/include/asm-generic/unistd.h",
)
_NR_DEFINE = re.compile(r"^#define __NR_([a-z0-9_]+)\s+(\d+)\s*$", re.M)

#: ABI name -> Falco event name, where they differ (libs' syscall table)
FALCO_NAMES: Mapping[str, str] = {"pread64": "pread", "pwrite64": "pwrite"}

#: SYSCALL_DEFINE name -> ABI name, where the kernel's own name differs (x86_64 and the
#: generic table); only needed for numbers the ABI table does not know
_KERNEL_TO_ABI: Mapping[str, str] = {
    "newuname": "uname", "newstat": "stat", "newlstat": "lstat", "newfstat": "fstat",
    "umount": "umount2", "sendfile64": "sendfile", "mmap_pgoff": "mmap2", "old_mmap": "mmap",
}

#: syscalls without an exit the probe can see, and why (Falco's exit-only events, 0.42+,
#: have the same property)
NO_EXIT_EVENT: Mapping[str, str] = {
    "exit": "never returns to its caller: there is no exit to capture (the thread's end is procexit)",
    "exit_group": "never returns to its caller: there is no exit to capture (the process's end is procexit)",
    "rt_sigreturn": "restoring the signal frame also resets the syscall number (orig_ax = -1), so the "
                    "kernel's syscall exit hooks never see it as rt_sigreturn",
}
NO_EXIT: frozenset[str] = frozenset(NO_EXIT_EVENT)


def falco_name(abi_name: str) -> str:
    return FALCO_NAMES.get(abi_name, abi_name)


def read_abi_table(path: Path | None = None) -> dict[int, str]:
    """``nr -> ABI name`` from ``syscalls.tbl`` (``"<nr> <name>"`` lines) or the header."""
    candidates = [path] if path is not None else [ABI_TABLE, *map(Path, _ABI_HEADERS)]
    for p in candidates:
        try:
            text = p.read_text()
        except OSError:
            continue
        if p.suffix == ".h":
            return {int(nr): name for name, nr in _NR_DEFINE.findall(text)}
        out: dict[int, str] = {}
        for lineno, line in enumerate(text.splitlines(), 1):
            parts = line.split()
            if len(parts) != 2 or not parts[0].isdigit():
                raise ValueError(f"{p}:{lineno}: expected '<nr> <name>', got {line!r}")
            out[int(parts[0])] = parts[1]
        return out
    return {}


@dataclass(frozen=True)
class SyscallTable:
    #: nr -> Falco event name
    names: Mapping[int, str]
    #: nr -> the kernel's SYSCALL_DEFINE name (its tracepoints' names), implemented ones only;
    #: empty when tracefs could not be read (not root)
    kernel_names: Mapping[int, str] = field(default_factory=dict)

    #: SYSCALL_DEFINE names the running kernel implements that the ABI table has no number for
    unnumbered: frozenset[str] = frozenset()

    @classmethod
    def build(cls, kernel: frozenset[str] | set[str] | None = None,
              abi: Mapping[int, str] | None = None) -> SyscallTable:
        """``kernel``: the SYSCALL_DEFINE names of the running kernel (``kernel_syscall_names``)."""
        abi = read_abi_table() if abi is None else abi
        names = {nr: falco_name(n) for nr, n in abi.items()}
        abi_nr = {n: nr for nr, n in abi.items()}
        kernel_names: dict[int, str] = {}
        unnumbered: set[str] = set()
        for kname in kernel or ():
            nr = abi_nr.get(_KERNEL_TO_ABI.get(kname, kname))
            if nr is None:
                unnumbered.add(kname)
            else:
                kernel_names[nr] = kname
        return cls(names, kernel_names, frozenset(unnumbered))

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {name: nr for nr, name in self.names.items()})

    def nr(self, name: str) -> int | None:
        return self.by_name.get(name)  # type: ignore[attr-defined]

    def implemented(self, nr: int) -> bool | None:
        """Whether the running kernel implements ``nr`` (None: its table was not read)."""
        if not self.kernel_names:
            return None
        return nr in self.kernel_names

    def event_names(self) -> frozenset[str]:
        return frozenset(self.names.values())


def kernel_syscall_names(tracefs: Path | None) -> frozenset[str]:
    """SYSCALL_DEFINE names of the syscalls the running kernel implements (its tracepoints)."""
    if tracefs is None:
        return frozenset()
    try:
        entries = (tracefs / "events" / "syscalls").iterdir()
        return frozenset(e.name[len("sys_enter_"):] for e in entries if e.name.startswith("sys_enter_"))
    except OSError:
        return frozenset()


_FIELD = re.compile(r"field:(.+?)\s+(\w+)(?:\[\d+\])?;\s+offset:(\d+);")


def tracefs_args(tracefs: Path | None, kernel_name: str) -> tuple[tuple[str, str], ...] | None:
    """The syscall's arguments ``(name, C type)`` as the kernel declares them, or None."""
    if tracefs is None:
        return None
    try:
        text = (tracefs / "events" / "syscalls" / f"sys_enter_{kernel_name}" / "format").read_text()
    except OSError:
        return None
    out = []
    for ctype, name, off in _FIELD.findall(text):
        # the common_* header and __syscall_nr sit below offset 16
        if int(off) >= 16:
            out.append((name, ctype.strip()))
    return tuple(out)


def capturable_syscall_events(table: SyscallTable | None = None) -> frozenset[str]:
    """The event types the probe can produce on this architecture: its dedicated
    programs and every syscall of the table (the generic hook), but those without
    an exit event (``NO_EXIT``).  (A dedicated program whose tracepoint a kernel lacks falls back
    to the generic hook, so tracefs is not needed to answer.)"""
    from falcopy.agent.kernel import layout

    dedicated = frozenset(layout.EVENT_IDS) - {layout.GENERIC}
    names = (table or SyscallTable.build()).event_names()
    return (dedicated | names) - NO_EXIT
