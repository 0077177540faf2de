"""`falcopy validate` of rules files: every error in one pass, unreadable files named."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

FALCOPY = Path(sys.executable).with_name("falcopy")

BROKEN = """\
- rule: unknown field
  desc: x
  condition: evt.type = open and bogus.field = 1
  output: x
  priority: WARNING
- rule: unbalanced
  desc: x
  condition: evt.type = open and (
  output: x
  priority: WARNING
- macro: no condition
- rule: undefined macro
  desc: x
  condition: undefined_macro_z and evt.type = open
  output: x
  priority: WARNING
- list: fine
  items: [a]
- rule: no priority
  desc: x
  condition: evt.type = open
  output: x
"""


def _validate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(FALCOPY), "validate", *args], capture_output=True, text=True, timeout=120)


def test_every_error_of_a_file_in_one_pass(tmp_path: Path) -> None:
    f = tmp_path / "broken.yaml"
    f.write_text(BROKEN)
    res = _validate(str(f))
    assert res.returncode == 1
    errors = [line for line in res.stdout.splitlines() if ": error " in line]
    # in file order, each naming its line and item
    assert [e.split(": error ")[0] for e in errors] == [f"{f}:3:34", f"{f}:8:35", f"{f}:11:3", f"{f}:14:14",
                                                        f"{f}:19:3"]
    assert "bogus.field" in errors[0] and "rule 'unknown field'" in errors[0]
    assert "rule 'unbalanced'" in errors[1]
    assert "macro 'no condition'" in errors[2] and "'condition'" in errors[2]
    assert "undefined_macro_z" in errors[3]
    assert "rule 'no priority'" in errors[4] and "'priority'" in errors[4]
    assert "; 5 errors," in res.stdout.splitlines()[-1]


def test_missing_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    res = _validate(str(missing))
    assert res.returncode == 1
    assert res.stdout.splitlines()[0] == (
        f"{missing}: error LOAD_ERR_FILE_READ: Could not read rules file: No such file or directory"
        " (rules content)"
    )


def test_falco_stops_at_the_first_error_elsewhere(tmp_path: Path) -> None:
    # the agent and Falco's -V JSON keep Falco's first-error semantics; only the text report goes on
    f = tmp_path / "broken.yaml"
    f.write_text(BROKEN)
    from falcopy.engine import load_rules_files

    assert len(load_rules_files([f]).errors) == 1
    assert len(load_rules_files([f], keep_going=True).errors) == 5
