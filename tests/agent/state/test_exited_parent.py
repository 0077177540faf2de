"""A record naming a parent whose exit the table applied just before it.

The probe samples a record's ppid when the syscall returns and submits the record after
reading the rest of it (argv, env, cgroups...); meanwhile the parent can exit on another
CPU, and its procexit record (the kernel reparents the children after that tracepoint)
lands in the ring first.  ``docker exec -t``: runc starts the shell and exits, so the
shell's execve may name runc after runc's exit was applied.  Built from records, in that
order, no timing involved.
"""

from __future__ import annotations

import os
from typing import Any

from falcopy.agent.fields.event import SyscallEvent
from falcopy.agent.fields.syscall import AgentSyscallSource
from falcopy.agent.pipeline import Pipeline
from falcopy.agent.state import ProcessTable
from falcopy.agent.state.table import EXITED_PARENT_NS

from falcopy.engine import RulesInput, default_sources, load_rules
from tests.agent.state.helpers import rec

from .test_state import event, get

CONTAINER = "405104d72a8a9531cffce09b88dab09eb1bb8bd2608c9d3ced333b4809c770ba"
# beyond pid_max: never a real process, so /proc cannot stand in for the table
SHIM = 4_000_000 - 300
RUNC = SHIM + 1
INIT = SHIM + 2

RULES = """
- rule: shell by a container entrypoint
  desc: t
  condition: >
    evt.type = execve and proc.name = sh and proc.tty != 0 and container.id != host
    and proc.pname = runc
  output: shell %proc.cmdline parent=%proc.pname pexe=%proc.pexe pexepath=%proc.pexepath
    ppid=%proc.ppid gparent=%proc.aname[2] chain=%proc.aname
  priority: NOTICE
"""


def _runc_exits_before_the_shell_execs() -> list:
    """containerd-shim starts runc, runc's child (runc init) execs the shell; runc's
    exit is in the ring before the shell's execve, which still names runc as parent."""
    me = os.getpid()
    return [
        rec("clone", SHIM, ppid=me, comm="containerd-shim"),
        rec("execve", SHIM, ppid=me, comm="containerd-shim", exe="containerd-shim-runc-v2",
            args=["-namespace", "moby"], trusted_exepath="/usr/bin/containerd-shim-runc-v2"),
        rec("clone", RUNC, ppid=SHIM, comm="containerd-shim"),
        rec("execve", RUNC, ppid=SHIM, comm="runc", exe="runc", args=["exec", "--detach"],
            trusted_exepath="/usr/bin/runc"),
        rec("clone", INIT, ppid=RUNC, comm="runc"),
        rec("execve", INIT, ppid=RUNC, comm="runc:[2:INIT]", exe="/proc/self/exe", args=["init"],
            trusted_exepath="/usr/bin/runc", cgroups=[f"pids=/docker/{CONTAINER}"]),
        rec("procexit", RUNC, ppid=SHIM, comm="runc", status=0),
        rec("execve", INIT, ppid=RUNC, comm="sh", exe="sh", args=["-c", "sleep 0.5"],
            trusted_exepath="/bin/sh", tty=34816, cgroups=[f"pids=/docker/{CONTAINER}"]),
    ]


def test_shell_naming_its_just_exited_runc_parent_alerts_with_the_parent() -> None:
    sources = default_sources()
    sources["syscall"] = AgentSyscallSource()
    loaded = load_rules([RulesInput("test.yaml", RULES)], sources=sources)
    assert loaded.ok, [str(m) for m in loaded.errors]
    ruleset = loaded.ruleset
    outputs: list[str] = []

    def on_alert(rule: Any, ev: SyscallEvent) -> None:
        outputs.append(ruleset.format(rule, ev)[0])

    table = ProcessTable()
    pipe = Pipeline(ruleset, table, on_alert=on_alert)
    assert pipe.process(_runc_exits_before_the_shell_execs()) == 1
    me = table.get(os.getpid())
    assert me is not None
    # the chain goes on through the shim to this test's own ancestors
    assert (f"shell sh -c sleep 0.5 parent=runc pexe=runc pexepath=/usr/bin/runc ppid={RUNC}"
            f" gparent=containerd-shim chain=runc containerd-shim {me.comm}") in outputs[0]
    # runc's exit still removed it from the table of live processes
    assert table.get(RUNC) is None and pipe.errors == 0


