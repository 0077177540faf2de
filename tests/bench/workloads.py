"""The C syscall workloads of the benchmarks (workload.c), built once per session."""

from __future__ import annotations

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
