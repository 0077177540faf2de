"""Kubernetes audit events: the API server's webhook backend posts here.

``AuditWebhook(config, on_event)`` serves the endpoint (Falco's k8saudit
plugin defaults: port 9765, path ``/k8s-audit``); every accepted audit Event
becomes a :class:`falcopy.engine.fields.k8s_audit.AuditEvent` handed to
``on_event`` on the evaluation worker, which evaluates the ``k8s_audit`` rules.

The names below are imported on first use: the agent's configuration reads
:mod:`.settings` on every start, while the web server (aiohttp), the decoder and the
statistics are only needed when the webhook is enabled.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from falcopy.agent.audit.decode import AuditDecodeError, decode_body, iter_body
    from falcopy.agent.audit.settings import AuditWebhookConfig
    from falcopy.agent.audit.stats import WebhookStats, WebhookStatsCollector
    from falcopy.agent.audit.webhook import AuditWebhook

#: exported name -> the submodule that defines it
_WHERE = {
    "AuditDecodeError": "decode",
    "decode_body": "decode",
    "iter_body": "decode",
    "AuditWebhookConfig": "settings",
    "WebhookStats": "stats",
    "WebhookStatsCollector": "stats",
    "AuditWebhook": "webhook",
}

__all__ = [
    "AuditDecodeError", "AuditWebhook", "AuditWebhookConfig", "WebhookStats", "WebhookStatsCollector",
    "decode_body", "iter_body",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
