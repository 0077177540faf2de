"""`falcopy kernel-filter -r RULES`: the derived filter, readable and as JSON."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from falcopy.cli import main


def test_prints_the_filter_of_the_stable_rules(compat_dir: Path) -> None:
    rules = str(compat_dir / "falco_rules.yaml")
    res = CliRunner().invoke(main, ["kernel-filter", "-r", rules, "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    types = {t["type"]: t for t in report["types"]}
    assert types["execve"]["verdict"] == "pass" and "process lifecycle" in types["execve"]["why"][0]
    openat = types["openat"]
    assert openat["verdict"] == "filter" and any("/etc/shadow" in c for c in openat["clauses"])
    assert types["close"]["state"] and types["close"]["clauses"] == []
    assert report["fd_interest"] == []

    text = CliRunner().invoke(main, ["kernel-filter", "-r", rules])
    assert text.exit_code == 0, text.output
    assert "openat        filtered: passes if one of" in text.output
    assert ("close         state: passes unless it acts on an fd user space never saw; then dropped"
            in text.output)
    assert "init_module   pass: rule 'Linux Kernel Module Injection Detected'" in text.output


def test_bad_rules_file_is_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("- rule: x\n  condition: evt.type = open and (\n"
                   "  output: o\n  priority: INFO\n  desc: d\n")
    res = CliRunner().invoke(main, ["kernel-filter", "-r", str(bad)])
    assert res.exit_code != 0
    assert "bad.yaml" in res.output
