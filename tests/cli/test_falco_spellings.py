"""Falco's command-line spellings reach the same falcopy commands."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from falcopy import __version__
from falcopy.engine import load_rules_files
from falcopy.engine.versions import ENGINE_VERSION, FALCO_COMPAT_VERSION
from falcopy.falco_argv import translate

FALCOPY = Path(sys.executable).with_name("falcopy")
REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "rules" / "falcopy_rules.yaml"


@pytest.mark.parametrize(("falco", "falcopy"), [
    (["-V", "a.yaml", "-V", "b.yaml"], ["validate", "a.yaml", "b.yaml"]),
    (["--validate=a.yaml", "-o", "json_output=true"], ["validate", "--json", "a.yaml"]),
    (["-L", "-r", "r.yaml"], ["list-rules", "-r", "r.yaml"]),
    (["-l", "Some rule"], ["list-rules", "--rule", "Some rule"]),
    (["--list"], ["list-fields"]),
    (["--list", "k8s_audit", "--format", "markdown"],
     ["list-fields", "--source", "k8s_audit", "--format", "markdown"]),
    (["--list-events"], ["list-events"]),
    (["--version"], ["version"]),
    (["--support", "-c", "f.yaml"], ["support", "-c", "f.yaml"]),
    (["-c", "f.yaml", "-r", "r.yaml", "-o", "json_output=true", "-U"],
     ["agent", "-c", "f.yaml", "-r", "r.yaml", "-o", "json_output=true", "-o", "buffered_outputs=false"]),
    (["-D", "shell", "-T", "network", "--dry-run"],
     ["agent", "-o", "rules[].disable.rule=*shell*", "-o", "rules[].disable.tag=network", "--dry-run"]),
    (["-t", "container"], ["agent", "-o", "rules[].disable.rule=*", "-o", "rules[].enable.tag=container"]),
    (["agent", "-U"], ["agent", "-U"]),  # falcopy's own sub-commands are left alone
    ([], []),
])
def test_translation(falco: list[str], falcopy: list[str]) -> None:
    assert translate(falco) == falcopy


def test_unknown_option_is_named() -> None:
    with pytest.raises(SystemExit, match="'--gvisor-config'"):
        translate(["--gvisor-config", "x"])


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(FALCOPY), *args], capture_output=True, text=True, timeout=120)


def test_validate_and_lists() -> None:
    res = _run("-V", str(RULES))
    assert res.returncode == 0 and res.stdout.splitlines()[-1].startswith("valid: 15 rules")
    listing = _run("-L")  # the default rules, without -r
    assert listing.returncode == 0 and "Write Below Etc Directory" in listing.stdout
    one = _run("-l", "Write Below Etc Directory", "-r", str(RULES))
    assert one.returncode == 0 and one.stdout.startswith("Rule:        Write Below Etc Directory\n")
    assert _run("-l", "No such rule").returncode == 1
    fields = _run("--list", "syscall")
    assert fields.returncode == 0 and fields.stdout.startswith("Event Sources: syscall")
    assert "Event Sources: k8s_audit" not in fields.stdout


def test_version() -> None:
    text = _run("--version").stdout
    assert f"falcopy version:      {__version__}" in text
    assert f"Engine:               {ENGINE_VERSION}" in text
    doc = json.loads(_run("--version", "-o", "json_output=true").stdout)
    assert doc["falcopy_version"] == __version__ and doc["falco_version"] == FALCO_COMPAT_VERSION
    assert len(doc["probe"]["sha256"]) == 64


def test_support() -> None:
    doc = json.loads(_run("--support", "-r", str(RULES)).stdout)
    assert doc["version"] == __version__ and doc["engine_info"]["engine_version"] == ENGINE_VERSION
    (rules,) = doc["rules_files"]
    assert rules["name"] == str(RULES) and rules["content"] == RULES.read_text()
    assert doc["config"]["name"].endswith("falcopy.yaml") and doc["system_info"]["release"]


@pytest.mark.parametrize(("flags", "expected"), [
    (["-D", "Privileged"], lambda rs: [r for r in rs if "Privileged" not in r.name]),
    (["-T", "shell"], lambda rs: [r for r in rs if "shell" not in r.tags]),
    (["-t", "shell"], lambda rs: [r for r in rs if "shell" in r.tags]),
    (["-o", "rules[].disable.rule=Write Below Etc Directory"],
     lambda rs: [r for r in rs if r.name != "Write Below Etc Directory"]),
])
def test_rule_selection_spellings(flags: list[str], expected) -> None:  # type: ignore[no-untyped-def]
    rules = load_rules_files([RULES]).ruleset.rules
    want = len(expected(rules))
    assert 0 < want < len(rules)
    res = _run("-r", str(RULES), *flags, "-o", "webserver.enabled=false", "--dry-run")
    assert res.returncode == 0, res.stderr
    assert f"loaded {want} rules" in res.stderr
