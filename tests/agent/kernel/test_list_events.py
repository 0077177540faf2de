"""`falcopy list-events` (Falco's --list-events), as root on this kernel: every event type
with its arguments and whether, and how, this system captures it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from falcopy.agent.kernel.syscalls import SyscallTable, kernel_syscall_names

pytestmark = pytest.mark.kernel

FALCOPY = Path(sys.executable).with_name("falcopy")
TRACEFS = Path("/sys/kernel/tracing")


def test_list_events_json() -> None:
    res = subprocess.run([str(FALCOPY), "list-events", "--json"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    events = {e["name"]: e for e in json.loads(res.stdout)}
    table = SyscallTable.build(kernel_syscall_names(TRACEFS))
    # every syscall of the architecture is listed, with its number
    for nr, name in table.names.items():
        assert events[name]["nr"] == nr
    read = events["read"]
    assert read["capture"] == "dedicated" and [a["name"] for a in read["args"]] == ["fd", "size"]
    assert events["pread"]["capture"] == "dedicated" and events["pread64"]["capture"] == "no"
    assert events["pread64"]["reason"] == "its events are named pread (Falco's name)"
    nanosleep = events["nanosleep"]
    assert nanosleep["capture"] == "generic"
    assert [a["name"] for a in nanosleep["args"]] == ["ID", "nativeID", "rqtp", "rmtp"]
    # the module syscalls: dedicated where the kernel has their tracepoints, generic here
    has_tp = (TRACEFS / "events" / "syscalls" / "sys_exit_init_module").is_dir()
    assert events["init_module"]["capture"] == ("dedicated" if has_tp else "generic")
    assert events["init_module"]["implemented"] is has_tp
    assert events["exit_group"]["capture"] == "no" and "never returns" in events["exit_group"]["reason"]
    assert events["chown32"]["capture"] == "no"  # a 32-bit name
    assert events["container"]["capture"] == "synthetic"
    for name in table.unnumbered:
        assert events[name]["capture"] == "no" and events[name]["implemented"] is True


def test_list_events_text() -> None:
    res = subprocess.run([str(FALCOPY), "list-events"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert "[dedicated] mprotect(int addr, int length, int prot)" in lines
    assert any(line.startswith("[no       ] rt_sigreturn()  # restoring the signal frame") for line in lines)
