"""The addresses of the DNS names the rules compare ``fd.*ip.name`` with.

Falco's ``fd.sip.name = "kubernetes.default.svc.cluster.local"`` is true when the
connection's server address is one the name resolves to (libsinsp's dns manager).
Here the names come from the loaded ruleset (``falcopy.engine.fieldrefs.compared_names``)
and are resolved OFF the event path: a scheduler thread hands names that are due to a
small pool of resolver threads calling ``socket.getaddrinfo`` (the node's resolver:
``/etc/hosts``, then DNS, as nsswitch says).  The event thread only reads an immutable
snapshot (name -> frozenset of addresses), so a resolver that never answers delays
nothing but the refresh of that name.

Each name is re-resolved every ``refresh_interval_s``.  A name that does not exist
(NXDOMAIN / no address) has an empty set at once; a transient failure (timeout,
server failure) keeps the last known addresses until ``expiry_s`` after the last
successful answer.  Failures are counted per name and logged once per name.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

log = logging.getLogger("falcopy.agent.enrichment.dns")

Resolve = Callable[[str], frozenset[str]]

#: getaddrinfo answers meaning "this name has no address" (not a transient fault)
_NO_ADDRESS = frozenset(
    getattr(socket, n) for n in ("EAI_NONAME", "EAI_NODATA", "EAI_ADDRFAMILY") if hasattr(socket, n)
)


class DnsConfig(BaseModel):
    """``falcopy.dns``: resolution of the names the rules compare ``fd.*ip.name`` with."""

    model_config = ConfigDict(extra="forbid", validate_default=True, defer_build=True)

    #: off: fd.*ip.name never has a value (said once per rule at load)
    enabled: bool = True
    #: every name is resolved again this often (Falco: 10 s)
    refresh_interval_s: float = Field(default=10.0, gt=0)
    #: addresses of a name whose refreshes keep failing are forgotten this long after its
    #: last successful resolution
    expiry_s: float = Field(default=3600.0, gt=0)
    #: a reload waits at most this long for the new rules' new names before going live
    #: (the running rules keep detecting meanwhile)
    reload_wait_s: float = Field(default=5.0, ge=0)
    #: resolver threads: one slow name never holds up the others
    workers: int = Field(default=4, ge=1, le=64)


class ResolveFailure(Exception):
    """A lookup that failed; ``no_address`` when the answer is that the name has none."""

    def __init__(self, detail: str, *, no_address: bool) -> None:
        super().__init__(detail)
        self.no_address = no_address


def resolve_name(name: str) -> frozenset[str]:
    """The node's answer for ``name``: its IPv4 and IPv6 addresses as text."""
    try:
        infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise ResolveFailure(exc.strerror or str(exc), no_address=exc.errno in _NO_ADDRESS) from None
    except (OSError, UnicodeError) as exc:  # a name the IDNA codec refuses, a broken socket...
        raise ResolveFailure(str(exc), no_address=False) from None
    # IPv6 link-local answers carry a zone (%eth0) that event addresses never have
    return frozenset(str(info[4][0]).partition("%")[0] for info in infos)


@dataclass
class _Entry:
    addrs: frozenset[str] = frozenset()
    #: monotonic times: last attempt (None: never tried), last success
    attempted: float | None = None
    resolved: float | None = None
    failures: int = 0
    logged: bool = False
    in_flight: bool = False
    #: dropped from the rules at this time (still answered until the next refresh is due)
    retired: float | None = None


