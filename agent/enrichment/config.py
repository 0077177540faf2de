"""Settings of the metadata sources, shaped like Falco's container plugin config.

Embeddable in the agent's falcopy.yaml model (e.g. under ``container_engines``
/ ``kubelet`` keys).  Socket paths are joined to ``host_root`` (``HOST_ROOT``
env, as Falco does) so that a DaemonSet that mounts the host at ``/host`` finds
``/host/var/run/docker.sock``.
"""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict, Field, model_validator

# the settings alone: the clients (httpx) are imported only where a source is started
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
DEFAULT_TOKEN_FILE = f"{SA_DIR}/token"
DEFAULT_CA_FILE = f"{SA_DIR}/ca.crt"


class EngineConfig(BaseModel):
    model_config = ConfigDict(defer_build=True)
    enabled: bool = True
    sockets: list[str] = Field(default_factory=list)


def _default_engines() -> dict[str, EngineConfig]:
    return {
        "docker": EngineConfig(sockets=["/var/run/docker.sock"]),
        "podman": EngineConfig(sockets=["/run/podman/podman.sock"]),
        # CRI (containerd, CRI-O): sockets are watched for presence only; pod
        # metadata on such nodes comes from the kubelet (see docs/enrichment.md)
        "cri": EngineConfig(sockets=[
            "/run/containerd/containerd.sock",
            "/run/crio/crio.sock",
            "/run/k3s/containerd/containerd.sock",
            "/run/host-containerd/containerd.sock",
        ]),
    }


class KubeletConfig(BaseModel):
    model_config = ConfigDict(defer_build=True)
    enabled: bool = True
    #: full URL of the pod list; default https://$NODE_IP:10250/pods (or $NODE_NAME)
    url: str | None = None
    token_file: str | None = DEFAULT_TOKEN_FILE
    ca_file: str | None = DEFAULT_CA_FILE
    #: skip TLS verification (kubelets with self-signed serving certificates)
    insecure: bool = False
    timeout_s: float = 5.0
    #: periodic refresh of the whole pod list
    refresh_s: float = 60.0
    #: an unknown container id triggers a refresh at most this often
    min_refresh_interval_s: float = 2.0


class K8sMetaConfig(BaseModel):
    """``enrichment.k8smeta`` in falcopy.yaml (the chart fills it when the collector is on)."""

    model_config = ConfigDict(defer_build=True)

    enabled: bool = False
    #: the operator's collector, e.g. https://falcopy-operator.falcopy.svc:8444
    url: str | None = None
    #: default $NODE_NAME (downward API)
    node_name: str | None = None
    token_file: str | None = DEFAULT_TOKEN_FILE
    #: CA of the collector's serving certificate (the chart's)
    ca_file: str | None = DEFAULT_CA_FILE
    #: skip TLS verification; never the default
    insecure: bool = False
    connect_timeout_s: float = 5.0
    #: no line (not even a bookmark) for this long: the link is dead, reconnect
    idle_timeout_s: float = 60.0
    retry_base_s: float = Field(0.5, gt=0)
    retry_cap_s: float = Field(30.0, gt=0)

    @model_validator(mode="after")
    def _url(self) -> K8sMetaConfig:
        if self.enabled and not self.url:
            raise ValueError("enrichment.k8smeta.url is required when k8smeta is enabled "
                             "(the operator's collector, e.g. https://falcopy-operator-collector.falcopy.svc:8444)")
        return self


class EnrichmentConfig(BaseModel):
    model_config = ConfigDict(defer_build=True)
    enabled: bool = True
    host_root: str = Field(default_factory=lambda: os.environ.get("HOST_ROOT", ""))
    engines: dict[str, EngineConfig] = Field(default_factory=_default_engines)
    kubelet: KubeletConfig = Field(default_factory=KubeletConfig)
    #: workload metadata (k8smeta.*, k8s.deployment.* ...) from the operator's collector
    k8smeta: K8sMetaConfig = Field(default_factory=K8sMetaConfig)
    runtime_timeout_s: float = 5.0
    #: retry backoff for a container whose lookup failed: base, doubling, cap
    retry_base_s: float = 0.5
    retry_cap_s: float = 30.0
    #: failed lookups of one container before it waits for the next sweep
    max_attempts: int = 8
    #: how often containers whose lookups all failed are tried again
    retry_sweep_s: float = 60.0
    #: follow the runtimes' event streams: prefetch running and starting containers
    watch_events: bool = True
    #: a destroyed container is dropped from the cache this long after its destroy event
    forget_after_s: float = 30.0
    #: how often an absent runtime socket is looked for again
    socket_poll_s: float = 5.0
    #: cached containers (oldest evicted first)
    max_entries: int = 8192

    def socket_paths(self, engine: str) -> list[str]:
        cfg = self.engines.get(engine)
        if cfg is None or not cfg.enabled:
            return []
        return [self._host_path(p) for p in cfg.sockets]

    def _host_path(self, path: str) -> str:
        if not self.host_root:
            return path
        return os.path.join(self.host_root, path.lstrip("/"))