def _after_runc_exit(table: ProcessTable) -> tuple[Any, Any]:
    """Applies the records up to runc's exit; returns that exit and the shell's execve
    (not applied)."""
    records = _runc_exits_before_the_shell_execs()
    for record in records[:-1]:
        table.apply(record)
    table.after()
    return records[-2], records[-1]


def test_fields_resolve_through_the_exited_parent() -> None:
    table = ProcessTable()
    _, execve = _after_runc_exit(table)
    ev, _ = event(table, execve)
    assert get(ev, "proc.pname") == "runc"
    assert get(ev, "proc.pexe") == "runc"
    assert get(ev, "proc.pexepath") == "/usr/bin/runc"
    assert get(ev, "proc.pcmdline") == "runc exec --detach"
    assert get(ev, "proc.apid", "1") == RUNC and get(ev, "proc.apid", "2") == SHIM
    assert get(ev, "proc.aname", "2") == "containerd-shim"
    assert get(ev, "container.id") == CONTAINER[:12]


def test_exited_parents_kept_for_a_bounded_event_time() -> None:
    table = ProcessTable()
    procexit, execve = _after_runc_exit(table)
    # the stream has moved on past the window: the shell's parent is no longer known
    table.prev_ts = procexit.ts + EXITED_PARENT_NS
    ev, _ = event(table, execve)
    assert get(ev, "proc.pname") is None and get(ev, "proc.aname", "1") is None
    # within the window it is
    table.prev_ts = procexit.ts + EXITED_PARENT_NS - 1
    ev, _ = event(table, execve)
    assert get(ev, "proc.pname") == "runc"
    # the periodic purge drops what is out of the window, and only that
    table.purge(force=True)
    assert table.known_parent(RUNC) is not None
    table.prev_ts = procexit.ts + EXITED_PARENT_NS
    table.purge(force=True)
    table.prev_ts = procexit.ts
    assert table.known_parent(RUNC) is None


def test_exited_parents_kept_up_to_a_count_older_half_dropped() -> None:
    table = ProcessTable(max_exited=4)
    me = os.getpid()
    first = 4_000_000 - 400
    for pid in range(first, first + 5):
        table.apply(rec("clone", pid, ppid=me, comm=f"p{pid - first}"))
        table.apply(rec("procexit", pid, ppid=me, comm=f"p{pid - first}"))
    table.after()
    # generations of two: p0 and p1 set aside, then dropped when p4 came
    kept = {pid: p.comm for pid in range(first, first + 5) if (p := table.known_parent(pid))}
    assert kept == {first + 2: "p2", first + 3: "p3", first + 4: "p4"}
    for pid, name in ((first + 1, None), (first + 3, "p3"), (first + 4, "p4")):
        child = pid + 100
        ev, _ = event(table, rec("openat", child, ppid=pid, res=3, comm="c", dirfd=-100, name="/x",
                                  flags=0))
        assert get(ev, "proc.pname") == name, pid


def test_a_live_process_with_the_pid_wins_over_the_exited_one() -> None:
    table = ProcessTable()
    _after_runc_exit(table)
    assert table.known_parent(RUNC) is not None
    # the pid is reused at once by a process the table sees being created
    table.apply(rec("clone", RUNC, ppid=SHIM, comm="newcomer"))
    ev, _ = event(table, rec("openat", INIT, ppid=RUNC, res=3, comm="sh", dirfd=-100, name="/x",
                              flags=0))
    assert get(ev, "proc.pname") == "newcomer"

