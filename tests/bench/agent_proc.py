"""The agent side of the benchmark, run as its own process so that its CPU time
and peak RSS are its own.

    python -m tests.bench.agent_proc floor|full|full-kf|capture SECONDS RULES...

``floor``: the probe with the same event filter (the same programs build and copy
the same records) and a consumer that discards them unread, as a C consumer would
(no per-record work; the kernel's counters count them); ``full``: probe + process
table + pipeline + engine; ``full-kf``: the same with the rule-derived kernel filter
in force (the agent's default);
``capture``: ``full`` with capture on alert (the flight recorder keeps every record,
and the probe also delivers the recorder's extra event types).  Prints
"ready" once attached, then one JSON line of statistics.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time

from falcopy.agent.fields.syscall import AgentSyscallSource
from falcopy.agent.kernel.probe import SUPPORTED_EVENTS, Probe
from falcopy.agent.pipeline import Pipeline, kernel_filter, tune_gc
from falcopy.agent.state import STATE_EVENT_TYPES, ProcessTable

from falcopy.engine import default_sources, load_rules_files


def main(argv: list[str]) -> int:
    mode, seconds, rules = argv[0], float(argv[1]), argv[2:]
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
    print("ready", flush=True)
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    records = 0
    end = t0 + seconds
    while time.monotonic() < end:
        if pipeline is None:
            probe.skip(50)
        else:
            # the agent's event thread: the batch read in place (Pipeline.process_raw)
            before = pipeline.events
            probe.poll_into(pipeline.process_raw, 50)
            records += pipeline.events - before
            if recorder is not None:
                recorder.tick()
    # drain what the workload left in the ring (bounded: on a shared machine other
    # processes' records never stop arriving)
    drain_end = time.monotonic() + 2.0
    while time.monotonic() < drain_end:
        if pipeline is None:
            n = 1 if probe.skip(20) else 0
        else:
            before = pipeline.events
            probe.poll_into(pipeline.process_raw, 20)
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
