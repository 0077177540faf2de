"""Fixtures of the enrichment tests: docker images, TLS material, a kubelet token."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agent.enrichment.standins import TlsMaterial, make_tls_material
from tests.images import busybox_image, nginx_image, require_docker


@pytest.fixture(scope="session")
def docker_images() -> dict[str, str]:
    """Fails loudly when docker is not running (CI starts it)."""
    require_docker()
    return {"nginx": nginx_image(), "busybox": busybox_image()}


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    return make_tls_material(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def other_tls(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    """A second, unrelated CA: certificates it signs must be refused."""
    return make_tls_material(tmp_path_factory.mktemp("tls-other"), name="rogue")


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text("eyJhbGciOiJSUzI1NiJ9.falcopy-test-token\n")
    return path


@pytest.fixture
def enrichment_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.INFO, logger="falcopy.agent.enrichment")
    yield caplog


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "falcopy.agent.enrichment" and r.levelno >= logging.WARNING]
