"""What the kernel capture needs, checked before anything starts.

Each failed check becomes one line that names the cause and the fix (the
CLI prints it and exits 1), instead of a libbpf errno or a traceback that
blames whatever failed first (tracefs, a map, a socket).
"""

from __future__ import annotations

import errno
from pathlib import Path

BTF_PATH = Path("/sys/kernel/btf/vmlinux")

# capability numbers (linux/capability.h)
CAP_SYS_ADMIN = 21
CAP_PERFMON = 38
CAP_BPF = 39


class StartupError(Exception):
    """The agent cannot start; the message is the one line the user reads."""


def effective_capabilities(status: Path = Path("/proc/self/status")) -> int:
    for line in status.read_text().splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    return 0


def check_capabilities(caps: int | None = None) -> None:
    caps = effective_capabilities() if caps is None else caps

    def has(bit: int) -> bool:
        return bool(caps >> bit & 1)

    if has(CAP_SYS_ADMIN) or (has(CAP_BPF) and has(CAP_PERFMON)):
        return
    raise StartupError(
        "the eBPF probe cannot be loaded without root privileges (CAP_SYS_ADMIN, or CAP_BPF and "
        "CAP_PERFMON): run `falcopy agent` as root, or grant those capabilities to its container"
    )


def check_btf(path: Path = BTF_PATH) -> None:
    if not path.is_file():
        raise StartupError(
            f"this kernel exposes no BTF ({path} is missing): falcopy's CO-RE probe needs a kernel "
            "built with CONFIG_DEBUG_INFO_BTF=y (Linux 5.8 or later; in Kubernetes, mount the host's "
            "/sys/kernel/btf into the agent)"
        )


def check_bpf_object(path: Path) -> None:
    if not path.is_file():
        raise StartupError(
            f"the BPF object {path} is missing: build it with `make bpf` in the source tree "
            "(or reinstall falcopy)"
        )


def check_capture(bpf_object: Path) -> None:
    """Everything :class:`~falcopy.agent.kernel.probe.Probe` needs, cheapest first."""
    check_bpf_object(bpf_object)
    check_capabilities()
    check_btf()


def port_in_use_error(what: str, address: str, port: int, key: str, exc: OSError) -> StartupError | None:
    """A clear error for a listener that cannot bind; None for other OS errors."""
    if exc.errno != errno.EADDRINUSE:
        return None
    hint = " (Falco's web server uses 8765: is Falco running on this node?)" if port == 8765 else ""
    return StartupError(
        f"{what} cannot listen on {address}:{port}: the port is already in use{hint}; "
        f"choose another with -o {key}=PORT or stop the process that holds it"
    )
