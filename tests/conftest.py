"""Shared test fixtures: where the repository and ../shared are, root checks."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _origin_dir(repo: Path) -> Path | None:
    """The directory this clone was cloned from, when that is a local path."""
    try:
        url = subprocess.run(["git", "-C", str(repo), "config", "--get", "remote.origin.url"],
                             capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    if not url or ("://" in url and not url.startswith("file://")):
        return None
    path = Path(url.removeprefix("file://"))
    return path if path.is_absolute() else (repo / path).resolve()


def find_shared_dir(repo: Path) -> Path:
    """Where the upstream compat files lie: beside the repository.

    A clone made anywhere (``git clone . /tmp/ci``) still finds them beside the
    repository it was cloned from; ``FALCOPY_SHARED_DIR`` names them explicitly.
    """
    explicit = os.environ.get("FALCOPY_SHARED_DIR")
    if explicit:
        return Path(explicit)
    candidates = [repo.parent / "shared"]
    origin = _origin_dir(repo)
    if origin is not None:
        candidates.append(origin.parent / "shared")
    return next((c for c in candidates if c.is_dir()), candidates[0])


SHARED_DIR = find_shared_dir(REPO_ROOT)
COMPAT_DIR = SHARED_DIR / "compat"
FIXTURES_DIR = COMPAT_DIR / "fixtures" / "falco-0.35.1-test"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def compat_dir() -> Path:
    # The upstream files are laid beside the clone in CI: missing means a broken
    # set-up, which must fail loudly rather than skip.
    assert COMPAT_DIR.is_dir(), (f"{COMPAT_DIR} is missing: the upstream compat files are required"
                                 " (set FALCOPY_SHARED_DIR)")
    return COMPAT_DIR


@pytest.fixture(scope="session")
def falco_fixtures_dir() -> Path:
    assert FIXTURES_DIR.is_dir(), f"{FIXTURES_DIR} is missing"
    return FIXTURES_DIR


@pytest.fixture(scope="session")
def require_root() -> None:
    assert os.geteuid() == 0, "this test needs root (CI runs as root)"
