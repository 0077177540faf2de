"""Records for recorder tests: processes of known sessions in a real ProcessTable
(nothing read from /proc), fed through the real Pipeline with a real recorder and
writer writing real files."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from falcopy.agent.capture.service import CaptureService
from falcopy.agent.control.config import AgentConfig
from falcopy.agent.events.record import SyscallRecord
from falcopy.agent.fields.syscall import AgentSyscallSource
from falcopy.agent.pipeline import Pipeline
from falcopy.agent.state.model import ThreadInfo
from falcopy.agent.state.procfs import HostPaths
from falcopy.agent.state.table import ProcessTable

from falcopy.engine import default_sources, load_rules_files

T0 = 1_800_000_000_000_000_000
MS = 1_000_000

TRIGGER_RULES = """
- rule: capture trigger
  desc: the marker exec starts a capture
  condition: evt.type = execve and proc.name = trigger
  output: trigger %proc.name pid=%proc.pid
  priority: WARNING
  capture: true
  capture_duration: {duration}
- rule: plain rule
  desc: no capture of its own (only with mode all_rules)
  condition: evt.type = execve and proc.name = plain
  output: plain %proc.name
  priority: NOTICE
"""


@dataclass
class Rig:
    service: CaptureService
    pipeline: Pipeline
    table: ProcessTable
    captures: Path
    alerts: list[dict[str, Any]] = field(default_factory=list)
    _ts: itertools.count[int] = field(default_factory=lambda: itertools.count(T0, MS))

    def process(self, pid: int, sid: int) -> ThreadInfo:
        info = ThreadInfo(pid=pid, tid=pid, ptid=1, sid=sid, comm="worker", exe="/bin/worker",
                          exepath="/bin/worker")
        self.table.threads[pid] = info
        return info

    def record(self, etype: str, pid: int, res: int = 0, ts: int | None = None, comm: str = "worker",
               **args: Any) -> SyscallRecord:
        return SyscallRecord(type=etype, ts=next(self._ts) if ts is None else ts, cpu=0, tid=pid, pid=pid,
                             ppid=1, vtid=pid, vpid=pid, uid=0, gid=0, euid=0, egid=0, loginuid=-1,
                             comm=comm, cgroup_id=0, res=res, args=args)

    def opens(self, pid: int, n: int, prefix: str = "/var/tmp/f") -> list[SyscallRecord]:
        return [self.record("openat", pid, 3, dirfd=-100, name=f"{prefix}{i}", flags=0, mode=0)
                for i in range(n)]

    def trigger(self, pid: int, ts: int | None = None, name: str = "trigger") -> SyscallRecord:
        return self.record("execve", pid, 0, ts=ts, comm=name, exe=name, args=[],
                           trusted_exepath=f"/usr/bin/{name}")

    def feed(self, recs: list[SyscallRecord]) -> None:
        self.pipeline.process(recs)

    def finish(self, now_ns: int) -> None:
        """The clock passed ``now_ns``: open sessions end; the writer drains."""
        self.service.recorder.tick(now_ns)
        self.service.stop()

    def files(self) -> list[Path]:
        return sorted(p for p in self.captures.iterdir() if p.suffix == ".jsonl")


def make_rig(tmp: Path, *, duration_ms: int = 1000, capture: dict[str, Any] | None = None,
             recorder: dict[str, Any] | None = None, captures: Path | None = None) -> Rig:
    rules = tmp / "trigger.yaml"
    rules.write_text(TRIGGER_RULES.format(duration=duration_ms))
    sources = default_sources()
    sources["syscall"] = AgentSyscallSource()
    result = load_rules_files([rules], sources=sources)
    assert result.ok and result.ruleset is not None, [str(e) for e in result.errors]
    where = captures or tmp / "captures"
    config = AgentConfig.model_validate({
        "capture": {"enabled": True, "path_prefix": str(where / "cap"), **(capture or {})},
        "falcopy": {"capture": recorder or {}},
    })
    table = ProcessTable(HostPaths(proc=str(tmp / "noproc"), root=str(tmp / "noroot")))
    service = CaptureService(config, table)
    service.recorder.ruleset = result.ruleset
    service.start()
    rig = Rig(service=service, pipeline=None, table=table, captures=where)  # type: ignore[arg-type]

    def on_alert(rule: Any, event: Any) -> None:
        rig.alerts.append({"rule": rule.name, "num": event.num,
                           "capture": service.recorder.on_alert(rule, event)})

    rig.pipeline = Pipeline(result.ruleset, table, on_alert=on_alert, recorder=service.recorder)
    return rig
