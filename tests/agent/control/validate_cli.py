"""Run the installed ``falcopy`` command on a rules file and a falcopy.yaml written for the case."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

FALCOPY = Path(sys.executable).with_name("falcopy")


def write_case(tmp_path: Path, rules_text: str, section: str, key: str, value: bool) -> tuple[Path, Path]:
    """``rules.yaml`` holding ``rules_text`` and a config setting ``falcopy.<section>.<key>``."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(rules_text)
    config = tmp_path / "falcopy.yaml"
    config.write_text(f"falcopy:\n  {section}:\n    {key}: {str(value).lower()}\n")
    return rules, config


def falcopy(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(FALCOPY), *args], capture_output=True, text=True, timeout=120)
