"""Fixtures: the stand-in API server, a kubeconfig for it, the real kopf operator in a thread."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from falcopy.operator.app import run_operator
from falcopy.operator.k8smeta.collector import Collector, token_reviewer
from falcopy.operator.kube import Kube
from falcopy.operator.reconcile import State
from falcopy.operator.settings import OperatorSettings, WebhookSettings
from falcopy.operator.validate import Validator
from kubernetes import client, config
from ruamel.yaml import YAML

from tests.operator.fake_apiserver import FakeApiServer

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
RELEASE_NS = "falcopy"


def load_example(name: str) -> dict[str, Any]:
    return YAML(typ="safe").load((EXAMPLES / name).read_text())




@pytest.fixture
def apiserver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeApiServer]:
    server = FakeApiServer()
    server.start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps(server.kubeconfig()))
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    # not in a pod: make the in-cluster login fail fast and fall back to the kubeconfig
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    config.load_kube_config(str(kubeconfig))
    yield server
    server.stop()


@pytest.fixture
def api(apiserver: FakeApiServer) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(client.ApiClient())


class OperatorRun:
    def __init__(self, settings: OperatorSettings) -> None:
        self.settings = settings
        self.state = State(
            settings,
            Kube(client.ApiClient()),
            Validator.from_settings(settings),
        )
        #: the metadata collector, when the settings turn it on (its index is inspectable)
        api = client.ApiClient()
        self.collector = (Collector(settings.collector, token_reviewer(api), api)
                          if settings.collector is not None else None)
        self.stop_flag = threading.Event()
        self.ready_flag = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="operator", daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(
                run_operator(
                    self.settings, state=self.state, stop_flag=self.stop_flag, ready_flag=self.ready_flag,
                    collector=self.collector,
                )
            )
        except BaseException as exc:  # reported by the fixture
            self.error = exc

    def start(self) -> OperatorRun:
        self.thread.start()
        assert self.ready_flag.wait(20), f"operator not ready: {self.error!r}"
        return self

    def stop(self) -> None:
        self.stop_flag.set()
        # generous: kopf's cleanup handlers and the collector's streams finish slowly when
        # other suites load the shared machine
        self.thread.join(60)
        if self.thread.is_alive():
            frame = sys._current_frames().get(self.thread.ident or 0)
            where = "".join(traceback.format_stack(frame)) if frame is not None else "?"
            raise AssertionError(f"operator did not stop within 60 s; its thread is at:\n{where}")


@pytest.fixture
def make_operator(apiserver: FakeApiServer) -> Iterator[Callable[..., OperatorRun]]:
    runs: list[OperatorRun] = []

    def make(**overrides: Any) -> OperatorRun:
        values: dict[str, Any] = {
            "namespace": RELEASE_NS,
            "default_rules": [REPO / "rules" / "falcopy_rules.yaml"],
            "resync": 0.5,
            "debounce": 0.05,
            "node_ttl": 30,
        }
        values.update(overrides)
        run = OperatorRun(OperatorSettings.model_validate(values)).start()
        runs.append(run)
        return run

    yield make
    for run in runs:
        if run.thread.is_alive():
            run.stop()
        assert run.error is None, f"operator crashed: {run.error!r}"


def insecure_webhook(port: int) -> WebhookSettings:
    return WebhookSettings(host="127.0.0.1", port=port, insecure=True)
