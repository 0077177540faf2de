"""Operator settings (CLI flags and FALCOPY_OPERATOR_* environment; the chart sets them)."""

from __future__ import annotations

from pathlib import Path

from falcopy.operator.bundle import CONFIGMAP_LIMIT
from pydantic import BaseModel, Field, model_validator

from falcopy.distribution.lease import STATUS_LABEL
from falcopy.distribution.shipped import shipped_rules


def packaged_rules() -> list[Path]:
    return shipped_rules(Path("/etc/falcopy/rules"))


class WebhookSettings(BaseModel):
    host: str = "0.0.0.0"
    port: int = Field(8443, ge=0, le=65535)
    certfile: Path | None = None
    pkeyfile: Path | None = None
    #: plain HTTP (tests, or TLS terminated elsewhere); never the default
    insecure: bool = False

    @model_validator(mode="after")
    def _tls(self) -> WebhookSettings:
        if not self.insecure and (self.certfile is None or self.pkeyfile is None):
            raise ValueError("the admission webhook needs certfile and pkeyfile (or insecure for plain HTTP)")
        return self


class LeaderSettings(BaseModel):
    """Leader election between replicas (falcopy.operator.leader)."""

    enabled: bool = True
    #: the Lease in the release namespace
    lease: str = "falcopy-operator-leader"
    #: a holder that has not renewed for this long is replaced
    duration: float = Field(15.0, gt=0)
    #: the holder stops writing when it could not renew for this long (< duration)
    renew_deadline: float = Field(10.0, gt=0)
    #: how often the holder renews and a candidate tries
    retry: float = Field(2.0, gt=0)

    @model_validator(mode="after")
    def _order(self) -> LeaderSettings:
        if not self.retry < self.renew_deadline < self.duration:
            raise ValueError("leader election needs retry < renew_deadline < duration")
        return self


class CollectorSettings(BaseModel):
    """The Kubernetes metadata collector (docs/enrichment.md, "Workload metadata")."""

    host: str = "0.0.0.0"
    port: int = Field(8444, ge=0, le=65535)
    certfile: Path | None = None
    keyfile: Path | None = None
    #: plain HTTP (tests, or TLS terminated elsewhere); never the default
    insecure: bool = False
    #: service accounts (``system:serviceaccount:<ns>:<name>``) whose tokens may subscribe
    agents: list[str] = Field(default_factory=list)
    #: a bookmark line on an idle stream this often (agents treat 3 missed ones as a dead link)
    heartbeat_s: float = Field(15.0, gt=0)
    #: lines kept per node for resuming subscribers; an older resume point gets a snapshot
    backlog: int = Field(1024, ge=1)
    #: every kind is listed again this often, dropping objects a watch gap lost the deletion of
    relist_s: float = Field(300.0, gt=0)

    @model_validator(mode="after")
    def _tls(self) -> CollectorSettings:
        if not self.insecure and (self.certfile is None or self.keyfile is None):
            raise ValueError("the k8smeta collector needs certfile and keyfile (or insecure for plain HTTP)")
        if not self.agents:
            raise ValueError("the k8smeta collector needs the agents' service account (agents)")
        return self


class Quotas(BaseModel):
    """What the FalcoRules of one namespace may spend, together (0: no limit)."""

    #: bytes of rendered rules files
    bytes: int = Field(128 * 1024, ge=0)
    #: rules
    rules: int = Field(200, ge=0)
    #: regex / glob / iglob checks (the costly operators), in conditions and exceptions
    patterns: int = Field(50, ge=0)


class OperatorSettings(BaseModel):
    #: the release namespace: rule ConfigMaps and agent Leases live here
    namespace: str = "falcopy"
    configmap_prefix: str = "falcopy-rules"
    shards: int = Field(4, ge=1, le=64)
    #: bytes of keys + values per ConfigMap; the API server's limit is 1 MiB
    shard_budget: int = Field(900 * 1024, ge=4096, le=CONFIGMAP_LIMIT)
    default_rules: list[Path] = Field(default_factory=packaged_rules)
    allow_default_overrides: bool = False
    #: agents' Leases (see falcopy.operator.nodes)
    lease_selector: str = f"{STATUS_LABEL}=true"
    #: an agent whose Lease was not renewed for this long no longer counts
    node_ttl: float = Field(90.0, gt=0)
    #: how often node counts are refreshed
    resync: float = Field(10.0, gt=0)
    #: a burst of changes is published once no change came for this long ...
    debounce: float = Field(0.1, ge=0)
    #: ... or this long after its first change, whichever comes first (bounds the delay)
    max_delay: float = Field(0.5, ge=0)
    #: a status whose only change is its node count is written at most this often
    status_period: float = Field(5.0, ge=0)
    leader: LeaderSettings = Field(default_factory=lambda: LeaderSettings())
    webhook: WebhookSettings | None = None
    #: the Kubernetes metadata collector; None: off
    collector: CollectorSettings | None = None
    #: per-namespace limits for FalcoRules
    quotas: Quotas = Field(default_factory=Quotas)
    #: share of the rules ConfigMaps' capacity that only ClusterFalcoRules may use
    cluster_reserve: float = Field(0.25, ge=0, le=1)
    #: let a FalcoRule take the first-match slot from cluster rules for its namespace's events
    tenant_precedence: bool = False
    #: seconds one validation (a reconcile pass's engine load, an admission check) may take
    validation_timeout: float = Field(10.0, gt=0)
    #: admission checks running at once; more wait (and count against the API server's timeout)
    admission_concurrency: int = Field(2, ge=1)

    @model_validator(mode="after")
    def _rules(self) -> OperatorSettings:
        if not self.default_rules:
            raise ValueError("no default rules found: pass --default-rules")
        return self
