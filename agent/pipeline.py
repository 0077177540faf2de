"""Kernel records -> process state -> events -> rules -> alerts.

For each record the state is updated first (an execve is evaluated with its
new image, an open with its new fd), the event is evaluated against the
current ruleset, then deferred removals are applied (a close is evaluated
with the fd it closes, a procexit with the exiting process), as libsinsp does.
A batch is evaluated wholly against one ruleset: :meth:`Pipeline.set_ruleset`
swaps the reference between batches.  Events of other sources (k8s audit) take
the same rules and the same alert path through :meth:`Pipeline.process_event`.

The agent lets :meth:`Pipeline.process_ring` walk each ring batch in place (a record
joined across the end of the ring, and a replay's spans, go to :meth:`Pipeline.process_raw`);
their fast path reads the hot record types (opens, closes, sockets, accepts, connects)
straight from the ring's bytes into the tables and builds a record and an event only for
what a rule is a candidate for; :meth:`Pipeline.process` takes records already decoded.
"""

from __future__ import annotations

import collections
import gc
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import falcopy.agent.fastpath as fastpath
from falcopy.agent.enrichment.model import ContainerInfo, MetadataLookup
from falcopy.agent.events.record import SyscallRecord
from falcopy.agent.events.synthetic import SYNTHETIC_EVENT_TYPES
from falcopy.agent.fields.container_event import container_event
from falcopy.agent.fields.event import SyscallEvent
from falcopy.agent.kernel import hot as hot_layouts
from falcopy.agent.kernel import layout
from falcopy.agent.prefilter import Check, open_checks
from falcopy.agent.socket_prefilter import socket_checks
from falcopy.agent.state.model import FdInfo, ThreadInfo
from falcopy.agent.state.table import STATE_EVENT_TYPES, ProcessTable

from falcopy.engine.kernel_filter import KernelFilter, derive

if TYPE_CHECKING:
    from falcopy.agent.kernel.decoder import Decoder
    from falcopy.agent.kernel.ringbuf import RingWalk

log = logging.getLogger(__name__)

#: per hot type id: name, kind, narrow struct, its size, whether the rules are
#: candidates for the record (False: never, True: always, else a prefilter's check), and
#: the byte offsets of the scalars the struct keeps (0 past the last)
HotEntry = tuple[str, int, Any, int, "Check | bool", int, int, int, int]


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


def _hot_entries(ruleset: RulesetLike | None, types: frozenset[str] | None,
                 checks: dict[str, Check]) -> list[HotEntry | None]:
    """The fast path's table, by type id, for one ruleset."""
    out: list[HotEntry | None] = [None] * (max(hot_layouts.HOT) + 1)
    for typ, (name, kind, st, at) in hot_layouts.HOT.items():
        cand: Check | bool
        if ruleset is None or (types is not None and name not in types):
            cand = False
        else:
            cand = checks.get(name) or True
        o1, o2, o3, o4 = (*at, 0, 0, 0, 0)[:4]
        out[typ] = (name, kind, st, st.size, cand, o1, o2, o3, o4)
    return out


class _Batch:
    """What one batch is evaluated with (one ruleset for the whole batch) and its counts."""

    __slots__ = ("check_of", "evaluate", "evaluated", "num", "wanted")

    def __init__(self, pipeline: Pipeline, ruleset: RulesetLike | None, types: frozenset[str] | None,
                 checks: dict[str, Check]) -> None:
        self.evaluate = ruleset.evaluate if ruleset is not None else None
        self.wanted: Callable[[str], bool] = (lambda t: True) if types is None else types.__contains__
        self.check_of = checks.get
        self.num = pipeline.events
        self.evaluated = 0


