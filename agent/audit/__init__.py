"""Kubernetes audit events: the API server's webhook backend posts here.

``AuditWebhook(config, on_event)`` serves the endpoint (Falco's k8saudit
plugin defaults: port 9765, path ``/k8s-audit``); every accepted audit Event
becomes a :class:`falcopy.engine.fields.k8s_audit.AuditEvent` handed to
``on_event`` on the evaluation worker, which evaluates the ``k8s_audit`` rules.
"""

from falcopy.agent.audit.decode import AuditDecodeError, decode_body, iter_body
from falcopy.agent.audit.settings import AuditWebhookConfig
from falcopy.agent.audit.stats import WebhookStats, WebhookStatsCollector
from falcopy.agent.audit.webhook import AuditWebhook

__all__ = [
    "AuditDecodeError",
    "AuditWebhook",
    "AuditWebhookConfig",
    "WebhookStats",
    "WebhookStatsCollector",
    "decode_body",
    "iter_body",
]
