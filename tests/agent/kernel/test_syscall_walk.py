"""The whole syscall table, walked: every system call of the running architecture, really
called by a helper (``syscall_walker.c``), raises the alert of a rule ``evt.type = <name>``
with the right ``evt.type`` and ``evt.res``, and the dedicated programs' arguments.

One ruleset with one rule per syscall, one probe, one helper process: the raw sys_exit hook
is attached (rules name syscalls without a dedicated program), so this also proves the
generic path, its syscall-id bitmap and the naming of generic records.  The machine is
shared: a call whose record was lost in a burst of other processes' events is simply made
again (the helper repeats what is still missing) until every syscall was seen.
"""

from __future__ import annotations

import errno
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from falcopy.agent.fields.event import SyscallEvent
from falcopy.agent.fields.syscall import AgentSyscallSource
from falcopy.agent.kernel import Probe
from falcopy.agent.kernel.syscalls import NO_EXIT_EVENT, SyscallTable, kernel_syscall_names
from falcopy.agent.pipeline import Pipeline
from falcopy.agent.state import STATE_EVENT_TYPES, ProcessTable

from falcopy.engine import default_sources, load_rules_files
from falcopy.engine.evttypes import ALL_EVENT_TYPES

pytestmark = pytest.mark.kernel

HERE = Path(__file__).resolve().parent

#: the only syscalls of the table not called, and why
UNSAFE: dict[str, str] = {
    # no exit event exists to capture (falcopy warns on rules naming them): see NO_EXIT_EVENT
    **NO_EXIT_EVENT,
    "uretprobe": "the kernel kills any caller that is not its own uretprobe trampoline (SIGILL)",
    "uprobe": "the kernel kills any caller that is not its own uprobe trampoline (SIGILL)",
}

#: arguments for syscalls that the default (-1 everywhere: bad fds, bad pointers, invalid
#: flags, so every call fails harmlessly) would make do something or harm the host
SAFE_ARGS: dict[str, list[str]] = {
    "msgget": ["-1", "0"],          # -1 flags would create a queue (IPC_CREAT|IPC_EXCL)
    "shmget": ["-1", "0", "0"],
    "semget": ["-1", "0", "0"],
    "kill": ["999999999", "0"],     # kill(-1, ...) walks every process of the machine
    "alarm": ["0"],
}

