"""The per-rule ``aggregation`` / ``threshold`` keys: read, checked with positions, and still
loadable by real Falco's reader (which ignores unknown rule keys with a warning)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

import falcopy.engine.collector as collector
from falcopy.cli import main
from falcopy.engine.alert_keys import FALCOPY_RULE_KEYS, AggregationSpec, ThresholdSpec
from falcopy.engine.event import DictEvent

from .helpers import load, ruleset

RULES = """
- rule: etc sweep
  desc: many files below /etc opened by one process
  condition: evt.type in (open, openat) and fd.name startswith /etc/
  output: etc file opened (file=%fd.name proc=%proc.name pid=%proc.pid)
  priority: WARNING
  threshold:
    count: 20
    window: 10s
    group_by: [proc.pid]
    distinct: fd.name
- rule: shadow read
  desc: shadow
  condition: evt.type in (open, openat) and fd.name = /etc/shadow
  output: shadow read (file=%fd.name proc=%proc.name pid=%proc.pid)
  priority: WARNING
  aggregation:
    window: 1m30s
    key: [container.id, proc.exepath, fd.name]
- rule: noisy
  desc: never aggregated
  condition: evt.type = open and fd.name = /tmp/x
  output: x
  priority: NOTICE
  aggregation: false
"""


def test_keys_are_read_into_the_compiled_rules() -> None:
    rs = ruleset(RULES)
    by = {r.name: r for r in rs.rules}
    assert by["etc sweep"].threshold == ThresholdSpec(count=20, window=10.0, group_by=("proc.pid",),
                                                      distinct="fd.name")
    assert by["etc sweep"].aggregation is None
    assert by["shadow read"].aggregation == AggregationSpec(
        enabled=None, window=90.0, key=("container.id", "proc.exepath", "fd.name"))
    assert by["noisy"].aggregation == AggregationSpec(enabled=False)
    assert by["noisy"].threshold is None


def test_no_warning_for_falcopy_keys() -> None:
    res = load(RULES)
    assert res.ok and not res.warnings, [str(w) for w in res.warnings]


@pytest.mark.parametrize(("block", "line", "col", "message"), [
    ("  threshold:\n    count: 0\n    window: 10s\n", 7, 12, "'threshold.count' must be an integer >= 1"),
    ("  threshold:\n    count: 5\n    window: -3s\n", 8, 13, "'threshold.window'"),
    ("  threshold:\n    count: 5\n", 7, 5, "'threshold' needs 'window'"),
    ("  threshold:\n    count: 5\n    window: 1s\n    per: [proc.pid]\n", 9, 10,
     "unknown key 'threshold.per'"),
    ("  threshold:\n    count: 5\n    window: 1s\n    distinct: fd.nme\n", 9, 15,
     "'fd.nme' is not a supported field (threshold.distinct)"),
    ("  aggregation:\n    key: []\n", 7, 10, "'aggregation.key' must be a non-empty list of field names"),
    ("  aggregation:\n    key: [proc.nam]\n", 7, 10, "'proc.nam' is not a supported field (aggregation.key)"),
    ("  aggregation:\n    enabled: maybe\n", 7, 14, "'aggregation.enabled' must be true or false"),
    ("  aggregation: 5\n", 6, 16, "'aggregation' must be a mapping"),
])
def test_bad_values_are_errors_with_position(block: str, line: int, col: int, message: str) -> None:
    text = ("- rule: r\n  desc: d\n  condition: evt.type = open\n  output: o %fd.name\n  priority: INFO\n"
            + block)
    res = load(text)
    assert not res.ok
    (err,) = res.errors
    assert message in err.message, str(err)
    assert (err.file, err.line, err.column) == ("test.yaml", line, col), str(err)
    assert "rule 'r'" in str(err) or err.item_name == "r"


def test_override_item_replaces_the_setting() -> None:
    rs = ruleset(RULES + """
- rule: shadow read
  override:
    priority: replace
  priority: ERROR
  aggregation:
    enabled: true
    window: 5s
""")
    rule = next(r for r in rs.rules if r.name == "shadow read")
    assert rule.aggregation == AggregationSpec(enabled=True, window=5.0)
    assert rule.aggregation_key is None


def _falco_rule_keys(reference: Path) -> set[str]:
    for line in reference.read_text().splitlines():
        if line.startswith("| `- rule: NAME`"):
            cell = line.split("|")[2]
            return set(re.findall(r"[\w-]+", cell))
    raise AssertionError("rule keys row not found in the Falco reference")


def test_falco_reader_loads_the_file_with_unknown_key_warnings(compat_dir: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Falco's reader knows exactly the reference's rule keys; ours knows those plus ours.
    Without ours it is Falco's: the file still loads, with LOAD_UNKNOWN_KEY warnings only."""
    falco_keys = _falco_rule_keys(compat_dir.parent / "falco-reference.md")
    assert set(collector.RULE_KEYS) == falco_keys
    assert not FALCOPY_RULE_KEYS & falco_keys

    monkeypatch.setattr(collector, "FALCOPY_RULE_KEYS", frozenset())
    res = load(RULES)
    assert res.ok, [str(e) for e in res.errors]
    assert {(w.code, w.message) for w in res.warnings} == {
        ("LOAD_UNKNOWN_KEY", "Unknown key 'threshold'. The key will be ignored."),
        ("LOAD_UNKNOWN_KEY", "Unknown key 'aggregation'. The key will be ignored."),
    }
    assert all(r.threshold is None and r.aggregation is None for r in res.ruleset.rules)


def test_validate_command_checks_the_keys(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(RULES)
    res = CliRunner().invoke(main, ["validate", str(good)])
    assert res.exit_code == 0 and "0 errors, 0 warnings" in res.stdout, res.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(RULES.replace("count: 20", "count: twenty"))
    res = CliRunner().invoke(main, ["validate", str(bad)])
    assert res.exit_code == 1
    assert (f"{bad}:8:12: error LOAD_ERR_YAML_VALIDATE: 'threshold.count' must be an integer >= 1, "
            "got 'twenty' (rule 'etc sweep')") in res.stdout, res.stdout


def test_a_threshold_rule_does_not_hide_a_later_rule_with_first_matching() -> None:
    rs = ruleset(RULES + """
- rule: shadow again
  desc: a later rule on the same event
  condition: evt.type = openat and fd.name = /etc/shadow
  output: x
  priority: ERROR
""")
    names = [r.name for r in rs.evaluate(DictEvent({"evt.type": "openat", "fd.name": "/etc/shadow"}))]
    assert names == ["etc sweep", "shadow read"]  # counted, then the first plain match ends the scan
    names = [r.name for r in rs.evaluate(DictEvent({"evt.type": "openat", "fd.name": "/etc/hosts"}))]
    assert names == ["etc sweep"]
