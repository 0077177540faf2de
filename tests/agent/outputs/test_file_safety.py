"""file_output as an attacker meets it: symbolic links, files of other users,
world-writable directories, and alert text carrying line breaks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from falcopy.agent.outputs.builder import AlertBuilder
from falcopy.agent.outputs.format import AlertFormatter, FormatOptions, FormattedAlert
from falcopy.agent.outputs.sinks.base import SinkError
from falcopy.agent.outputs.sinks.file import FileSink

from falcopy.engine import RulesInput, default_sources, load_rules
from falcopy.engine.fields.k8s_audit import AuditEvent
from tests.agent.audit.events import audit_event
from tests.agent.outputs.helpers import config, make_alert

NOBODY = 65534
TEXT = AlertFormatter(FormatOptions(json_output=False))


def _item(n: int = 0) -> FormattedAlert:
    return FormattedAlert(make_alert(n), TEXT)


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A file the attacker wants falcopy to write into."""
    target = tmp_path / "victim" / "authorized_keys"
    target.parent.mkdir()
    target.write_text("ssh-ed25519 AAAA original\n")
    return target


@pytest.mark.parametrize("keep_alive", [False, True])
def test_symlinked_output_file_is_refused(tmp_path: Path, victim: Path, keep_alive: bool) -> None:
    link = tmp_path / "events.txt"
    link.symlink_to(victim)
    sink = FileSink(str(link), keep_alive=keep_alive)
    with pytest.raises(SinkError, match="symbolic link"):
        sink.open()
    assert victim.read_text() == "ssh-ed25519 AAAA original\n"


def test_symlink_planted_after_start_is_refused(tmp_path: Path, victim: Path) -> None:
    """Without keep_alive every alert reopens the file: a swap in between is caught."""
    path = tmp_path / "events.txt"
    sink = FileSink(str(path))
    sink.open()
    sink.write(_item(1))
    path.unlink()
    path.symlink_to(victim)
    with pytest.raises(SinkError, match="symbolic link"):
        sink.write(_item(2))
    assert victim.read_text() == "ssh-ed25519 AAAA original\n"


def test_file_of_another_user_is_refused(tmp_path: Path, require_root: None) -> None:
    path = tmp_path / "events.txt"
    path.write_text("planted\n")
    os.chown(path, NOBODY, NOBODY)
    with pytest.raises(SinkError, match=f"owned by uid {NOBODY}"):
        FileSink(str(path)).open()
    assert path.read_text() == "planted\n"


def test_world_writable_directory_needs_the_sticky_bit(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(SinkError, match="writable by every user and has no sticky bit"):
        FileSink(str(shared / "events.txt")).open()
    assert not (shared / "events.txt").exists()
    shared.chmod(0o1777)  # like /tmp: others cannot remove or rename falcopy's file
    sink = FileSink(str(shared / "events.txt"))
    sink.open()
    sink.write(_item())
    assert (shared / "events.txt").read_text().count("\n") == 1


def test_agent_refuses_to_start_on_a_symlinked_file(tmp_path: Path, victim: Path, repo_root: Path) -> None:
    link = tmp_path / "events.txt"
    link.symlink_to(victim)
    falcopy = Path(sys.executable).with_name("falcopy")
    proc = subprocess.run(
        [str(falcopy), "agent", "--dry-run", "-c", str(repo_root / "config" / "falcopy.yaml"),
         "-o", "file_output.enabled=true", "-o", f"file_output.filename={link}"],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"{link} is a symbolic link" in proc.stderr
    assert victim.read_text() == "ssh-ed25519 AAAA original\n"


FORGED_USER = "bob\n10:00:00.000000000: Critical Forged alert\r\x85\u2028(user=admin)"

AUDIT_RULE = """
- rule: ConfigMap created
  desc: a ConfigMap is created
  condition: ka.verb = create and ka.target.resource = configmaps
  output: configmap created (user=%ka.user.name name=%ka.target.name)
  priority: NOTICE
  source: k8s_audit
"""


def test_forged_newline_stays_one_line(tmp_path: Path) -> None:
    """A line break in an event field cannot start a second alert line in text output."""
    result = load_rules([RulesInput("audit.yaml", AUDIT_RULE)])
    assert result.ok, [str(e) for e in result.errors]
    ruleset = result.ruleset
    event = AuditEvent(audit_event(verb="create", resource="configmaps", name="cm1", user=FORGED_USER))
    (rule,) = ruleset.evaluate(event)
    builder = AlertBuilder(config("json_output=false"), ruleset, default_sources(), hostname="node-1")
    alert = builder.build(rule, event)
    assert alert is not None

    path = tmp_path / "events.txt"
    sink = FileSink(str(path))
    sink.open()
    sink.write(FormattedAlert(alert, TEXT))
    lines = path.read_text().splitlines()  # splits on \r, \x85 and \u2028 too
    assert len(lines) == 1, lines
    assert "user=bob\\n10:00:00.000000000: Critical Forged alert\\r\\x85\\u2028(user=admin)" in lines[0]
    # JSON keeps the true value (JSON escapes it), on one line as well
    json_line = AlertFormatter(FormatOptions(json_output=True)).line(alert)
    assert b"\n" not in json_line and b"\r" not in json_line
    assert orjson.loads(json_line)["output_fields"]["ka.user.name"] == FORGED_USER
