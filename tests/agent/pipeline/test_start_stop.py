"""Start-up and shutdown of the real agent.

- Stop: on SIGTERM the probe is detached first and the event thread then drains the ring,
  so every record captured before the detach is evaluated: a burst of marker opens made
  just before SIGTERM, with the reader pacing itself to one read per 100 ms (records wait
  in the ring meanwhile), is alerted on in full, and the final counts line is written.
- Start: the BPF object load begun before the configuration is read (with the probe's
  default ring size) is replaced when the configuration asks for another ring size: the
  agent's only ring buffer map has the configured size, and it alerts.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.agent.reload.agentproc import AgentProcess
from tests.waiting import wait_until

pytestmark = pytest.mark.kernel

BPF_MAP_TYPE_RINGBUF = 27

RULE = """
- rule: start-stop marker open
  desc: an open of one of the test's marker files
  condition: evt.type in (open, openat, openat2) and fd.name startswith {prefix}
  output: marker %fd.name
  priority: WARNING
"""


def _ring_sizes(pid: int) -> list[int]:
    """max_entries of the ring buffer maps process ``pid`` holds (a map once, whatever the
    number of its fds)."""
    sizes: dict[int, int] = {}
    for fd in os.listdir(f"/proc/{pid}/fdinfo"):
        try:
            text = Path(f"/proc/{pid}/fdinfo/{fd}").read_text()
        except OSError:
            continue
        info = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        if info.get("map_type", "").strip() == str(BPF_MAP_TYPE_RINGBUF):
            sizes[int(info["map_id"])] = int(info["max_entries"])
    return sorted(sizes.values())


def test_records_captured_before_sigterm_are_all_evaluated(tmp_path: Path, require_root: None) -> None:
    prefix = str(tmp_path / f"stop-{os.getpid()}-")
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULE.format(prefix=prefix))
    agent = AgentProcess(tmp_path, [rules],
                         falcopy_config="  event_reader:\n    batch_window_us: 100000\n").start()
    n = 300
    try:
        subprocess.run([sys.executable, "-c", f"for i in range({n}): open({prefix!r} + str(i), 'w').close()"],
                       check=True)
        assert agent.proc is not None
        agent.proc.send_signal(signal.SIGTERM)
        agent.proc.wait(120)
    finally:
        agent.stop()
    assert agent.proc.returncode == 0, agent.log()
    names = {a["output_fields"]["fd.name"] for a in agent.alerts()}
    assert names == {prefix + str(i) for i in range(n)}, f"{len(names)} of {n} alerted: {agent.log()}"
    log = agent.log_path.read_text()
    assert "probe detached in" in log and "stopped: " in log, log


def test_early_probe_load_is_replaced_for_another_ring_size(tmp_path: Path, require_root: None) -> None:
    marker = tmp_path / f"ring-{os.getpid()}-x"
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULE.format(prefix=marker))
    # preset 2: 2 MiB, not the default 8 MiB the early load starts with
    preset = "engine:\n  kind: modern_ebpf\n  modern_ebpf:\n    buf_size_preset: 2\n"
    agent = AgentProcess(tmp_path, [rules], top_config=preset).start()
    try:
        assert agent.proc is not None
        # the abandoned early load unloads itself when its verification ends
        assert wait_until(lambda: _ring_sizes(agent.proc.pid) == [2 << 20], 120), _ring_sizes(agent.proc.pid)
        marker.write_text("x")
        assert wait_until(lambda: any(a["output_fields"]["fd.name"] == str(marker) for a in agent.alerts()),
                          60), agent.log()
    finally:
        agent.stop()
    assert agent.proc.returncode == 0, agent.log()