#: dedicated programs: the arguments given and what the record must carry, as
#: (argument registers, {Falco argument name: expected value})
DEDICATED: dict[str, tuple[list[str], dict[str, Any]]] = {
    "read": (["-9", "b:16", "77"], {"fd": -9, "size": 77}),
    "write": (["-9", "b:16", "78"], {"fd": -9, "size": 78}),
    "pread": (["-9", "b:16", "79", "4096"], {"fd": -9, "size": 79, "pos": 4096}),
    "pwrite": (["-9", "b:16", "80", "8192"], {"fd": -9, "size": 80, "pos": 8192}),
    "readv": (["-9", "0", "3"], {"fd": -9, "iovcnt": 3}),
    "writev": (["-9", "0", "4"], {"fd": -9, "iovcnt": 4}),
    "preadv": (["-9", "0", "5", "512"], {"fd": -9, "iovcnt": 5, "pos": 512}),
    "pwritev": (["-9", "0", "6", "1024"], {"fd": -9, "iovcnt": 6, "pos": 1024}),
    "sendfile": (["-9", "-8", "p:77", "55"], {"out_fd": -9, "in_fd": -8, "offset": 77, "size": 55}),
    "splice": (["-9", "0", "-8", "0", "66", "1"], {"fd_in": -9, "fd_out": -8, "size": 66, "flags": 1}),
    "tee": (["-9", "-8", "67", "2"], {"fd_in": -9, "fd_out": -8, "size": 67, "flags": 2}),
    "ioctl": (["-9", "0x5401", "0x1234"], {"fd": -9, "request": 0x5401, "argument": 0x1234}),
    "mmap": (["0x7000", "0", "3", "0x22", "-1", "0x1000"],
             {"addr": 0x7000, "length": 0, "prot": 3, "flags": 0x22, "fd": -1, "offset": 0x1000}),
    "mprotect": (["0x1001", "4096", "7"], {"addr": 0x1001, "length": 4096, "prot": 7}),
    "munmap": (["0x1001", "4096"], {"addr": 0x1001, "length": 4096}),
    "mremap": (["0x1001", "4096", "8192", "0", "0"],
               {"addr": 0x1001, "old_len": 4096, "new_len": 8192, "flags": 0, "new_addr": 0}),
    "process_vm_readv": (["-5", "0", "0", "0", "0", "1"], {"pid": -5, "flags": 1}),
    "process_vm_writev": (["-5", "0", "0", "0", "0", "1"], {"pid": -5, "flags": 1}),
    "io_uring_setup": (["100000", "b:120"], {"entries": 100000, "sq_entries": 0, "flags": 0}),
    "io_uring_enter": (["-9", "3", "2", "1", "0", "0"],
                       {"fd": -9, "to_submit": 3, "min_complete": 2, "flags": 1}),
    "io_uring_register": (["-9", "5", "0x1234", "6"], {"fd": -9, "opcode": 5, "arg": 0x1234, "nr_args": 6}),
    "open_by_handle_at": (["-9", "b:64", "0"], {"mountfd": -9, "flags": 0}),
    "name_to_handle_at": (["-100", "s:/falcopy-walk-missing", "b:64", "b:8", "0"],
                          {"dirfd": -100, "flags": 0, "pathname": "/falcopy-walk-missing"}),
    "pidfd_open": (["-5", "0"], {"pid": -5, "flags": 0}),
    "pidfd_getfd": (["-9", "5", "0"], {"pid_fd": -9, "target_fd": 5, "flags": 0}),
    "pidfd_send_signal": (["-9", "10", "0", "0"], {"pidfd": -9, "sig": 10, "flags": 0}),
    "timerfd_create": (["-3", "0"], {"clockid": -3, "flags": 0}),
    "timerfd_settime": (["-9", "1", "0", "0"], {"fd": -9, "flags": 1}),
    "timerfd_gettime": (["-9", "0"], {"fd": -9}),
    "eventfd": (["5"], {"initval": 5}),
    "eventfd2": (["6", "0xffff"], {"initval": 6, "flags": 0xFFFF}),
    "signalfd": (["-9", "p:4", "8"], {"fd": -9, "mask": 4}),
    "signalfd4": (["-9", "p:6", "8", "0x80000"], {"fd": -9, "mask": 6, "flags": 0x80000}),
    "fsopen": (["s:falcopy-nofs", "0"], {"fs_name": "falcopy-nofs", "flags": 0}),
    "fsconfig": (["-9", "1", "s:source", "s:/dev/falcopy", "0"],
                 {"fd": -9, "cmd": 1, "key": "source", "value_charbuf": "/dev/falcopy", "aux": 0}),
    "fsmount": (["-9", "1", "2"], {"fs_fd": -9, "flags": 1, "attr_flags": 2}),
    "move_mount": (["-9", "s:/falcopy-walk-a", "-8", "s:/falcopy-walk-b", "0"],
                   {"from_dfd": -9, "to_dfd": -8, "flags": 0, "from_pathname": "/falcopy-walk-a",
                    "to_pathname": "/falcopy-walk-b"}),
    "open_tree": (["-100", "s:/falcopy-walk-missing", "0"],
                  {"dfd": -100, "flags": 0, "filename": "/falcopy-walk-missing"}),
    "quotactl": (["0x800005", "s:/dev/falcopy-walk", "7", "b:72"],
                 {"cmd": 0x800005, "special": "/dev/falcopy-walk", "id": 7}),
    "keyctl": (["999", "1", "2", "3", "4"], {"operation": 999, "arg2": 1, "arg3": 2, "arg4": 3, "arg5": 4}),
    "add_key": (["s:falcopy_none", "s:walk", "0", "0", "-77"],
                {"type": "falcopy_none", "description": "walk", "keyring": -77}),
    "request_key": (["s:falcopy_none", "s:walk", "0", "-77"],
                    {"type": "falcopy_none", "description": "walk", "dest_keyring": -77}),
    "seccomp": (["99", "0", "0"], {"op": 99, "flags": 0}),
    "perf_event_open": (["b:128", "-1", "-1", "-9", "0"],
                        {"pid": -1, "cpu": -1, "group_fd": -9, "flags": 0, "type": 0, "config": 0}),
    "personality": (["0xffffffff"], {"persona": 0xFFFFFFFF}),
    "kcmp": (["-5", "-6", "0", "1", "2"], {"pid1": -5, "pid2": -6, "type": 0, "idx1": 1, "idx2": 2}),
    "sched_setattr": (["-5", "b:64", "0"], {"pid": -5, "flags": 0, "sched_policy": 0}),
    "setxattr": (["s:/falcopy-walk-x", "s:user.falcopy", "0", "12", "1"],
                 {"path": "/falcopy-walk-x", "name": "user.falcopy", "size": 12, "flags": 1}),
    "lsetxattr": (["s:/falcopy-walk-x", "s:user.falcopy", "0", "13", "2"],
                  {"path": "/falcopy-walk-x", "name": "user.falcopy", "size": 13, "flags": 2}),
    "fsetxattr": (["-9", "s:user.falcopy", "0", "14", "1"],
                  {"fd": -9, "name": "user.falcopy", "size": 14, "flags": 1}),
    "getxattr": (["s:/falcopy-walk-x", "s:user.falcopy", "0", "33"],
                 {"path": "/falcopy-walk-x", "name": "user.falcopy", "size": 33}),
    "lgetxattr": (["s:/falcopy-walk-x", "s:user.falcopy", "0", "34"],
                  {"path": "/falcopy-walk-x", "name": "user.falcopy", "size": 34}),
    "fgetxattr": (["-9", "s:user.falcopy", "0", "35"], {"fd": -9, "name": "user.falcopy", "size": 35}),
    "listxattr": (["s:/falcopy-walk-x", "0", "44"], {"path": "/falcopy-walk-x", "size": 44}),
    "llistxattr": (["s:/falcopy-walk-x", "0", "45"], {"path": "/falcopy-walk-x", "size": 45}),
    "flistxattr": (["-9", "0", "46"], {"fd": -9, "size": 46}),
    "removexattr": (["s:/falcopy-walk-x", "s:user.falcopy"],
                    {"path": "/falcopy-walk-x", "name": "user.falcopy"}),
    "lremovexattr": (["s:/falcopy-walk-x", "s:user.falcopy"],
                     {"path": "/falcopy-walk-x", "name": "user.falcopy"}),
    "fremovexattr": (["-9", "s:user.falcopy"], {"fd": -9, "name": "user.falcopy"}),
}

