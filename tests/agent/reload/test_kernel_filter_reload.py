"""Reload with the kernel filter: the new filter and the new ruleset take effect with no
window in which a rule is active while the kernel still filters out events it needs.

The agent's swap (event thread, between batches) is: widen the probe to what either
ruleset needs, feed the records the old filter let through to the old rules, swap the
ruleset, narrow to the new rules.  Checked on the real agent (a rule only the new
ruleset has fires on the first action after the reload; the file only the old one
wanted is then kept in the kernel) and, step by step, on the swap itself.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from falcopy.agent.app import Agent
from falcopy.agent.control.config import AgentConfig
from falcopy.agent.runtime.event_loop import EventLoop

from falcopy.engine.kernel_filter import Facts
from tests.agent.reload.agentproc import AgentProcess
from tests.engine.helpers import ruleset

RULE = """
- rule: {name}
  desc: d
  condition: evt.type in (open, openat) and fd.name = {path} and proc.name = {comm}
  output: "{name} %fd.name %proc.name"
  priority: WARNING
"""


class FakeProbe:
    """Records what the swap asks of the probe, and what the filter in force admits."""

    batch_limit = 8192

    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.enabled_events: set[str] = {"openat", "close"}
        self.kf: Any = None

    def set_event_filter(self, types: set[str] | None) -> set[str]:
        self.log.append(f"types {sorted(types or [])}")
        self.enabled_events = set(types or ())
        return self.enabled_events

    def set_kernel_filter(self, kf: Any) -> None:
        self.kf = kf
        admits = [p for p in ("/old", "/new") if kf is None or kf.admits("openat", Facts(path=p, comm="x"))]
        self.log.append(f"kernel filter admits {admits}")

    def poll_into(self, consume: Any, timeout_ms: int, walk: Any = None) -> int:
        self.log.append("drain")
        return 0


class FakePipeline:
    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.events = 0

    def set_ruleset(self, rs: Any) -> None:
        self.log.append(f"ruleset {rs.rules[0].name}")

    def process_raw(self, buf: Any, spans: list[tuple[int, int]], decoder: Any) -> int:
        return 0

    def process_ring(self, walk: Any, decoder: Any) -> int:
        return 0


class FakeBuilder:
    def set_ruleset(self, rs: Any) -> None:
        pass


class FakeStage:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    def flush(self, why: str) -> None:
        self.log.append(f"flush {why}")


def test_swap_widens_drains_swaps_then_narrows() -> None:
    from falcopy.agent.app import derive_kernel_filter

    config = AgentConfig()
    old = ruleset(RULE.format(name="old", path="/old", comm="x"))
    new = ruleset(RULE.format(name="new", path="/new", comm="x"))
    log: list[str] = []
    agent = Agent(config, [])
    agent.builder = FakeBuilder()  # type: ignore[assignment]
    agent.stage = FakeStage(log)  # type: ignore[assignment]
    events = EventLoop(
        config, FakeProbe(log), FakePipeline(log), agent.stage, agent.metrics.events,
        stop=threading.Event(), handover=agent.handover, kernel_filter=derive_kernel_filter(old, config),
        on_swap=agent.swap_outputs, emit_internal=agent.emit_internal, request_exit=print,
    )
    agent.handover.offer(new, {"openat", "open"}, derive_kernel_filter(new, config))
    events.apply_pending()
    assert log == [
        "types ['close', 'open', 'openat']",
        "kernel filter admits ['/old', '/new']",   # widened: both rulesets' needs
        "drain",                                    # records of the old filter to the old rules
        "ruleset new",
        "flush reload",
        "types ['open', 'openat']",
        "kernel filter admits ['/new']",           # narrowed after the swap
    ]


def test_config_key_switches_the_filter_off(tmp_path: Path) -> None:
    from falcopy.agent.app import derive_kernel_filter
    from falcopy.agent.control.config import load_config

    rs = ruleset(RULE.format(name="r", path="/x", comm="x"))
    cfg = tmp_path / "falcopy.yaml"
    cfg.write_text("falcopy:\n  kernel_filter:\n    enabled: true\n")
    assert derive_kernel_filter(rs, load_config(cfg, [])) is not None
    assert derive_kernel_filter(rs, load_config(cfg, ["falcopy.kernel_filter.enabled=false"])) is None


def _wait(cond: Any, what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.kernel
def test_reload_puts_the_new_filter_in_force(tmp_path: Path, require_root: None) -> None:
    tag = os.getpid()
    comm = f"kfr{tag % 100000}"
    exe = tmp_path / comm
    exe.write_bytes(Path("/bin/cat").read_bytes())
    exe.chmod(0o755)
    old_file, new_file = tmp_path / "old-target", tmp_path / "new-target"
    old_file.write_text("o")
    new_file.write_text("n")
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULE.format(name="old rule", path=old_file, comm=comm))
    agent = AgentProcess(tmp_path, [rules])
    try:
        agent.start(timeout=240)
        def fired(rule: str) -> Any:
            return [a for a in agent.alerts() if a["rule"] == rule]

        def filtered() -> float:
            return agent.metrics().get('falcopy_kernel_records_total{type="openat",verdict="filtered"}', 0.0)

        subprocess.run([str(exe), str(old_file), str(new_file)], check=True, capture_output=True)
        _wait(lambda: fired("old rule"), "the old rule")
        assert agent.metrics().get("falcopy_kernel_filter_enabled") == 1.0
        reloads = agent.metrics().get('falcopy_rules_reloads_total{result="success"}', 0.0)
        rules.write_text(RULE.format(name="new rule", path=new_file, comm=comm))
        _wait(lambda: agent.metrics().get('falcopy_rules_reloads_total{result="success"}', 0.0) > reloads,
              "the reload")
        # the first action after the reload: the new rule's file reaches user space...
        before = filtered()
        subprocess.run([str(exe), str(new_file)], check=True, capture_output=True)
        _wait(lambda: fired("new rule"), "the new rule after the reload")
        # ...and the old rule's file, needed by no rule now, stays in the kernel
        subprocess.run([str(exe), str(old_file)], check=True, capture_output=True)
        _wait(lambda: filtered() > before, "the old file's open kept in the kernel")
        time.sleep(0)  # alerts are read from the file: nothing more to wait for
        assert len(fired("old rule")) == 1
    finally:
        agent.stop()
