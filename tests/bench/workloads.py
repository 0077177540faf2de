"""The C syscall workloads of the benchmarks (workload.c), built once per session."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent


def build_workload(out_dir: Path) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    assert cc, "a C compiler is needed to build the benchmark workloads"
    out = out_dir / "workload"
    subprocess.run([cc, "-O2", "-o", str(out), str(HERE / "workload.c")], check=True)
    return out


def workload_rate_and_cost(binary: Path, mode: str, seconds: float, *extra: str) -> tuple[float, float]:
    """(operations per wall second, CPU ns per operation incl. the kernel's work).

    The CPU cost per operation is the robust number on a shared 2-core machine:
    the probe's programs run in the workload's context, so they show up in its
    system time, while other tenants' load mostly shows up as lost wall time."""
    proc = subprocess.Popen([str(binary), mode, str(seconds), *extra], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0
    ops = int(out.strip())
    return ops / seconds, (usage.ru_utime + usage.ru_stime) * 1e9 / ops
