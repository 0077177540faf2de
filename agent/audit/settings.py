"""Settings of the audit webhook: the ``falcopy.k8s_audit`` section of the agent's
configuration, also built directly by tests and tools."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from falcopy.common.validation import UrlPath


class AuditWebhookConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True, defer_build=True)

    enabled: bool = False
    listen_address: str = "0.0.0.0"
    #: where Falco's k8saudit plugin listens, so existing API server
    #: configurations keep working
    listen_port: int = Field(default=9765, ge=0, le=65535)
    path: UrlPath = "/k8s-audit"
    ssl_enabled: bool = False
    #: PEM certificate chain; may also hold the key when ``ssl_key`` is empty
    ssl_certificate: str = ""
    ssl_key: str = ""
    #: CA bundle verifying the API server's client certificate; empty = no client authentication
    ssl_client_ca: str = ""
    max_body_bytes: int = Field(default=16 << 20, gt=0)
    #: requests read or evaluated at once; more are answered 429 (the API server retries them)
    max_concurrent_requests: int = Field(default=8, gt=0)
    #: bytes of bodies being read or waiting for evaluation; more are answered 429
    max_pending_bytes: int = Field(default=64 << 20, gt=0)
    #: longest silence of a client while its headers or body are read (seconds)
    read_timeout_s: float = Field(default=10.0, gt=0)
    #: the whole body must arrive within this many seconds
    body_timeout_s: float = Field(default=60.0, gt=0)
    #: value of ``ka.cluster.name``
    cluster_name: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> AuditWebhookConfig:
        if self.ssl_client_ca and not self.ssl_enabled:
            raise ValueError("falcopy.k8s_audit.ssl_client_ca needs ssl_enabled: true "
                             "(client certificates are a TLS feature)")
        if self.max_pending_bytes < self.max_body_bytes:
            raise ValueError(f"falcopy.k8s_audit.max_pending_bytes ({self.max_pending_bytes}) must be at "
                             f"least max_body_bytes ({self.max_body_bytes}), or no full-size body fits")
        return self
