"""Shared test fixtures: where the repository and ../shared are, root checks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / "shared"
COMPAT_DIR = SHARED_DIR / "compat"
FIXTURES_DIR = COMPAT_DIR / "fixtures" / "falco-0.35.1-test"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def compat_dir() -> Path:
    # The upstream files are laid beside the clone in CI: missing means a broken
    # set-up, which must fail loudly rather than skip.
    assert COMPAT_DIR.is_dir(), f"{COMPAT_DIR} is missing: the upstream compat files are required"
    return COMPAT_DIR


@pytest.fixture(scope="session")
def falco_fixtures_dir() -> Path:
    assert FIXTURES_DIR.is_dir(), f"{FIXTURES_DIR} is missing"
    return FIXTURES_DIR


@pytest.fixture(scope="session")
def require_root() -> None:
    assert os.geteuid() == 0, "this test needs root (CI runs as root)"
