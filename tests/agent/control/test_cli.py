"""`falcopy agent` as a real process refusing bad configuration and rules (nothing is started)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_agent_refuses_broken_config(tmp_path) -> None:
    bad = tmp_path / "falcopy.yaml"
    bad.write_text("json_output: true\nhttp_output:\n  enabled: true\n  url: nowhere\n")
    falcopy = Path(sys.executable).with_name("falcopy")
    res = subprocess.run([str(falcopy), "agent", "-c", str(bad)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 1
    assert f"{bad}:4:3: http_output.url: http_output.url must be an http:// or https:// URL" in res.stderr
    assert "not starting" in res.stderr
    res = subprocess.run(
        [
            str(falcopy),
            "agent",
            "-c",
            str(bad),
            "-o",
            "http_output.enabled=false",
            "-o",
            "webserver.listen_port=notaport",
            "--dry-run",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 1 and "-o 'webserver.listen_port=notaport': webserver.listen_port" in res.stderr


def test_agent_refuses_broken_rules(tmp_path) -> None:
    rules = tmp_path / "bad.yaml"
    rules.write_text("- rule: x\n  desc: d\n  condition: evt.type = = open\n  output: o\n  priority: INFO\n")
    falcopy = Path(sys.executable).with_name("falcopy")
    res = subprocess.run(
        [str(falcopy), "agent", "-r", str(rules), "--dry-run"], capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 1
    assert f"{rules}:3" in res.stderr and "LOAD_ERR_COMPILE_CONDITION" in res.stderr


def test_agent_refuses_unusable_output(tmp_path) -> None:
    falcopy = Path(sys.executable).with_name("falcopy")
    target = tmp_path / "missing-dir" / "events.txt"
    res = subprocess.run(
        [
            str(falcopy),
            "agent",
            "--dry-run",
            "-o",
            "file_output.enabled=true",
            "-o",
            f"file_output.filename={target}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 1
    assert f"cannot open {target}: No such file or directory" in res.stderr
    ok = subprocess.run([str(falcopy), "agent", "--dry-run"], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and "configuration and rules are valid" in ok.stderr


def test_agent_exits_cleanly_when_capture_cannot_start(tmp_path) -> None:
    falcopy = Path(sys.executable).with_name("falcopy")
    res = subprocess.run(
        [
            str(falcopy),
            "agent",
            "-o",
            f"falcopy.bpf_object={tmp_path}/none.bpf.o",
            "-o",
            "webserver.enabled=false",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 1
    errors = [line for line in res.stderr.splitlines() if "Error:" in line]
    assert len(errors) == 1 and "Traceback" not in res.stderr, res.stderr
    assert f"the BPF object {tmp_path}/none.bpf.o is missing: build it with `make bpf`" in errors[0]
    assert "stopped" in res.stderr  # outputs flushed and closed, nothing left running
