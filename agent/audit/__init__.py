"""Kubernetes audit events: the API server's webhook backend posts here.

``AuditWebhook(config, on_event)`` serves the endpoint (Falco's k8saudit
plugin defaults: port 9765, path ``/k8s-audit``); every accepted audit Event
becomes a :class:`falcopy.engine.fields.k8s_audit.AuditEvent` handed to
``on_event`` on the evaluation worker, which evaluates the ``k8s_audit`` rules.
"""

from __future__ import annotations

import importlib
from typing import Any

#: the package's names and their modules, imported when first used: the agent's
#: configuration needs only ``settings``, and the webhook brings aiohttp (~0.35 s) which the
#: agent imports after its capture has started
_EXPORTS = {
    "AuditDecodeError": "decode", "decode_body": "decode", "iter_body": "decode",
    "AuditWebhookConfig": "settings",
    "WebhookStats": "stats", "WebhookStatsCollector": "stats",
    "AuditWebhook": "webhook",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


__all__ = [
    "AuditDecodeError",
    "AuditWebhook",
    "AuditWebhookConfig",
    "WebhookStats",
    "WebhookStatsCollector",
    "decode_body",
    "iter_body",
]
