"""A rule reading a field that never has a value in the running configuration says so:
one LOAD_UNAVAILABLE_FIELD warning per rule naming the rule, each such field and why,
from the real `falcopy validate` and in the log of the real `falcopy agent`."""

from __future__ import annotations

from pathlib import Path

from tests.agent.control.validate_cli import falcopy, write_case

RULES = """\
- rule: jar in a write
  desc: the probe does not copy I/O buffers
  condition: evt.type = write and evt.buffer bcontains cafebabe and proc.name = fpjava
  output: "class file written (name=%fd.name async=%evt.asynctype)"
  priority: WARNING

- rule: to the api server
  desc: a DNS-named address
  condition: evt.type = connect and fd.sip.name = kubernetes.default.svc.cluster.local
  output: "api server (%fd.name)"
  priority: WARNING

- rule: plain
  desc: reads only fields with values
  condition: evt.type = connect and proc.name = fpnothing
  output: "%proc.name %fd.name"
  priority: WARNING
"""

BUFFER_WARNING = (
    "warning LOAD_UNAVAILABLE_FIELD: Rule reads field(s) that never have a value here, they read as "
    "<NA>: evt.asynctype (the probe produces no asynchronous events); evt.buffer (the probe does not "
    "copy I/O buffers (read/write payloads)) (rule 'jar in a write')")
DNS_WARNING = (
    "warning LOAD_UNAVAILABLE_FIELD: Rule reads field(s) that never have a value here, they read as "
    "<NA>: fd.sip.name (falcopy.dns.enabled is false) (rule 'to the api server')")


def test_validate_names_rule_field_and_reason(tmp_path: Path) -> None:
    rules, _ = write_case(tmp_path, RULES, "dns", "enabled", True)
    res = falcopy("validate", str(rules))
    assert res.returncode == 0, res.stdout + res.stderr
    lines = [line for line in res.stdout.splitlines() if "LOAD_UNAVAILABLE_FIELD" in line]
    assert lines == [f"{rules}:1:9: {BUFFER_WARNING}"]
    # the resolver switched off in the configuration: fd.sip.name joins the registry
    rules, config = write_case(tmp_path, RULES, "dns", "enabled", False)
    res = falcopy("validate", "-c", str(config), str(rules))
    assert res.returncode == 0, res.stdout + res.stderr
    lines = [line for line in res.stdout.splitlines() if "LOAD_UNAVAILABLE_FIELD" in line]
    assert lines == [f"{rules}:1:9: {BUFFER_WARNING}", f"{rules}:7:9: {DNS_WARNING}"]
    # informational: --strict (rules that can never fire) does not fail on them
    assert falcopy("validate", "--strict", "-c", str(config), str(rules)).returncode == 0


def test_agent_logs_each_once(tmp_path: Path) -> None:
    rules, config = write_case(tmp_path, RULES, "dns", "enabled", False)
    res = falcopy("agent", "-c", str(config), "-r", str(rules), "--dry-run")
    assert res.returncode == 0, res.stderr
    assert res.stderr.count("LOAD_UNAVAILABLE_FIELD") == 2, res.stderr
    assert BUFFER_WARNING.removeprefix("warning ") in res.stderr
    assert DNS_WARNING.removeprefix("warning ") in res.stderr


def test_workload_fields_without_the_collector(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("""\
- rule: deployment shell
  desc: reads the operator collector's workload metadata
  condition: evt.type = execve and k8smeta.deployment.name = web and k8s.ns.label[team] = a
  output: "%proc.name"
  priority: WARNING
""")
    res = falcopy("validate", str(rules))
    lines = [line for line in res.stdout.splitlines() if "LOAD_UNAVAILABLE_FIELD" in line]
    why = "falcopy.enrichment.k8smeta.enabled is false: no workload metadata from the operator's collector"
    assert lines == [f"{rules}:1:9: warning LOAD_UNAVAILABLE_FIELD: Rule reads field(s) that never have a "
                     f"value here, they read as <NA>: k8s.ns.label ({why}); k8smeta.deployment.name ({why}) "
                     "(rule 'deployment shell')"], res.stdout
