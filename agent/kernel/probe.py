"""Load, configure, attach and read the falcopy BPF probe.

Typical use::

    probe = Probe()
    probe.load()
    probe.set_event_filter(ruleset.evttypes("syscall"))   # None = everything
    probe.ignore_pid(os.getpid())
    probe.attach()
    while running:
        for rec in probe.poll(1000):   # a lone record wakes the reader at once
            ...
    probe.close()

Filtering happens twice: programs of event types nobody asked for are not
attached at all (no cost on those syscalls), and an in-kernel map gates the
attached ones so a filter change takes effect atomically before links change.

Syscalls without a dedicated program (or whose tracepoint this kernel lacks) are
captured by one raw ``sys_exit`` hook (``generic.bpf.c``) filtered by a syscall-id
bitmap; it taxes every syscall of the machine, so it is attached only while some
wanted type needs it.

Size (~680 lines): one class owns the libbpf object, its maps, its links and the
ring; loading programs late, attaching, rewriting the filter maps and closing all
take the same lock over the same handles, which splitting the class would expose.
The libbpf calls themselves are in :mod:`.libbpf`, the ring in :mod:`.ringbuf`,
the record layout in :mod:`.decoder`.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from falcopy.agent.events.record import SyscallRecord
from falcopy.agent.kernel import layout
from falcopy.agent.kernel.decoder import Decoder
from falcopy.agent.kernel.libbpf import BpfError, LibBpf
from falcopy.agent.kernel.ringbuf import QUICK_READS, RingBuffer, RingWalk
from falcopy.agent.kernel.syscalls import NO_EXIT, SyscallTable, kernel_syscall_names

if TYPE_CHECKING:
    # the filter's encoder imports the rules engine: loaded after the kernel began verifying
    # (agent/runtime/probe_loader.py), so that the verifier starts without waiting for it
    from falcopy.agent.kernel.kfilter import FilterMaps

    from falcopy.engine.kernel_filter import KernelFilter

DEFAULT_OBJ = Path(__file__).resolve().parent.parent / "bpf" / "falcopy.bpf.o"
#: the dedicated programs no default rule needs, next to the main object (agent/bpf/Makefile)
EXTRA_OBJ_NAME = "falcopy-extra.bpf.o"
#: the objects' build for kernels without the bpf_rdonly_cast kfunc (< 6.2): <name>-compat.bpf.o
COMPAT_SUFFIX = "-compat"
_KFUNC = "bpf_rdonly_cast"
#: event types with a dedicated program
SUPPORTED_EVENTS: frozenset[str] = frozenset(layout.EVENT_IDS) - {layout.GENERIC}
_GENERIC_NR_MAX = 1024  # generic.bpf.c GENERIC_NR_MAX

_MAX_IGNORED = 8
#: Falco event name -> kernel syscall tracepoint name where they differ (helpers.h EXIT_PROG_TP)
TRACEPOINTS: dict[str, str] = {"umount2": "umount", "pread": "pread64", "pwrite": "pwrite64",
                               "sendfile": "sendfile64"}
_TRACEFS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")


def destroy_links(lib: LibBpf, links: list[int]) -> None:
    """Destroy links in parallel: each tracepoint detach waits for an RCU grace
    period (~70 ms here), so one after the other takes seconds for a full set."""
    if not links:
        return
    if len(links) == 1:
        lib.lib.bpf_link__destroy(links[0])
        return
    # ctypes releases the GIL during the call, so the waits overlap; one thread per link
    # makes it one grace period rather than one per batch (72 links: 1.3 s -> 0.5 s here)
    with ThreadPoolExecutor(max_workers=min(len(links), 512)) as pool:
        list(pool.map(lib.lib.bpf_link__destroy, links))


def _fdinfo(fd: int) -> dict[str, str]:
    """The kernel's ``key:\tvalue`` lines about one of this process's descriptors."""
    return dict(line.split(":\t", 1) for line in
                Path(f"/proc/self/fdinfo/{fd}").read_text().splitlines() if ":\t" in line)


def compat_path(path: Path) -> Path:
    """The build of object ``path`` for kernels without the bpf_rdonly_cast kfunc."""
    stem = path.name.removesuffix(".bpf.o")
    return path.with_name(f"{stem}{COMPAT_SUFFIX}.bpf.o")


def program_name(event: str) -> str:
    if event == layout.GENERIC:
        return "generic_exit"
    return "on_procexit" if event == "procexit" else f"exit_{event}"


def ensure_tracefs() -> Path:
    """Per-syscall tracepoints are resolved through tracefs; mount it when absent."""
    for path in _TRACEFS:
        if os.path.isdir(os.path.join(path, "events")):
            return Path(path)
    lib = LibBpf.get()
    if lib.libc.mount(b"tracefs", _TRACEFS[0].encode(), b"tracefs", 0, None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"tracefs is not mounted and mounting it on {_TRACEFS[0]} failed: "
                      f"{os.strerror(err)}")
    return Path(_TRACEFS[0])


def kernel_events(tracefs: Path, kernel_names: frozenset[str] | None = None) -> set[str]:
    """The supported events this kernel has a tracepoint for (e.g. no init_module
    without CONFIG_MODULES); ``kernel_names``: ``kernel_syscall_names(tracefs)`` if read
    already (one directory listing, not a stat per event)."""
    names = kernel_syscall_names(tracefs) if kernel_names is None else kernel_names
    return {ev for ev in SUPPORTED_EVENTS if ev == "procexit" or TRACEPOINTS.get(ev, ev) in names}


#: the ring's size unless told (Falco's default buf_size_preset)
DEFAULT_RING_SIZE = 8 << 20
#: records decoded per read: the decoded batch is alive at once (~0.7 KiB a record), so
#: 8192 of them after a backlog cost ~5 MiB of peak RSS; a read past the limit goes on
#: at once, so a smaller batch costs one more poll per 1024 records, not throughput
BATCH_LIMIT = 1024


class Probe:
    def __init__(self, obj_path: str | os.PathLike[str] | None = None, *, ring_size: int = DEFAULT_RING_SIZE,
                 wake_threshold: int | None = None, batch_limit: int = BATCH_LIMIT,
                 batch_window: float = 0.005, critical_reserve: int | None = None,
                 quick_reads: int = QUICK_READS) -> None:
        if ring_size < 4096 or ring_size & (ring_size - 1):
            raise ValueError(f"ring_size must be a power of two of at least 4096 bytes, got {ring_size}")
        self.obj_path = Path(obj_path) if obj_path is not None else DEFAULT_OBJ
        self.ring_size = ring_size
        # a quarter of the ring: wakes rarely, leaves room while the consumer runs
        self.wake_threshold = wake_threshold if wake_threshold is not None else max(ring_size // 4, 4096)
        self.batch_limit = batch_limit
        #: while records keep arriving, the reader reads at most once per window (seconds)
        self.batch_window = batch_window
        #: reads sooner than the window a quiet reader may make (ringbuf's module docstring)
        self.quick_reads = quick_reads
        #: ring bytes bulk records leave to the critical ones (layout.CRITICAL)
        self.critical_reserve = critical_reserve if critical_reserve is not None else ring_size // 4
        self._filter_maps: FilterMaps | None = None
        self._lib: LibBpf | None = None
        #: the object holding the maps (its programs: the first entry of _instances)
        self._obj: int | None = None
        #: every loaded object instance, the main one first: (object, the events whose
        #: programs it loaded).  Programs not needed are not loaded (verifying them is most
        #: of start-up); one needed later comes in a new instance sharing the maps.
        self._instances: list[tuple[int, set[str]]] = []
        #: the object files in use (the compat build on kernels without the kfunc)
        self._main_path = self.obj_path
        self._extra_path = self.obj_path.with_name(EXTRA_OBJ_NAME)
        #: events whose program lives in the extra object (known after load)
        self._extra_events: set[str] = set()
        self._instances_lock = threading.Lock()
        self._links: dict[str, int] = {}
        self._links_lock = threading.Lock()
        self._pruners: list[threading.Thread] = []
        self._attached = False
        self._enabled: set[str] = set(SUPPORTED_EVENTS)
        self._wanted: set[str] = set(SUPPORTED_EVENTS)
        self._ignored: list[int] = []
        self._ring: RingBuffer | None = None
        self._decoder = Decoder()
        self._fds: dict[str, int] = {}
        self._ncpus = 1
        #: event names asked for by set_event_filter that the probe cannot produce here
        self.unsupported: set[str] = set()
        #: supported events this kernel has tracepoints for (known after load)
        self.dedicated_events: set[str] = set(SUPPORTED_EVENTS)
        #: the running kernel's syscall table (its own part read at load)
        self.syscalls = SyscallTable.build()
        #: syscall numbers captured through the generic hook
        self._generic: set[int] = set()
        #: CPU seconds spent loading object instances (the kernel's verifier, mostly)
        self.verify_cpu = 0.0

    @property
    def available_events(self) -> set[str]:
        """Every event type this probe can capture on this kernel: the dedicated
        programs with a tracepoint here, and any other syscall of the kernel's table
        through the generic hook (but those without an exit event, NO_EXIT)."""
        return self.dedicated_events | (self.syscalls.event_names() - NO_EXIT)

    # --- lifecycle -------------------------------------------------------
    def load(self, *, events: Iterable[str] | None = None,
             before_verify: Callable[[], None] | None = None) -> None:
        """Open the object, load and verify its programs, set up the maps and the ring.
        ``events``: load only the programs of these event types now (None: every
        program of the main object); any other is loaded when a filter first needs it.
        ``before_verify`` is called just before the kernel verifies the programs (the
        long step, which releases the GIL)."""
        if self._obj is not None:
            return
        if not self.obj_path.is_file():
            raise FileNotFoundError(f"BPF object {self.obj_path} not found: run `make bpf`")
        lib = self._lib = LibBpf.get()
        try:
            tracefs = ensure_tracefs()
            kernel_names = kernel_syscall_names(tracefs)
            self.dedicated_events = kernel_events(tracefs, kernel_names)
            first = None if events is None else set(events)
            try:
                self._load_main(first, before_verify)
            except BpfError as exc:
                compat = compat_path(self.obj_path)
                # libbpf: "extern (func ksym) 'bpf_rdonly_cast': not found in kernel or
                # module BTFs" (ESRCH), or "...: func_proto ... incompatible" (EINVAL)
                missing_kfunc = any(f"(func ksym) '{_KFUNC}'" in line for line in exc.log)
                if not (missing_kfunc and compat.is_file()):
                    raise
                # a kernel before 6.2: the build reading the task through trusted pointers
                self._main_path, self._extra_path = compat, compat_path(self._extra_path)
                self._load_main(first, before_verify)
            # which events the extra object has (opening it costs ~60 ms: after verification)
            self._extra_events = self._programs_of(self._extra_path)
            for name in ("events", "evt_filter", "settings_map", "drops", "generic_nrs", "kf_types",
                         "kf_trie", "kf_comm", "kf_uid", "kf_fds", "kf_critical", "kf_conf_map", "kf_stats"):
                m = lib.lib.bpf_object__find_map_by_name(self._obj, name.encode())
                if not m:
                    raise BpfError(f"map {name!r} missing from {self._main_path}: run `make bpf`", 2, [])
                self._fds[name] = lib.lib.bpf_map__fd(m)
            self._ncpus = lib.lib.libbpf_num_possible_cpus()
            self._ring = RingBuffer(self._fds["events"], self.ring_size, self.batch_window,
                                    self.quick_reads)
            self.syscalls = SyscallTable.build(kernel_names)
            self._decoder.set_syscalls(self.syscalls, tracefs)
            from falcopy.agent.kernel.kfilter import FilterMaps

            self._write_settings()
            self._write_critical()
            self._filter_maps = FilterMaps(lib, self._fds, reserve=self.critical_reserve)
            if first is not None:
                # the extra object's programs in the set: verified here too, on the load's thread
                self._load_programs(first & self._extra_events)
            # a filter set before load may name events this kernel lacks
            self._apply_filter(self._wanted)
        except BaseException:
            self.close()
            raise

    def _load_main(self, events: set[str] | None, before_verify: Callable[[], None] | None) -> None:
        lib = self._need_lib()

        def size_ring(obj: int) -> None:
            ring = lib.lib.bpf_object__find_map_by_name(obj, b"events")
            if not ring:
                raise BpfError("map 'events' missing from the object", 2, [])
            rc = lib.lib.bpf_map__set_max_entries(ring, self.ring_size)
            if rc:
                raise lib.error("setting the ring size", rc)

        obj, loading = self._load_object(self._main_path, events, size_ring, before_verify)
        self._obj = obj
        self._instances = [(obj, loading)]

    def _load_object(self, path: Path, events: set[str] | None, set_up: Callable[[int], None],
                     before_verify: Callable[[], None] | None = None) -> tuple[int, set[str]]:
        """``path`` opened with the programs of ``events`` (see _open), ``set_up`` (its maps),
        loaded and verified with libbpf's log off (LibBpf.quiet); a failed load is repeated
        with the log on, for the error's detail (libbpf loads an object once: the repeat
        opens the file again)."""
        lib = self._need_lib()
        for logged in (False, True):
            obj, loading = self._open(path, events)
            try:
                set_up(obj)
                if before_verify is not None and not logged:
                    before_verify()
                with contextlib.nullcontext() if logged else lib.quiet():
                    rc = self._verify(obj)
                if rc == 0:
                    return obj, loading
                if logged:
                    raise lib.error(f"loading {path}", rc)
            except BaseException:
                lib.lib.bpf_object__close(obj)
                raise
            lib.lib.bpf_object__close(obj)
        raise AssertionError("not reached: the logged attempt returns or raises")

    def _verify(self, obj: int) -> int:
        """bpf_object__load, its CPU time counted in ``verify_cpu``."""
        cpu0 = time.thread_time()
        try:
            return int(self._need_lib().lib.bpf_object__load(obj))
        finally:
            self.verify_cpu += time.thread_time() - cpu0

    def _open_file(self, path: Path) -> int:
        """bpf_object__open_file with libbpf's log off; a failure is repeated with it on."""
        lib = self._need_lib()
        with lib.quiet():
            obj = lib.lib.bpf_object__open_file(str(path).encode(), None)
        if not obj:
            obj = lib.lib.bpf_object__open_file(str(path).encode(), None)
        if not obj:
            raise lib.error(f"opening {path}")
        return int(obj)

    def _open(self, path: Path, events: set[str] | None) -> tuple[int, set[str]]:
        """``path`` opened with only the programs of ``events`` (None: all) this kernel has
        a tracepoint for to be loaded, and the events of those programs."""
        lib = self._need_lib()
        obj = self._open_file(path)
        by_prog = {program_name(ev): ev for ev in self.dedicated_events | {layout.GENERIC}}
        loading: set[str] = set()
        prog = lib.lib.bpf_object__next_program(obj, None)
        while prog:
            ev = by_prog.get(lib.lib.bpf_program__name(prog).decode())
            if ev is not None and (events is None or ev in events):
                loading.add(ev)
            else:
                lib.lib.bpf_program__set_autoload(prog, False)
            prog = lib.lib.bpf_object__next_program(obj, prog)
        return obj, loading

    @property
    def loaded_events(self) -> set[str]:
        """The event types whose programs are loaded (verified) now."""
        return set().union(*(e for _, e in self._instances))

    @property
    def loaded(self) -> bool:
        return self._obj is not None

    def tune(self, *, batch_window: float, critical_reserve: int | None) -> None:
        """Reading pace and the critical reserve, changeable after load (the object path
        and the ring size are fixed by it): a probe loaded before the configuration
        was read takes the configured values here."""
        self.batch_window = batch_window
        self.critical_reserve = critical_reserve if critical_reserve is not None else self.ring_size // 4
        if self._ring is not None:
            self._ring.batch_window = batch_window
        if self._filter_maps is not None:
            self._filter_maps.reserve = self.critical_reserve  # written with the next filter

    def attach(self) -> None:
        self._need_loaded()
        self._attached = True
        self._sync_links()

    def detach(self) -> None:
        lib = self._need_loaded()
        self._join_pruner()
        with self._links_lock:
            links = list(self._links.values())
            self._links.clear()
        destroy_links(lib, links)
        self._attached = False

    def close(self) -> None:
        """Detach and unload.  Stop any thread calling ``poll`` first: the ring's
        mapping goes away."""
        self._join_pruner()
        if self._lib is not None:
            with self._links_lock:
                links = list(self._links.values())
                self._links.clear()
            destroy_links(self._lib, links)
        self._attached = False
        if self._ring is not None:
            self._ring.close()
            self._ring = None
        if self._lib is not None:
            # the main object (the maps' owner) last
            for obj, _ in reversed(self._instances):
                self._lib.lib.bpf_object__close(obj)
        self._instances = []
        self._obj = None

    def __enter__(self) -> Probe:
        self.load()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # --- configuration ---------------------------------------------------
    def set_event_filter(self, types: set[str] | frozenset[str] | None, *,
                         with_lifecycle: bool = True) -> set[str]:
        """Capture only ``types`` (Falco event names; None = all supported).

        Process lifecycle events (clone/fork/execve/procexit...) are added unless
        ``with_lifecycle`` is False: the process table depends on them.  Returns
        the set now enabled; names the probe cannot produce go to ``unsupported``.
        """
        wanted = set(SUPPORTED_EVENTS) if types is None else set(types)
        if with_lifecycle:
            wanted |= layout.LIFECYCLE
        self._wanted = wanted
        return self._apply_filter(wanted)

    def _programs_for(self, wanted: set[str]) -> tuple[set[str], set[int]]:
        """The programs (event keys, layout.GENERIC for the generic hook) and the generic
        syscall numbers that capturing ``wanted`` takes."""
        dedicated = wanted & self.dedicated_events
        generic = {nr for name in wanted - dedicated - NO_EXIT
                   if (nr := self.syscalls.nr(name)) is not None and nr < _GENERIC_NR_MAX}
        return dedicated | ({layout.GENERIC} if generic else set()), generic

    def _apply_filter(self, wanted: set[str]) -> set[str]:
        enabled, generic = self._programs_for(wanted)
        dedicated = enabled - {layout.GENERIC}
        self._enabled = enabled
        self._generic = generic
        names = dedicated | {self.syscalls.names[nr] for nr in generic}
        self.unsupported = wanted - names
        if self._obj is not None:
            # bitmap before links: a newly attached hook never sees a stale bitmap
            self._write_generic(generic)
            if self._attached:
                self._sync_links()
            self._write_filter(enabled)
        return names

    def set_kernel_filter(self, kf: KernelFilter | None) -> None:
        """Put a rule-derived interest filter in force, atomically (None: every record
        of the enabled types passes).  See falcopy.engine.kernel_filter."""
        self._need_loaded()
        assert self._filter_maps is not None
        self._filter_maps.set(kf, layout.EVENT_IDS)

    @property
    def kernel_filter_enabled(self) -> bool:
        return self._filter_maps is not None and self._filter_maps.enabled

    @property
    def enabled_events(self) -> set[str]:
        """The event types captured now (dedicated programs and generic syscalls)."""
        return (self._enabled - {layout.GENERIC}) | {self.syscalls.names[nr] for nr in self._generic}

    @property
    def program_events(self) -> set[str]:
        """The event types whose programs the filter needs now (layout.GENERIC: the
        generic hook)."""
        return set(self._enabled)

    @property
    def generic_events(self) -> set[str]:
        """The event types captured through the generic hook now."""
        return {self.syscalls.names[nr] for nr in self._generic}

    @property
    def generic_attached(self) -> bool:
        """Whether the raw sys_exit hook (a cost on every syscall) is wanted now."""
        return bool(self._generic)

    def ignore_pid(self, tgid: int) -> None:
        """Never capture the activity of process ``tgid`` (the agent itself)."""
        if tgid in self._ignored:
            return
        if len(self._ignored) >= _MAX_IGNORED:
            raise ValueError(f"at most {_MAX_IGNORED} ignored processes")
        self._ignored.append(tgid)
        if self._obj is not None:
            self._write_settings()

    def unignore_pid(self, tgid: int) -> None:
        if tgid in self._ignored:
            self._ignored.remove(tgid)
            if self._obj is not None:
                self._write_settings()

    # --- reading ---------------------------------------------------------
    def poll(self, timeout_ms: int = 100) -> list[SyscallRecord]:
        """Records available now, waiting up to ``timeout_ms`` (< 0: no limit) for the
        first ones; returns early, possibly empty, after ``interrupt``."""
        ring = self._need_ring()
        ring.wait(timeout_ms)
        # re-read each batch: the wall clock may be stepped while we run
        self._decoder.ts_offset = time.time_ns() - time.clock_gettime_ns(time.CLOCK_BOOTTIME)
        return ring.drain(self._decoder.decode_at, self.batch_limit)

    read_batch = poll

    def poll_into(self, consume: Callable[[Any, list[tuple[int, int]], Decoder], object],
                  timeout_ms: int = 100, walk: Callable[[RingWalk, Decoder], object] | None = None) -> int:
        """``poll`` for a consumer of raw records: waits the same way, then hands one
        batch to ``consume(buf, spans, decoder)`` (``Pipeline.process_raw``) before
        releasing it; returns the number of records.  With ``walk``
        (``Pipeline.process_ring``) the batch is walked in place by ``walk(ring_walk,
        decoder)`` (``RingBuffer.drain_walk``), and ``consume`` takes only a record
        joined across the end of the ring."""
        ring = self._need_ring()
        ring.wait(timeout_ms)
        decoder = self._decoder
        decoder.ts_offset = time.time_ns() - time.clock_gettime_ns(time.CLOCK_BOOTTIME)
        if walk is None:
            return ring.drain_spans(lambda buf, spans: consume(buf, spans, decoder), self.batch_limit)
        return ring.drain_walk(lambda w: walk(w, decoder), lambda buf, spans: consume(buf, spans, decoder),
                               self.batch_limit)

    def discard(self, timeout_ms: int = 100) -> int:
        """Consume without decoding (benchmarks of the kernel side); returns the count."""
        ring = self._need_ring()
        ring.wait(timeout_ms)
        return len(ring.drain(lambda buf, off, size: True, 1 << 30))

    def skip(self, timeout_ms: int = 100) -> int:
        """Wait like ``poll``, then discard everything pending without reading it (the
        kernel-side floor of benchmarks: the consumer costs nothing per record);
        returns the bytes skipped.  The records are counted in ``filter_stats``."""
        ring = self._need_ring()
        ring.wait(timeout_ms)
        return ring.skip()

    def interrupt(self) -> None:
        """Make a thread sleeping in ``poll`` return now (thread-safe)."""
        self._need_ring().interrupt()

    @property
    def wakeups(self) -> int:
        """Times the reader slept and was woken with records to read."""
        return self._ring.wakeups if self._ring is not None else 0

    def ring_positions(self) -> tuple[int, int]:
        """(consumer, producer) byte positions of the ring: everything the probe had written
        when this was called has been read once the consumer reaches that producer."""
        return self._need_ring().positions()

    @property
    def quick_reads_made(self) -> int:
        """Reads made sooner than the batch window, on the quiet reader's budget."""
        return self._ring.quick if self._ring is not None else 0

    @property
    def records_read(self) -> int:
        return self._ring.records if self._ring is not None else 0

    @property
    def records_wrapped(self) -> int:
        """Records read that straddled the end of the ring (copied to be decoded)."""
        return self._ring.wrapped if self._ring is not None else 0

    def drops(self) -> int:
        """Records the probe could not put in the ring since load (all CPUs, all classes)."""
        return sum(self.drops_by_class().values())

    def drops_by_class(self) -> dict[str, int]:
        """Drops per class (layout.DROP_CLASSES): bulk records refused the reserved part
        of the ring or finding it full, critical records finding it full."""
        return {cls: self._percpu_sum("drops", i) for i, cls in enumerate(layout.DROP_CLASSES)}

    def filter_stats(self) -> dict[str, tuple[int, int]]:
        """Per event type: (records put in the ring, records the kernel filter dropped)."""
        out: dict[str, tuple[int, int]] = {}
        for name, ev in layout.EVENT_IDS.items():
            passed, filtered = self._percpu_sum("kf_stats", 2 * ev), self._percpu_sum("kf_stats", 2 * ev + 1)
            if passed or filtered:
                out[name] = (passed, filtered)
        return out

    def drops_per_cpu(self) -> list[int]:
        """The drop counters of each possible CPU, all classes (Falco's n_drops_cpu)."""
        per_class = [self._percpu_values("drops", i) for i in range(len(layout.DROP_CLASSES))]
        return [sum(v) for v in zip(*per_class, strict=True)]

    def _percpu_sum(self, name: str, index: int) -> int:
        return sum(self._percpu_values(name, index))

    def _percpu_values(self, name: str, index: int) -> list[int]:
        lib = self._need_loaded()
        values = (ctypes.c_uint64 * self._ncpus)()
        key = ctypes.c_uint32(index)
        if lib.lib.bpf_map_lookup_elem(self._fds[name], ctypes.byref(key), values) != 0:
            raise lib.error(f"reading {name}[{index}]")
        return list(values)

    def program_stats(self) -> dict[str, tuple[int, int]]:
        """Per attached event: (runs, total ns) of its program, from the kernel's
        BPF run-time statistics (zero unless ``kernel.bpf_stats_enabled`` is 1)."""
        lib = self._need_loaded()
        out: dict[str, tuple[int, int]] = {}
        for name in sorted(self._links):
            prog = self._program(name)
            fd = lib.lib.bpf_program__fd(prog) if prog else -1
            if fd < 0:
                continue
            info = _fdinfo(fd)
            out[name] = (int(info.get("run_cnt", "0")), int(info.get("run_time_ns", "0")))
        return out

    def verified_insns(self) -> dict[str, int]:
        """Per loaded program (by event): the instructions the verifier processed to load
        it, deterministic for a kernel and an object (``tests/bench/test_verifier_bench.py``)."""
        lib = self._need_loaded()
        out: dict[str, int] = {}
        for name in sorted(self.loaded_events):
            prog = self._program(name)
            fd = lib.lib.bpf_program__fd(prog) if prog else -1
            if fd >= 0:
                out[name] = int(_fdinfo(fd).get("verified_insns", "0"))
        return out

    @property
    def undecodable(self) -> int:
        return self._decoder.unknown

    # --- internals -------------------------------------------------------
    def _need_loaded(self) -> LibBpf:
        if self._obj is None or self._lib is None:
            raise RuntimeError("probe not loaded: call load() first")
        return self._lib

    def _need_lib(self) -> LibBpf:
        if self._lib is None:
            raise RuntimeError("probe not loaded: call load() first")
        return self._lib

    def _need_ring(self) -> RingBuffer:
        if self._ring is None:
            raise RuntimeError("probe not loaded: call load() first")
        return self._ring

    def _write_settings(self) -> None:
        lib = self._need_loaded()
        vals = (ctypes.c_uint32 * (2 + _MAX_IGNORED))()
        vals[0] = self.wake_threshold
        vals[1] = len(self._ignored)
        for i, tgid in enumerate(self._ignored):
            vals[2 + i] = tgid
        key = ctypes.c_uint32(0)
        if lib.lib.bpf_map_update_elem(self._fds["settings_map"], ctypes.byref(key), vals, 0) != 0:
            raise lib.error("writing probe settings")

    def _write_generic(self, nrs: set[int]) -> None:
        lib = self._need_loaded()
        words = [0] * (_GENERIC_NR_MAX // 64)
        for nr in nrs:
            words[nr >> 6] |= 1 << (nr & 63)
        for i, w in enumerate(words):
            key = ctypes.c_uint32(i)
            val = ctypes.c_uint64(w)
            if lib.lib.bpf_map_update_elem(self._fds["generic_nrs"], ctypes.byref(key), ctypes.byref(val), 0):
                raise lib.error("updating the generic syscall bitmap")

    def _write_filter(self, enabled: set[str]) -> None:
        lib = self._need_loaded()
        fd = self._fds["evt_filter"]
        for name, ev in layout.EVENT_IDS.items():
            key = ctypes.c_uint32(ev)
            val = ctypes.c_uint8(1 if name in enabled else 0)
            if lib.lib.bpf_map_update_elem(fd, ctypes.byref(key), ctypes.byref(val), 0) != 0:
                raise lib.error(f"updating the event filter for {name}")

    def _write_critical(self) -> None:
        from falcopy.agent.kernel.kfilter import KF_TYPES

        lib = self._need_loaded()
        for name, ev in layout.EVENT_IDS.items():
            if ev >= KF_TYPES:
                raise BpfError(f"event id {ev} ({name}) beyond the kernel filter's {KF_TYPES} types", 2, [])
            key = ctypes.c_uint32(ev)
            val = ctypes.c_uint8(1 if name in layout.CRITICAL else 0)
            if lib.lib.bpf_map_update_elem(self._fds["kf_critical"], ctypes.byref(key), ctypes.byref(val), 0):
                raise lib.error(f"marking {name} critical")

    def _join_pruner(self) -> None:
        for t in self._pruners:
            t.join()
        self._pruners.clear()

    def _programs_of(self, path: Path) -> set[str]:
        """The events an object file has exit programs for (opened, not loaded)."""
        lib = self._need_lib()
        if not path.is_file():
            return set()
        obj = self._open_file(path)
        try:
            by_prog = {program_name(ev): ev for ev in SUPPORTED_EVENTS}
            out: set[str] = set()
            prog = lib.lib.bpf_object__next_program(obj, None)
            while prog:
                ev = by_prog.get(lib.lib.bpf_program__name(prog).decode())
                if ev is not None:
                    out.add(ev)
                prog = lib.lib.bpf_object__next_program(obj, prog)
            return out
        finally:
            lib.lib.bpf_object__close(obj)

    def _program(self, event: str) -> int | None:
        lib = self._need_loaded()
        name = program_name(event).encode()
        for obj, events in self._instances:
            if event in events:
                return lib.lib.bpf_object__find_program_by_name(obj, name)
        return None

    def preload(self, types: set[str] | frozenset[str] | None) -> None:
        """Load the programs a coming ``set_event_filter(types)`` will need, so that the
        filter change itself (on the event thread) only attaches."""
        if self._obj is not None:
            wanted = set(SUPPORTED_EVENTS) if types is None else set(types) | layout.LIFECYCLE
            self._load_programs(self._programs_for(wanted)[0])

    def _load_programs(self, events: set[str]) -> None:
        """Load the programs of ``events`` not loaded yet: per object file, one more
        instance with only those programs, writing to the main object's maps."""
        with self._instances_lock:
            missing = (events & (self.dedicated_events | {layout.GENERIC})) - self.loaded_events
            extra = missing & self._extra_events
            for path, group in ((self._main_path, missing - extra), (self._extra_path, extra)):
                if group:
                    self._instances.append((self._load_instance(path, group), group))

    def _load_instance(self, path: Path, events: set[str]) -> int:
        lib = self._need_loaded()
        main_obj = self._obj

        def share_maps(obj: int) -> None:
            # every map of the probe is the main object's (internal maps: ".rodata", ...
            # are each object's own)
            m = lib.lib.bpf_object__next_map(obj, None)
            while m:
                name = lib.lib.bpf_map__name(m)
                main = lib.lib.bpf_object__find_map_by_name(main_obj, name) if b"." not in name else None
                if main:
                    rc = lib.lib.bpf_map__reuse_fd(m, lib.lib.bpf_map__fd(main))
                    if rc:
                        raise lib.error(f"sharing map {name.decode()} with {path}", rc)
                m = lib.lib.bpf_object__next_map(obj, m)

        return self._load_object(path, events, share_maps)[0]

    def _sync_links(self) -> None:
        """Attach what became enabled now; detach what was disabled in the background
        (the in-kernel filter already stops those records, detaching only saves the
        remaining per-call cost and takes a grace period per link)."""
        lib = self._need_loaded()
        self._load_programs(self._enabled)
        self._pruners = [t for t in self._pruners if t.is_alive()]
        with self._links_lock:
            retired = [self._links.pop(name) for name in list(self._links) if name not in self._enabled]
            for name in sorted(self._enabled):
                if name in self._links:
                    continue
                prog = self._program(name)
                if not prog:
                    raise BpfError(f"program {program_name(name)} missing from {self.obj_path}", 2, [])
                link = lib.lib.bpf_program__attach(prog)
                if not link and self._pruners:
                    # a program disabled a moment ago and enabled again: its old link is still
                    # being destroyed in the background, and the kernel refuses a second
                    # attachment of the same program to the same tracepoint (EEXIST) until then
                    for t in self._pruners:
                        t.join()
                    self._pruners.clear()
                    link = lib.lib.bpf_program__attach(prog)
                if not link:
                    raise lib.error(f"attaching {program_name(name)}")
                self._links[name] = link
        if retired:
            pruner = threading.Thread(target=destroy_links, args=(lib, retired),
                                      name="falcopy-probe-detach", daemon=True)
            pruner.start()
            self._pruners.append(pruner)
