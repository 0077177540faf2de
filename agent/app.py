"""The running agent's wiring: configuration -> rules -> probe -> state -> engine -> outputs.

Builds the parts and starts and stops them in order; the parts themselves live in
:mod:`falcopy.agent.runtime` (the event thread, the rules reloader, what to capture,
the live metrics).  Size (~800 lines): the start and stop order of every part (probe,
pipeline, listeners, watcher, cluster link: Lease and rules bundle watch, outputs) is
kept in one place on purpose.

Threads:
- the *event thread* (:mod:`falcopy.agent.runtime.event_loop`) polls the probe and
  runs the pipeline (state update, rule evaluation, alert building); its only
  contact with the outputs is a non-blocking ``put`` per sink queue;
- the *main thread* starts the capture and the event thread, waits for the first batch,
  then runs asyncio (imported only then: not on the way to the first alert): web server,
  k8s audit webhook, signals, the
  reloader (rules are compiled in a thread executor, off the event path);
- the audit webhook's worker evaluates k8s audit events through the same
  :class:`~falcopy.agent.pipeline.Pipeline`;
- each sink has its own worker (see :mod:`falcopy.agent.outputs.dispatch`);
- the metadata store runs its own loop (see :mod:`falcopy.agent.enrichment.store`);
- the cluster link runs its own loop: the status Lease and the rules bundle watch
  (see :mod:`falcopy.agent.control.clusterlink`).

A new ruleset is handed to the event thread, which swaps it between two
batches together with the probe's event filter, so a batch is always evaluated
against one ruleset.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from falcopy.agent.control.config import AgentConfig, load_config
from falcopy.agent.control.falco_metrics import files_sha256
from falcopy.agent.control.metrics import AgentMetrics
from falcopy.agent.control.readiness import Readiness
from falcopy.agent.outputs.aggregate import AggregationSettings, AlertStage
from falcopy.agent.outputs.builder import AlertBuilder
from falcopy.agent.outputs.dispatch import OutputDispatcher, build_dispatcher
from falcopy.agent.preflight import StartupError, check_capture, port_in_use_error
from falcopy.agent.runtime.event_loop import EventLoop, RulesetHandover
from falcopy.agent.runtime.live_metrics import collect_runtime, register_falco_metrics
from falcopy.agent.runtime.probe_loader import ProbeLoader, ProbeSettings
from falcopy.agent.runtime.reloader import RulesReloader
from falcopy.agent.runtime.selection import default_rules_paths, derive_kernel_filter, wanted_types

from falcopy.engine import LoadResult, Priority, Ruleset, default_sources
from falcopy.engine.fields.static import add_static_fields

if TYPE_CHECKING:
    import asyncio

__all__ = ["Agent", "StartupError", "build_agent", "default_rules_paths", "derive_kernel_filter",
           "wanted_types"]

log = logging.getLogger("falcopy.agent")

#: longest wait for the event thread's first batch before the web server starts anyway
FIRST_BATCH_WAIT_S = 5.0


def seconds_since_process_start() -> float:
    """From the kernel's start time of this process (so imports count too)."""
    stat = Path("/proc/self/stat").read_text().rpartition(")")[2].split()
    return time.clock_gettime(time.CLOCK_BOOTTIME) - int(stat[19]) / os.sysconf("SC_CLK_TCK")




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
        self.metrics.add_collector(lambda: collect_runtime(self))
        self.falco_metrics = register_falco_metrics(self)
        self.readiness = Readiness()
        self.sources: dict[str, Any] = {}
        self.ruleset: Ruleset | None = None
        self.builder: AlertBuilder | None = None
        self.dispatcher: OutputDispatcher | None = None
        self.stage: AlertStage | None = None
        self.probe: Any = None
        self.pipeline: Any = None
        self.store: Any = None
        #: resolver of the names the rules compare fd.*ip.name with (None: falcopy.dns off),
        #: and the names of the running rules
        self.dns: Any = None
        self.dns_names: set[str] = set()
        self.announcer: Any = None
        self.capture: Any = None
        #: stop asked for (SIGTERM/SIGINT, a fatal error): the main loop winds down
        self._stopping = threading.Event()
        self._stopping_async: asyncio.Event | None = None
        self._stop_lock = threading.Lock()
        #: detaches the probe as soon as a stop is asked for (see request_stop)
        self._detacher: threading.Thread | None = None
        self._detach_s = 0.0
        self._stop_asked = 0.0
        #: the event thread's stop: set once the probe is detached
        self._stop = threading.Event()
        self._exit_code = 0
        #: a reloaded ruleset on its way to the event thread
        self.handover = RulesetHandover()
        #: the kernel filter set at start (the event loop keeps the one in force)
        self.kernel_filter: Any = None
        self.events: EventLoop | None = None
        self.reloader = RulesReloader(self)
        #: set once the pipeline exists (audit events wait for it)
        self._pipeline_ready = threading.Event()
        self._event_thread: threading.Thread | None = None
        self._event_error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._startup_error: StartupError | None = None
        #: SIGHUP received before the asyncio loop runs: a reload once it does
        self._hup_pending = False
        #: the version and serial of the rules bundle the last load read
        self.read_version = ""
        self.read_serial = 0
        self.rules_version = ""
        #: the serial of the operator bundle running (0: none); it never goes down
        self.rules_serial = 0
        #: the newest verified bundle from the API watch (falcopy.rules_api)
        self.api_bundle: Any = None
        self.reporter: Any = None
        self.link: Any = None
        self._rule_counts: dict[str, int] = {}
        self._probe_loader: ProbeLoader | None = None
        #: the program cache's key and guess of the load that gave the probe (program_cache)
        self._programs_key: str | None = None
        self._first_events: frozenset[str] | None = None
        #: the programs verified by the first load, and the processes read from /proc
        #: (for the start-up lines, written once the event thread runs)
        self._verified_first: set[str] = set()
        self._bootstrapped = 0
        #: CPU seconds the BPF load took on its thread (mostly the kernel's verifier)
        self.probe_load_cpu = 0.0
        #: seconds since process start at each step of start-up (the "running" log line),
        #: and the process's CPU seconds then (every thread's, the kernel's verifier included)
        #: and the main thread's (imports, configuration, rules, capture start: the critical path)
        self.startup: dict[str, float] = {}
        self.startup_cpu: dict[str, float] = {}
        self.startup_main_cpu: dict[str, float] = {}
        self._main_clock = time.pthread_getcpuclockid(threading.main_thread().ident or 0)
        self.mark_startup("configured")

    def mark_startup(self, step: str, at: float | None = None) -> None:
        self.startup[step] = seconds_since_process_start() if at is None else at
        self.startup_cpu[step] = time.process_time()
        self.startup_main_cpu[step] = time.clock_gettime(self._main_clock)

    # ------------------------------------------------------------------ rules
    def _make_sources(self) -> dict[str, Any]:
        from falcopy.agent.fields.syscall import AgentSyscallSource

        if self.config.falcopy.dns.enabled and self.dns is None:
            from falcopy.agent.enrichment.dns import DnsNames

            self.dns = DnsNames(self.config.falcopy.dns)
            self.metrics.add_collector(self.dns.metric_families)
        sources = dict(default_sources())
        sources["syscall"] = AgentSyscallSource(dns=self.dns)
        add_static_fields(sources, self.config.static_fields)
        return sources

    def watch_names(self, ruleset: Ruleset) -> set[str]:
        """Start resolving the names ``ruleset`` compares fd.*ip.name with, keeping those
        of the running rules; returns the new set."""
        from falcopy.engine.fieldrefs import compared_names

        names = compared_names(ruleset)
        if self.dns is not None:
            self.dns.watch(self.dns_names | names)
            if names:       # no thread for rules that compare no name
                self.dns.start()
        return names

    def load_rules(self, config: AgentConfig | None = None, paths: list[Path] | None = None) -> LoadResult:
        from falcopy.agent.rulecheck import capturable_event_types, disabled_sources, unavailable_fields

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
            unavailable_fields=unavailable_fields(cfg),
        )
        self.read_version, self.read_serial = read.version, read.serial
        if read.origins:
            log.info("rules bundle %s (serial %d) read from %s", read.version, read.serial,
                     ", ".join(read.origins))
        return result

    @staticmethod
    def report(result: LoadResult) -> None:
        for w in result.warnings:
            log.warning("%s", w)
        for e in result.errors:
            log.error("%s", e)

    # ------------------------------------------------------------------ set-up
    def preload_probe(self, early: ProbeLoader | None = None) -> None:
        """Load the BPF object in a thread while the rules compile (see
        :mod:`falcopy.agent.runtime.probe_loader`); ``early``: a load started before the
        configuration was read, kept if it fits it.  Nothing is attached (and nothing
        captured) until ``_start_capture``."""
        settings = ProbeSettings.of(self.config)
        self._probe_loader = early.for_settings(settings) if early is not None else ProbeLoader(settings)

    def discard_probe(self) -> None:
        """Start-up failed before capture: unload a preloaded probe."""
        if self._probe_loader is not None:
            self._probe_loader.discard()
            self._probe_loader = None
        if self.probe is not None:
            self.probe.close()
            self.probe = None

    def _loaded_probe(self) -> Any:
        loader, self._probe_loader = self._probe_loader, None
        loader = loader or ProbeLoader(ProbeSettings.of(self.config))
        self.probe = loader.result()
        self._programs_key, self._first_events = loader.settings.programs_key, loader.first_events
        self.probe_load_cpu = loader.load_cpu
        if loader.verify_began is not None:
            since = time.monotonic() - loader.verify_began
            self.startup["probe verifying"] = seconds_since_process_start() - since
        return self.probe

    def prepare(self) -> None:
        """Everything that can fail on configuration, before anything is started."""
        self.sources = self._make_sources()
        for note in self.config.inactive_falco_keys():
            log.info("config: %s", note)
        result = self._load_complete_rules()
        self.report(result)
        if not result.ok or result.ruleset is None:
            raise StartupError(f"rules failed to load ({len(result.errors)} error(s)); not starting")
        self.ruleset = result.ruleset
        # resolved while the probe loads: never waited for, a name's first answer just comes later
        self.dns_names = self.watch_names(self.ruleset)
        self.mark_startup("rules compiled")
        self.rules_version, self.rules_serial = self.read_version, self.read_serial
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
        from falcopy.agent.enrichment.attach import container_resolver
        from falcopy.agent.pipeline import Pipeline
        from falcopy.agent.state.cgroup import ContainerIdResolver
        from falcopy.agent.state.table import ProcessTable

        assert self.ruleset is not None
        fc = self.config.falcopy
        enrichment = fc.enrichment
        if not enrichment.host_root and fc.host.root not in ("", "/"):
            enrichment = enrichment.model_copy(update={"host_root": fc.host.root})
        if enrichment.enabled:
            # the store's clients (httpx) are imported only for a store that runs
            from falcopy.agent.enrichment.announce import ContainerAnnouncer
            from falcopy.agent.enrichment.store import MetadataStore

            self.store = MetadataStore(enrichment)
            # before start(): containers already running are announced too, as Falco does
            self.announcer = ContainerAnnouncer()
            self.store.add_listener(self._offer_container)
            self.store.start()
        resolver = container_resolver(self.store, ContainerIdResolver(proc_root=fc.host.proc))
        state = ProcessTable(fc.host, container_resolver=resolver)
        self.pipeline = Pipeline(self.ruleset, state, metadata=self.store, on_alert=self._on_alert)
        self._pipeline_ready.set()
        if self.config.capture.enabled:
            from falcopy.agent.capture.service import CaptureService

            self.capture = CaptureService(self.config, state, metadata=self.store)
            self.capture.recorder.ruleset = self.ruleset
            self.pipeline.recorder = self.capture.recorder
            self.metrics.add_collector(self.capture.collect)
            self.capture.start()
        probe = self._loaded_probe()
        self.mark_startup("probe loaded")
        verified_first = probe.loaded_events
        probe.set_event_filter(wanted_types(self.ruleset, self.config))
        self.kernel_filter = derive_kernel_filter(self.ruleset, self.config)
        probe.set_kernel_filter(self.kernel_filter)
        if probe.unsupported:
            log.warning(
                "event types the rules use but the probe cannot capture: %s",
                " ".join(sorted(probe.unsupported)),
            )
        probe.ignore_pid(os.getpid())
        probe.attach()  # loads the programs the rules need that the load left out
        self.mark_startup("attached")
        if probe.generic_attached:
            log.info("raw sys_exit hook attached (a cost on every syscall) for the syscalls without a "
                     "dedicated program here: %s", " ".join(sorted(probe.generic_events)))
        self._bootstrapped = state.bootstrap()
        self.mark_startup("/proc read")
        self._verified_first = verified_first

    def _log_start(self) -> None:
        """The start-up lines, once the event thread runs (the version's lookup,
        importlib.metadata, is not on the way to the first alert)."""
        from falcopy import __version__

        probe, c = self.probe, self._rule_counts
        log.info(
            "falcopy %s starting (pid %d): config %s; rules %s: %d rules (%d enabled), %d macros, %d lists;"
            " capturing %d event types: %s; %d processes read from %s",
            __version__, os.getpid(), self.config_path or "(defaults)",
            ", ".join(map(str, self.rules_paths)), c.get("rules", 0), c.get("enabled", 0),
            c.get("macros", 0), c.get("lists", 0), len(probe.enabled_events),
            " ".join(sorted(probe.enabled_events)), self._bootstrapped, self.config.falcopy.host.proc,
        )
        self._remember_programs(probe, self._verified_first)

    def _remember_programs(self, probe: Any, verified_first: set[str]) -> None:
        """Tell the next start which programs to verify first (program_cache)."""
        needed = probe.program_events
        late = probe.loaded_events - verified_first
        log.info("probe programs: %d verified at start (%s), %d more after the rules compiled%s;"
                 " %d needed", len(verified_first),
                 "all" if self._first_events is None else "the set the last start needed",
                 len(late), f" ({' '.join(sorted(late))})" if late else "", len(needed))
        if self._programs_key is not None:
            from falcopy.agent.runtime import program_cache

            program_cache.remember(self._programs_key, probe.obj_path, needed)

    # ------------------------------------------------------------------ event path
    def wake_event_thread(self) -> None:
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
            self.wake_event_thread()

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

    def swap_outputs(self, ruleset: Ruleset) -> None:
        """The outputs' side of a ruleset swap (event thread, between two batches): open
        aggregation windows are summarised under the rules that opened them."""
        assert self.builder is not None and self.stage is not None
        self.stage.flush("reload")
        self.builder.set_ruleset(ruleset)
        self.ruleset = ruleset
        if self.capture is not None:
            self.capture.recorder.ruleset = ruleset

    def _run_events(self) -> None:
        assert self.events is not None
        try:
            self.events.run()
        except BaseException as exc:  # the agent must not keep serving /healthz without detection
            self._event_error = exc
            log.exception("event loop failed")
            self._exit_code = 1
            self.request_stop()

    def _exit_on_drops(self, message: str) -> None:
        log.critical("%s; exiting (syscall_event_drops.actions contains exit)", message)
        self._exit_code = 1
        self.request_stop()

    # ------------------------------------------------------------------ run
    def request_stop(self) -> None:
        """Begin the shutdown (any thread; idempotent).  The probe is detached at once, in a
        thread: each tracepoint detach waits for a kernel grace period, so the detach runs
        while the listeners, watcher and cluster link stop.  The event thread keeps reading
        until the detach is done and then drains the ring: what was captured is processed."""
        with self._stop_lock:
            if self._stopping.is_set():
                return
            self._stopping.set()
            self._stop_asked = time.monotonic()
            self._detacher = threading.Thread(target=self._detach_then_stop_events,
                                              name="falcopy-stop", daemon=True)
            self._detacher.start()
        loop, stopping = self._loop, self._stopping_async
        if loop is not None and stopping is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stopping.set)  # wake the main loop

    def _detach_then_stop_events(self) -> None:
        t0 = time.monotonic()
        probe, thread = self.probe, self._event_thread
        if probe is not None and probe.loaded and thread is not None and thread.is_alive():
            try:
                probe.detach()
            except (OSError, RuntimeError) as exc:  # BpfError included; closed meanwhile
                log.error("probe detach failed: %s", exc)
        self._detach_s = time.monotonic() - t0
        self._stop.set()
        self.wake_event_thread()

    def run(self) -> int:
        """Start everything, run until SIGTERM/SIGINT, stop cleanly; returns the exit code."""
        assert self.dispatcher is not None
        self.dispatcher.start()
        try:
            if self._detect():
                # asyncio (~25 ms of imports) serves what comes after the first alert
                import asyncio

                asyncio.run(self._main())
        finally:
            self._shutdown()
        if self._startup_error is not None:
            raise self._startup_error
        return self._exit_code

    def _detect(self) -> bool:
        """The capture first (as Falco opens its inspector before its web server), without
        asyncio: preflight, probe, state, the event thread, and the wait for its first batch
        (the records buffered during start-up evaluated: the first alerts out) before anything
        else takes the GIL from it.  Signals meanwhile: SIGTERM/SIGINT stop, SIGHUP reloads
        once the loop runs.  False: start-up failed (``_startup_error``)."""
        previous = {sig: signal.signal(sig, self._on_early_signal)
                    for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT)}
        try:
            self._preflight()
            self._start_detection()
            assert self.events is not None
            self.events.first_batch.wait(FIRST_BATCH_WAIT_S)
        except StartupError as exc:
            self._startup_error = exc
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            return False
        # the start lines' version lookup (importlib.metadata, ~50 ms of imports) would take
        # the GIL from the first batch
        self._log_start()
        return True  # the handlers stay until the loop's replace them (_main)

    def _on_early_signal(self, signum: int, frame: Any) -> None:
        if signum == signal.SIGHUP:
            self._hup_pending = True
            return
        # the interrupted main thread may hold the stop lock: request the stop from another
        threading.Thread(target=self.request_stop, name="falcopy-signal", daemon=True).start()

    def _start_detection(self) -> None:
        """Probe, state and event thread; the web server starts after it."""
        try:
            self._start_capture()
        except Exception as exc:
            raise StartupError(f"cannot start the kernel capture: {exc}") from exc
        self.readiness.rules_loaded = self.ruleset is not None
        assert self.stage is not None
        self.events = EventLoop(
            self.config, self.probe, self.pipeline, self.stage, self.metrics.events,
            stop=self._stop, handover=self.handover, kernel_filter=self.kernel_filter,
            on_swap=self.swap_outputs, emit_internal=self.emit_internal,
            request_exit=self._exit_on_drops, announcer=self.announcer,
            recorder=self.capture.recorder if self.capture is not None else None,
        )
        self._event_thread = threading.Thread(target=self._run_events, name="falcopy-events", daemon=True)
        self._event_thread.start()
        self.readiness.probe_attached = True
        self.metrics.ready.set(1)

    def _preflight(self) -> None:
        from falcopy.agent.kernel.probe import DEFAULT_OBJ

        obj = self.config.falcopy.bpf_object
        check_capture(Path(obj) if obj else DEFAULT_OBJ)

    async def _start_listeners(self, servers: list[Any]) -> None:
        """The audit webhook, then the web server; a port in use is one clear line, not a
        traceback.  The web server answers from its own threads as soon as it listens, so it
        opens last: a ready /healthz means the audit webhook is listening too."""
        ws, audit = self.config.webserver, self.config.falcopy.k8s_audit
        try:
            if audit.enabled:
                servers.append(await self._start_audit())
        except OSError as exc:
            err = port_in_use_error("the k8s audit webhook", audit.listen_address, audit.listen_port,
                                    "falcopy.k8s_audit.listen_port", exc)
            raise err or exc from exc
        try:
            if ws.enabled:
                from falcopy.agent.control.web import WebServer, create_app

                web = WebServer(create_app(ws, self.readiness, self.metrics, self._versions_extra), ws)
                await web.start()
                servers.append(web)
        except OSError as exc:
            err = port_in_use_error("the web server", ws.listen_address, ws.listen_port,
                                    "webserver.listen_port", exc)
            raise err or exc from exc

    async def _main(self) -> None:
        """Everything after the first batch (``_detect``): listeners, watcher, cluster link,
        signals, reloads, metrics snapshots, until a stop."""
        import asyncio

        self._loop = asyncio.get_running_loop()
        self._stopping_async = asyncio.Event()
        loop = self._loop
        servers: list[Any] = []
        watcher = None
        try:
            reload_tasks: set[asyncio.Task[bool]] = set()

            def on_hup() -> None:
                assert self.dispatcher is not None
                self.dispatcher.reopen()
                task = loop.create_task(self.reloader.reload("SIGHUP"))
                reload_tasks.add(task)
                task.add_done_callback(reload_tasks.discard)

            loop.add_signal_handler(signal.SIGHUP, on_hup)
            loop.add_signal_handler(signal.SIGTERM, self.request_stop)
            loop.add_signal_handler(signal.SIGINT, self.request_stop)
            if self._hup_pending:
                on_hup()
            try:
                # the web server and the audit webhook after the capture (_detect): the first
                # alert does not wait for aiohttp's imports; /healthz answers once the agent is
                # ready.  The bootstrapped tables and compiled rules live as long as the agent: keep
                # them out of the collector's generations (one full collection, ~60 ms: after
                # the first alerts); the collector was off during start-up (falcopy.cli.run)
                from falcopy.agent.pipeline import tune_gc

                tune_gc()
                gc.enable()
                await self._start_listeners(servers)
            except StartupError as exc:
                self._startup_error = exc
                return
            ready_s = seconds_since_process_start()
            self.metrics.startup_seconds.set(ready_s)
            # each step: seconds since process start, the process's and the main thread's CPU
            # seconds by then (wall time alone says little on a busy node)
            steps = ", ".join(
                f"{k} {v:.2f}" + (f" cpu {self.startup_cpu[k]:.2f} main {self.startup_main_cpu[k]:.2f}"
                                  if k in self.startup_cpu else "")
                for k, v in sorted(self.startup.items(), key=lambda kv: kv[1]))
            log.info("falcopy agent running (pid %d): ready %.2f s after process start, %.2f s of CPU"
                     " (probe attached, rules compiled, /healthz ok; %s; probe load cpu %.2f,"
                     " verifier cpu %.2f)", os.getpid(), ready_s, time.process_time(), steps,
                     self.probe_load_cpu, self.probe.verify_cpu if self.probe is not None else 0.0)
            self.reporter, self.link = self._start_cluster_link(loop, reload_tasks)
            if self.config.watch_config_files:
                watcher = self._start_watcher(loop, reload_tasks)
            snapshots = self._snapshot_maker()
            next_snapshot = time.monotonic() + self.config.metrics.interval
            stopping = self._stopping_async
            while not self._stopping.is_set():
                timeout = None if snapshots is None else max(0.0, next_snapshot - time.monotonic())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), timeout)
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
            task = loop.create_task(self.reloader.reload("rules or configuration changed"))
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
                task = loop.create_task(self.reloader.reload(f"rules bundle serial {serial} from the API"))
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
            # the webhook listens before detection starts: its events wait (in the
            # intake's bounded queue) for the pipeline rather than being dropped
            while not self._pipeline_ready.wait(0.5):
                if self._stopping.is_set():
                    return
            assert self.pipeline is not None
            self.metrics.events.count("k8s_audit", "audit")
            self.pipeline.process_event(event)

        from falcopy.agent.audit.stats import WebhookStatsCollector

        hook = AuditWebhook(self.config.falcopy.k8s_audit, on_event)
        await hook.start()
        self.metrics.register(
            WebhookStatsCollector(hook.stats, pending_bytes=lambda: hook.intake.reserved_bytes))
        return hook

    def _versions_extra(self) -> dict[str, Any]:
        return {"rules_files": [str(p) for p in self.rules_paths], "rules_version": self.rules_version}

    def _shutdown(self) -> None:
        self.request_stop()  # a no-op after SIGTERM: the probe is being detached already
        assert self._detacher is not None
        self._detacher.join()
        self.readiness.shutting_down = True
        self.metrics.ready.set(0)
        if self._event_thread is not None:
            self._event_thread.join(10)
        if self.capture is not None:
            self.capture.stop()
        if self._probe_loader is not None:  # start-up stopped before capture began
            self._probe_loader.discard()
            self._probe_loader = None
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
        if self.dns is not None:
            self.dns.stop()
        if self.stage is not None:
            self.stage.flush("shutdown")
        if self.dispatcher is not None:
            self.dispatcher.close(timeout=5.0)
        ev = self.metrics.events
        alerts = self.dispatcher.alerts_total if self.dispatcher is not None else 0
        output_drops = self.dispatcher.total_dropped() if self.dispatcher is not None else 0
        log.info("shut down %.2f s after the stop request (probe detached in %.2f s)",
                 time.monotonic() - self._stop_asked, self._detach_s)
        log.info("stopped: %d events, %d alerts, %d kernel drops, %d output drops",
                 ev.events, alerts, ev.kernel_drops, output_drops)


def build_agent(
    config_path: str | None,
    rules: Iterable[str],
    overrides: Iterable[str],
    *,
    preload_probe: bool = False,
    early_probe: ProbeLoader | None = None,
) -> Agent:
    """Parse and validate everything; raises ConfigError / StartupError before anything starts.
    ``preload_probe``: load the BPF object while the rules compile; ``early_probe``: a load
    already under way (started before the configuration was read), adopted or replaced."""
    from falcopy.agent.control.config import find_default_config

    agent: Agent | None = None
    try:
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
        if preload_probe or early_probe is not None:
            agent.preload_probe(early_probe)
            early_probe = None  # the agent owns it now
        agent.prepare()
    except BaseException:
        if agent is not None:
            agent.discard_probe()
        if early_probe is not None:
            early_probe.discard()
        raise
    return agent
