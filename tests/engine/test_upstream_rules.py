"""Falco's shipped rules files load unmodified: 0 errors, every rule compiled."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from falcopy.cli import main
from falcopy.engine import load_rules_files

SYSCALL_FILES = ("falco_rules.yaml", "falco-incubating_rules.yaml", "falco-sandbox_rules.yaml")


def _rule_names(path: Path) -> list[str]:
    return [line.split(":", 1)[1].strip() for line in path.read_text().splitlines()
            if line.startswith("- rule:")]


def test_stable_incubating_sandbox_validate(compat_dir: Path) -> None:
    paths = [compat_dir / f for f in SYSCALL_FILES]
    result = load_rules_files(paths)
    assert result.errors == []
    assert result.warnings == []
    assert result.ruleset is not None
    names = [n for p in paths for n in _rule_names(p)]
    assert [r.name for r in result.ruleset.rules] == names       # every rule compiled, in order
    assert result.counts == {"rules": 93, "macros": 315, "lists": 118}
    # the kernel-side filter: stable+incubating+sandbox rules all restrict their event types
    types = result.ruleset.evttypes("syscall")
    assert types is not None and {"execve", "openat", "connect", "ptrace"} <= types
    assert all(r.evttypes is not None for r in result.ruleset.rules)


def test_k8s_audit_rules_validate(compat_dir: Path) -> None:
    path = compat_dir / "k8s_audit_rules.yaml"
    result = load_rules_files([path])
    assert result.errors == [] and result.warnings == []
    assert result.ruleset is not None
    assert [r.name for r in result.ruleset.rules] == _rule_names(path)
    assert {r.source for r in result.ruleset.rules} == {"k8s_audit"}


def test_deprecated_rules_validate_with_evt_dir_warnings(compat_dir: Path) -> None:
    result = load_rules_files([compat_dir / "falco-deprecated_rules.yaml"])
    assert result.ok
    assert {w.code for w in result.warnings} == {"LOAD_DEPRECATED_ITEM"}


def test_cli_validate_upstream(compat_dir: Path) -> None:
    res = CliRunner().invoke(main, ["validate", *[str(compat_dir / f) for f in SYSCALL_FILES]])
    assert res.exit_code == 0, res.output
    assert res.output.splitlines()[-2:] == [
        "93 rules compiled", "valid: 93 rules, 315 macros, 118 lists; 0 errors, 1 warnings"]
    # the one warning: a sandbox rule reads I/O buffers, which the probe does not copy
    warned = [line for line in res.output.splitlines() if ": warning " in line]
    assert len(warned) == 1 and "LOAD_UNAVAILABLE_FIELD" in warned[0] and "evt.buffer" in warned[0], warned
    res = CliRunner().invoke(main, ["validate", "--json", str(compat_dir / "k8s_audit_rules.yaml")])
    assert res.exit_code == 0
    assert '"successful": true' in res.output


def test_cli_list_rules_and_fields(compat_dir: Path) -> None:
    res = CliRunner().invoke(main, ["list-rules", "-r", str(compat_dir / "falco_rules.yaml")])
    assert res.exit_code == 0
    assert "Terminal shell in container" in res.output
    res = CliRunner().invoke(main, ["list-fields", "--source", "syscall"])
    assert res.exit_code == 0 and "proc.aname[...]" in res.output
    res = CliRunner().invoke(main, ["list-fields", "--source", "k8s_audit", "--format", "markdown"])
    assert res.exit_code == 0 and "| `ka.verb` |" in res.output


def test_directories_expand_to_sorted_yaml_files_and_missing_files_fail(tmp_path: Path) -> None:
    d = tmp_path / "rules.d"
    d.mkdir()
    (d / "20-second.yaml").write_text("- rule: r\n  enabled: false\n")
    (d / "10-first.yml").write_text("- rule: r\n  desc: d\n  condition: evt.type=open\n  output: o\n"
                                    "  priority: INFO\n")
    (d / "notes.txt").write_text("not rules")
    result = load_rules_files([d])
    assert result.ok and result.ruleset is not None
    assert result.names == [str(d / "10-first.yml"), str(d / "20-second.yaml")]
    assert result.ruleset.rules[0].enabled is False
    missing = load_rules_files([tmp_path / "nope.yaml"])
    assert [e.code for e in missing.errors] == ["LOAD_ERR_FILE_READ"]
    assert missing.errors[0].file == str(tmp_path / "nope.yaml")
