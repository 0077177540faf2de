"""The open prefilter (agent/prefilter.py) skips only opens no rule can match: with
Falco's stable rules, a corpus of opens built from the rules' own paths, directories,
basenames and process names raises exactly the same alerts with the prefilter as
without it, while most opens of unrelated files are never evaluated."""

from __future__ import annotations

import os
import posixpath
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from falcopy.agent.events.record import SyscallRecord
from falcopy.agent.fields.syscall import AgentSyscallSource
from falcopy.agent.pipeline import Pipeline
from falcopy.agent.prefilter import open_checks
from falcopy.agent.socket_prefilter import socket_checks
from falcopy.agent.state import ProcessTable

from falcopy.engine import ast, default_sources, load_rules_files

FLAGS = (os.O_RDONLY, os.O_WRONLY | os.O_TRUNC, os.O_RDWR | os.O_CREAT, os.O_WRONLY | os.O_APPEND)


def _literals(node: Any, out: set[str]) -> None:
    if isinstance(node, ast.Check):
        r = node.right
        if isinstance(r, ast.Value):
            out.add(r.value)
        elif isinstance(r, ast.ListValue):
            out.update(r.values)
    for child in getattr(node, "children", None) or ():
        _literals(child, out)
    for attr in ("child", "body"):
        sub = getattr(node, attr, None)
        if sub is not None:
            _literals(sub, out)


@pytest.fixture(scope="module")
def ruleset(compat_dir: Path) -> Any:
    sources = default_sources()
    sources["syscall"] = AgentSyscallSource()
    result = load_rules_files([compat_dir / "falco_rules.yaml"], sources=sources)
    assert result.ok and result.ruleset is not None
    return result.ruleset


def _corpus(ruleset: Any) -> list[tuple[str, str, int]]:
    words: set[str] = set()
    for rule in ruleset.enabled_rules():
        if rule.tree is not None:
            _literals(rule.tree, words)
    paths: set[str] = {"/etc/hostname", "/usr/lib/x.so", "/home/u/.bashrc", "relative/name"}
    names: set[str] = set()
    for w in words:
        if w.startswith("/") and "*" not in w:
            paths.update({w, posixpath.join(w, "child"), posixpath.dirname(w) or "/"})
        elif w and "/" not in w and " " not in w and len(w) < 40:
            names.add(w)
    for n in sorted(names):
        paths.update({f"/var/log/{n}", f"/etc/{n}", f"/tmp/{n}"})
    # raw names with ../ (directory traversal) are opened as written
    raws = [(p, p) for p in sorted(paths)] + [(p, "../../.." + p) for p in sorted(paths)[:200]]
    comms = ["bench-prefilter", "sshd", "nginx", "bash", "vi"]
    out = []
    for i, (path, raw) in enumerate(raws):
        for j, flags in enumerate(FLAGS):
            out.append((path if raw == path else raw, comms[(i + j) % len(comms)], flags))
    return out


@pytest.fixture(scope="module")
def actor() -> Iterator[int]:
    """A process whose parent is this test process, whatever launched pytest: the
    stable rules look at the parent (a shell parent silences some of them)."""
    child = subprocess.Popen(["sleep", "600"])
    try:
        yield child.pid
    finally:
        child.kill()
        child.wait()


def _records(corpus: list[tuple[str, str, int]], pid: int) -> list[SyscallRecord]:
    recs = []
    for name, comm, flags in corpus:
        for etype in ("openat", "close"):
            args: dict[str, Any] = ({"dirfd": -100, "name": name, "flags": flags, "mode": 0o644}
                                    if etype == "openat" else {"fd": 9})
            recs.append(SyscallRecord(
                type=etype, ts=time.time_ns(), cpu=0, tid=pid, pid=pid, ppid=os.getpid(), vtid=pid,
                vpid=pid, uid=0, gid=0, euid=0, egid=0, loginuid=-1, comm=comm, cgroup_id=0,
                res=9 if etype == "openat" else 0, args=args))
    return recs


def test_prefilter_keeps_every_alert(ruleset: Any, actor: int) -> None:
    checks = open_checks(ruleset)
    assert "openat" in checks, "the stable rules constrain opens: a prefilter is expected"
    records = _records(_corpus(ruleset), actor)

    def run(prefilter: bool) -> tuple[list[tuple[int, str]], Pipeline]:
        got: list[tuple[int, str]] = []
        pipe = Pipeline(ruleset, ProcessTable(), prefilter=prefilter,
                        on_alert=lambda rule, ev: got.append((ev.num, rule.name)))
        pipe.process(records)
        assert pipe.errors == 0
        return got, pipe

    with_pf, fast = run(True)
    without, slow = run(False)
    assert without, "the corpus must raise alerts, or it proves nothing"
    assert {name for _, name in without} >= {"Read sensitive file untrusted", "Clear Log Activities",
                                             "Directory traversal monitored file read"}
    assert with_pf == without
    # and it does skip: most of the corpus is opens no rule names
    assert fast.evaluated < slow.evaluated


def test_directory_and_unknown_fds_are_evaluated(ruleset: Any) -> None:
    from falcopy.agent.state.model import FdInfo, ThreadInfo

    check = open_checks(ruleset)["openat"]
    thread = ThreadInfo(pid=os.getpid(), tid=os.getpid(), comm="bench-prefilter")
    assert check(None, thread)
    assert check(FdInfo("directory", "/nowhere", 3, os.O_DIRECTORY), thread)
    assert not check(FdInfo("file", "/nowhere/x", 3, os.O_RDONLY, nameraw="/nowhere/x"), thread)
    assert check(FdInfo("file", "/etc/shadow", 3, os.O_RDONLY, nameraw="/etc/shadow"), thread)
    assert check(FdInfo("file", "/nowhere/x", 3, os.O_RDONLY, nameraw="../nowhere/x"), thread)


def test_stand_in_rulesets_get_no_prefilter() -> None:
    class Fake:
        def evaluate(self, event: Any) -> list[Any]:
            return []

        def evttypes(self, source: str) -> set[str] | None:
            return None

    assert open_checks(Fake()) == {}
    assert socket_checks(Fake()) == {}
