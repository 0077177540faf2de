"""Fixtures shared by the benchmarks."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def workload_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    assert cc, "a C compiler is needed to build the benchmark workloads"
    out = tmp_path_factory.mktemp("wl") / "workload"
    subprocess.run([cc, "-O2", "-o", str(out), str(HERE / "workload.c")], check=True)
    return out
