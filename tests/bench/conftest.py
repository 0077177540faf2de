"""Fixtures shared by the benchmarks."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench.workloads import build_workload


@pytest.fixture(scope="module")
def workload_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_workload(tmp_path_factory.mktemp("wl"))
