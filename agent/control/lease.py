"""The agent's side of the node-status Lease (contract: :mod:`falcopy.distribution.lease`)."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from typing import Any

from falcopy.distribution.lease import (
    ERROR_ANNOTATION,
    LEASE_PREFIX,
    LOADED_AT_ANNOTATION,
    STATUS_LABEL,
    VERSION_ANNOTATION,
)

log = logging.getLogger(__name__)


class LeaseReporter:
    """Run by the agent: keeps ``falcopy-agent-<node>`` renewed with what it loaded.

    Writes happen in a daemon thread (the agent's event path never waits on
    the API server); a failed write is retried on the next period."""

    def __init__(
        self,
        node: str,
        namespace: str,
        *,
        period: float = 30.0,
        api_factory: Callable[[], Any] | None = None,
    ) -> None:
        self.node = node
        self.namespace = namespace
        self.period = period
        self.name = LEASE_PREFIX + node
        self._api_factory = api_factory
        self._version = ""
        self._error = ""
        self._loaded_at = ""
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def loaded(self, version: str) -> None:
        self._version = version
        self._error = ""
        self._loaded_at = dt.datetime.now(dt.UTC).isoformat()
        self._wake.set()

    def failed(self, error: str) -> None:
        self._error = error[:1000]
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="falcopy-lease", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        from kubernetes import client

        from falcopy.distribution.kube import api_client

        api = client.CoordinationV1Api((self._api_factory or api_client)())
        while not self._stop.is_set():
            try:
                self.write(api)
            except Exception as exc:  # the API server may be briefly away; retry next period
                log.warning("cannot update lease %s/%s: %s", self.namespace, self.name, exc)
            self._wake.wait(self.period)
            self._wake.clear()

    def body(self) -> Any:
        from kubernetes import client

        return client.V1Lease(
            metadata=client.V1ObjectMeta(
                name=self.name,
                namespace=self.namespace,
                labels={STATUS_LABEL: "true", "app.kubernetes.io/part-of": "falcopy"},
                annotations={
                    VERSION_ANNOTATION: self._version,
                    ERROR_ANNOTATION: self._error,
                    LOADED_AT_ANNOTATION: self._loaded_at,
                },
            ),
            spec=client.V1LeaseSpec(
                holder_identity=self.node,
                lease_duration_seconds=int(self.period * 3),
                renew_time=dt.datetime.now(dt.UTC),
            ),
        )

    def write(self, api: Any) -> None:
        from kubernetes.client.exceptions import ApiException

        body = self.body()
        try:
            api.replace_namespaced_lease(self.name, self.namespace, body)
        except ApiException as exc:
            if exc.status != 404:
                raise
            api.create_namespaced_lease(self.namespace, body)
