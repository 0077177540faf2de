"""The event thread: polls the probe, runs the pipeline, ticks the alert stage and the
flight recorder, watches kernel drops, and swaps in a reloaded ruleset between two
batches (so a batch is always evaluated against one ruleset).

Its only contact with the outputs is the alert stage's non-blocking hand-off to the
sink queues; it sleeps in the probe's poll, and control work (a new ruleset, a
container to announce, stop) wakes it through ``Probe.interrupt``.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from falcopy.agent.control.config import AgentConfig
from falcopy.agent.control.drops import DROP_RULE, DropMonitor
from falcopy.agent.control.metrics import EventStats

log = logging.getLogger("falcopy.agent")

# per-type counting runs over every batch: attrgetter keeps it in C

#: a compiled ruleset, the event types it needs (None: all) and its kernel filter (None: off)
Pending = tuple[Any, "set[str] | None", Any]


class RulesetHandover:
    """The slot through which the reloader passes a compiled ruleset to the event thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: Pending | None = None

    def offer(self, ruleset: Any, types: set[str] | None, kernel_filter: Any) -> None:
        with self._lock:
            self._pending = (ruleset, types, kernel_filter)

    def take(self) -> Pending | None:
        if self._pending is None:  # the common case, every batch: no lock
            return None
        with self._lock:
            pending, self._pending = self._pending, None
        return pending


class EventLoop:
    """Runs on its own thread until ``stop`` is set; see the module docstring."""

    def __init__(
        self,
        config: AgentConfig,
        probe: Any,
        pipeline: Any,
        stage: Any,
        stats: EventStats,
        *,
        stop: threading.Event,
        handover: RulesetHandover,
        kernel_filter: Any,
        on_swap: Callable[[Any], None],
        emit_internal: Callable[[str, str, str, dict[str, Any]], None],
        request_exit: Callable[[str], None],
        announcer: Any = None,
        recorder: Any = None,
    ) -> None:
        self.config = config
        self.probe = probe
        self.pipeline = pipeline
        self.stage = stage
        self.stats = stats
        self.stop = stop
        self.handover = handover
        #: the kernel filter in force (None: off)
        self.kernel_filter = kernel_filter
        self.on_swap = on_swap
        self.emit_internal = emit_internal
        self.request_exit = request_exit
        self.announcer = announcer
        self.recorder = recorder
        #: set once the first poll's records (those buffered during start-up) are processed
        self.first_batch = threading.Event()

    def run(self) -> None:
        probe, pipeline, stats, stage = self.probe, self.pipeline, self.stats, self.stage
        announcer, recorder = self.announcer, self.recorder
        drops = DropMonitor(
            self.config.syscall_event_drops,
            emit_alert=lambda msg, fields: self.emit_internal(DROP_RULE, "Debug", msg, fields),
            request_exit=self.request_exit,
        )
        counter: collections.Counter[str] = collections.Counter()
        last_drop_read = 0.0
        perf = time.perf_counter
        # a record wakes the thread at once; the timeout only paces the drop check and
        # closes the next aggregation window on time when nothing arrives
        idle_poll_ms = self.config.falcopy.event_reader.idle_poll_ms

        def timed_process(buf: Any, spans: list[tuple[int, int]], decoder: Any) -> None:
            t0 = perf()
            pipeline.process_raw(buf, spans, decoder)
            stats.engine_seconds += perf() - t0

        def timed_walk(walk: Any, decoder: Any) -> None:
            t0 = perf()
            pipeline.process_ring(walk, decoder)
            stats.engine_seconds += perf() - t0
        try:
            while not self.stop.is_set():
                self.apply_pending()
                timeout = idle_poll_ms
                window_end = stage.next_end()
                if window_end is not None:
                    timeout = max(0, min(timeout, (window_end - time.time_ns()) // 1_000_000 + 1))
                # the pipeline walks the batch in place (Pipeline.process_ring)
                before = pipeline.events
                got = probe.poll_into(timed_process, timeout, timed_walk)
                if got:
                    stats.events += pipeline.events - before
                    stats.ring_wakeups = probe.wakeups
                    stats.ring_quick_reads = probe.quick_reads_made
                    counter.update(pipeline.take_type_counts())
                if announcer is not None and announcer.pending():
                    pipeline.process_containers(announcer.drain())
                # aggregation windows close on the events' clock while records flow, on the
                # wall clock once the ring is drained: a lagging agent closes no window early
                stage.tick(pipeline.state.prev_ts if got else time.time_ns())
                if recorder is not None:
                    recorder.tick()
                self.first_batch.set()
                now = time.monotonic()
                if now - last_drop_read >= 1.0:
                    last_drop_read = now
                    for t, n in counter.items():
                        stats.count("syscall", t, n)
                    counter.clear()
                    stats.kernel_drops = probe.drops()
                    drops.check(stats.events, stats.kernel_drops)
            # stopped once the probe is detached: what it captured until then is still
            # processed (bounded: a probe whose detach failed keeps filling the ring)
            for _ in range(64):
                before = pipeline.events
                got = probe.poll_into(pipeline.process_raw, 0, pipeline.process_ring)
                stats.events += pipeline.events - before
                counter.update(pipeline.take_type_counts())
                if got < probe.batch_limit:
                    break
            stage.tick(time.time_ns())
        finally:
            self.first_batch.set()
            for t, n in counter.items():
                stats.count("syscall", t, n)

    def apply_pending(self) -> None:
        """Swap in a ruleset the reloader handed over, without a gap and without
        evaluating a record against the wrong rules."""
        pending = self.handover.take()
        if pending is None:
            return
        ruleset, types, kf = pending
        probe, pipeline = self.probe, self.pipeline
        # widen: the kernel delivers what either ruleset needs...
        old_types = probe.enabled_events
        probe.set_event_filter(None if types is None else old_types | types)
        old_kf = self.kernel_filter
        if old_kf is not None and kf is not None:
            from falcopy.engine.kernel_filter import union

            probe.set_kernel_filter(union(old_kf, kf))
        else:
            probe.set_kernel_filter(None)
        # ...the records filtered by the old filter go to the old rules...
        while True:
            before = pipeline.events
            got = probe.poll_into(pipeline.process_raw, 0, pipeline.process_ring)
            self.stats.events += pipeline.events - before
            if got < probe.batch_limit:
                break
        # ...swap (open aggregation windows are summarised under the rules that opened
        # them), then narrow to what the new rules need
        pipeline.set_ruleset(ruleset)
        self.on_swap(ruleset)
        probe.set_event_filter(types)
        probe.set_kernel_filter(kf)
        self.kernel_filter = kf
