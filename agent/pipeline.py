"""Kernel records -> process state -> events -> rules -> alerts.

For each record the state is updated first (an execve is evaluated with its
new image, an open with its new fd), the event is evaluated against the
current ruleset, then deferred removals are applied (a close is evaluated
with the fd it closes, a procexit with the exiting process), as libsinsp does.
A batch is evaluated wholly against one ruleset: :meth:`Pipeline.set_ruleset`
swaps the reference between batches.  Events of other sources (k8s audit) take
the same rules and the same alert path through :meth:`Pipeline.process_event`.
"""

from __future__ import annotations

import collections
import gc
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from falcopy.agent.enrichment.model import ContainerInfo, MetadataLookup
from falcopy.agent.events.record import SyscallRecord
from falcopy.agent.events.synthetic import SYNTHETIC_EVENT_TYPES
from falcopy.agent.fields.container_event import container_event
from falcopy.agent.fields.event import SyscallEvent
from falcopy.agent.kernel import layout
from falcopy.agent.prefilter import OpenCheck, open_checks
from falcopy.agent.state.table import STATE_EVENT_TYPES, ProcessTable

from falcopy.engine.kernel_filter import KernelFilter, derive

log = logging.getLogger(__name__)


class RulesetLike(Protocol):
    def evaluate(self, event: Any) -> list[Any]: ...
    def evttypes(self, source: str) -> set[str] | None: ...


AlertCallback = Callable[[Any, SyscallEvent], None]


class RecorderLike(Protocol):
    def record(self, rec: SyscallRecord, thread: Any, num: int) -> None: ...


#: young-generation threshold for :func:`tune_gc`: a batch of records allocates ~5
#: tracked objects each, nearly all freed by reference counting, so collecting every
#: 700 allocations (the default) mostly re-scans the batch being processed
GC_GEN0_THRESHOLD = 50_000


