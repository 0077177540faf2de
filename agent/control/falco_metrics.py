"""Falco's Prometheus metric names, for the numbers falcopy has an equivalent of.

Falco users' dashboards and alerts read ``falcosecurity_falco_*`` and
``falcosecurity_scap_*`` (Falco's ``falco_metrics.cpp`` with libs' naming
convention: ``<namespace>_<subsystem>_<name>_<unit>``, counts end in
``_total``, memory in ``_bytes``, percentages become ``_ratio``, ``*_info``
gauges carry their data in labels).  falcopy's own ``falcopy_*`` series stay
for what has no Falco counterpart; docs/outputs.md lists the mapping.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from falcopy.engine.priority import Priority

DOCS = "https://falco.org/docs/metrics/"
FALCO = "falcosecurity_falco_"
SCAP = "falcosecurity_scap_"

#: Falco's buffer-drop categories (libpman stats.c); falcopy's event classes map onto them
DROP_CATEGORIES = (
    "clone_fork", "execve", "connect", "open", "dir_file", "other_interest", "close", "proc",
)
#: enter-event categories Falco still exports as 0 ("enter events are no longer tracked")
_ENTER_DROPS = ("clone_fork", "execve", "connect", "open", "dir_file", "other_interest")


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


def files_sha256(paths: Iterable[Path]) -> dict[str, str]:
    """file name -> sha256 of every YAML file given or inside a given directory (as Falco loads them)."""
    out: dict[str, str] = {}
    for p in paths:
        files = sorted(x for x in p.iterdir() if x.suffix in (".yaml", ".yml")) if p.is_dir() else [p]
        for f in files:
            try:
                out[str(f)] = sha256_of(f)
            except OSError:
                continue  # vanished between listing and reading: the next reload records it
    return out


@dataclass
class FalcoMetricsSource:
    """What the collector reads at scrape time; the agent fills it in and keeps it current."""

    #: falcopy's version, read at scrape time (importlib.metadata: not on the start-up path)
    version: Callable[[], str]
    engine_name: str = "modern_bpf"
    rules_files: dict[str, str] = field(default_factory=dict)
    config_files: dict[str, str] = field(default_factory=dict)
    reload_ts_ns: int = field(default_factory=time.time_ns)
    start_ts_ns: int = field(default_factory=time.time_ns)
    #: (rule, priority name, source, tags) -> matches
    rule_matches: Callable[[], Mapping[tuple[str, str, str, tuple[str, ...]], int]] = dict
    outputs_queue_drops: Callable[[], int] = lambda: 0
    n_evts: Callable[[], int] = lambda: 0
    #: per-CPU kernel drop counters (empty before the probe is loaded)
    drops_per_cpu: Callable[[], list[int]] = list
    #: Falco buffer-drop category -> drops (only categories the probe tells apart)
    drops_by_category: Callable[[], Mapping[str, int]] = dict
    n_threads: Callable[[], int | None] = lambda: None
    n_containers: Callable[[], int | None] = lambda: None
    hostname: str = field(default_factory=lambda: os.environ.get("FALCO_HOSTNAME") or socket.gethostname())


# prometheus_client is imported at scrape time (falcopy.agent.control.metrics: not on the
# way to the first alert)
def _info(name: str, labels: Mapping[str, str]) -> GaugeMetricFamily:
    from prometheus_client.core import GaugeMetricFamily

    fam = GaugeMetricFamily(name, DOCS, labels=list(labels))
    fam.add_metric(list(labels.values()), 1)
    return fam


def _counter(name: str, value: float, labels: Mapping[str, str] | None = None) -> CounterMetricFamily:
    from prometheus_client.core import CounterMetricFamily

    # prometheus_client appends _total to counters itself
    base = name.removesuffix("_total")
    if not labels:
        return CounterMetricFamily(base, DOCS, value=value)
    fam = CounterMetricFamily(base, DOCS, labels=list(labels))
    fam.add_metric(list(labels.values()), value)
    return fam


def _gauge(name: str, value: float) -> GaugeMetricFamily:
    from prometheus_client.core import GaugeMetricFamily

    return GaugeMetricFamily(name, DOCS, value=value)


class _ProcessSampler:
    """CPU usage since the previous scrape, as Falco's resource_utilization does per snapshot."""

    def __init__(self) -> None:
        self._t = time.monotonic()
        self._cpu = time.process_time()

    def cpu_ratio(self) -> float:
        now, cpu = time.monotonic(), time.process_time()
        ratio = (cpu - self._cpu) / max(now - self._t, 1e-9)
        self._t, self._cpu = now, cpu
        return ratio


