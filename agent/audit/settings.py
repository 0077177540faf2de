"""Settings of the audit webhook.

The agent passes its ``falcopy.k8s_audit`` config section (same attribute
names); :class:`AuditWebhookConfig` is the stand-alone equivalent used by
tests and tools.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

#: defaults (the agent's ``K8sAudit`` config section repeats them without importing this
#: package, which pulls in aiohttp; tests/audit checks that both agree)
MAX_BODY_BYTES = 16 << 20
MAX_CONCURRENT_REQUESTS = 8
MAX_PENDING_BYTES = 64 << 20
READ_TIMEOUT_S = 10.0
BODY_TIMEOUT_S = 60.0


class WebhookSettings(Protocol):
    listen_address: str
    listen_port: int
    path: str
    ssl_enabled: bool
    ssl_certificate: str
    ssl_key: str
    ssl_client_ca: str
    max_body_bytes: int
    max_concurrent_requests: int
    max_pending_bytes: int
    read_timeout_s: float
    body_timeout_s: float
    cluster_name: str | None


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
    max_body_bytes: int = MAX_BODY_BYTES
    #: requests read or evaluated at once; more get 429 (the API server retries)
    max_concurrent_requests: int = MAX_CONCURRENT_REQUESTS
    #: bytes of request bodies being read or waiting for evaluation; more get 429
    max_pending_bytes: int = MAX_PENDING_BYTES
    #: longest silence of a client while its headers or body are read
    read_timeout_s: float = READ_TIMEOUT_S
    #: the whole body must arrive within this many seconds
    body_timeout_s: float = BODY_TIMEOUT_S
    #: value of ``ka.cluster.name``
    cluster_name: str | None = None