def tune_gc() -> None:
    """Call once the process table is bootstrapped and the rules are loaded: moves
    that long-lived heap out of the collector's reach (``gc.freeze``) and collects
    the young generation less often.  Measured on the open/close replay: decoding
    ~0.3 µs/record cheaper.  Process-wide, so it is the agent's choice, not the
    pipeline's."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, max(gen1, 20), max(gen2, 100))


def kernel_filter(ruleset: Any, *, always: Iterable[str] = ()) -> KernelFilter:
    """The in-kernel interest filter for ``ruleset`` over every event the probe makes:
    the process lifecycle, the generic hook's records (the hook is attached only for the
    syscalls the rules name, chosen in the kernel by its bitmap) and ``always`` pass whatever
    the rules say; the process and fd tables' types pass whenever their fd is known to user
    space."""
    return derive(ruleset, layout.EVENT_IDS, state_types=STATE_EVENT_TYPES,
                  always=layout.LIFECYCLE | {layout.GENERIC} | set(always))


class Pipeline:
    def __init__(self, ruleset: RulesetLike | None, state: ProcessTable, *,
                 metadata: MetadataLookup | None = None,
                 on_alert: AlertCallback | None = None, recorder: RecorderLike | None = None,
                 prefilter: bool = True) -> None:
        self.state = state
        #: skip the opens no rule can match before building their event (agent.prefilter)
        self.prefilter = prefilter
        #: the flight recorder (capture on alert); None when capture is off
        self.recorder = recorder
        self.metadata = metadata
        self.on_alert = on_alert or (lambda rule, event: None)
        self._lock = threading.Lock()
        self._ruleset: RulesetLike | None = None
        self._types: frozenset[str] | None = frozenset()
        self._checks: dict[str, OpenCheck] = {}
        self.events = 0
        self.evaluated = 0
        self.alerts = 0
        self.errors = 0
        #: events of other sources (k8s_audit) per source; kept apart from ``events``,
        #: the syscall event number, which only the event thread advances
        self.source_events: collections.Counter[str] = collections.Counter()
        self.set_ruleset(ruleset)

    @property
    def ruleset(self) -> RulesetLike | None:
        return self._ruleset

    def set_ruleset(self, ruleset: RulesetLike | None) -> None:
        """Swap the ruleset; the batch being processed finishes with the old one."""
        types: frozenset[str] | None
        if ruleset is None:
            types = frozenset()
        else:
            wanted = ruleset.evttypes("syscall")
            types = None if wanted is None else frozenset(wanted)
        checks = open_checks(ruleset) if ruleset is not None and self.prefilter else {}
        with self._lock:
            self._ruleset = ruleset
            self._types = types
            self._checks = checks

    def wanted_types(self) -> frozenset[str] | None:
        """Event types the current rules need (None: all)."""
        return self._types

    def kernel_event_types(self) -> frozenset[str] | None:
        """What the probe must deliver: the rules' types plus what the process and fd
        tables need (None: everything).  Pass to ``Probe.set_event_filter`` after each
        :meth:`set_ruleset`."""
        types = self._types
        return None if types is None else (types | STATE_EVENT_TYPES) - SYNTHETIC_EVENT_TYPES

    def process(self, records: Iterable[SyscallRecord]) -> int:
        """Handle one batch; returns the number of alerts raised."""
        with self._lock:
            ruleset, types, checks = self._ruleset, self._types, self._checks
        state = self.state
        apply = state.apply
        check_of = checks.get
        meta = self.metadata
        on_alert = self.on_alert
        alerts = 0
        num = self.events
        evaluated = 0
        # hoisted per batch: the type filter as one bound method, the ruleset's closure
        evaluate = ruleset.evaluate if ruleset is not None else None
        wanted = (lambda t: True) if types is None else types.__contains__
        record = self.recorder.record if self.recorder is not None else None
        for rec in records:
            num += 1
            try:
                thread, fd = apply(rec)
            except Exception:
                # one malformed record must not stop the agent: count it and go on
                self.errors += 1
                log.exception("state update failed for %s record (pid %s)", rec.type, rec.pid)
                continue
            if record is not None:
                # before the rules: an alert's capture holds the event that raised it
                try:
                    record(rec, thread, num)
                except Exception:  # capture is an extra: detection goes on without it
                    self.errors += 1
                    log.exception("flight recorder failed on %s record", rec.type)
            etype = rec.type
            if evaluate is not None and wanted(etype) and (
                    (check := check_of(etype)) is None or check(rec, fd)):
                event = SyscallEvent(rec, thread, fd, state, meta, num)
                evaluated += 1
                try:
                    matched = evaluate(event)
                except Exception:
                    self.errors += 1
                    log.exception("rule evaluation failed on %s record", rec.type)
                    matched = []
                for rule in matched:
                    alerts += 1
                    try:
                        on_alert(rule, event)
                    except Exception:
                        self.errors += 1
                        log.exception("alert callback failed for rule %r", getattr(rule, "name", rule))
            state.prev_ts = rec.ts
        state.after()
        self.events = num
        self.evaluated += evaluated
        self.alerts += alerts
        state.purge()
        return alerts

    def process_containers(self, infos: Iterable[ContainerInfo]) -> int:
        """Evaluate one synthetic ``container`` event per container (Falco's container
        plugin event, see :mod:`falcopy.agent.enrichment.announce`); event thread only,
        between batches.  Returns the number of alerts raised."""
        with self._lock:
            ruleset, types = self._ruleset, self._types
        if ruleset is None or (types is not None and "container" not in types):
            return 0
        alerts = 0
        for info in infos:
            self.events += 1
            try:
                event = container_event(info, self.state, self.metadata, self.events)
                matched = ruleset.evaluate(event)
            except Exception:
                self.errors += 1
                log.exception("rule evaluation failed on the container event of %s", info.id)
                continue
            self.evaluated += 1
            for rule in matched:
                alerts += 1
                try:
                    self.on_alert(rule, event)
                except Exception:
                    self.errors += 1
                    log.exception("alert callback failed for rule %r", getattr(rule, "name", rule))
        self.alerts += alerts
        return alerts

    def process_event(self, event: Any) -> int:
        """Evaluate one event of another source (a k8s audit event, from the webhook's
        worker thread) against the current ruleset; returns the number of alerts raised.
        A failing rule or alert callback is counted and logged, like a syscall event's."""
        ruleset = self._ruleset
        if ruleset is None:
            return 0
        self.source_events[event.source] += 1
        try:
            matched = ruleset.evaluate(event)
        except Exception:
            self.errors += 1
            log.exception("rule evaluation failed on a %s event", event.source)
            return 0
        for rule in matched:
            try:
                self.on_alert(rule, event)
            except Exception:
                self.errors += 1
                log.exception("alert callback failed for rule %r", getattr(rule, "name", rule))
        return len(matched)
