"""A live agent for tests: the probe, the process table, the pipeline and a ruleset."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from falcopy.agent.fields.event import SyscallEvent
from falcopy.agent.fields.syscall import AgentSyscallSource
from falcopy.agent.kernel.probe import Probe
from falcopy.agent.pipeline import Pipeline
from falcopy.agent.pipeline import kernel_filter as derive_kernel_filter
from falcopy.agent.state import STATE_EVENT_TYPES, ProcessTable

from falcopy.engine import default_sources, load_rules_files
from falcopy.engine.fields.syscall import SYSCALL_FIELDS
from falcopy.engine.kernel_filter import KernelFilter, union

CHECKED = ("proc.name", "proc.pname", "proc.cmdline", "fd.name", "user.name", "evt.type", "evt.res",
           "proc.exepath", "proc.is_exe_from_memfd", "evt.arg.target", "fd.num", "container.id",
           "proc.is_exe_upper_layer", "user.uid")


@dataclass
class Hit:
    rule: str
    fields: dict[str, Any]
    ours: bool


@dataclass
class Agent:
    probe: Probe
    pipelines: dict[str, Pipeline]
    hits: list[Hit] = field(default_factory=list)

    def window(self) -> str:
        """What the last window saw, for failure messages."""
        others = [(h.rule, h.fields.get("proc.name"), h.fields.get("proc.pname"), h.ours) for h in self.hits]
        return f"drops={self.probe.drops()} all_hits={others[:20]}"

    def drain(self, quiet_polls: int = 3, limit_s: float = 5.0, until_exit_of: int | None = None) -> int:
        """Feed pending records to every pipeline until the ring stays empty, or until the
        exit of process ``until_exit_of`` has been seen (a marker: the ring is ordered, so
        everything before it has been consumed; the machine is shared and never quiet)."""
        quiet = 0
        total = 0
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            if until_exit_of is None and quiet >= quiet_polls:
                break
            recs: list[Any] = []

            def consume(buf: Any, spans: list[tuple[int, int]], decoder: Any, recs: list[Any] = recs) -> None:
                # as the agent's event thread reads: the batch in place, the fast path on
                for pipe in self.pipelines.values():
                    pipe.process_raw(buf, spans, decoder)
                # decoded once more only to find the exit marker
                recs.extend(r for off, size in spans if (r := decoder.decode_at(buf, off, size)) is not None)

            if not self.probe.poll_into(consume, 50):
                quiet += 1
                continue
            quiet = 0
            total += len(recs)
            if until_exit_of is not None and any(
                    r.type == "procexit" and r.pid == until_exit_of for r in recs):
                break
        return total

    def sync(self) -> None:
        """Consume everything the kernel recorded up to now."""
        marker = subprocess.Popen(["/bin/true"])
        marker.wait()
        self.drain(limit_s=10.0, until_exit_of=marker.pid)

    def run(self, action: Any, container_id: str | None = None, attempts: int = 3) -> list[Hit]:
        """Alerts raised by ``action``: those of our own process tree, or of one container.

        The machine is shared: a burst of other processes' events can overflow the ring.
        When the probe reports drops during the action, the action is repeated (drops
        are counted and exported by the agent; a test needs one clean window)."""
        for _ in range(attempts):
            self.sync()
            self.hits.clear()
            drops = self.probe.drops()
            # the action runs while the agent consumes, as in production: state that can
            # only be read from /proc (container ids) is read while processes live
            errors: list[BaseException] = []

            def act(_errors: list[BaseException] = errors) -> None:
                try:
                    action()
                except BaseException as exc:
                    _errors.append(exc)

            worker = threading.Thread(target=act)
            worker.start()
            while worker.is_alive():
                self.drain(quiet_polls=1, limit_s=0.2)
            worker.join()
            if errors:
                raise errors[0]
            self.sync()
            if self.probe.drops() == drops:
                break
        if container_id is not None:
            return [h for h in self.hits if h.fields.get("container.id") == container_id]
        return [h for h in self.hits if h.ours]


def extract(event: SyscallEvent) -> dict[str, Any]:
    src = AgentSyscallSource()
    out: dict[str, Any] = {}
    for name in CHECKED:
        fdef, arg = src.lookup(name) or (None, None)
        if fdef is not None:
            out[name] = src.accessor(fdef, arg)(event)
    return out


def start_agent(rules: dict[str, list[Path]], *, kernel_filter: bool = True,
                ring_size: int = 32 << 20) -> Agent:
    """One probe feeding one pipeline per ruleset; the kernel filter (on by default, as
    in the agent) admits what any of the rulesets needs."""
    me = os.getpid()
    pipelines: dict[str, Pipeline] = {}
    agent = Agent(probe=Probe(ring_size=ring_size), pipelines=pipelines)
    wanted: set[str] = set(STATE_EVENT_TYPES)
    kf: KernelFilter | None = None
    for label, paths in rules.items():
        sources = default_sources()
        sources["syscall"] = AgentSyscallSource(SYSCALL_FIELDS)
        result = load_rules_files(paths, sources=sources)
        assert result.ok, [str(m) for m in result.errors]
        ruleset = result.ruleset
        assert ruleset is not None
        types = ruleset.evttypes("syscall")
        wanted |= set(types) if types is not None else set()
        table = ProcessTable()
        table.bootstrap()

        def on_alert(rule: Any, event: SyscallEvent, _label: str = label) -> None:
            ours = any(a.pid == me for a in event.ancestors())
            agent.hits.append(Hit(f"{_label}:{rule.name}", extract(event), ours))

        pipelines[label] = Pipeline(ruleset, table, on_alert=on_alert)
        one = derive_kernel_filter(ruleset)
        kf = one if kf is None else union(kf, one)
    agent.probe.load()
    if kernel_filter:
        agent.probe.set_kernel_filter(kf)
    # types without a dedicated program here (e.g. init_module without module tracepoints)
    # go through the generic hook; those nothing can capture stay in probe.unsupported
    agent.probe.set_event_filter(wanted)
    agent.probe.ignore_pid(me)
    agent.probe.attach()
    return agent
