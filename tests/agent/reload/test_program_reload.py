"""The real agent verifies at start only the programs its rules needed last time; a rule
added by a reload that needs another program gets it loaded, and fires."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.agent.kernel.kprograms import kernel_programs
from tests.agent.reload.agentproc import AgentProcess
from tests.waiting import CEILING_S, wait_until

pytestmark = pytest.mark.kernel

OPEN_RULE = """- rule: Program cache marker opened
  desc: test
  condition: evt.type in (open, openat) and fd.name = {path}
  output: "marker %fd.name opened by %proc.name"
  priority: WARNING
"""
MKDIR_RULE = """- rule: Program cache marker directory
  desc: test
  condition: evt.type in (mkdir, mkdirat) and evt.arg.path contains "{tag}"
  output: "marker directory %evt.arg.path"
  priority: WARNING
"""


def _fired(agent: AgentProcess, rule: str) -> bool:
    return any(a["rule"] == rule for a in agent.alerts())


def test_programs_left_out_at_start_are_loaded_when_a_reloaded_rule_needs_them(
        tmp_path: Path, require_root: None) -> None:
    cache = tmp_path / "cache"
    marker = tmp_path / f"pc-marker-{os.getpid()}"
    marker.write_text("x")
    rules = tmp_path / "rules.yaml"
    rules.write_text(OPEN_RULE.format(path=marker))
    agent = AgentProcess(tmp_path, [rules], env={"FALCOPY_CACHE_DIR": str(cache)})

    # first start: nothing remembered, every program of the main object is verified
    agent.start()
    assert "exit_mkdir" in kernel_programs(agent.proc.pid)  # type: ignore[union-attr]
    agent.stop()
    (entry,) = cache.glob("*.programs")
    needed = set(json.loads(entry.read_text()))
    assert "openat" in needed and "mkdir" not in needed

    # same command line again: only what the rules needed
    agent.start()
    try:
        pid = agent.proc.pid  # type: ignore[union-attr]
        held = kernel_programs(pid)
        assert {"exit_openat", "exit_open", "exit_execve"} <= held
        assert not held & {"exit_mkdir", "exit_mkdirat", "exit_unlink", "exit_rename"}
        assert "verified at start (the set the last start needed), 0 more" in agent.log()
        assert wait_until(lambda: (subprocess.run(["cat", str(marker)], stdout=subprocess.DEVNULL),
                                   _fired(agent, "Program cache marker opened"))[1], CEILING_S)

        tag = f"pc-dir-{os.getpid()}"
        rules.write_text(OPEN_RULE.format(path=marker) + MKDIR_RULE.format(tag=tag))
        n = 0

        def mkdir_fired() -> bool:
            nonlocal n
            n += 1
            subprocess.run(["mkdir", str(tmp_path / f"{tag}-{n}")], check=True)
            return _fired(agent, "Program cache marker directory")

        assert wait_until(mkdir_fired, CEILING_S, interval=0.1), agent.log()
        assert {"exit_mkdir", "exit_mkdirat"} <= kernel_programs(pid)
    finally:
        agent.stop()
