"""The agent side of the benchmark, run as its own process so that its CPU time
and peak RSS are its own.

    python -m tests.bench.agent_proc floor|full|full-kf|capture SECONDS|window RULES...

``floor``: the probe with the same event filter (the same programs build and copy
the same records) and a consumer that discards them unread, as a C consumer would
(no per-record work; the kernel's counters count them); ``full``: probe + process
table + pipeline + engine; ``full-kf``: the same with the rule-derived kernel filter
in force (the agent's default);
``capture``: ``full`` with capture on alert (the flight recorder keeps every record,
and the probe also delivers the recorder's extra event types).  Prints
"ready" once attached, then one JSON line of statistics.

``window`` instead of SECONDS: measurement windows opened and closed by the driver on
stdin (``Windows``), one JSON line per window.  ``FALCOPY_BENCH_AGENT_CPU=N``
pins the process (every thread) to CPU N before anything is loaded,
``FALCOPY_BENCH_AGENT_NICE=N`` gives it that nice value.
"""

from __future__ import annotations

import json
import os
import queue
import resource
import sys
import threading
import time

from falcopy.agent.fields.syscall import AgentSyscallSource
from falcopy.agent.kernel.probe import SUPPORTED_EVENTS, Probe
from falcopy.agent.pipeline import Pipeline, kernel_filter, tune_gc
from falcopy.agent.state import STATE_EVENT_TYPES, ProcessTable

from falcopy.engine import default_sources, load_rules_files


def _usage() -> tuple[float, float]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime, r.ru_stime


def _runqueue_wait_s() -> float:
    """Seconds this process's threads waited runnable for a CPU (schedstat): the share of
    its core the scheduler gave to others (on a shared machine, other cgroups' tasks)."""
    total = 0
    for tid in os.listdir("/proc/self/task"):
        try:
            total += int(open(f"/proc/self/task/{tid}/schedstat").read().split()[1])
        except (OSError, IndexError, ValueError):  # a thread that just ended
            continue
    return total / 1e9


def _read(probe: Probe, pipeline: Pipeline, timeout_ms: int) -> int:
    """One batch as the agent's event thread reads it; a tree before the ring walk
    (``FALCOPY_BENCH_AGENT_SRC``) reads spans."""
    walk = getattr(pipeline, "process_ring", None)
    if walk is None:
        return probe.poll_into(pipeline.process_raw, timeout_ms)
    return probe.poll_into(pipeline.process_raw, timeout_ms, walk)