class DnsNames:
    """Name -> address set, refreshed in the background; read lock-free by the event thread."""

    def __init__(self, config: DnsConfig | None = None, *, resolve: Resolve = resolve_name,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config or DnsConfig()
        self._resolve = resolve
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._cond = threading.Condition()
        #: the snapshots the event thread reads, replaced whole on every change
        self._addrs: dict[str, frozenset[str]] = {}
        self._names_of: dict[str, str] = {}
        #: names due for a lookup, taken by the worker threads (None: stop)
        self._due: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._workers: list[threading.Thread] = []
        self._thread: threading.Thread | None = None
        self._stopping = False
        #: successful resolutions since start
        self.resolutions = 0

    # ---------------------------------------------------------------- event path
    def contains(self, name: str, addr: str) -> bool:
        """``addr`` is one of ``name``'s current addresses."""
        s = self._addrs.get(name)
        return s is not None and addr in s

    def name_of(self, addr: str) -> str | None:
        """A name ``addr`` is known to belong to (the first in alphabetical order)."""
        return self._names_of.get(addr)

    # ---------------------------------------------------------------- control
    def watch(self, names: Iterable[str]) -> None:
        """The names the rules need from now on: new ones are resolved at once; names no
        longer needed keep answering until their next refresh falls due (the rules that
        use them may still be running until the swap)."""
        wanted = set(names)
        now = self._clock()
        with self._cond:
            for name in wanted:
                entry = self._entries.get(name)
                if entry is None:
                    self._entries[name] = _Entry()
                else:
                    entry.retired = None
            for name, entry in self._entries.items():
                if name not in wanted and entry.retired is None:
                    entry.retired = now
            self._cond.notify_all()

    def wait_resolved(self, names: Iterable[str], timeout: float) -> list[str]:
        """Wait (at most ``timeout`` s) until each name has been tried once; returns the
        names still waiting for their first answer."""
        pending = set(names)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                pending = {n for n in pending
                           if (e := self._entries.get(n)) is not None and e.attempted is None}
                left = deadline - time.monotonic()
                if not pending or left <= 0 or self._thread is None:
                    return sorted(pending)
                self._cond.wait(left)

    def start(self) -> None:
        if self._thread is not None:
            return
        # daemon threads, not a ThreadPoolExecutor: a lookup hanging in a silent resolver must
        # not hold up the agent's exit (executors join their workers at interpreter exit)
        for i in range(self.config.workers):
            w = threading.Thread(target=self._work, name=f"falcopy-dns-{i}", daemon=True)
            w.start()
            self._workers.append(w)
        self._thread = threading.Thread(target=self._run, name="falcopy-dns-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop scheduling; a lookup stuck in a silent resolver is not waited for."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        for _ in self._workers:
            self._due.put(None)
        self._workers = []

    # ---------------------------------------------------------------- numbers
    def stats(self) -> dict[str, dict[str, int]]:
        """Per watched name: addresses known, failed lookups."""
        with self._cond:
            return {n: {"addresses": len(e.addrs), "failures": e.failures}
                    for n, e in self._entries.items() if e.retired is None}

    def metric_families(self) -> Iterable[Any]:
        """Scrape-time families for the agent's /metrics."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        stats = self.stats()
        failures = CounterMetricFamily("falcopy_dns_failures", "Failed lookups of the names the rules "
                                       "compare fd.*ip.name with", labels=["name"])
        addresses = GaugeMetricFamily("falcopy_dns_addresses", "Addresses currently known for each name",
                                      labels=["name"])
        for name, st in sorted(stats.items()):
            failures.add_metric([name], st["failures"])
            addresses.add_metric([name], st["addresses"])
        yield failures
        yield addresses
        yield CounterMetricFamily("falcopy_dns_resolutions", "Successful lookups", value=self.resolutions)

    # ---------------------------------------------------------------- scheduler
    def _run(self) -> None:
        refresh = self.config.refresh_interval_s
        with self._cond:
            while not self._stopping:
                now = self._clock()
                changed = False
                next_due = now + refresh
                for name, entry in list(self._entries.items()):
                    if entry.retired is not None and now - entry.retired >= refresh:
                        del self._entries[name]
                        changed = True
                        continue
                    if entry.resolved is not None and entry.addrs and \
                            now - entry.resolved >= self.config.expiry_s:
                        log.warning("DNS: the addresses of %s expired (no successful lookup for %.0f s)",
                                    name, now - entry.resolved)
                        entry.addrs = frozenset()
                        changed = True
                    if entry.in_flight or entry.retired is not None:
                        continue
                    due = now if entry.attempted is None else entry.attempted + refresh
                    if due <= now:
                        entry.in_flight = True
                        self._due.put(name)
                    else:
                        next_due = min(next_due, due)
                if changed:
                    self._publish()
                # the clock may be a test's: wake at least once per second to look at it again
                self._cond.wait(min(1.0, max(0.01, next_due - now)))

    def _work(self) -> None:
        while True:
            name = self._due.get()
            if name is None:
                return
            self._lookup(name)

    def _lookup(self, name: str) -> None:
        try:
            addrs: frozenset[str] | None = self._resolve(name)
            failure: ResolveFailure | None = None
        except ResolveFailure as exc:
            addrs, failure = None, exc
        except Exception as exc:  # a resolver bug must not kill the worker silently
            addrs, failure = None, ResolveFailure(f"{type(exc).__name__}: {exc}", no_address=False)
        with self._cond:
            entry = self._entries.get(name)
            if entry is None:
                return
            entry.in_flight = False
            entry.attempted = self._clock()
            if failure is None:
                assert addrs is not None
                self.resolutions += 1
                entry.resolved = entry.attempted
                if addrs != entry.addrs:
                    entry.addrs = addrs
                    self._publish()
            else:
                entry.failures += 1
                if failure.no_address and entry.addrs:
                    entry.addrs = frozenset()
                    self._publish()
                if not entry.logged:
                    entry.logged = True
                    log.warning("DNS: cannot resolve %s (%s): fd.*ip.name comparisons with it use its last "
                                "known addresses, if any; retried every %.0f s (logged once per name)",
                                name, failure, self.config.refresh_interval_s)
            self._cond.notify_all()

    def _publish(self) -> None:
        """New snapshots for the event thread (called with the lock held)."""
        addrs = {n: e.addrs for n, e in self._entries.items() if e.addrs}
        names_of: dict[str, str] = {}
        for name in sorted(addrs):
            for a in addrs[name]:
                names_of.setdefault(a, name)
        self._addrs, self._names_of = addrs, names_of
