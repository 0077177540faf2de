"""Kernel records -> process state -> events -> rules -> alerts.

For each record the state is updated first (an execve is evaluated with its
new image, an open with its new fd), the event is evaluated against the
current ruleset, then deferred removals are applied (a close is evaluated
with the fd it closes, a procexit with the exiting process), as libsinsp does.
A batch is evaluated wholly against one ruleset: :meth:`Pipeline.set_ruleset`
swaps the reference between batches.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from falcopy.agent.enrichment.model import MetadataLookup
from falcopy.agent.events.record import SyscallRecord
from falcopy.agent.fields.event import SyscallEvent
from falcopy.agent.state.table import STATE_EVENT_TYPES, ProcessTable

log = logging.getLogger(__name__)


class RulesetLike(Protocol):
    def evaluate(self, event: Any) -> list[Any]: ...
    def evttypes(self, source: str) -> set[str] | None: ...


AlertCallback = Callable[[Any, SyscallEvent], None]


class Pipeline:
    def __init__(self, ruleset: RulesetLike | None, state: ProcessTable, *,
                 metadata: MetadataLookup | None = None,
                 on_alert: AlertCallback | None = None) -> None:
        self.state = state
        self.metadata = metadata
        self.on_alert = on_alert or (lambda rule, event: None)
        self._lock = threading.Lock()
        self._ruleset: RulesetLike | None = None
        self._types: frozenset[str] | None = frozenset()
        self.events = 0
        self.evaluated = 0
        self.alerts = 0
        self.errors = 0
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
        with self._lock:
            self._ruleset = ruleset
            self._types = types

    def wanted_types(self) -> frozenset[str] | None:
        """Event types the current rules need (None: all)."""
        return self._types

    def kernel_event_types(self) -> frozenset[str] | None:
        """What the probe must deliver: the rules' types plus what the process and fd
        tables need (None: everything).  Pass to ``Probe.set_event_filter`` after each
        :meth:`set_ruleset`."""
        types = self._types
        return None if types is None else types | STATE_EVENT_TYPES

    def process(self, records: Iterable[SyscallRecord]) -> int:
        """Handle one batch; returns the number of alerts raised."""
        with self._lock:
            ruleset, types = self._ruleset, self._types
        state = self.state
        apply = state.apply
        meta = self.metadata
        on_alert = self.on_alert
        alerts = 0
        num = self.events
        for rec in records:
            num += 1
            try:
                thread, fd = apply(rec)
            except Exception:
                # one malformed record must not stop the agent: count it and go on
                self.errors += 1
                log.exception("state update failed for %s record (pid %s)", rec.type, rec.pid)
                continue
            if ruleset is not None and (types is None or rec.type in types):
                event = SyscallEvent(rec, thread, fd, state, meta, num)
                self.evaluated += 1
                try:
                    matched = ruleset.evaluate(event)
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
        self.alerts += alerts
        state.purge()
        return alerts
