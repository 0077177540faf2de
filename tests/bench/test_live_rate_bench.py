"""Live throughput on one core: the issue's ">= 300k records/s on one core without kernel
drops", measured on the real event path.

The agent side is ``tests.bench.agent_proc full``: the real probe, the process table and
Falco's stable rules reading the ring as the agent's event thread does (``poll_into`` ->
``Pipeline.process_ring``: the fast loop walks the ring in place), in-kernel interest
filter off, pinned to one CPU.  The workload
(``workload.c``, a uniquely named copy) runs pinned to the other CPU, paced at a known
rate of operations per second, step by step, then unthrottled.  Per step:

- offered records/s: the workload's own count of operations x the records each makes
  (open/close: openat + close; connect: socket, connect, accept, two closes), over its
  own run time;
- records/s handled: records the agent read in the window (the neighbours' records too:
  the machine is shared), over the window;
- kernel drops: the probe's drop counter over the window;
- the agent's CPU: its share of its core over the window, user and system, and CPU µs
  per record handled (and what one core would handle at that cost, 10⁶ / µs per record);
- the share of the window the agent waited, runnable, for its core (``runq``: the
  scheduler ran other tasks there; a step with drops and a high ``runq`` measured the
  neighbours, not the agent).

The agent and the workload run at nice -10 (``FALCOPY_BENCH_LIVE_NICE``): on a shared
machine the scheduler would otherwise hand part of their cores to other processes of the
same cgroup (nice does not weigh against other cgroups: ``runq`` shows what they took).

Measured, not asserted on speed: `make bench` prints the table (run with -s) and saves
it as JSON; the numbers are in docs/performance.md.

    FALCOPY_BENCH_LIVE_STEPS=100000,200000,300000,400000,0   records/s per step (0: unthrottled)
    FALCOPY_BENCH_LIVE_WORKLOADS=openclose,connect
    FALCOPY_BENCH_LIVE_SECONDS=3                              workload seconds per step
    FALCOPY_BENCH_AGENT_SRC=DIR   the agent of another tree (a `falcopy` package laid out
                                  as installed); FALCOPY_NO_ACCEL=1 is passed through
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import IO, Any

import pytest

from .workloads import build_workload

pytestmark = [pytest.mark.bench, pytest.mark.kernel]

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
STEPS = [int(r) for r in os.environ.get("FALCOPY_BENCH_LIVE_STEPS", "100000,200000,300000,400000,0")
         .split(",")]
WORKLOADS = os.environ.get("FALCOPY_BENCH_LIVE_WORKLOADS", "openclose,connect").split(",")
SECONDS = float(os.environ.get("FALCOPY_BENCH_LIVE_SECONDS", "3"))
AGENT_SRC = os.environ.get("FALCOPY_BENCH_AGENT_SRC")
#: the nice value of the agent and the workload: on a machine shared with other builds the
#: scheduler would give their cores to them too, and the bench would measure their share
#: instead of what one core of the agent handles
NICE = int(os.environ.get("FALCOPY_BENCH_LIVE_NICE", "-10"))
#: records one operation of each workload puts in the ring with Falco's stable rules'
#: event types (and the tables' own): the last assertion of the test checks them from below
RECORDS_PER_OP = {"openclose": 2, "connect": 5}
#: ceiling for the agent's answers (start-up under load, a backlog to read)
CEILING_S = 300.0


def _cpus() -> tuple[int, int]:
    cpus = sorted(os.sched_getaffinity(0))
    assert len(cpus) >= 2, f"the live bench pins the agent and the workload to two CPUs, have {cpus}"
    return cpus[0], cpus[1]


class LiveAgent:
    """``agent_proc full window`` pinned to one CPU: windows opened and closed on stdin."""

    def __init__(self, cpu: int, rules: list[str]) -> None:
        env = {**os.environ, "FALCOPY_BENCH_AGENT_CPU": str(cpu), "FALCOPY_BENCH_AGENT_NICE": str(NICE)}
        if AGENT_SRC:
            # the script, not the module: its own folder first on sys.path, then the
            # other tree's `falcopy` ahead of this tree's (installed as editable)
            env["PYTHONPATH"] = AGENT_SRC
            cmd = [sys.executable, str(HERE / "agent_proc.py"), "full", "window", *rules]
        else:
            cmd = [sys.executable, "-m", "tests.bench.agent_proc", "full", "window", *rules]
        self.proc = subprocess.Popen(cmd, cwd=AGENT_SRC or REPO, env=env, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.expect("ready")

    def _io(self) -> tuple[IO[str], IO[str]]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        return self.proc.stdin, self.proc.stdout

    def expect(self, word: str) -> None:
        line = self._io()[1].readline().strip()
        assert line == word, f"agent said {line!r}, expected {word!r} (exit {self.proc.poll()})"

    def start(self) -> None:
        stdin, _ = self._io()
        stdin.write("start\n")
        stdin.flush()
        self.expect("started")

    def stop(self) -> dict[str, Any]:
        stdin, stdout = self._io()
        stdin.write("stop\n")
        stdin.flush()
        line = stdout.readline()
        assert line, f"agent ended (exit {self.proc.poll()})"
        return json.loads(line)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            assert self.proc.wait(timeout=CEILING_S) == 0
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


def _run_workload(binary: Path, cpu: int, mode: str, ops_per_s: int) -> tuple[int, float]:
    """(operations, CPU seconds) of one paced run of the workload pinned to ``cpu``."""
    args = [str(binary), mode, str(SECONDS)] + ([str(ops_per_s)] if ops_per_s else [])

    def pin() -> None:
        os.sched_setaffinity(0, {cpu})
        os.setpriority(os.PRIO_PROCESS, 0, NICE)

    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, preexec_fn=pin)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, out
    return int(out.strip()), usage.ru_utime + usage.ru_stime


def test_live_records_per_second_on_one_core(tmp_path: Path, require_root: None, compat_dir: Path) -> None:
    agent_cpu, workload_cpu = _cpus()
    # a name of its own: the neighbours' benches run the same workload
    binary = build_workload(tmp_path)
    unique = tmp_path / f"wl-live-{uuid.uuid4().hex[:8]}"
    shutil.move(binary, unique)
    rules = [str(compat_dir / "falco_rules.yaml")]
    rows = []
    for mode in WORKLOADS:
        agent = LiveAgent(agent_cpu, rules)
        try:
            for records_per_s in STEPS:
                ops_per_s = records_per_s // RECORDS_PER_OP[mode]
                agent.start()
                ops, workload_cpu_s = _run_workload(unique, workload_cpu, mode, ops_per_s)
                window = agent.stop()
                assert window["errors"] == 0
                offered = ops * RECORDS_PER_OP[mode]
                rows.append({
                    "workload": mode, "step_records_s": records_per_s,
                    "offered_records_s": offered / SECONDS,
                    "handled_records_s": window["records"] / window["wall_s"],
                    "handled_records": window["records"], "offered_records": offered,
                    "drops": window["drops"],
                    "agent_core_share": window["cpu_s"] / window["wall_s"],
                    "agent_user_share": window["user_s"] / window["wall_s"],
                    "agent_system_share": window["system_s"] / window["wall_s"],
                    # runnable but not running: its core given to other tasks
                    "agent_runq_share": window["runqueue_wait_s"] / window["wall_s"],
                    "agent_cpu_us_per_record": window["cpu_s"] * 1e6 / max(window["records"], 1),
                    "one_core_records_s": window["records"] / max(window["cpu_s"], 1e-9),
                    "wakeups": window["wakeups"], "window_s": window["wall_s"],
                    "workload_core_share": workload_cpu_s / SECONDS,
                    "agent_peak_rss_mib": window["maxrss_kb"] / 1024,
                })
        finally:
            agent.close()
    load = os.getloadavg()
    print(f"\nlive, agent pinned to CPU {agent_cpu}, workload to CPU {workload_cpu}, Falco's stable rules,"
          f" filter off, nice {NICE}, {SECONDS:.0f} s per step ({AGENT_SRC or 'this tree'},"
          f" accel {'off' if os.environ.get('FALCOPY_NO_ACCEL') == '1' else 'as built'});"
          f" load average {load[0]:.1f} {load[1]:.1f}")
    print(f"{'workload':9} {'step/s':>7} {'offered/s':>10} {'handled/s':>10} {'drops':>8} {'core':>5}"
          f" {'usr':>5} {'sys':>5} {'runq':>5} {'µs/rec':>7} {'1 core/s':>9} {'wakeups':>8} {'wl core':>7}")
    for r in rows:
        print(f"{r['workload']:9} {r['step_records_s'] or 'max':>7} {r['offered_records_s']:10.0f}"
              f" {r['handled_records_s']:10.0f} {r['drops']:8d} {r['agent_core_share']:5.2f}"
              f" {r['agent_user_share']:5.2f} {r['agent_system_share']:5.2f} {r['agent_runq_share']:5.2f}"
              f" {r['agent_cpu_us_per_record']:7.2f} {r['one_core_records_s']:9.0f}"
              f" {r['wakeups']:8d} {r['workload_core_share']:7.2f}")
    (Path(os.environ.get("FALCOPY_BENCH_OUT", "/tmp")) / "falcopy-live-rate-bench.json").write_text(
        json.dumps({"load_avg": load, "seconds": SECONDS, "agent_src": AGENT_SRC, "rows": rows}, indent=1))
    # the agent saw at least the records the workload made and it did not drop
    for r in rows:
        assert r["handled_records"] + r["drops"] >= r["offered_records"], (
            f"{r['workload']} at {r['step_records_s']}/s: {r['offered_records']} records offered,"
            f" {r['handled_records']} handled, {r['drops']} dropped")
