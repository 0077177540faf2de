"""The real agent delivers a lone alert without waiting for a timer: its event thread
sleeps in a poll of one hour and its file output is buffered, yet the alert is in the
file (no timing asserted: an alert stranded until a timer fails at the ceiling)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.agent.reload.agentproc import AgentProcess

pytestmark = pytest.mark.kernel

CEILING_S = 60.0

RULE = """
- rule: realtime marker read
  desc: a read of the test's marker file
  condition: evt.type in (open, openat, openat2) and evt.is_open_read=true and fd.name = {marker}
  output: marker read by %proc.cmdline
  priority: WARNING
"""


def test_lone_alert_with_an_hour_long_poll_and_buffered_output(tmp_path: Path, require_root: None) -> None:
    marker = tmp_path / f"realtime-{os.getpid()}"
    marker.write_text("x")
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULE.format(marker=marker))
    agent = AgentProcess(
        tmp_path, [rules],
        falcopy_config="  event_reader:\n    idle_poll_ms: 3600000\n", top_config="buffered_outputs: true\n",
    ).start()
    try:
        # the event thread sleeps in a one-hour poll: only the probe's wake-up ends it
        subprocess.run(["cat", str(marker)], check=True, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + CEILING_S
        hits: list[dict] = []
        while not hits and time.monotonic() < deadline:
            hits = [a for a in agent.alerts() if a["rule"] == "realtime marker read"]
            time.sleep(0.02)
        assert hits, f"alert not delivered: {agent.log()}"
        assert str(marker) in hits[0]["output"]
    finally:
        agent.stop()
    assert agent.proc is not None and agent.proc.returncode == 0, agent.log()
