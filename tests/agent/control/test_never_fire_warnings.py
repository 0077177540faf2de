"""Rules that can never fire say so: a switched-off source, an unknown source, event types
this system cannot capture.  One warning per rule (file, line, rule name, reason) from the
real `falcopy validate` (errors with --strict) and in the log of the real `falcopy agent`."""

from __future__ import annotations

from pathlib import Path

from tests.agent.control.validate_cli import falcopy, write_case

RULES = """\
- rule: audit create
  desc: a k8s_audit rule
  condition: ka.verb = create
  output: "created %ka.target.name"
  priority: WARNING
  source: k8s_audit

- rule: cloudtrail login
  desc: a rule of a plugin source nobody loaded
  condition: ct.name = ConsoleLogin
  output: "login"
  priority: WARNING
  source: aws_cloudtrail

- rule: process ends by exit_group
  desc: exit_group never returns, so no exit event exists
  condition: evt.type = exit_group and proc.name = x
  output: "%evt.type"
  priority: WARNING

- rule: opens or signal deliveries
  desc: signaldeliver is not produced by falcopy, open is
  condition: evt.type in (open, signaldeliver)
  output: "%evt.type"
  priority: WARNING

- rule: io_uring set-up
  desc: captured (dedicated program)
  condition: evt.type = io_uring_setup
  output: "%evt.type"
  priority: WARNING
"""


def test_validate_warns_once_per_rule_that_can_never_fire(tmp_path: Path) -> None:
    rules, config = write_case(tmp_path, RULES, "k8s_audit", "enabled", False)
    res = falcopy("validate", "-c", str(config), str(rules))
    assert res.returncode == 0, res.stdout + res.stderr
    lines = [line for line in res.stdout.splitlines() if line.startswith(str(rules))]
    assert lines == [
        f"{rules}:1:9: warning LOAD_UNKNOWN_SOURCE: Unknown source k8s_audit, skipping: the rule can never "
        "fire (falcopy.k8s_audit.enabled is false) (rule 'audit create')",
        f"{rules}:8:9: warning LOAD_UNKNOWN_SOURCE: Unknown source aws_cloudtrail, skipping "
        "(rule 'cloudtrail login')",
        f"{rules}:15:9: warning LOAD_UNCAPTURABLE_EVTTYPE: Rule can never fire: event type(s) exit_group "
        "cannot be captured on this system (rule 'process ends by exit_group')",
        f"{rules}:21:9: warning LOAD_UNCAPTURABLE_EVTTYPE: Event type(s) signaldeliver cannot be captured "
        "on this system: the rule only fires on open (rule 'opens or signal deliveries')",
    ]
    assert "0 errors, 4 warnings" in res.stdout


def test_enabled_source_is_not_reported(tmp_path: Path) -> None:
    rules, config = write_case(tmp_path, RULES, "k8s_audit", "enabled", True)
    res = falcopy("validate", "-c", str(config), str(rules))
    assert "k8s_audit" not in res.stdout and "3 warnings" in res.stdout
    # Falco's --disable-source switches it off without a configuration file
    res = falcopy("validate", "--disable-source", "k8s_audit", str(rules))
    assert "Unknown source k8s_audit, skipping: the rule can never fire (--disable-source)" in res.stdout


def test_strict_makes_them_errors(tmp_path: Path) -> None:
    rules, config = write_case(tmp_path, RULES, "k8s_audit", "enabled", False)
    res = falcopy("validate", "--strict", "-c", str(config), str(rules))
    assert res.returncode == 1
    assert f"{rules}:15:9: error LOAD_UNCAPTURABLE_EVTTYPE: Rule can never fire" in res.stdout
    assert f"{rules}:1:9: error LOAD_UNKNOWN_SOURCE" in res.stdout
    assert "invalid:" in res.stdout and "4 errors, 0 warnings" in res.stdout
    res = falcopy("validate", "--strict", "--json", "-c", str(config), str(rules))
    assert res.returncode == 1 and '"successful": false' in res.stdout


def test_upstream_rules_have_no_such_warning(compat_dir: Path) -> None:
    files = [compat_dir / n for n in ("falco_rules.yaml", "falco-incubating_rules.yaml",
                                  "falco-sandbox_rules.yaml")]
    res = falcopy("validate", "--strict", *map(str, files))
    assert res.returncode == 0, res.stdout[-2000:]


def test_agent_logs_them(tmp_path: Path) -> None:
    rules, config = write_case(tmp_path, RULES, "k8s_audit", "enabled", False)
    res = falcopy("agent", "-c", str(config), "-r", str(rules), "--dry-run")
    assert res.returncode == 0, res.stderr
    assert ("LOAD_UNKNOWN_SOURCE: Unknown source k8s_audit, skipping: the rule can never fire "
            "(falcopy.k8s_audit.enabled is false) (rule 'audit create')") in res.stderr
    assert ("LOAD_UNCAPTURABLE_EVTTYPE: Rule can never fire: event type(s) exit_group cannot be captured "
            "on this system (rule 'process ends by exit_group')") in res.stderr
    assert "Unknown source aws_cloudtrail, skipping (rule 'cloudtrail login')" in res.stderr
    assert res.stderr.count("can never fire") == 2
