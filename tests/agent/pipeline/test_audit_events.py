"""k8s audit events take the same Pipeline as syscall events: the current ruleset, the
same alert callback, a failing callback counted instead of raised (the webhook's worker
must survive it), and a ruleset swap applies to the next audit event."""

from __future__ import annotations

from typing import Any

from falcopy.agent.pipeline import Pipeline
from falcopy.agent.state.table import ProcessTable

from falcopy.engine.fields.k8s_audit import AuditEvent
from tests.agent.audit.events import audit_event
from tests.engine.helpers import ruleset

RULE = """
- rule: {name}
  desc: d
  condition: ka.verb = delete and ka.target.resource = {resource}
  output: "%ka.verb %ka.target.resource %ka.target.name"
  priority: WARNING
  source: k8s_audit
"""


def _event(resource: str) -> AuditEvent:
    return AuditEvent(audit_event(verb="delete", resource=resource, name="x"))


def test_audit_event_alerts_through_the_pipeline_callback() -> None:
    alerts: list[tuple[str, Any]] = []
    pipe = Pipeline(ruleset(RULE.format(name="secret deleted", resource="secrets")), ProcessTable(),
                    on_alert=lambda rule, event: alerts.append((rule.name, event)))
    secret, pod = _event("secrets"), _event("pods")
    assert pipe.process_event(secret) == 1
    assert pipe.process_event(pod) == 0
    assert alerts == [("secret deleted", secret)]
    assert pipe.source_events["k8s_audit"] == 2
    assert pipe.events == 0  # the syscall event number is not advanced by another source

    pipe.set_ruleset(ruleset(RULE.format(name="pod deleted", resource="pods")))
    assert pipe.process_event(pod) == 1
    assert [name for name, _ in alerts] == ["secret deleted", "pod deleted"]


def test_failing_alert_callback_is_counted_not_raised() -> None:
    def broken(rule: Any, event: Any) -> None:
        raise RuntimeError("sink exploded")

    pipe = Pipeline(ruleset(RULE.format(name="r", resource="secrets")), ProcessTable(), on_alert=broken)
    assert pipe.process_event(_event("secrets")) == 1
    assert pipe.errors == 1


def test_no_ruleset_evaluates_nothing() -> None:
    pipe = Pipeline(None, ProcessTable(), on_alert=lambda rule, event: None)
    assert pipe.process_event(_event("secrets")) == 0
