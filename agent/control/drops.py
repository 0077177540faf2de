"""Falco's ``syscall_event_drops``: react when the kernel probe loses records.

Checked once per second: if records were dropped and the dropped fraction of
the last second exceeds ``threshold``, the configured actions run, rate-limited
by a token bucket (``rate`` tokens per second, at most ``max_burst``) exactly
as Falco's: ``log`` writes an error, ``alert`` emits the internal alert
"Falco internal: syscall event drop" (priority Debug, source internal),
``exit`` stops the agent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from falcopy.agent.control.config import SyscallEventDrops

log = logging.getLogger(__name__)

DROP_RULE = "Falco internal: syscall event drop"


class TokenBucket:
    def __init__(self, rate: float, max_burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.max_burst = float(max_burst)
        self._clock = clock
        self._tokens = float(max_burst)
        self._last = clock()

    def claim(self) -> bool:
        now = self._clock()
        self._tokens = min(self.max_burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


@dataclass
class DropReport:
    n_evts: int
    n_drops: int
    n_drops_total: int
    ratio: float


class DropMonitor:
    def __init__(
        self,
        cfg: SyscallEventDrops,
        emit_alert: Callable[[str, dict[str, Any]], None],
        request_exit: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cfg = cfg
        self._emit = emit_alert
        self._exit = request_exit
        self._clock = clock
        self._bucket = TokenBucket(cfg.rate, cfg.max_burst, clock)
        self._last_check = clock()
        self._last_evts = 0
        self._last_drops = 0
        self.triggered = 0

    def check(self, total_events: int, total_drops: int) -> DropReport | None:
        """Call often (each poll); acts at most once per second."""
        now = self._clock()
        if now - self._last_check < 1.0:
            return None
        self._last_check = now
        if self.cfg.simulate_drops:
            total_drops = self._last_drops + max(1, total_events - self._last_evts)
        d_evts = max(0, total_events - self._last_evts)
        d_drops = max(0, total_drops - self._last_drops)
        self._last_evts, self._last_drops = total_events, total_drops
        if d_drops == 0:
            return None
        ratio = d_drops / (d_evts + d_drops)
        if ratio <= self.cfg.threshold:
            return None
        report = DropReport(d_evts, d_drops, total_drops, ratio)
        if "ignore" in self.cfg.actions or not self._bucket.claim():
            return report
        self.triggered += 1
        message = f"Falco internal: syscall event drop. {d_drops} system calls dropped in last second."
        fields = {
            "ebpf_enabled": 1,
            "n_drops": d_drops,
            "n_drops_buffer_total": total_drops,
            "n_drops_pct": round(ratio * 100.0, 4),
            "n_evts": d_evts,
        }
        if "log" in self.cfg.actions:
            log.error("%s (%.2f%% of the last second's events)", message, ratio * 100.0)
        if "alert" in self.cfg.actions:
            self._emit(message, fields)
        if "exit" in self.cfg.actions:
            self._exit(message)
        return report
