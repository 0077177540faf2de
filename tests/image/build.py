"""Build the falcopy image the way `make image` does: local debootstrap base, then the Dockerfile."""

from __future__ import annotations

import glob
import subprocess
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = "falcopy-base:bookworm"
IMAGE = "falcopy:dev"


def _run(cmd: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
        raise AssertionError(f"{' '.join(cmd[:3])}... failed ({proc.returncode}):\n{tail}")
    return proc


def local_ca_certs() -> str:
    """The build host's locally added CAs (a TLS-intercepting proxy's), for pip in the builder stage."""
    return "\n".join(Path(p).read_text() for p in sorted(glob.glob("/usr/local/share/ca-certificates/*.crt")))


def build_base() -> float:
    t0 = time.monotonic()
    _run(["bash", "scripts/build-base-image.sh", BASE_IMAGE], timeout=900)
    return time.monotonic() - t0


def build_image() -> float:
    t0 = time.monotonic()
    _run(["docker", "build", "--build-arg", f"BASE_IMAGE={BASE_IMAGE}",
          "--build-arg", f"EXTRA_CA_CERTS={local_ca_certs()}", "-t", IMAGE, "."], timeout=1500)
    return time.monotonic() - t0


def image_size(ref: str = IMAGE) -> int:
    out = _run(["docker", "image", "inspect", "--format", "{{.Size}}", ref], timeout=30)
    return int(out.stdout.strip())
