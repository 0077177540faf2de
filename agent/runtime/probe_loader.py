"""Loading the BPF object off the critical path of start-up.

The kernel's verifier is the longest step of start-up and runs outside the GIL, so the
object is loaded in a thread while the rest of the agent imports, reads its
configuration and compiles the rules.  ``falcopy agent`` starts the load before it has
even read the configuration, with the probe's defaults; once the configuration is read
the load is kept if the two settings a load fixes (object file, ring size) agree, and
started again with the configured ones if not.  Nothing is attached, so nothing is
captured, until the agent has its rules.  Which programs the load verifies: the ones the
same command line's rules needed last time (:mod:`falcopy.agent.runtime.program_cache`);
any other the rules need is loaded before attaching.

This module is imported first thing by ``falcopy agent``: it imports nothing heavy at
module level (the probe and the configuration come in with the thread / the caller).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ProbeSettings:
    """What a probe is built with; ``None`` fields: the probe's own defaults."""

    obj: str | None = None
    ring_size: int | None = None
    batch_window: float | None = None
    critical_reserve: int | None = None
    #: the command line's key in the program cache (None: load every program, remember nothing)
    programs_key: str | None = None

    @classmethod
    def of(cls, config: Any) -> ProbeSettings:
        """From an :class:`~falcopy.agent.control.config.AgentConfig`."""
        fc = config.falcopy
        return cls(fc.bpf_object or None, config.engine.ring_buffer_bytes(),
                   fc.event_reader.batch_window_us / 1e6, fc.kernel_filter.critical_reserve_bytes or None)

    def build(self) -> Any:
        from falcopy.agent.kernel import Probe

        kw: dict[str, Any] = {}
        if self.ring_size is not None:
            kw["ring_size"] = self.ring_size
        if self.batch_window is not None:
            kw["batch_window"] = self.batch_window
        if self.critical_reserve is not None:
            kw["critical_reserve"] = self.critical_reserve
        return Probe(self.obj, **kw)


class ProbeLoader:
    """Builds and loads one probe in a thread; :meth:`result` hands it over."""

    def __init__(self, settings: ProbeSettings) -> None:
        self.settings = settings
        self._probe: Any = None
        self._error: BaseException | None = None
        self._lock = threading.Lock()
        self._abandoned = False
        #: set when the kernel begins verifying (or the load has ended): see wait_verifying
        self._verifying = threading.Event()
        #: time.monotonic() when the kernel began verifying (None: not yet / failed before)
        self.verify_began: float | None = None
        #: the event types whose programs the load verified first (None: all of them)
        self.first_events: frozenset[str] | None = None
        #: CPU seconds of the load's thread (the kernel's verification included)
        self.load_cpu = 0.0
        self._thread = threading.Thread(target=self._load, name="falcopy-probe-load", daemon=True)
        self._thread.start()

    def _load(self) -> None:
        probe = None
        cpu0 = time.thread_time()
        try:
            probe = self.settings.build()
            key = self.settings.programs_key
            if key is not None:
                from falcopy.agent.runtime import program_cache

                self.first_events = program_cache.remembered(key, probe.obj_path)
            probe.load(events=self.first_events, before_verify=self._verify_begins)
        except BaseException as exc:  # re-raised by result(), on the caller's thread
            self._error = exc
        self.load_cpu = time.thread_time() - cpu0
        self._verifying.set()
        with self._lock:
            if self._abandoned:  # replaced meanwhile: nobody will take it
                if probe is not None:
                    probe.close()
                return
            self._probe = probe

    def _verify_begins(self) -> None:
        self.verify_began = time.monotonic()
        self._verifying.set()

    def wait_verifying(self, timeout: float) -> None:
        """Wait until the kernel verifies the programs (at most ``timeout`` s).  The
        load's own Python part (imports, opening the object) then runs without
        competing for the GIL with the caller's imports; from there on the load runs in
        the kernel, beside the caller."""
        self._verifying.wait(timeout)

    def for_settings(self, settings: ProbeSettings) -> ProbeLoader:
        """This load if it can serve ``settings`` (same object file and ring size: the rest
        is tuned after load), else a new load with them (this one is discarded)."""
        s = self.settings
        obj_same = (s.obj or None) == (settings.obj or None)
        ring_same = s.ring_size == settings.ring_size or (
            s.ring_size is None and settings.ring_size == _default_ring_size())
        if settings.programs_key is None:
            settings = dataclasses.replace(settings, programs_key=s.programs_key)
        if obj_same and ring_same:
            self.settings = settings
            return self
        with self._lock:  # not waited for: the thread unloads it when its load ends
            self._abandoned = True
            probe, self._probe = self._probe, None
        if probe is not None:
            probe.close()
        return ProbeLoader(settings)

    def result(self) -> Any:
        """The loaded probe, tuned to the settings; raises what the load raised."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        s = self.settings
        if s.batch_window is not None:
            self._probe.tune(batch_window=s.batch_window, critical_reserve=s.critical_reserve)
        return self._probe

    def discard(self) -> None:
        """Wait for the load to end and unload what it loaded."""
        self._thread.join()
        if self._probe is not None:
            self._probe.close()
            self._probe = None



#: the load ``falcopy agent`` began before its command line was parsed (start_early)
_early: ProbeLoader | None = None


def start_early(argv: Sequence[str]) -> None:
    """Begin the load for ``falcopy ARGV`` (its raw arguments), before click and the
    rest of the command line are imported: the kernel verifies while they are."""
    global _early
    if _early is None:
        from falcopy.agent.runtime.program_cache import command_key

        _early = ProbeLoader(ProbeSettings(programs_key=command_key(argv)))


def take_early(argv: Sequence[str]) -> ProbeLoader:
    """The load start_early began (else one begun now); the caller owns it."""
    global _early
    start_early(argv)
    loader, _early = _early, None
    assert loader is not None
    return loader


def _default_ring_size() -> int:
    from falcopy.agent.kernel.probe import DEFAULT_RING_SIZE

    return DEFAULT_RING_SIZE