#: the lifecycle calls the helper makes for real: the probe reports the child's side
FORKS = {"fork", "vfork", "clone", "clone3"}

#: what the kernel returns at syscall exit where the caller sees something else: pause,
#: interrupted by a signal, still holds -ERESTARTNOHAND (the signal's delivery turns it into
#: EINTR afterwards), as Falco reports it too
KERNEL_RES = {"pause": -514}


@pytest.fixture(scope="module")
def walker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("walk") / f"falcopy-walker-{os.getpid()}"
    subprocess.run(["cc", "-O1", "-o", str(out), str(HERE / "syscall_walker.c")], check=True,
                   capture_output=True, timeout=120)
    return out


def _call_line(name: str, nr: int) -> str:
    args = DEDICATED[name][0] if name in DEDICATED else SAFE_ARGS.get(name, ["-1"] * 6)
    return " ".join([str(nr), *args]) + "\n"


def _rules(names: list[str], pid: int) -> str:
    out = []
    for name in names:
        # the fork family's record is the child's, whose parent is the helper
        who = f"(proc.pid = {pid} or proc.ppid = {pid})" if name in FORKS else f"proc.pid = {pid}"
        out.append(f"- rule: walk {name}\n  desc: the walk reaches {name}\n"
                   f"  condition: evt.type = {name} and {who}\n"
                   f"  output: \"%evt.type %evt.res\"\n  priority: NOTICE\n")
    return "\n".join(out)


