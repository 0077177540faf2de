"""Real-time behaviour of the real agent (`python -m falcopy agent`, Falco's stable rules,
JSON file output): time to ready and to the first alert from process start, at the first
start (an empty cache directory: every rules file parsed, the configuration validated, every
program verified, as in a new pod) and at a restart (the caches filled), with the agent's own
seconds-since-start and CPU seconds of each start-up step and the load average, alert latency (p50/p99/max) at
idle and during the mixed workload, idle CPU, and shutdown (SIGTERM -> exit).  Measured, not asserted:
`make bench` prints the table (run with -s); the numbers are in docs/performance.md.

Latency is the time from just before the exec of a copied ``cat`` reading /etc/shadow
until the alert line naming that exec's unique argument is in the output file (Falco's
"Read sensitive file untrusted"), as the issue measured it beside real Falco.  Its
"agent part" is the time from the open's kernel timestamp (the alert's ``time``) until
the line is in the file: the sample without the launch of the process, which a loaded
machine stretches.
"""

from __future__ import annotations

import calendar
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.agent.reload.agentproc import REPO, AgentProcess

from .workloads import build_workload

pytestmark = [pytest.mark.bench, pytest.mark.kernel]

SAMPLES = int(os.environ.get("FALCOPY_BENCH_LATENCY_SAMPLES", "30"))
#: rounds/s of the mixed workload (open+close, stat, connects, fork+exec)
MIXED_RATE = os.environ.get("FALCOPY_BENCH_MIXED_RATE", "2000")
IDLE_CPU_S = float(os.environ.get("FALCOPY_BENCH_IDLE_SECONDS", "10"))
CEILING_S = 30.0
#: run the agent of another source tree (a directory holding a `falcopy` package laid out as
#: installed), for before/after comparisons on the same machine state
AGENT_SRC = os.environ.get("FALCOPY_BENCH_AGENT_SRC")


class AlertFile:
    """Tails the agent's JSON output file, looking for marker strings."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.text = ""

    def seen(self, marker: str) -> bool:
        """Whether a complete line containing ``marker`` is in the file now."""
        if self.path.exists():
            with self.path.open("rb") as f:
                f.seek(self.offset)
                chunk = f.read()
            done, _, _ = chunk.rpartition(b"\n")
            if done:
                self.offset += len(done) + 1
                self.text += done.decode(errors="replace") + "\n"
        return marker in self.text

    def wait_for(self, marker: str, ceiling: float = CEILING_S) -> tuple[float, float]:
        """Monotonic time at which a line containing ``marker`` was first seen, and the
        seconds from the event's time (the alert's ``time``) until then."""
        deadline = time.monotonic() + ceiling
        while time.monotonic() < deadline:
            if self.seen(marker):
                seen, wall_ns = time.monotonic(), time.time_ns()
                line = next(ln for ln in self.text.splitlines() if marker in ln)
                return seen, (wall_ns - _rfc3339_ns(json.loads(line)["time"])) / 1e9
            time.sleep(0.0005)
        raise AssertionError(f"no alert with {marker!r} within {ceiling}s")


def _rfc3339_ns(stamp: str) -> int:
    """Nanoseconds since the epoch of Falco's ``time`` (``...T02:40:00.287785341Z``)."""
    whole, _, frac = stamp.rstrip("Z").partition(".")
    secs = calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S"))
    return secs * 1_000_000_000 + int(frac.ljust(9, "0")[:9])


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def _latencies(cat: Path, alerts: AlertFile, tag: str) -> tuple[list[float], list[float]]:
    """Per sample: from just before the exec, and the agent part (see the docstring)."""
    out: list[float] = []
    agent_part: list[float] = []
    for i in range(SAMPLES):
        marker = f"{tag}-{os.getpid()}-{i}"
        t0 = time.monotonic()
        subprocess.Popen([str(cat), "/etc/shadow", marker], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL).wait()
        seen, part = alerts.wait_for(marker)
        out.append(seen - t0)
        agent_part.append(part)
        # spread the samples over any timer phase of the reader
        time.sleep(0.05 + (i % 7) * 0.013)
    return out, agent_part


