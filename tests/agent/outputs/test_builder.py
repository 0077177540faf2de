"""AlertBuilder with the real rule engine: append_output, suggested fields, priority threshold."""

from __future__ import annotations

import json

import pytest
from falcopy.agent.control.config import ConfigError, load_config
from falcopy.agent.outputs.builder import AlertBuilder
from falcopy.agent.outputs.format import AlertFormatter, FormatOptions

from falcopy.engine import RulesInput, default_sources, load_rules
from falcopy.engine.event import DictEvent

RULES = """
- rule: Read shadow
  desc: test
  condition: evt.type = openat and fd.name = /etc/shadow
  output: Sensitive file opened (file=%fd.name command=%proc.cmdline uid=%user.uid)
  priority: WARNING
  tags: [filesystem, mitre_credential_access]
- rule: Shell in container
  desc: test
  condition: evt.type = execve and proc.name = bash
  output: Shell (proc=%proc.name container=%container.id)
  priority: NOTICE
  tags: [container, shell]
- rule: Debug thing
  desc: test
  condition: evt.type = close
  output: closed %fd.name
  priority: DEBUG
"""

TS = 1_781_085_600_123_456_789


def _setup(*overrides: str):
    cfg = load_config(None, list(overrides))
    sources = default_sources()
    result = load_rules([RulesInput("test_rules.yaml", RULES)], sources=sources)
    assert result.ok, [str(e) for e in result.errors]
    return cfg, result.ruleset, AlertBuilder(cfg, result.ruleset, sources, hostname="node-1")


def _event(**values):
    base = {
        "evt.time": TS,
        "container.id": "host",
        "container.name": "host",
        "container.image.repository": "",
        "container.image.tag": "",
        "k8s.pod.name": None,
        "k8s.ns.name": None,
        "user.uid": 0,
    }
    base.update(values)
    return DictEvent(base, ts=TS)


def test_suggested_container_and_k8s_fields_like_falco() -> None:
    _, ruleset, builder = _setup()
    ev = _event(
        **{
            "evt.type": "openat",
            "fd.name": "/etc/shadow",
            "proc.cmdline": "cat /etc/shadow",
            "container.id": "8a98414f402c",
            "container.name": "web",
            "container.image.repository": "nginx",
            "container.image.tag": "1.27",
            "k8s.pod.name": "web-0",
            "k8s.ns.name": "prod",
        }
    )
    (rule,) = ruleset.evaluate(ev)
    alert = builder.build(rule, ev)
    assert alert is not None
    assert alert.message == (
        "Sensitive file opened (file=/etc/shadow command=cat /etc/shadow uid=0) container_id=8a98414f402c "
        "container_name=web container_image_repository=nginx container_image_tag=1.27 k8s_pod_name=web-0 "
        "k8s_ns_name=prod"
    )
    assert alert.output_fields == {
        "fd.name": "/etc/shadow",
        "proc.cmdline": "cat /etc/shadow",
        "user.uid": 0,
        "container.id": "8a98414f402c",
        "container.name": "web",
        "container.image.repository": "nginx",
        "container.image.tag": "1.27",
        "k8s.pod.name": "web-0",
        "k8s.ns.name": "prod",
        "evt.time": TS,
    }
    assert alert.priority == "Warning" and alert.tags == ["filesystem", "mitre_credential_access"]
    assert alert.source == "syscall" and alert.hostname == "node-1" and alert.ts == TS


def test_host_process_missing_k8s_fields_are_na_and_null() -> None:
    _, ruleset, builder = _setup("json_output=true")
    ev = _event(**{"evt.type": "openat", "fd.name": "/etc/shadow", "proc.cmdline": "cat /etc/shadow"})
    alert = builder.build(ruleset.evaluate(ev)[0], ev)
    assert alert.message.endswith(
        "container_id=host container_name=host container_image_repository= container_image_tag= "
        "k8s_pod_name=<NA> k8s_ns_name=<NA>"
    )
    doc = json.loads(AlertFormatter(FormatOptions(json_output=True)).json(alert))
    assert doc["output_fields"]["k8s.pod.name"] is None and doc["output_fields"]["container.id"] == "host"