class Windows:
    """Measurement windows the driver opens and closes on stdin: "start" answers
    "started", "stop" reads the backlog the workload left and answers one JSON line of
    the window's statistics; the end of stdin ends the run."""

    def __init__(self, pipeline: Pipeline, probe: Probe) -> None:
        self.pipeline = pipeline
        self.probe = probe
        self.commands: queue.SimpleQueue[str] = queue.SimpleQueue()
        self.t0 = 0.0
        self.usage0 = (0.0, 0.0)
        self.runq0 = 0.0
        self.events0 = self.drops0 = self.wakeups0 = self.evaluated0 = 0
        threading.Thread(target=self._read, name="windows", daemon=True).start()

    def _read(self) -> None:
        for line in sys.stdin:
            self.commands.put(line.strip())
            self.probe.interrupt()  # answered now, not at the end of the reader's sleep
        self.commands.put("end")
        self.probe.interrupt()

    def handle(self) -> bool:
        """Run the commands that arrived (on the event loop's thread, between batches);
        False once the run is over."""
        while not self.commands.empty():
            command = self.commands.get()
            if command == "start":
                self.events0 = self.pipeline.events
                self.drops0 = self.probe.drops()
                self.wakeups0 = self.probe.wakeups
                self.evaluated0 = self.pipeline.evaluated
                self.pipeline.take_type_counts()
                self.usage0 = _usage()
                self.runq0 = _runqueue_wait_s()
                self.t0 = time.monotonic()
                print("started", flush=True)
            elif command == "stop":
                print(json.dumps(self._stop()), flush=True)
            elif command == "end":
                return False
        return True

    def _stop(self) -> dict[str, object]:
        pipeline, probe = self.pipeline, self.probe
        # the backlog the workload left: everything written before the stop (the neighbours
        # write on, so "until empty" may never come); bounded
        _, written = probe.ring_positions()
        deadline = time.monotonic() + 30
        while probe.ring_positions()[0] < written and time.monotonic() < deadline:
            _read(probe, pipeline, 10)
        wall = time.monotonic() - self.t0
        utime, stime = _usage()
        user, system = utime - self.usage0[0], stime - self.usage0[1]
        return {"records": pipeline.events - self.events0, "drops": probe.drops() - self.drops0,
                "wall_s": wall, "cpu_s": user + system, "user_s": user, "system_s": system,
                "runqueue_wait_s": _runqueue_wait_s() - self.runq0,
                "wakeups": probe.wakeups - self.wakeups0,
                # records the rules were evaluated on, and the types read (the neighbours' too)
                "evaluated": pipeline.evaluated - self.evaluated0, "types": pipeline.take_type_counts(),
                "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                "errors": pipeline.errors}


def main(argv: list[str]) -> int:
    cpu = os.environ.get("FALCOPY_BENCH_AGENT_CPU")
    if cpu is not None:
        os.sched_setaffinity(0, {int(cpu)})
    nice = os.environ.get("FALCOPY_BENCH_AGENT_NICE")
    if nice is not None:
        os.setpriority(os.PRIO_PROCESS, 0, int(nice))
    mode, rules = argv[0], argv[2:]
    windowed = argv[1] == "window"
    seconds = 0.0 if windowed else float(argv[1])
    sources = default_sources()
    sources["syscall"] = AgentSyscallSource()
    result = load_rules_files(rules, sources=sources)
    if not result.ok or result.ruleset is None:
        print(json.dumps({"error": [str(m) for m in result.errors]}), flush=True)
        return 1
    ruleset = result.ruleset
    types = ruleset.evttypes("syscall")
    wanted = (set(types) if types is not None else set(SUPPORTED_EVENTS)) | STATE_EVENT_TYPES
    alerts = 0
    pipeline = None
    recorder = None
    if mode == "capture":
        import tempfile

        from falcopy.agent.capture.service import CaptureService, recorded_types
        from falcopy.agent.control.config import AgentConfig

        config = AgentConfig.model_validate(
            {"capture": {"enabled": True, "path_prefix": f"{tempfile.mkdtemp()}/capture"}})
        wanted |= recorded_types(config)
    if mode in ("full", "full-kf", "capture"):
        table = ProcessTable()
        table.bootstrap()

        def on_alert(rule: object, event: object) -> None:
            nonlocal alerts
            alerts += 1
            ruleset.format(rule, event)  # type: ignore[arg-type]

        if mode == "capture":
            recorder = CaptureService(config, table).recorder
        pipeline = Pipeline(ruleset, table, on_alert=on_alert, recorder=recorder)
        tune_gc()
    probe = Probe()
    probe.load()
    probe.set_event_filter(wanted & SUPPORTED_EVENTS)
    if mode == "full-kf":
        probe.set_kernel_filter(kernel_filter(ruleset))
    probe.ignore_pid(os.getpid())
    probe.attach()
    records = 0
    windows = None
    if windowed:
        if pipeline is None:
            raise SystemExit(f"measurement windows need a pipeline, not mode {mode!r}")
        windows = Windows(pipeline, probe)
    print("ready", flush=True)
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    end = t0 + seconds

    def running() -> bool:
        return windows.handle() if windows is not None else time.monotonic() < end

    while running():
        if pipeline is None:
            probe.skip(50)
        else:
            # the agent's event thread: the batch walked in place (Pipeline.process_ring)
            before = pipeline.events
            _read(probe, pipeline, 50)
            records += pipeline.events - before
            if recorder is not None:
                recorder.tick()
    if windows is not None:
        probe.close()
        return 0
    # drain what the workload left in the ring (bounded: on a shared machine other
    # processes' records never stop arriving)
    drain_end = time.monotonic() + 2.0
    while time.monotonic() < drain_end:
        if pipeline is None:
            n = 1 if probe.skip(20) else 0
        else:
            before = pipeline.events
            _read(probe, pipeline, 20)
            n = pipeline.events - before
        if pipeline is not None:
            records += n
        if n == 0:
            break
    wall = time.monotonic() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    if pipeline is None:
        records = sum(passed for passed, _ in probe.filter_stats().values())
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    stats = {"mode": mode, "records": records, "drops": probe.drops(), "wall_s": wall, "cpu_s": cpu,
             "drops_by_class": probe.drops_by_class(),
             "maxrss_kb": r1.ru_maxrss, "alerts": alerts,
             "recorder_mib": recorder.bytes / (1 << 20) if recorder is not None else 0.0,
             "errors": pipeline.errors if pipeline is not None else 0}
    probe.close()
    print(json.dumps(stats), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
