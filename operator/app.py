"""The kopf operator: indexes, event triggers, the admission webhook, the reconcile task."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import kopf
from falcopy.operator.admission import Admission, ClientAwareWebhookServer
from falcopy.operator.crd import GROUP, KINDS, VERSION
from falcopy.operator.k8smeta.collector import Collector, token_reviewer
from falcopy.operator.kube import Kube, connection_info
from falcopy.operator.leader import LeaderElector
from falcopy.operator.model import RuleObject
from falcopy.operator.reconcile import State
from falcopy.operator.settings import OperatorSettings
from falcopy.operator.validate import Validator, admission_denial
from kubernetes import client

from falcopy.distribution.kube import api_client, load_config

log = logging.getLogger("falcopy.operator")

#: bytes of composed rules files kept in memory (about 30 KiB per 1 KiB file)
COMPOSE_MEMORY = 256 * 1024 * 1024
WEBHOOK_IDS = {kind: f"validate-{plural}" for kind, (plural, _, _) in KINDS.items()}


def _index(body: Any, **_: Any) -> dict[Any, RuleObject]:
    obj = RuleObject.from_body(body)
    return {obj.key: obj}


def build_registry(state: State, *, webhook: bool = False, collector: Collector | None = None
                   ) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        # the same credentials as the kubernetes client the reconciler uses
        return kopf.ConnectionInfo(**connection_info(load_config()))

    @kopf.on.startup(registry=registry)
    async def startup(settings: kopf.OperatorSettings, **kwargs: Any) -> None:
        state.indexes = [kwargs[f"{plural}_index"] for plural, _, _ in KINDS.values()]
        loop = asyncio.get_running_loop()
        lead = state.settings.leader
        if lead.enabled and state.leader is None:
            state.leader = LeaderElector(
                client.CoordinationV1Api(api_client()),
                state.settings.namespace,
                lead.lease,
                duration=lead.duration,
                renew_deadline=lead.renew_deadline,
                retry=lead.retry,
            )
            election = state.leader.run(state.takeover, lambda: None)
            _tasks.add(loop.create_task(election, name="falcopy-leader"))
        _tasks.add(loop.create_task(state.run(), name="falcopy-reconcile"))

    @kopf.on.cleanup(registry=registry)
    async def cleanup(**_: Any) -> None:
        for task in list(_tasks):
            task.cancel()
        # the leader task releases the Lease as it ends: the other replica need not wait it out
        await asyncio.gather(*_tasks, return_exceptions=True)
        _tasks.clear()

    _tasks: set[asyncio.Task[None]] = set()
    if state.admission is None:
        state.admission = Admission(state, state.settings.admission_concurrency)
    admission = state.admission

    for kind, (plural, _, _) in KINDS.items():
        kopf.index(GROUP, VERSION, plural, id=f"{plural}_index", registry=registry)(_index)

        @kopf.on.event(GROUP, VERSION, plural, registry=registry)
        def changed(type: str | None, body: Any, **_: Any) -> None:
            deleting = bool(body.get("metadata", {}).get("deletionTimestamp"))
            state.changed(type, RuleObject.from_body(body), deleting)

        if not webhook:
            continue

        @kopf.on.validate(
            GROUP, VERSION, plural, id=WEBHOOK_IDS[kind], operations=["CREATE", "UPDATE"], registry=registry
        )
        async def admit(body: Any, **_: Any) -> None:
            candidate = RuleObject.from_body(body)
            verdict = await admission.check(candidate)
            if not verdict.valid:
                raise kopf.AdmissionError(admission_denial(candidate, verdict), code=422)

    if collector is not None:
        collector.register(registry)
    # The apiserver-side Lease changes are picked up by the periodic resync.
    return registry


def kopf_settings(settings: OperatorSettings) -> kopf.OperatorSettings:
    ks = kopf.OperatorSettings()
    # replicas elect a leader with a Lease of their own (falcopy.operator.leader): no KopfPeering
    ks.peering.standalone = True
    ks.posting.level = logging.WARNING
    ks.persistence.finalizer = f"{GROUP}/operator"
    ks.watching.server_timeout = 300
    if settings.webhook is not None:
        w = settings.webhook
        ks.admission.server = ClientAwareWebhookServer(
            addr=w.host,
            port=w.port,
            certfile=str(w.certfile) if w.certfile else None,
            pkeyfile=str(w.pkeyfile) if w.pkeyfile else None,
            insecure=w.insecure,
        )
        ks.admission.managed = None  # the chart owns the ValidatingWebhookConfiguration
    return ks


def build_state(settings: OperatorSettings) -> State:
    return State(settings, Kube(api_client()), Validator.from_settings(settings))


async def run_operator(
    settings: OperatorSettings,
    *,
    state: State | None = None,
    stop_flag: asyncio.Event | threading.Event | None = None,
    ready_flag: asyncio.Event | threading.Event | None = None,
    collector: Collector | None = None,
) -> None:
    """``collector``: the metadata collector to run (default: from ``settings.collector``)."""
    state = state or build_state(settings)
    if collector is None and settings.collector is not None:
        api = api_client()
        collector = Collector(settings.collector, token_reviewer(api), api)
    await kopf.operator(
        registry=build_registry(state, webhook=settings.webhook is not None, collector=collector),
        settings=kopf_settings(settings),
        clusterwide=True,
        standalone=True,
        stop_flag=stop_flag,
        ready_flag=ready_flag,
    )