class Pipeline:
    def __init__(self, ruleset: RulesetLike | None, state: ProcessTable, *,
                 metadata: MetadataLookup | None = None,
                 on_alert: AlertCallback | None = None, recorder: RecorderLike | None = None,
                 prefilter: bool = True, fast_path: bool = True) -> None:
        self.state = state
        #: :meth:`process_raw` reads the hot record types without decoding them in full
        #: (off: every record decoded, the reference the fast path is tested against)
        self.fast_path = fast_path
        #: records per event type, for the event thread's metrics (:meth:`take_type_counts`)
        self.type_counts: dict[str, int] = {}
        #: skip the opens, sockets and connects no rule can match before building their
        #: event (agent.prefilter, agent.socket_prefilter)
        self.prefilter = prefilter
        #: the flight recorder (capture on alert); None when capture is off
        self.recorder = recorder
        self.metadata = metadata
        self.on_alert = on_alert or (lambda rule, event: None)
        self._lock = threading.Lock()
        self._ruleset: RulesetLike | None = None
        self._types: frozenset[str] | None = frozenset()
        self._checks: dict[str, Check] = {}
        self._hot: list[HotEntry | None] = []
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
        checks = {**open_checks(ruleset), **socket_checks(ruleset)} \
            if ruleset is not None and self.prefilter else {}
        hot = _hot_entries(ruleset, types, checks)
        with self._lock:
            self._ruleset = ruleset
            self._types = types
            self._checks = checks
            self._hot = hot

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
        """Handle one batch of decoded records; returns the number of alerts raised."""
        with self._lock:
            ruleset = self._ruleset
            batch = _Batch(self, ruleset, self._types, self._checks)
        handle = self._handle
        alerts = 0
        for rec in records:
            alerts += handle(rec, batch)
        return self._end_batch(batch, alerts)

    def process_raw(self, buf: Any, spans: Sequence[tuple[int, int]], decoder: Decoder) -> int:
        """Handle one batch of raw ring records (``(offset, size)`` in ``buf``), with
        the same state and alerts as :meth:`process` of the decoded records; returns
        the number of alerts raised.

        The fast path (:mod:`falcopy.agent.fastpath`, compiled when the accelerator is
        built) reads the hot records straight into the process and fd tables and
        decodes a record in full only when some rule is a candidate for it.  Off (every
        record decoded) when ``fast_path`` is False or the flight recorder wants every
        record."""
        if not self.fast_path or self.recorder is not None:
            decode_at = decoder.decode_at
            return self.process([r for off, size in spans if (r := decode_at(buf, off, size)) is not None])
        return self._run(buf, spans, decoder, None)

    def process_ring(self, walk: RingWalk, decoder: Decoder) -> int:
        """Handle the ring's committed records in place (``RingBuffer.drain_walk``: the
        fast loop walks the ring itself, no span per record), with the same state and
        alerts as :meth:`process_raw` of their spans; returns the number of alerts
        raised.  Without the fast path every record goes through the generic decoder,
        one at a time, as :meth:`process` takes them."""
        return self._run(None, (), decoder, walk)

    def _run(self, buf: Any, spans: Sequence[tuple[int, int]], decoder: Decoder,
             walk: RingWalk | None) -> int:
        with self._lock:
            ruleset = self._ruleset
            batch = _Batch(self, ruleset, self._types, self._checks)
            # no hot types: every record on the fast loop's generic path
            hot = self._hot if self.fast_path and self.recorder is None else []
        hot_counts = [0] * len(hot)
        alerts = fastpath.run(self, buf, spans, decoder, batch, hot, hot_counts, walk)
        counts = self.type_counts
        for typ, n in enumerate(hot_counts):
            if n:
                name = hot[typ][0]  # type: ignore[index]
                counts[name] = counts.get(name, 0) + n
        return self._end_batch(batch, alerts)

    def _handle(self, rec: SyscallRecord, batch: _Batch) -> int:
        """One decoded record: state, capture, rules; returns the alerts raised."""
        batch.num += 1
        num = batch.num
        etype = rec.type
        counts = self.type_counts
        counts[etype] = counts.get(etype, 0) + 1
        try:
            thread, fd = self.state.apply(rec)
        except Exception:
            # one malformed record must not stop the agent: count it and go on
            self.errors += 1
            log.exception("state update failed for %s record (pid %s)", rec.type, rec.pid)
            return 0
        if self.recorder is not None:
            # before the rules: an alert's capture holds the event that raised it
            try:
                self.recorder.record(rec, thread, num)
            except Exception:  # capture is an extra: detection goes on without it
                self.errors += 1
                log.exception("flight recorder failed on %s record", rec.type)
        alerts = 0
        if batch.evaluate is not None and batch.wanted(etype) and (
                (check := batch.check_of(etype)) is None or check(fd, thread)):
            alerts = self._evaluate(batch, rec, thread, fd, num)
        self.state.prev_ts = rec.ts
        return alerts

    def _evaluate(self, batch: _Batch, rec: SyscallRecord, thread: ThreadInfo, fd: FdInfo | None,
                  num: int) -> int:
        """The rules on one record's event; returns the alerts raised."""
        assert batch.evaluate is not None
        event = SyscallEvent(rec, thread, fd, self.state, self.metadata, num)
        batch.evaluated += 1
        try:
            matched = batch.evaluate(event)
        except Exception:
            self.errors += 1
            log.exception("rule evaluation failed on %s record", rec.type)
            return 0
        on_alert = self.on_alert
        for rule in matched:
            try:
                on_alert(rule, event)
            except Exception:
                self.errors += 1
                log.exception("alert callback failed for rule %r", getattr(rule, "name", rule))
        return len(matched)

    def _end_batch(self, batch: _Batch, alerts: int) -> int:
        state = self.state
        state.after()
        self.events = batch.num
        self.evaluated += batch.evaluated
        self.alerts += alerts
        state.purge()
        return alerts

    def take_type_counts(self) -> dict[str, int]:
        """Records per event type since the last call (the event thread's metrics)."""
        counts, self.type_counts = self.type_counts, {}
        return counts

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
