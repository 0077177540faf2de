"""`falcopy replay` of capture files: bad files named by file and line, user names and
container metadata from the file's snapshot, the live alert reproduced in JSON."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from falcopy.cli import main

from .synth import MS, T0, make_rig


def _capture(tmp_path: Path) -> Path:
    rig = make_rig(tmp_path, duration_ms=0)
    rig.process(100, sid=100).container_id = "abcdef012345"
    rig.feed([rig.trigger(100)])
    rig.finish(T0 + 10_000 * MS)
    [path] = rig.files()
    return path


def test_a_broken_capture_is_named_by_file_and_line(tmp_path: Path) -> None:
    path = _capture(tmp_path)
    lines = path.read_text().splitlines()
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join([lines[0], lines[1], '{"evt.num": 3, "type": 7, "args": []}']) + "\n")
    res = CliRunner().invoke(main, ["replay", str(bad), "-r", str(tmp_path / "trigger.yaml")])
    assert res.exit_code == 2
    assert f"{bad}:3:1: not a kernel record" in res.output
    cut = tmp_path / "cut.jsonl"
    cut.write_text(lines[0] + "\n")
    res = CliRunner().invoke(main, ["replay", str(cut), "--timeline"])
    assert res.exit_code == 2 and f"{cut}: truncated capture" in res.output


def test_replay_takes_names_and_containers_from_the_file(tmp_path: Path) -> None:
    path = _capture(tmp_path)
    lines = path.read_text().splitlines()
    snapshot = json.loads(lines[1])
    snapshot["snapshot"]["users"] = {"abcdef012345": {"0": ["captured-root", "/root", "/bin/sh"]}}
    snapshot["snapshot"]["containers"] = {"abcdef012345": {"id": "abcdef012345", "name": "web-1",
                                                           "image_repository": "nginx", "complete": True}}
    lines[1] = json.dumps(snapshot)
    path.write_text("\n".join(lines) + "\n")
    rules = tmp_path / "names.yaml"
    rules.write_text("""
- rule: trigger with names
  desc: the fields replay takes from the snapshot
  condition: evt.type = execve and proc.name = trigger
  output: by %user.name in %container.name (%container.image.repository)
  priority: WARNING
""")
    res = CliRunner().invoke(main, ["replay", str(path), "-r", str(rules), "--json"])
    assert res.exit_code == 0, res.output
    [alert] = [json.loads(x) for x in res.stdout.splitlines() if x.startswith("{")]
    assert alert["output_fields"]["user.name"] == "captured-root"
    assert alert["output_fields"]["container.name"] == "web-1"
    assert alert["output_fields"]["container.image.repository"] == "nginx"
    # the capture's own trigger rule is not in these rules: said so on stderr
    assert "NOT reproduced" in res.stderr