def _compile_bytecode(root: Path) -> None:
    """Byte-compile the agent's sources, as the image's `pip install` does: this environment
    sets PYTHONDONTWRITEBYTECODE, and without the .pyc files every start compiles the
    agent's ~140 modules from source (~0.5 s of CPU a deployed agent never pays)."""
    dirs = [str(d) for d in (root / "falcopy", root / "agent", root / "operator") if d.is_dir()]
    subprocess.run([sys.executable, "-m", "compileall", "-q", *dirs], check=True, timeout=600,
                   stdout=subprocess.DEVNULL)


def _steps(log: str) -> str:
    """The agent's start-up steps from its "running" line (the last one in ``log``)."""
    found = re.findall(r"/healthz ok; ([^)]*)\)", log)
    return found[-1] if found else "?"


def _start(agent: AgentProcess, alerts: AlertFile, cat: Path, label: str,
           row: dict[str, float]) -> subprocess.Popen[bytes]:
    """Launch the agent while a copied ``cat`` reads /etc/shadow every 10 ms; fills ``row``
    with the seconds from launch to ready and to the first alert, and the CPU until ready."""
    stop = threading.Event()
    tag = f"first-{label}-{os.getpid()}-"

    def reader_loop() -> None:
        k = 0
        while not stop.is_set():
            subprocess.run([str(cat), "/etc/shadow", f"{tag}{k}"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            k += 1
            stop.wait(0.01)

    t_start = time.monotonic()
    proc = agent.launch()
    reader = threading.Thread(target=reader_loop, daemon=True)
    reader.start()
    try:
        deadline = t_start + 300  # a loaded shared machine: the BPF verifier alone can take a minute
        # the first alert may come before /healthz answers (the web server starts after the
        # capture): watch both
        while "ready_s" not in row or "first_alert_s" not in row:
            assert proc.poll() is None, agent.log()
            assert time.monotonic() < deadline, agent.log()
            if "first_alert_s" not in row and alerts.seen(tag):
                row["first_alert_s"] = time.monotonic() - t_start
                row["first_alert_cpu_s"] = _cpu_seconds(proc.pid)
            if "ready_s" not in row and agent.healthy():
                row["ready_s"] = time.monotonic() - t_start
                # CPU spent to get ready (the kernel's BPF verification included): robust to
                # neighbours
                row["ready_cpu_s"] = _cpu_seconds(proc.pid)
                row["start_load_avg"] = os.getloadavg()[0]
            time.sleep(0.002)
    except BaseException:
        proc.kill()
        raise
    finally:
        stop.set()
        reader.join()
    return proc


def test_alert_latency_and_start_up(tmp_path: Path, require_root: None, compat_dir: Path) -> None:
    cat = tmp_path / f"fplat{os.getpid()}"
    shutil.copy("/bin/cat", cat)
    workload = build_workload(tmp_path)
    # a cache of its own: the first start finds nothing another run left
    agent = AgentProcess(tmp_path, [compat_dir / "falco_rules.yaml"],
                         env={"FALCOPY_CACHE_DIR": str(tmp_path / "cache")},
                         **({"cwd": Path(AGENT_SRC)} if AGENT_SRC else {}))
    alerts = AlertFile(agent.alerts_path)
    _compile_bytecode(Path(AGENT_SRC) if AGENT_SRC else REPO)
    row: dict[str, float] = {}
    # the first start fills the caches (composed rules, the validated configuration, the
    # programs its rules need); a node's agent restarts with them in its emptyDir
    cold: dict[str, float] = {}
    proc = _start(agent, alerts, cat, "cold", cold)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)
    cold_steps = _steps(agent.log_path.read_text(errors="replace"))
    proc = _start(agent, alerts, cat, "warm", row)
    try:
        idle, idle_part = _latencies(cat, alerts, "idle")
        mixed_proc = subprocess.Popen([str(workload), "mixed", str(SAMPLES * 0.3 + 5), MIXED_RATE],
                                      stdout=subprocess.PIPE, text=True)
        time.sleep(0.5)  # let the workload reach its pace
        cpu0, w0 = _cpu_seconds(proc.pid), time.monotonic()
        busy, busy_part = _latencies(cat, alerts, "mixed")
        row["mixed_agent_cpu_pct"] = 100 * (_cpu_seconds(proc.pid) - cpu0) / (time.monotonic() - w0)
        mixed_proc.wait(timeout=120)

        time.sleep(2.0)  # let the mixed workload's backlog settle
        cpu0, w0 = _cpu_seconds(proc.pid), time.monotonic()
        time.sleep(IDLE_CPU_S)
        row["idle_cpu_pct"] = 100 * (_cpu_seconds(proc.pid) - cpu0) / (time.monotonic() - w0)
        row["load_avg"] = os.getloadavg()[0]
        t_term = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
        row["shutdown_s"] = time.monotonic() - t_term
    finally:
        agent.stop()
    log = agent.log_path.read_text(errors="replace")
    steps = _steps(log)
    detach = re.search(r"probe detached in ([0-9.]+) s", log)
    assert "stopped: " in log, log[-2000:]
    for label, values in (("idle", idle), ("mixed", busy), ("idle_agent", idle_part),
                          ("mixed_agent", busy_part)):
        row[f"{label}_p50_ms"] = 1000 * _pct(values, 0.5)
        row[f"{label}_p99_ms"] = 1000 * _pct(values, 0.99)
        row[f"{label}_max_ms"] = 1000 * max(values)
    print(f"\nreal agent ({AGENT_SRC or 'this tree'}), Falco's stable rules, JSON file output")
    for label, r, st in (("first start", cold, cold_steps), ("restart", row, steps)):
        print(f"  {label:11}: first alert {r['first_alert_s']:.2f} s ({r['first_alert_cpu_s']:.2f} s of CPU),"
              f" ready {r['ready_s']:.2f} s ({r['ready_cpu_s']:.2f} s of CPU) after process start;"
              f" load average {r['start_load_avg']:.1f}")
        print(f"    start-up steps (s since process start, process CPU s by then): {st}")
    for label in ("idle", "mixed"):
        print(f"  alert latency {label:5}: p50 {row[f'{label}_p50_ms']:6.1f} ms"
              f"  p99 {row[f'{label}_p99_ms']:6.1f} ms  max {row[f'{label}_max_ms']:6.1f} ms"
              f"  ({SAMPLES} samples)")
        part = f"{label}_agent"
        print(f"    agent part (the open's time -> line in the file): p50 {row[f'{part}_p50_ms']:5.1f} ms"
              f"  p99 {row[f'{part}_p99_ms']:5.1f} ms  max {row[f'{part}_max_ms']:5.1f} ms")
    print(f"  agent CPU: idle {row['idle_cpu_pct']:.2f} % of a core (over {IDLE_CPU_S:.0f} s),"
          f" during the mixed workload {row['mixed_agent_cpu_pct']:.1f} %")
    print(f"  shutdown (SIGTERM -> exit, final line written) {row['shutdown_s']:.2f} s"
          f" (probe detach {detach.group(1) if detach else '?'} s); load average {row['load_avg']:.1f}")
    row.update({f"first_start_{k}": v for k, v in cold.items()})
    (Path(os.environ.get("FALCOPY_BENCH_OUT", "/tmp")) / "falcopy-latency-bench.json").write_text(
        json.dumps(row, indent=1))
    assert len(idle) == len(busy) == SAMPLES
