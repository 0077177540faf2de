"""`falcopy replay` input: field names checked, evt.time honoured, absent fields named once."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import COMPAT_DIR

FALCOPY = Path(sys.executable).with_name("falcopy")
REPO = Path(__file__).resolve().parents[2]

RULES = """
- rule: replay shadow read
  desc: a shadow read
  condition: evt.type = openat and fd.name = /etc/shadow and not proc.pname = sudo
  output: shadow read (proc=%proc.name parent=%proc.pname file=%fd.name)
  priority: WARNING
"""


def _replay(tmp_path: Path, lines: list[str]) -> subprocess.CompletedProcess[str]:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(lines) + "\n")
    return subprocess.run([str(FALCOPY), "replay", str(events), "-r", str(rules), "--json"],
                          capture_output=True, text=True, timeout=120)


def test_misspelt_field_names_the_line(tmp_path: Path) -> None:
    ok = json.dumps({"evt.type": "openat", "fd.name": "/etc/passwd"})
    bad = json.dumps({"evt.type": "openat", "proc.nmae": "cat"})
    res = _replay(tmp_path, ["# comment", ok, bad])
    assert res.returncode == 2
    assert f"{tmp_path / 'events.jsonl'}:3: error: unknown field 'proc.nmae' for source syscall " \
           "(did you mean 'proc.name'?)" in res.stderr
    # arguments in brackets and dotted forms are fields too
    fine = json.dumps({"evt.type": "openat", "proc.aname[2]": "sshd", "k8s.pod.label.app": "web",
                       "fd.name": "/tmp/x"})
    assert _replay(tmp_path, [fine]).returncode == 0


def test_evt_time_is_the_alert_time(tmp_path: Path) -> None:
    lines = [
        json.dumps({"evt.type": "openat", "evt.time": "2026-06-10T10:00:00.000000001Z",
                    "fd.name": "/etc/shadow", "proc.name": "cat", "proc.pname": "bash"}),
        json.dumps({"evt.type": "openat", "evt.time": 1781085600123456789, "fd.name": "/etc/shadow",
                    "proc.name": "cat", "proc.pname": "bash"}),
    ]
    res = _replay(tmp_path, lines)
    assert res.returncode == 0, res.stderr
    alerts = [json.loads(x) for x in res.stdout.splitlines()]
    assert [a["time"] for a in alerts] == ["2026-06-10T10:00:00.000000001Z", "2026-06-10T10:00:00.123456789Z"]
    bad = json.dumps({"evt.type": "openat", "evt.time": "yesterday"})
    res = _replay(tmp_path, [bad])
    assert res.returncode == 2 and ":1: error: evt.time 'yesterday'" in res.stderr


def test_absent_fields_are_named_once(tmp_path: Path) -> None:
    line = json.dumps({"evt.type": "openat", "fd.name": "/etc/shadow", "proc.name": "cat"})
    res = _replay(tmp_path, [line, line, line])
    assert res.returncode == 0, res.stderr
    notes = [x for x in res.stderr.splitlines() if x.startswith("note:")]
    # proc.pname is read by the condition (and the output) of all three events
    assert notes == ["note: field proc.pname was read by the rules but absent from 3 event(s) "
                     "(it evaluated as <NA>)"]
    assert len(res.stdout.splitlines()) == 3


def test_documented_example_replays(tmp_path: Path) -> None:
    text = (REPO / "docs" / "engine.md").read_text()
    block = re.search(r"### The replay event format.*?```\n(.*?)```", text, re.S).group(1)
    events = tmp_path / "example.jsonl"
    events.write_text(block)
    res = subprocess.run([str(FALCOPY), "replay", str(events), "-r", str(REPO / "rules"),
                          "-r", str(COMPAT_DIR / "k8s_audit_rules.yaml"), "--json", "--rule-matching", "all"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    alerts = [json.loads(x) for x in res.stdout.splitlines()]
    shadow = next(a for a in alerts if a["rule"] == "Sensitive File Read by Untrusted Program")
    assert shadow["time"] == "2026-06-10T10:00:00.000000001Z"
    assert shadow["output_fields"]["proc.exepath"] == "/tmp/mycat"
    assert "Create/Modify Configmap With Private Credentials" in {a["rule"] for a in alerts}
