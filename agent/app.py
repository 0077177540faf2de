"""The running agent: configuration -> rules -> probe -> state -> engine -> outputs.

Size (~660 lines): the split into event loop, rules reloader and wiring is planned
(issue 18) and waits for the work in flight on this file to land.

Threads:
- the *event thread* polls the probe and runs the pipeline (state update, rule
  evaluation, alert building); its only contact with the outputs is a
  non-blocking ``put`` per sink queue;
- the *main thread* runs asyncio: web server, k8s audit webhook, signals, the
  reload worker (rules are compiled in a thread executor, off the event path);
- each sink has its own worker (see :mod:`falcopy.agent.outputs.dispatch`);
- the metadata store runs its own loop (see :mod:`falcopy.agent.enrichment.store`).

A new ruleset is handed to the event thread, which swaps it between two
batches together with the probe's event filter, so a batch is always evaluated
against one ruleset.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import operator
import os
import signal
import socket
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from falcopy.agent.control.config import AgentConfig, ConfigError, load_config
from falcopy.agent.control.drops import DROP_RULE, DropMonitor
from falcopy.agent.control.falco_metrics import FalcoMetricsCollector, FalcoMetricsSource, files_sha256
from falcopy.agent.control.metrics import AgentMetrics
from falcopy.agent.control.web import Readiness, WebServer, create_app
from falcopy.agent.outputs.aggregate import AggregationSettings, AlertStage
from falcopy.agent.outputs.builder import AlertBuilder
from falcopy.agent.outputs.dispatch import OutputDispatcher, build_dispatcher
from falcopy.agent.preflight import StartupError, check_capture, port_in_use_error

from falcopy import __version__
from falcopy.engine import LoadResult, Priority, Ruleset, default_sources
from falcopy.engine.fields.static import add_static_fields

log = logging.getLogger("falcopy.agent")

RELOAD_FAILURE_RULE = "Falco internal: hot restart failure"
#: a rules bundle still mid-update after this long is reported as a reload failure
BUNDLE_STALE_S = 60.0




def default_rules_paths() -> list[Path]:
    """``$FALCOPY_RULES`` (colon-separated), else the rules shipped with falcopy."""
    env = os.environ.get("FALCOPY_RULES")
    if env:
        return [Path(p) for p in env.split(":") if p]
    from falcopy.distribution.shipped import shipped_rules

    found = shipped_rules(Path("/etc/falcopy/rules.d"))
    if not found:
        raise StartupError("no rules given (-r / rules_files) and no default rules directory found")
    return found


def seconds_since_process_start() -> float:
    """From the kernel's start time of this process (so imports count too)."""
    stat = Path("/proc/self/stat").read_text().rpartition(")")[2].split()
    return time.clock_gettime(time.CLOCK_BOOTTIME) - int(stat[19]) / os.sysconf("SC_CLK_TCK")


# per-type counting runs over every batch: attrgetter keeps it in C
_record_type = operator.attrgetter("type")


def wanted_types(ruleset: Ruleset, config: AgentConfig) -> set[str] | None:
    """The syscall event types to capture (None = all), as Falco's ``base_syscalls``.

    The rules' types, plus the state set the process/fd tables need (``STATE_EVENT_TYPES``)
    unless ``custom_set`` is given, which then replaces it (``repair: true`` adds it back);
    ``!name`` removes a type; ``all: true`` captures everything.  The probe always adds the
    process lifecycle.
    """
    from falcopy.agent.events.synthetic import SYNTHETIC_EVENT_TYPES
    from falcopy.agent.state import STATE_EVENT_TYPES

    base = config.base_syscalls
    if base.all:
        return None
    types = ruleset.evttypes("syscall")
    if types is None:
        return None
    out = set(types)
    if not base.custom_set or base.repair:
        out |= STATE_EVENT_TYPES
    for name in base.custom_set:
        if name.startswith("!"):
            out.discard(name[1:])
        else:
            out.add(name)
    from falcopy.agent.capture.service import recorded_types

    out |= recorded_types(config)
    # the agent makes these itself (the container event): the probe is not asked for them
    return out - SYNTHETIC_EVENT_TYPES


def derive_kernel_filter(ruleset: Ruleset, config: AgentConfig) -> Any:
    """The in-kernel interest filter for ``ruleset`` (None: switched off by
    ``falcopy.kernel_filter.enabled``, or by capture: the flight recorder keeps what a
    process did whether or not a rule could match it, so every record must reach it).
    Types ``base_syscalls.custom_set`` names pass whole: the user asked for them."""
    from falcopy.agent.pipeline import kernel_filter

    if not config.falcopy.kernel_filter.enabled or config.capture.enabled:
        return None
    extra = [n for n in config.base_syscalls.custom_set if not n.startswith("!")]
    return kernel_filter(ruleset, always=extra)


