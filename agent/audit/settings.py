"""Settings of the audit webhook: the ``falcopy.k8s_audit`` section of the agent's
configuration, also built directly by tests and tools."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from falcopy.common.validation import UrlPath


class AuditWebhookConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)

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
    #: value of ``ka.cluster.name``
    cluster_name: str | None = None