class Walk:
    def __init__(self, probe: Probe, pipeline: Pipeline, seen: dict[str, list[SyscallEvent]]) -> None:
        self.probe, self.pipeline, self.seen = probe, pipeline, seen

    def pump(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            recs = self.probe.poll(50)
            if recs:
                self.pipeline.process(recs)


@pytest.fixture
def walk_setup(walker: Path, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Walk, SyscallTable]]:
    table = SyscallTable.build(kernel_syscall_names(Path("/sys/kernel/tracing")))
    # started first, so the process table knows it from /proc and the rules can name its pid
    helper = subprocess.Popen([str(walker)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              start_new_session=True)  # no controlling terminal: vhangup is harmless
    names = sorted(n for n in table.event_names() if n not in UNSAFE)
    rules = tmp_path / "walk.yaml"
    rules.write_text(_rules(names, helper.pid))
    sources = default_sources()
    sources["syscall"] = AgentSyscallSource()
    result = load_rules_files([rules], sources=sources)
    assert result.ok, [str(m) for m in result.errors][:5]
    assert result.ruleset is not None
    seen: dict[str, list[SyscallEvent]] = {}

    def on_alert(rule: Any, event: SyscallEvent) -> None:
        seen.setdefault(rule.name.removeprefix("walk "), []).append(event)

    table_state = ProcessTable()
    table_state.bootstrap()
    pipeline = Pipeline(result.ruleset, table_state, on_alert=on_alert)
    probe = Probe(ring_size=64 << 20)
    probe.load()
    types = result.ruleset.evttypes("syscall")
    assert types is not None
    enabled = probe.set_event_filter(set(types) | STATE_EVENT_TYPES)
    assert probe.unsupported == set(), probe.unsupported
    assert probe.generic_attached and set(names) <= enabled
    probe.ignore_pid(os.getpid())
    probe.attach()
    try:
        yield helper, Walk(probe, pipeline, seen), table
    finally:
        probe.close()
        helper.kill()
        helper.wait()


def _field(event: SyscallEvent, name: str) -> Any:
    src = AgentSyscallSource()
    found = src.lookup(name)
    assert found is not None, name
    fdef, arg = found
    return src.accessor(fdef, arg)(event)


def _res_is(event: SyscallEvent, res: int) -> bool:
    """evt.rawres is the return value, evt.res its Falco rendering (SUCCESS or the errno name)."""
    text = "SUCCESS" if res >= 0 else errno.errorcode.get(-res)
    return _field(event, "evt.rawres") == res and (text is None or _field(event, "evt.res") == text)


def test_unsafe_list_is_short_and_explained() -> None:
    assert len(UNSAFE) <= 5 and all(len(why) > 20 for why in UNSAFE.values())


def test_every_name_in_the_table_is_an_event_type_the_engine_knows() -> None:
    table = SyscallTable.build(kernel_syscall_names(Path("/sys/kernel/tracing")))
    assert len(table.names) > 300
    assert table.event_names() <= ALL_EVENT_TYPES, sorted(table.event_names() - ALL_EVENT_TYPES)


def test_every_syscall_raises_its_rule(walk_setup: tuple[subprocess.Popen[str], Walk, SyscallTable]) -> None:
    helper, walk, table = walk_setup
    assert helper.stdin is not None and helper.stdout is not None
    names = sorted(n for n in table.event_names() if n not in UNSAFE)
    expected: dict[str, int] = {}
    missing = list(names)
    deadline = time.monotonic() + 240
    rounds = 0
    while missing and time.monotonic() < deadline:
        rounds += 1
        for name in missing:
            nr = table.nr(name)
            assert nr is not None
            helper.stdin.write(_call_line(name, nr))
            helper.stdin.flush()
            got_nr, res = map(int, helper.stdout.readline().split())
            assert got_nr == nr, (name, got_nr)
            expected[name] = KERNEL_RES.get(name, res)
            walk.pump(0.0)
        walk.pump(1.0)
        missing = [n for n in missing if not any(_res_is(e, expected[n]) for e in walk.seen.get(n, []))]
    assert not missing, f"no alert after {rounds} rounds for {len(missing)} syscalls: {missing[:40]}"

    wrong: list[str] = []
    for name in names:
        events = walk.seen[name]
        assert all(_field(e, "evt.type") == name for e in events)
        ok = [e for e in events if _res_is(e, expected[name])]
        assert ok, (name, expected[name])
        if name in DEDICATED:
            want = DEDICATED[name][1]
            if not any(all(_field(e, f"evt.rawarg.{k}") == v for k, v in want.items()) for e in ok):
                got = {k: _field(ok[-1], f"evt.rawarg.{k}") for k in want}
                wrong.append(f"{name}: want {want}, got {got}")
        elif name not in FORKS:
            # a generic or older dedicated record: the generic ones carry their number
            rec = ok[-1].rec
            if "nativeID" in rec.args:
                assert rec.args["nativeID"] == table.nr(name) and rec.args["ID"] == name
    assert not wrong, "\n".join(wrong)