class Agent:
    def __init__(
        self,
        config: AgentConfig,
        rules_paths: list[Path],
        *,
        config_path: Path | None = None,
        overrides: Iterable[str] = (),
        cli_rules: bool = False,
    ) -> None:
        self.config = config
        self.rules_paths = rules_paths
        self.config_path = config_path
        self.overrides = list(overrides)
        self.cli_rules = cli_rules
        self.metrics = AgentMetrics()
        self.metrics.add_collector(self._collect_runtime)
        self.falco_metrics = self._register_falco_metrics()
        self.readiness = Readiness()
        self.sources: dict[str, Any] = {}
        self.ruleset: Ruleset | None = None
        self.builder: AlertBuilder | None = None
        self.dispatcher: OutputDispatcher | None = None
        self.stage: AlertStage | None = None
        self.probe: Any = None
        self.pipeline: Any = None
        self.store: Any = None
        self.announcer: Any = None
        self.capture: Any = None
        self._stop = threading.Event()
        self._exit_code = 0
        self._pending: tuple[Ruleset, set[str] | None, Any] | None = None
        #: the kernel filter in force (None: off)
        self.kernel_filter: Any = None
        self._pending_lock = threading.Lock()
        self._event_thread: threading.Thread | None = None
        self._event_error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reload_lock: asyncio.Lock | None = None
        self._startup_error: StartupError | None = None
        self._read_version = ""
        self._read_serial = 0
        self.rules_version = ""
        #: the serial of the operator bundle running (0: none); it never goes down
        self.rules_serial = 0
        #: the newest verified bundle from the API watch (falcopy.rules_api)
        self.api_bundle: Any = None
        self.reporter: Any = None
        self.link: Any = None
        self._retry_handle: asyncio.TimerHandle | None = None
        self._retry_tasks: set[asyncio.Task[bool]] = set()
        self._incomplete_since: float | None = None
        self._incomplete_reported = False
        self._rule_counts: dict[str, int] = {}
        self._probe_loader: threading.Thread | None = None
        self._probe_error: BaseException | None = None

    # ------------------------------------------------------------------ rules
    def _make_sources(self) -> dict[str, Any]:
        from falcopy.agent.fields.syscall import AgentSyscallSource

        sources = dict(default_sources())
        sources["syscall"] = AgentSyscallSource()
        add_static_fields(sources, self.config.static_fields)
        return sources

    def load_rules(self, config: AgentConfig | None = None, paths: list[Path] | None = None) -> LoadResult:
        from falcopy.agent.rulecheck import capturable_event_types, disabled_sources

        from falcopy.distribution.bundle import load_bundle_rules

        cfg = config or self.config
        # a rules ConfigMap volume (operator bundle) is loaded only once complete; the copy
        # from the API watch stands in for it when newer: docs/operator.md
        api = cfg.falcopy.rules_api
        alternatives = {Path(api.volume): self.api_bundle} if api.enabled else None
        result, read = load_bundle_rules(
            paths or self.rules_paths,
            alternatives,
            sources=self.sources,
            selection=cfg.rule_selection(),
            min_priority=Priority.parse(cfg.priority),
            rule_matching=cfg.rule_matching,
            disabled_sources=disabled_sources(cfg),
            capturable=capturable_event_types(),
        )
        self._read_version, self._read_serial = read.version, read.serial
        if read.origins:
            log.info("rules bundle %s (serial %d) read from %s", read.version, read.serial,
                     ", ".join(read.origins))
        return result

    @staticmethod
    def _report(result: LoadResult) -> None:
        for w in result.warnings:
            log.warning("%s", w)
        for e in result.errors:
            log.error("%s", e)

    # ------------------------------------------------------------------ set-up
    def preload_probe(self) -> None:
        """Load the BPF object in a thread while the rules compile: the kernel's
        verifier is the longest step of start-up and runs outside the GIL.  Nothing
        is attached (and nothing captured) until ``_start_capture``."""
        self.probe = self._new_probe()

        def load() -> None:
            try:
                self.probe.load()
            except BaseException as exc:  # re-raised by _start_capture, on the caller's thread
                self._probe_error = exc

        self._probe_loader = threading.Thread(target=load, name="falcopy-probe-load", daemon=True)
        self._probe_loader.start()

    def discard_probe(self) -> None:
        """Start-up failed before capture: unload a preloaded probe."""
        if self._probe_loader is not None:
            self._probe_loader.join()
            self._probe_loader = None
        if self.probe is not None:
            self.probe.close()
            self.probe = None

    def _new_probe(self) -> Any:
        from falcopy.agent.kernel import Probe

        fc = self.config.falcopy
        return Probe(fc.bpf_object or None, ring_size=self.config.engine.ring_buffer_bytes(),
                     batch_window=fc.event_reader.batch_window_us / 1e6,
                     critical_reserve=fc.kernel_filter.critical_reserve_bytes or None)

    def _loaded_probe(self) -> Any:
        if self._probe_loader is None:
            self.probe = self._new_probe()
            self.probe.load()
            return self.probe
        self._probe_loader.join()
        self._probe_loader = None
        if self._probe_error is not None:
            self.probe = None
            raise self._probe_error
        return self.probe

    def prepare(self) -> None:
        """Everything that can fail on configuration, before anything is started."""
        self.sources = self._make_sources()
        for note in self.config.inactive_falco_keys():
            log.info("config: %s", note)
        result = self._load_complete_rules()
        self._report(result)
        if not result.ok or result.ruleset is None:
            raise StartupError(f"rules failed to load ({len(result.errors)} error(s)); not starting")
        self.ruleset = result.ruleset
        self.rules_version = self._read_version
        self.falco_metrics.rules_files = files_sha256(self.rules_paths)
        enabled = sum(1 for r in self.ruleset.rules if r.enabled)
        self._rule_counts = dict(result.counts, enabled=enabled)
        log.info("loaded %d rules from %s", enabled, ", ".join(map(str, self.rules_paths)))
        self.metrics.rules_loaded.set(enabled)
        self.builder = AlertBuilder(self.config, self.ruleset, self.sources)
        self.dispatcher = build_dispatcher(self.config, self.metrics)
        thresholds = self.config.falcopy.thresholds
        self.stage = AlertStage(
            self._build_alert,
            self.dispatcher.submit,
            AggregationSettings.from_config(self.config),
            max_groups=thresholds.max_groups,
            max_values=thresholds.max_values,
        )
        self.metrics.add_collector(self.stage.metric_families)

    def _load_complete_rules(self, wait_s: float = 30.0) -> LoadResult:
        from falcopy.distribution.bundle import BundleIncomplete

        deadline = time.monotonic() + wait_s
        while True:
            try:
                return self.load_rules()
            except BundleIncomplete as exc:
                if time.monotonic() > deadline:
                    raise StartupError(f"rules bundle still incomplete after {wait_s:.0f}s: {exc}") from exc
                log.info("%s; waiting for kubelet to finish the update", exc)
                time.sleep(0.5)

    def dry_run(self) -> int:
        """Falco's --dry-run: config, rules and outputs checked; no event is processed."""
        assert self.ruleset is not None and self.dispatcher is not None
        self.dispatcher.start()
        self.dispatcher.close(timeout=1.0)
        types = wanted_types(self.ruleset, self.config)
        sel = "all" if types is None else " ".join(sorted(types))
        log.info("dry run: configuration and rules are valid; syscalls selected: %s", sel)
        return 0

    def _start_capture(self) -> None:
        from falcopy.agent.enrichment.announce import ContainerAnnouncer
        from falcopy.agent.enrichment.attach import container_resolver
        from falcopy.agent.enrichment.store import MetadataStore
        from falcopy.agent.pipeline import Pipeline, tune_gc
        from falcopy.agent.state.cgroup import ContainerIdResolver
        from falcopy.agent.state.table import ProcessTable

        assert self.ruleset is not None
        fc = self.config.falcopy
        enrichment = fc.enrichment
        if not enrichment.host_root and fc.host.root not in ("", "/"):
            enrichment = enrichment.model_copy(update={"host_root": fc.host.root})
        if enrichment.enabled:
            self.store = MetadataStore(enrichment)
            # before start(): containers already running are announced too, as Falco does
            self.announcer = ContainerAnnouncer()
            self.store.add_listener(self._offer_container)
            self.store.start()
        resolver = container_resolver(self.store, ContainerIdResolver(proc_root=fc.host.proc))
        state = ProcessTable(fc.host, container_resolver=resolver)
        self.pipeline = Pipeline(self.ruleset, state, metadata=self.store, on_alert=self._on_alert)
        if self.config.capture.enabled:
            from falcopy.agent.capture.service import CaptureService

            self.capture = CaptureService(self.config, state, metadata=self.store)
            self.capture.recorder.ruleset = self.ruleset
            self.pipeline.recorder = self.capture.recorder
            self.metrics.add_collector(self.capture.collect)
            self.capture.start()
        probe = self._loaded_probe()
        probe.set_event_filter(wanted_types(self.ruleset, self.config))
        self.kernel_filter = derive_kernel_filter(self.ruleset, self.config)
        probe.set_kernel_filter(self.kernel_filter)
        if probe.unsupported:
            log.warning(
                "event types the rules use but the probe cannot capture: %s",
                " ".join(sorted(probe.unsupported)),
            )
        probe.ignore_pid(os.getpid())
        probe.attach()
        if probe.generic_attached:
            log.info("raw sys_exit hook attached (a cost on every syscall) for the syscalls without a "
                     "dedicated program here: %s", " ".join(sorted(probe.generic_events)))
        n = state.bootstrap()
        # the bootstrapped tables and compiled rules live as long as the agent:
        # keep them out of the collector's generations
        tune_gc()
        from falcopy import __version__

        c = self._rule_counts
        log.info(
            "falcopy %s starting (pid %d): config %s; rules %s: %d rules (%d enabled), %d macros, %d lists;"
            " capturing %d event types: %s; %d processes read from %s",
            __version__, os.getpid(), self.config_path or "(defaults)",
            ", ".join(map(str, self.rules_paths)), c.get("rules", 0), c.get("enabled", 0),
            c.get("macros", 0), c.get("lists", 0), len(probe.enabled_events),
            " ".join(sorted(probe.enabled_events)), n, fc.host.proc,
        )

    # ------------------------------------------------------------------ event path
    def _wake_event_thread(self) -> None:
        """Control work for the event thread (a new ruleset, a container to announce,
        stop): it sleeps in the probe's poll as long as no record arrives."""
        probe = self.probe
        if probe is not None:
            with contextlib.suppress(RuntimeError):  # not loaded yet / closed: nothing sleeps
                probe.interrupt()

    def _offer_container(self, info: Any) -> None:
        """Metadata store listener (store thread)."""
        assert self.announcer is not None
        self.announcer.offer(info)
        if self.announcer.pending():
            self._wake_event_thread()

    def _on_alert(self, rule: Any, event: Any) -> None:
        assert self.stage is not None
        self.stage.on_match(rule, event)

    def _build_alert(self, rule: Any, event: Any) -> Any:
        """The alert of one match (the stage's build step); a capturing rule's alert
        starts its capture and names the file."""
        assert self.builder is not None
        alert = self.builder.build(rule, event)
        if alert is not None and self.capture is not None:
            alert.capture_file = self.capture.recorder.on_alert(rule, event) or ""
        return alert

    def emit_internal(self, rule: str, priority: str, message: str, fields: dict[str, Any]) -> None:
        assert self.builder is not None and self.dispatcher is not None
        if not self.builder.accepts(priority):
            return
        self.dispatcher.submit(self.builder.internal(rule, priority, message, fields, time.time_ns()))

    def _event_loop(self) -> None:
        probe, pipeline, stats = self.probe, self.pipeline, self.metrics.events
        announcer = self.announcer
        recorder = self.capture.recorder if self.capture is not None else None
        stage = self.stage
        assert stage is not None
        drops = DropMonitor(
            self.config.syscall_event_drops,
            emit_alert=lambda msg, fields: self.emit_internal(DROP_RULE, "Debug", msg, fields),
            request_exit=self._exit_on_drops,
        )
        counter: collections.Counter[str] = collections.Counter()
        last_drop_read = 0.0
        perf = time.perf_counter
        # a record wakes the thread at once; the timeout only paces the drop check and
        # closes the next aggregation window on time when nothing arrives
        idle_poll_ms = self.config.falcopy.event_reader.idle_poll_ms
        try:
            while not self._stop.is_set():
                self._apply_pending()
                timeout = idle_poll_ms
                window_end = stage.next_end()
                if window_end is not None:
                    timeout = max(0, min(timeout, (window_end - time.time_ns()) // 1_000_000 + 1))
                records = probe.poll(timeout)
                if records:
                    t0 = perf()
                    pipeline.process(records)
                    stats.engine_seconds += perf() - t0
                    stats.events += len(records)
                    stats.ring_wakeups = probe.wakeups
                    counter.update(map(_record_type, records))
                if announcer is not None and announcer.pending():
                    pipeline.process_containers(announcer.drain())
                # aggregation windows close on the events' clock while records flow, on the
                # wall clock once the ring is drained: a lagging agent closes no window early
                stage.tick(records[-1].ts if records else time.time_ns())
                if recorder is not None:
                    recorder.tick()
                now = time.monotonic()
                if now - last_drop_read >= 1.0:
                    last_drop_read = now
                    for t, n in counter.items():
                        stats.count("syscall", t, n)
                    counter.clear()
                    stats.kernel_drops = probe.drops()
                    drops.check(stats.events, stats.kernel_drops)
        except BaseException as exc:  # the agent must not keep serving /healthz without detection
            self._event_error = exc
            log.exception("event loop failed")
            self._exit_code = 1
            self.request_stop()
        finally:
            for t, n in counter.items():
                stats.count("syscall", t, n)

    def _exit_on_drops(self, message: str) -> None:
        log.critical("%s; exiting (syscall_event_drops.actions contains exit)", message)
        self._exit_code = 1
        self.request_stop()

    def _apply_pending(self) -> None:
        if self._pending is None:
            return
        with self._pending_lock:
            pending, self._pending = self._pending, None
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
            records = probe.poll(0)
            if records:
                pipeline.process(records)
                self.metrics.events.events += len(records)
            if len(records) < probe.batch_limit:
                break
        # ...swap, then narrow to what the new rules need
        pipeline.set_ruleset(ruleset)
        assert self.builder is not None and self.stage is not None
        # open windows are summarised under the rules that opened them
        self.stage.flush("reload")
        self.builder.set_ruleset(ruleset)
        self.ruleset = ruleset
        if self.capture is not None:
            self.capture.recorder.ruleset = ruleset
        probe.set_event_filter(types)
        probe.set_kernel_filter(kf)
        self.kernel_filter = kf

    # ------------------------------------------------------------------ reload
    async def reload(self, reason: str) -> bool:
        """Compile the rules again off the event path; swap only if they load cleanly."""
        from falcopy.distribution.bundle import BundleIncomplete

        assert self._reload_lock is not None
        async with self._reload_lock:
            loop = asyncio.get_running_loop()
            config = self.config
            paths = self.rules_paths
            try:
                if self.config_path is not None:
                    config = await loop.run_in_executor(None, load_config, self.config_path, self.overrides)
                    if not self.cli_rules and config.rules_files:
                        paths = [Path(p) for p in config.rules_files]
                result = await loop.run_in_executor(None, self.load_rules, config, paths)
            except BundleIncomplete as exc:
                return self._reload_deferred(str(exc))
            except ConfigError as exc:
                return self._reload_failed(reason, list(exc.messages))
            except Exception as exc:  # a reload must never take the running agent down
                log.exception("reload failed")
                return self._reload_failed(reason, [f"{type(exc).__name__}: {exc}"])
            self._incomplete_since, self._incomplete_reported = None, False  # a complete set was read
            if not result.ok or result.ruleset is None:
                return self._reload_failed(reason, [str(e) for e in result.errors])
            if self._read_serial < self.rules_serial:
                log.warning("rules bundle serial %d is older than the running %d: not loaded",
                            self._read_serial, self.rules_serial)
                return False
            self._report(result)  # the new set's warnings
            ruleset = result.ruleset
            kf = await loop.run_in_executor(None, derive_kernel_filter, ruleset, config)
            types = wanted_types(ruleset, config)
            if self.probe is not None:
                # verifying newly needed programs takes a while: here, not on the event thread
                try:
                    await loop.run_in_executor(None, self.probe.preload, types)
                except OSError as exc:
                    return self._reload_failed(reason, [f"loading probe programs: {exc}"])
            with self._pending_lock:
                self._pending = (ruleset, types, kf)
            self._wake_event_thread()
            if self.pipeline is None:  # no event thread (tests without capture)
                self._apply_pending_without_probe()
            self.rules_paths = paths
            self.rules_version = self._read_version
            self.rules_serial = self._read_serial
            self.falco_metrics.rules_files = files_sha256(paths)
            self.falco_metrics.reload_ts_ns = time.time_ns()
            if self.reporter is not None:
                self.reporter.loaded(self.rules_version)
            enabled = sum(1 for r in ruleset.rules if r.enabled)
            self.metrics.rules_loaded.set(enabled)
            self.metrics.rule_reloads.labels(result="success").inc()
            log.info("rules reloaded (%s): %d rules", reason, enabled)
            return True

    def _reload_deferred(self, why: str) -> bool:
        """A rules bundle is mid-update (kubelet synced some shards): keep the running
        rules and retry shortly (the next swap also triggers).  Still incomplete after
        BUNDLE_STALE_S (a hand-edited ConfigMap?): reported once as a failure, retried slower."""
        loop = asyncio.get_running_loop()
        now = time.monotonic()
        if self._incomplete_since is None:
            self._incomplete_since = now
            log.info("rules bundle mid-update (%s): keeping the running rules", why)
        stale = now - self._incomplete_since > BUNDLE_STALE_S
        if stale and not self._incomplete_reported:
            self._incomplete_reported = True
            stale_msg = f"rules bundle incomplete for {BUNDLE_STALE_S:.0f}s: {why}"
            self._reload_failed("rules bundle", [stale_msg])
        if self._retry_handle is not None and not self._retry_handle.cancelled():
            return False

        def retry() -> None:
            self._retry_handle = None
            task = loop.create_task(self.reload("rules bundle retry"))
            self._retry_tasks.add(task)
            task.add_done_callback(self._retry_tasks.discard)

        self._retry_handle = loop.call_later(5.0 if stale else 1.0, retry)
        return False

    def _apply_pending_without_probe(self) -> None:
        with self._pending_lock:
            pending, self._pending = self._pending, None
        if pending is not None and self.builder is not None:
            if self.stage is not None:
                self.stage.flush("reload")
            self.ruleset = pending[0]
            self.builder.set_ruleset(pending[0])

    def _reload_failed(self, reason: str, errors: list[str]) -> bool:
        self.metrics.rule_reloads.labels(result="failure").inc()
        for e in errors:
            log.error("%s", e)
        log.error("rules reload (%s) failed with %d error(s): keeping the rules that are running",
                  reason, len(errors))
        first = errors[0] if errors else "unknown error"
        if self.reporter is not None:
            self.reporter.failed(first)
        self.emit_internal(
            RELOAD_FAILURE_RULE,
            "Critical",
            f"Falco internal: hot restart failure: {first}",
            {
                "reload.errors": len(errors),
                "reload.error": first,
                "reload.files": [str(p) for p in self.rules_paths],
            },
        )
        return False

    # ------------------------------------------------------------------ run
    def request_stop(self) -> None:
        self._stop.set()
        self._wake_event_thread()
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(lambda: None)  # wake the main loop

    def run(self) -> int:
        """Start everything, run until SIGTERM/SIGINT, stop cleanly; returns the exit code."""
        assert self.dispatcher is not None
        self.dispatcher.start()
        try:
            asyncio.run(self._main())
        finally:
            self._shutdown()
        if self._startup_error is not None:
            raise self._startup_error
        return self._exit_code

    async def _start_detection(self) -> None:
        """Probe, state and event thread; /healthz answers 503 until this is done."""
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, self._start_capture)
        except Exception as exc:
            raise StartupError(f"cannot start the kernel capture: {exc}") from exc
        self.readiness.rules_loaded = self.ruleset is not None
        self._event_thread = threading.Thread(target=self._event_loop, name="falcopy-events", daemon=True)
        self._event_thread.start()
        self.readiness.probe_attached = True
        self.metrics.ready.set(1)

    def _preflight(self) -> None:
        from falcopy.agent.kernel.probe import DEFAULT_OBJ

        obj = self.config.falcopy.bpf_object
        check_capture(Path(obj) if obj else DEFAULT_OBJ)

    async def _start_listeners(self, servers: list[Any]) -> None:
        """The web server and the audit webhook; a port in use is one clear line, not a traceback."""
        ws, audit = self.config.webserver, self.config.falcopy.k8s_audit
        try:
            if ws.enabled:
                web = WebServer(create_app(ws, self.readiness, self.metrics, self._versions_extra), ws)
                await web.start()
                servers.append(web)
        except OSError as exc:
            err = port_in_use_error("the web server", ws.listen_address, ws.listen_port,
                                    "webserver.listen_port", exc)
            raise err or exc from exc
        try:
            if audit.enabled:
                servers.append(await self._start_audit())
        except OSError as exc:
            err = port_in_use_error("the k8s audit webhook", audit.listen_address, audit.listen_port,
                                    "falcopy.k8s_audit.listen_port", exc)
            raise err or exc from exc

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._reload_lock = asyncio.Lock()
        loop = self._loop
        servers: list[Any] = []
        watcher = None
        try:
            try:
                await loop.run_in_executor(None, self._preflight)
                await self._start_listeners(servers)
            except StartupError as exc:
                self._startup_error = exc
                return
            reload_tasks: set[asyncio.Task[bool]] = set()

            def on_hup() -> None:
                assert self.dispatcher is not None
                self.dispatcher.reopen()
                task = loop.create_task(self.reload("SIGHUP"))
                reload_tasks.add(task)
                task.add_done_callback(reload_tasks.discard)

            loop.add_signal_handler(signal.SIGHUP, on_hup)
            loop.add_signal_handler(signal.SIGTERM, self.request_stop)
            loop.add_signal_handler(signal.SIGINT, self.request_stop)
            try:
                await self._start_detection()
            except StartupError as exc:
                self._startup_error = exc
                return
            ready_s = seconds_since_process_start()
            self.metrics.startup_seconds.set(ready_s)
            log.info("falcopy agent running (pid %d): ready %.2f s after process start (probe attached,"
                     " rules compiled, /healthz ok)", os.getpid(), ready_s)
            self.reporter, self.link = self._start_cluster_link(loop, reload_tasks)
            if self.config.watch_config_files:
                watcher = self._start_watcher(loop, reload_tasks)
            snapshots = self._snapshot_maker()
            next_snapshot = time.monotonic() + self.config.metrics.interval
            while not self._stop.is_set():
                await asyncio.sleep(0.2)
                if snapshots is not None and time.monotonic() >= next_snapshot:
                    next_snapshot += self.config.metrics.interval
                    self._emit_snapshot(snapshots)
            self.readiness.shutting_down = True
            log.info("shutting down")
        finally:
            if watcher is not None:
                watcher.stop()
            if self.link is not None:
                self.link.stop()
            for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(Exception):
                    loop.remove_signal_handler(sig)
            for server in reversed(servers):
                with contextlib.suppress(Exception):
                    await server.stop()

    def _snapshot_maker(self) -> Any:
        from falcopy.agent.control.snapshot import SnapshotMaker

        m = self.config.metrics
        if not m.enabled or not (m.output_rule or m.output_file):
            return None
        return SnapshotMaker(self.metrics, m.convert_memory_to_mb)

    def _emit_snapshot(self, maker: Any) -> None:
        from falcopy.agent.control.snapshot import SNAPSHOT_RULE
        from falcopy.agent.outputs.format import dumps
        from falcopy.agent.outputs.sinks.appendfile import open_append

        assert self.dispatcher is not None
        fields = maker.fields(self.dispatcher.total_dropped(), self.dispatcher.alerts_total)
        m = self.config.metrics
        if m.output_rule:
            self.emit_internal(SNAPSHOT_RULE, "Informational", "Falco metrics snapshot", fields)
        if m.output_file:
            try:
                with os.fdopen(open_append(m.output_file), "ab") as fh:
                    fh.write(dumps({"output_fields": fields, "sample": int(time.time())}) + b"\n")
            except OSError as exc:
                log.error("metrics.output_file %s: %s", m.output_file, exc.strerror or exc)

    def _start_watcher(self, loop: asyncio.AbstractEventLoop, tasks: set[asyncio.Task[bool]]) -> Any:
        from falcopy.agent.control.watch import RulesWatcher

        def changed() -> None:
            task = loop.create_task(self.reload("rules or configuration changed"))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        paths = [*self.rules_paths, *([self.config_path] if self.config_path else [])]
        watcher = RulesWatcher(
            paths,
            lambda: loop.call_soon_threadsafe(changed),
            debounce_s=self.config.falcopy.reload_debounce_ms / 1000.0,
        )
        watcher.start()
        return watcher

    def _start_cluster_link(
        self, loop: asyncio.AbstractEventLoop, tasks: set[asyncio.Task[bool]]
    ) -> tuple[Any, Any]:
        """The agent's API connection (its own thread): Lease falcopy-agent-<node> in
        $FALCOPY_NAMESPACE (set by the chart when the operator is enabled) with the
        rules version this node runs, and the rules bundle watch (falcopy.rules_api)."""
        api = self.config.falcopy.rules_api
        status_ns = os.environ.get("FALCOPY_NAMESPACE") or os.environ.get("FALCOPY_STATUS_NAMESPACE")
        if not status_ns and not api.enabled:
            return None, None
        from falcopy.agent.control.clusterlink import ClusterLink
        from falcopy.agent.control.lease import LeaseReporter

        from falcopy.distribution.apiaccess import ApiAccess, ApiAccessError
        from falcopy.distribution.bundlewatch import BundleWatch

        try:
            access = ApiAccess.discover()
        except ApiAccessError as exc:
            log.error("no API server access (%s): rules come from the mounted files only, no status Lease",
                      exc)
            return None, None
        jobs = []
        reporter = None
        if status_ns:
            node = (os.environ.get("FALCOPY_NODE_NAME") or os.environ.get("FALCO_HOSTNAME")
                    or socket.gethostname())
            reporter = LeaseReporter(node, status_ns)
            reporter.loaded(self.rules_version)
            jobs.append(reporter.run)
        ns = api.namespace or status_ns
        if api.enabled and not ns:
            log.error("falcopy.rules_api: no namespace (set falcopy.rules_api.namespace or "
                      "$FALCOPY_NAMESPACE): rules come from the mounted files only")
        elif api.enabled:
            def on_bundle(bundle: Any) -> None:  # in the link's thread
                self.api_bundle = bundle
                loop.call_soon_threadsafe(delivered, bundle.serial)

            def delivered(serial: int) -> None:
                if serial <= self.rules_serial:
                    return  # the volume delivered it first
                task = loop.create_task(self.reload(f"rules bundle serial {serial} from the API"))
                tasks.add(task)
                task.add_done_callback(tasks.discard)

            jobs.append(lambda client: BundleWatch(
                client, ns, api.configmaps, on_bundle,
                watch_timeout=(api.watch_timeout_s, 2.0 * api.watch_timeout_s)).run())
            log.info("watching rules bundle ConfigMap %s/%s through %s (volume %s is the fallback)",
                     ns, api.configmaps[0], access.server, api.volume)
        link = ClusterLink(access, jobs)
        link.start()
        return reporter, link

    async def _start_audit(self) -> Any:
        from falcopy.agent.audit.webhook import AuditWebhook

        def on_event(event: Any) -> None:
            ruleset = self.ruleset
            if ruleset is None:
                return
            self.metrics.events.count("k8s_audit", "audit")
            for rule in ruleset.evaluate(event):
                self._on_alert(rule, event)

        from falcopy.agent.audit.stats import WebhookStatsCollector

        hook = AuditWebhook(self.config.falcopy.k8s_audit, on_event)
        await hook.start()
        self.metrics.registry.register(
            WebhookStatsCollector(hook.stats, pending_bytes=lambda: hook.intake.reserved_bytes))
        return hook

    def _collect_runtime(self) -> Iterable[Any]:
        """Scrape-time numbers of the pipeline, process table and metadata store."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        pipeline, store, probe = self.pipeline, self.store, self.probe
        if probe is not None:
            try:
                by_class = probe.drops_by_class()
                stats = probe.filter_stats()
            except OSError:
                by_class, stats = {}, {}
            drops = CounterMetricFamily(
                "falcopy_kernel_drops_by_class",
                "Records lost because the ring was full (bulk: also when only the critical reserve was left)",
                labels=["class"],
            )
            for cls, n in by_class.items():
                drops.add_metric([cls], n)
            yield drops
            recs = CounterMetricFamily(
                "falcopy_kernel_records",
                "Records per event type: put in the ring (passed) or kept in the kernel (filtered)",
                labels=["type", "verdict"],
            )
            for t, (passed, filtered) in sorted(stats.items()):
                recs.add_metric([t, "passed"], passed)
                recs.add_metric([t, "filtered"], filtered)
            yield recs
            yield GaugeMetricFamily(
                "falcopy_kernel_filter_enabled", "1 when the rule-derived kernel filter is in force",
                value=1 if probe.kernel_filter_enabled else 0,
            )
        if pipeline is not None:
            yield CounterMetricFamily(
                "falcopy_pipeline_errors", "Records or rules that raised an error", value=pipeline.errors
            )
            yield GaugeMetricFamily(
                "falcopy_process_table_size",
                "Threads in the process table",
                value=len(pipeline.state.threads),
            )
        if store is not None:
            st = store.stats
            fam = CounterMetricFamily(
                "falcopy_enrichment", "Container metadata store activity", labels=["what"]
            )
            for what in ("misses", "runtime_lookups", "kubelet_refreshes", "published"):
                fam.add_metric([what], getattr(st, what, 0))
            yield fam

    def _register_falco_metrics(self) -> FalcoMetricsSource:
        """Falco's metric names (docs/outputs.md), read from the live objects at scrape time."""

        def drops_per_cpu() -> list[int]:
            return self.probe.drops_per_cpu() if self.probe is not None else []

        def n_threads() -> int | None:
            return len(self.pipeline.state.threads) if self.pipeline is not None else None

        def n_containers() -> int | None:
            return len(self.store.snapshot()) if self.store is not None else None

        src = FalcoMetricsSource(
            version=__version__,
            config_files=files_sha256([self.config_path]) if self.config_path else {},
            rule_matches=lambda: self.metrics.events.rule_matches,
            outputs_queue_drops=lambda: self.dispatcher.total_dropped() if self.dispatcher else 0,
            n_evts=lambda: self.metrics.events.events,
            drops_per_cpu=drops_per_cpu,
            n_threads=n_threads,
            n_containers=n_containers,
        )
        self.metrics.registry.register(FalcoMetricsCollector(src))
        return src

    def _versions_extra(self) -> dict[str, Any]:
        return {"rules_files": [str(p) for p in self.rules_paths], "rules_version": self.rules_version}

    def _shutdown(self) -> None:
        self._stop.set()
        self._wake_event_thread()
        self.readiness.shutting_down = True
        self.metrics.ready.set(0)
        if self._event_thread is not None:
            self._event_thread.join(10)
        if self.capture is not None:
            self.capture.stop()
        if self._probe_loader is not None:  # start-up stopped before capture began
            self._probe_loader.join()
        if self.probe is not None:
            try:
                if self.probe.loaded:  # a preloaded probe may never have finished loading
                    self.metrics.events.kernel_drops = self.probe.drops()  # for the final line
                self.probe.close()  # links detached, maps and ring buffer freed
            except OSError as exc:  # BpfError included
                log.error("probe close failed: %s", exc)
            self.probe = None
        if self.store is not None:
            with contextlib.suppress(Exception):
                self.store.stop()
            self.store = None
        if self.stage is not None:
            self.stage.flush("shutdown")
        if self.dispatcher is not None:
            self.dispatcher.close(timeout=5.0)
        ev = self.metrics.events
        alerts = self.dispatcher.alerts_total if self.dispatcher is not None else 0
        output_drops = self.dispatcher.total_dropped() if self.dispatcher is not None else 0
        log.info("stopped: %d events, %d alerts, %d kernel drops, %d output drops",
                 ev.events, alerts, ev.kernel_drops, output_drops)


def build_agent(
    config_path: str | None,
    rules: Iterable[str],
    overrides: Iterable[str],
    *,
    preload_probe: bool = False,
) -> Agent:
    """Parse and validate everything; raises ConfigError / StartupError before anything starts."""
    from falcopy.agent.control.config import find_default_config

    overrides = list(overrides)
    path = Path(config_path) if config_path else find_default_config()
    config = load_config(path, overrides)
    cli_rules = [Path(r) for r in rules]
    if cli_rules:
        paths = cli_rules
    elif config.rules_files:
        paths = [Path(p) for p in config.rules_files]
    else:
        paths = default_rules_paths()
    agent = Agent(config, paths, config_path=path, overrides=overrides, cli_rules=bool(cli_rules))
    if preload_probe:
        agent.preload_probe()
    try:
        agent.prepare()
    except BaseException:
        agent.discard_probe()
        raise
    return agent
