"""`make install` puts a working `falcopy` on PATH."""

from __future__ import annotations

import subprocess
from pathlib import Path

from falcopy import __version__


def test_make_install_links_a_working_command(tmp_path: Path, repo_root: Path) -> None:
    res = subprocess.run(["make", "-C", str(repo_root), "install", f"PREFIX={tmp_path}"],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    exe = tmp_path / "bin" / "falcopy"
    out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=60, cwd="/")
    assert out.returncode == 0 and f"falcopy version:      {__version__}" in out.stdout
