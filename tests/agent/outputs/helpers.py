"""Shared test helpers for the outputs tests: alerts and a falcosidekick payload check."""

from __future__ import annotations

import json
import re
from typing import Any

from falcopy.agent.control.config import AgentConfig, load_config
from falcopy.agent.outputs.alert import Alert

PRIORITIES = {
    "emergency",
    "alert",
    "critical",
    "error",
    "warning",
    "notice",
    "informational",
    "info",
    "debug",
}
RFC3339_NS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")


def make_alert(n: int = 0, rule: str = "Read sensitive file", priority: str = "Warning") -> Alert:
    return Alert(
        ts=1_781_085_600_123_456_789 + n,
        rule=rule,
        priority=priority,
        message=f"Sensitive file opened (file=/etc/shadow proc.name=cat n={n})",
        output_fields={
            "evt.time": 1_781_085_600_123_456_789 + n,
            "fd.name": "/etc/shadow",
            "proc.name": "cat",
            "k8s.pod.name": None,
            "n": n,
        },
        tags=["filesystem", "T1555", "mitre_credential_access"],
        source="syscall",
        hostname="node-1",
    )


def check_falcosidekick_payload(body: bytes, alert: Alert) -> dict[str, Any]:
    """The checks falcosidekick's handler makes (types.FalcoPayload + checkPayload), field by field."""
    doc = json.loads(body)
    assert "uuid" not in doc  # falcosidekick adds it
    assert set(doc) == {"time", "rule", "priority", "output", "output_fields", "tags", "hostname", "source"}
    assert doc["priority"].lower() in PRIORITIES and doc["priority"] == alert.priority
    assert doc["rule"] == alert.rule and doc["rule"]
    assert RFC3339_NS.match(doc["time"]), doc["time"]
    assert isinstance(doc["output_fields"], dict) and doc["output_fields"]
    assert doc["output_fields"] == alert.output_fields
    assert doc["tags"] == sorted(alert.tags)
    assert doc["hostname"] == alert.hostname
    assert doc["source"] == alert.source
    assert doc["output"].endswith(f": {alert.priority} {alert.message}")
    return doc


def config(*overrides: str) -> AgentConfig:
    """A configuration built through -o overrides; every sink off unless asked for."""
    base = [
        "stdout_output.enabled=false",
        "syslog_output.enabled=false",
        "json_output=true",
        "output_timeout=300",
        "http_output.retry_backoff_ms=20",
    ]
    return load_config(None, [*base, *overrides])
