"""Settings of the audit webhook.

The agent passes its ``falcopy.k8s_audit`` config section (same attribute
names); :class:`AuditWebhookConfig` is the stand-alone equivalent used by
tests and tools.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class WebhookSettings(Protocol):
    listen_address: str
    listen_port: int
    path: str
    ssl_enabled: bool
    ssl_certificate: str
    ssl_key: str
    max_body_bytes: int


@dataclass
class AuditWebhookConfig:
    listen_address: str = "0.0.0.0"
    #: where Falco's k8saudit plugin listens, so existing API server
    #: configurations keep working
    listen_port: int = 9765
    path: str = "/k8s-audit"
    ssl_enabled: bool = False
    #: PEM certificate chain; may also hold the key when ``ssl_key`` is empty
    ssl_certificate: str = ""
    ssl_key: str = ""
    #: CA bundle to verify API server client certificates; empty = no client auth
    ssl_client_ca: str = ""
    max_body_bytes: int = 16 << 20
    #: value of ``ka.cluster.name``
    cluster_name: str | None = None