def _status_kb(key: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _pss_kb() -> int | None:
    try:
        for line in Path("/proc/self/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _host_memory_used_kb() -> int | None:
    try:
        info = {}
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, _, rest = line.partition(":")
            info[key] = int(rest.split()[0])
        return info["MemTotal"] - info["MemAvailable"]
    except (OSError, ValueError, KeyError, IndexError):
        return None


def _host_open_fds() -> int | None:
    try:
        return int(Path("/proc/sys/fs/file-nr").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _host_procs_running() -> int | None:
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("procs_running "):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _boot_ts_ns() -> int | None:
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return int(line.split()[1]) * 1_000_000_000
    except (OSError, ValueError, IndexError):
        return None
    return None


class FalcoMetricsCollector:
    def __init__(self, source: FalcoMetricsSource) -> None:
        self.src = source
        self._sampler = _ProcessSampler()

    def collect(self) -> Iterable[Any]:
        s = self.src
        yield _info(FALCO + "version_info", {"version": s.version()})
        for path, digest in sorted(s.rules_files.items()):
            yield _info(FALCO + "sha256_rules_files_info", {"file_name": Path(path).name, "sha256": digest})
        for path, digest in sorted(s.config_files.items()):
            yield _info(FALCO + "sha256_config_files_info", {"file_name": Path(path).name, "sha256": digest})
        yield _counter(FALCO + "outputs_queue_num_drops_total", s.outputs_queue_drops())
        yield _gauge(FALCO + "reload_timestamp_nanoseconds", s.reload_ts_ns)
        yield from self._rule_matches()
        yield _info(SCAP + "engine_name_info", {"engine_name": s.engine_name, "evt_source": "syscall"})
        yield from self._kernel_counters()
        yield from self._state_counters()
        yield from self._resources()
        yield _info(FALCO + "kernel_release_info", {"kernel_release": os.uname().release})
        yield _info("falcosecurity_evt_hostname_info", {"hostname": s.hostname})
        yield _gauge(FALCO + "start_timestamp_nanoseconds", s.start_ts_ns)
        yield _counter(FALCO + "duration_seconds_total", (time.time_ns() - s.start_ts_ns) // 1_000_000_000)
        boot = _boot_ts_ns()
        if boot is not None:
            yield _gauge(FALCO + "host_boot_timestamp_nanoseconds", boot)
        yield _gauge(FALCO + "host_num_cpus_total", os.cpu_count() or 0)

    def _rule_matches(self) -> Iterable[Any]:
        # one family per label set: rules carry different tag_* labels, as in Falco's output
        for (rule, prio, source, tags), count in sorted(self.src.rule_matches().items()):
            if count <= 0:
                continue
            labels = {"rule_name": rule, "priority": str(_falco_priority_number(prio)), "source": source}
            labels.update({f"tag_{_label_name(t)}": "true" for t in tags})
            yield _counter(FALCO + "rules_matches_total", count, labels)

    def _kernel_counters(self) -> Iterable[Any]:
        from prometheus_client.core import CounterMetricFamily

        s = self.src
        per_cpu = s.drops_per_cpu()
        yield _counter(SCAP + "n_evts_total", s.n_evts())
        yield _counter(SCAP + "n_drops_total", sum(per_cpu))
        by_cat = s.drops_by_category()
        if by_cat:
            fam = CounterMetricFamily(SCAP + "n_drops_buffer", DOCS, labels=["dir", "drop"])
            for cat in DROP_CATEGORIES:
                if cat in by_cat:
                    fam.add_metric(["exit", cat], by_cat[cat])
            for cat in _ENTER_DROPS:
                fam.add_metric(["enter", cat], 0)
            yield fam
        if per_cpu:
            fam = CounterMetricFamily(SCAP + "n_drops_cpu", DOCS, labels=["cpu"])
            for cpu, n in enumerate(per_cpu):
                fam.add_metric([str(cpu)], n)
            yield fam

    def _state_counters(self) -> Iterable[Any]:
        threads = self.src.n_threads()
        if threads is not None:
            yield _gauge(SCAP + "n_threads_total", threads)
        containers = self.src.n_containers()
        if containers is not None:
            yield _gauge(SCAP + "n_containers_total", containers)

    def _resources(self) -> Iterable[Any]:
        yield _gauge(FALCO + "cpu_usage_ratio", self._sampler.cpu_ratio())
        memory = (
            ("memory_rss_bytes", _status_kb("VmRSS")),
            ("memory_vsz_bytes", _status_kb("VmSize")),
            ("memory_pss_bytes", _pss_kb()),
            ("host_memory_used_bytes", _host_memory_used_kb()),
        )
        for name, kb in memory:
            if kb is not None:
                yield _gauge(FALCO + name, kb * 1024)
        for name, value in (("host_procs_running_total", _host_procs_running()),
                            ("host_open_fds_total", _host_open_fds())):
            if value is not None:
                yield _gauge(FALCO + name, value)


def _falco_priority_number(name: str) -> int:
    """Falco's label is the enum value: Emergency 0 ... Debug 7."""
    try:
        return int(Priority.parse(name))
    except ValueError:
        return int(Priority.DEBUG)


def _label_name(tag: str) -> str:
    return "".join(c if c.isalnum() or c == "_" else "_" for c in tag)
