"""Fault bookkeeping for the metadata sources: one log line per condition, backoff.

A broken docker socket or kubelet must not flood the log at event rate: a
condition (``"kubelet: unreachable"``) is logged once when it starts and once
when it clears, whatever the number of failed attempts in between.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass, field

log = logging.getLogger("falcopy.agent.enrichment")


@dataclass
class FaultLog:
    """Active fault conditions per source, each logged once."""

    logger: logging.Logger = field(default_factory=lambda: log)
    _active: dict[str, str] = field(default_factory=dict)
    _counts: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fault(self, source: str, condition: str, detail: str = "") -> None:
        """Record that ``source`` is in ``condition``; logs only on a change."""
        with self._lock:
            self._counts[source] = self._counts.get(source, 0) + 1
            if self._active.get(source) == condition:
                return
            self._active[source] = condition
        suffix = f": {detail}" if detail else ""
        self.logger.warning("container metadata: %s %s%s (will retry with backoff)",
                            source, condition, suffix)

    def ok(self, source: str) -> None:
        with self._lock:
            previous = self._active.pop(source, None)
        if previous is not None:
            self.logger.warning("container metadata: %s recovered (was: %s)", source, previous)

    def active(self) -> dict[str, str]:
        with self._lock:
            return dict(self._active)

    def failures(self, source: str) -> int:
        """Failed attempts recorded for ``source`` since start."""
        with self._lock:
            return self._counts.get(source, 0)


@dataclass
class Backoff:
    """Exponential backoff with jitter: base, 2*base, 4*base... capped."""

    base_s: float = 0.5
    cap_s: float = 30.0
    jitter: float = 0.1
    attempts: int = 0
    not_before: float = 0.0

    def failed(self, now: float | None = None) -> float:
        """Register a failure; returns the delay before the next attempt."""
        now = time.monotonic() if now is None else now
        delay = min(self.cap_s, self.base_s * (2 ** self.attempts))
        delay *= 1.0 + random.uniform(-self.jitter, self.jitter)  # noqa: S311 - jitter, not crypto
        self.attempts += 1
        self.not_before = now + delay
        return delay

    def succeeded(self) -> None:
        self.attempts = 0
        self.not_before = 0.0

    def ready(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        return now >= self.not_before
