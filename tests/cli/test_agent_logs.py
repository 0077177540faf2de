"""The agent's operational log: one line per reload (errors once), a final line of counts."""

from __future__ import annotations

import re
import signal
import subprocess
from pathlib import Path

import pytest

from tests.agent.outputs.test_agent_e2e import AgentProcess
from tests.waiting import wait_until

pytestmark = pytest.mark.kernel

RULE = """
- rule: log test marker
  desc: the marker file is opened
  condition: evt.type in (open, openat, openat2) and fd.name = {marker}
  output: marker opened (%proc.cmdline)
  priority: WARNING
"""


def test_reload_and_stop_lines(tmp_path: Path, repo_root: Path, require_root) -> None:
    marker = tmp_path / "marker"
    marker.write_text("x")
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULE.format(marker=marker))
    agent = AgentProcess(["-c", str(repo_root / "config" / "falcopy.yaml"), "-r", str(rules),
                          "-o", "webserver.enabled=false", "-o", "watch_config_files=false",
                          "-o", "json_output=true"], tmp_path / "agent.err")
    try:
        assert wait_until(lambda: "falcopy agent running" in agent.stderr(), 120), agent.stderr()
        for _ in range(6):
            subprocess.run(["cat", str(marker)], stdout=subprocess.DEVNULL, check=True)
            if wait_until(lambda: any(a["rule"] == "log test marker" for a in agent.alerts()), 5):
                break
        agent.proc.send_signal(signal.SIGHUP)
        assert wait_until(lambda: "rules reloaded (SIGHUP): 1 rules" in agent.stderr(), 60), agent.stderr()
        rules.write_text(RULE.format(marker=marker) + "- rule: broken\n  condition: evt.type = = open\n")
        agent.proc.send_signal(signal.SIGHUP)
        assert wait_until(lambda: "rules reload (SIGHUP) failed" in agent.stderr(), 60), agent.stderr()
    finally:
        code = agent.stop()
    assert code == 0
    lines = agent.stderr().splitlines()
    # a reload is one line; a failed one names each error once, then one line saying so
    assert not [x for x in lines if "reloading rules" in x]
    errors = [x for x in lines if "LOAD_ERR" in x]
    assert len(errors) == 1 and "rule 'broken'" in errors[0], lines
    assert len([x for x in lines if "failed with 1 error(s): keeping the rules that are running" in x]) == 1
    final = r"stopped: (\d+) events, (\d+) alerts, (\d+) kernel drops, (\d+) output drops$"
    last = re.search(final, lines[-1])
    assert last, lines[-3:]
    events, alerts = int(last.group(1)), int(last.group(2))
    assert events > 0
    # every alert the agent counted was written: the marker's and the reload-failure alert
    assert alerts == len(agent.alerts()) >= 2