def test_field_already_in_rule_output_not_repeated() -> None:
    _, ruleset, builder = _setup()
    ev = _event(**{"evt.type": "execve", "proc.name": "bash", "container.id": "abc123abc123"})
    alert = builder.build(ruleset.evaluate(ev)[0], ev)
    assert alert.message.count("abc123abc123") == 1
    assert "container_name=host" in alert.message


def test_append_output_extra_output_and_fields(monkeypatch) -> None:
    monkeypatch.setenv("CLUSTER", "prod-eu")
    _, ruleset, builder = _setup(
        "append_output[]={suggested_output: true}",
        'append_output[]={"match": {"tags": ["container", "shell"]}, "extra_output": "on %evt.type", '
        '"extra_fields": ["proc.name", {"cluster": "${CLUSTER}"}]}',
        'append_output[]={"match": {"rule": "Read shadow"}, "extra_output": "(shadow)"}',
        'append_output[]={"match": {"source": "k8s_audit"}, "extra_output": "never for syscall"}',
    )
    ev = _event(**{"evt.type": "execve", "proc.name": "bash", "container.id": "abc123abc123"})
    alert = builder.build(ruleset.evaluate(ev)[0], ev)
    # entries apply in their order: the suggested fields first, then this extra_output
    assert alert.message.startswith("Shell (proc=bash container=abc123abc123) container_name=host ")
    assert alert.message.endswith(" k8s_ns_name=<NA> on execve")
    assert "(shadow)" not in alert.message and "never" not in alert.message
    assert alert.output_fields["cluster"] == "prod-eu" and alert.output_fields["proc.name"] == "bash"
    assert alert.output_fields["evt.type"] == "execve"
    ev2 = _event(**{"evt.type": "openat", "fd.name": "/etc/shadow", "proc.cmdline": "cat"})
    a2 = builder.build(ruleset.evaluate(ev2)[0], ev2)
    assert "(shadow)" in a2.message and "cluster" not in a2.output_fields


def test_suggested_output_off() -> None:
    _, ruleset, builder = _setup("append_output=[]")
    ev = _event(**{"evt.type": "openat", "fd.name": "/etc/shadow", "proc.cmdline": "cat /etc/shadow"})
    alert = builder.build(ruleset.evaluate(ev)[0], ev)
    assert alert.message == "Sensitive file opened (file=/etc/shadow command=cat /etc/shadow uid=0)"
    assert set(alert.output_fields) == {"fd.name", "proc.cmdline", "user.uid", "evt.time"}


def test_priority_threshold_and_iso_time_field() -> None:
    _, ruleset, builder = _setup("priority=notice", "time_format_iso_8601=true")
    debug = _event(**{"evt.type": "close", "fd.name": "/x"})
    assert builder.build(ruleset.evaluate(debug)[0], debug) is None
    ev = _event(**{"evt.type": "openat", "fd.name": "/etc/shadow", "proc.cmdline": "cat"})
    alert = builder.build(ruleset.evaluate(ev)[0], ev)
    assert alert.output_fields["evt.time.iso8601"] == TS and "evt.time" not in alert.output_fields
    line = AlertFormatter(FormatOptions(iso8601=True)).text(alert)
    assert line.startswith("2026-06-10T10:00:00.123456789+0000: Warning Sensitive file opened")


def test_bad_extra_output_field_stops_start_up() -> None:
    cfg = load_config(
        None, ['append_output[]={"match": {"source": "syscall"}, "extra_output": "%nosuch.field"}']
    )
    result = load_rules([RulesInput("r.yaml", RULES)])
    with pytest.raises(ConfigError, match=r"append_output\[0\]: syscall: .*nosuch.field"):
        AlertBuilder(cfg, result.ruleset, default_sources(), hostname="h")


def test_falco_hostname_env(monkeypatch) -> None:
    monkeypatch.setenv("FALCO_HOSTNAME", "from-env")
    assert load_config(None).hostname() == "from-env"
