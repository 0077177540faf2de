"""Pipeline ordering and ruleset swaps, with the real engine and hand-built records."""

from __future__ import annotations

import os
import socket
from typing import Any

from falcopy.agent.fields.event import SyscallEvent
from falcopy.agent.fields.syscall import AgentSyscallSource
from falcopy.agent.pipeline import Pipeline
from falcopy.agent.state import ProcessTable

from falcopy.engine import RulesInput, default_sources, load_rules, load_rules_files
from tests.agent.state.helpers import rec

RULES = """
- rule: close sees its fd
  desc: t
  condition: evt.type = close and fd.name = /srv/data.db and proc.name = worker
  output: closed %fd.name by %proc.name (parent %proc.pname)
  priority: NOTICE
- rule: exit sees its process
  desc: t
  condition: evt.type = procexit and proc.name = worker and proc.cmdline = "worker --serve"
  output: exit of %proc.cmdline
  priority: NOTICE
- rule: exec sees the new image
  desc: t
  condition: evt.type = execve and proc.name = worker and proc.pname = launcher and proc.exepath = /opt/worker
  output: exec %proc.exepath
  priority: NOTICE
"""

PID = 4_000_000 - 21
PARENT = 4_000_000 - 20


def _sources() -> dict[str, Any]:
    sources = default_sources()
    sources["syscall"] = AgentSyscallSource()
    return sources


def _ruleset(text: str):
    result = load_rules([RulesInput("test.yaml", text)], sources=_sources())
    assert result.ok, [str(m) for m in result.errors]
    return result.ruleset


def _lifecycle() -> list:
    return [
        rec("clone", PARENT, ppid=os.getpid(), comm="launcher"),
        rec("execve", PARENT, ppid=os.getpid(), comm="launcher", exe="launcher", args=[],
            trusted_exepath="/opt/launcher"),
        rec("clone", PID, ppid=PARENT, comm="launcher"),
        rec("execve", PID, ppid=PARENT, comm="worker", exe="worker", args=["--serve"],
            trusted_exepath="/opt/worker"),
        rec("openat", PID, ppid=PARENT, res=7, comm="worker", dirfd=-100, name="/srv/data.db",
            flags=os.O_RDWR),
        rec("close", PID, ppid=PARENT, comm="worker", fd=7),
        rec("procexit", PID, ppid=PARENT, comm="worker", status=0),
    ]


def test_state_order_matches_libsinsp() -> None:
    table = ProcessTable()
    table.bootstrap(with_fds=False)
    fired: list[tuple[str, str]] = []
    ruleset = _ruleset(RULES)

    def on_alert(rule: Any, event: SyscallEvent) -> None:
        fired.append((rule.name, ruleset.format(rule, event)[0]))

    pipe = Pipeline(ruleset, table, on_alert=on_alert)
    assert pipe.process(_lifecycle()) == 3
    names = [n for n, _ in fired]
    assert names == ["exec sees the new image", "close sees its fd", "exit sees its process"]
    outputs = [o for _, o in fired]
    assert outputs[0].endswith("exec /opt/worker")
    assert outputs[1].endswith("closed /srv/data.db by worker (parent launcher)")
    assert outputs[2].endswith("exit of worker --serve")
    # removals happened after evaluation: the table is bounded
    assert table.get(PID) is None
    assert 7 not in (table.get(PARENT).fds if table.get(PARENT) else {})


def test_set_ruleset_swaps_between_batches() -> None:
    table = ProcessTable()
    table.bootstrap(with_fds=False)
    fired: list[str] = []
    pipe = Pipeline(_ruleset(RULES), table, on_alert=lambda rule, ev: fired.append(rule.name))
    only_exit = RULES.split("- rule: exec sees")[0]
    batch = _lifecycle()
    pipe.process(batch[:4])
    pipe.set_ruleset(_ruleset(only_exit))
    assert pipe.wanted_types() == frozenset({"close", "procexit"})
    kernel = pipe.kernel_event_types()
    assert kernel is not None and {"close", "procexit", "clone", "execve", "openat"} <= kernel
    pipe.process(batch[4:])
    assert fired == ["exec sees the new image", "close sees its fd", "exit sees its process"]
    pipe.set_ruleset(None)
    assert pipe.process(_lifecycle()) == 0


def test_upstream_rules_on_synthetic_shadow_read(compat_dir) -> None:
    result = load_rules_files([compat_dir / "falco_rules.yaml"], sources=_sources())
    assert result.ok
    table = ProcessTable()
    table.bootstrap(with_fds=False)
    fired: list[str] = []
    pipe = Pipeline(result.ruleset, table, on_alert=lambda rule, ev: fired.append(rule.name))
    pid = 4_000_000 - 30
    pipe.process([
        rec("clone", pid, ppid=os.getpid(), comm="python"),
        rec("execve", pid, ppid=os.getpid(), comm="mytool", exe="mytool", args=["/etc/shadow"],
            trusted_exepath="/usr/local/bin/mytool"),
        rec("openat", pid, ppid=os.getpid(), res=3, comm="mytool", dirfd=-100, name="/etc/shadow",
            flags=os.O_RDONLY | os.O_CLOEXEC),
        # benign: a read of a non-sensitive file, and a socket to a loopback port
        rec("openat", pid, ppid=os.getpid(), res=4, comm="mytool", dirfd=-100, name="/etc/hostname",
            flags=os.O_RDONLY),
        rec("socket", pid, ppid=os.getpid(), res=5, comm="mytool", domain=socket.AF_INET, type=1, proto=0),
        rec("procexit", pid, ppid=os.getpid(), comm="mytool"),
    ])
    assert fired == ["Read sensitive file untrusted"]


def test_bad_records_are_counted_not_fatal() -> None:
    table = ProcessTable()
    pipe = Pipeline(_ruleset(RULES), table)
    odd = rec("openat", PID, comm="worker", dirfd="not-a-number", name=b"\xff\xfe", flags="x")
    assert pipe.process([odd, rec("close", PID, comm="worker", fd=None)]) == 0
    assert pipe.events == 2 and pipe.errors == 0
