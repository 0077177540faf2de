"""Probe control: event filters, ignored pids, drop counting, loader errors."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import threading
from pathlib import Path

import pytest
from falcopy.agent.kernel import SUPPORTED_EVENTS, BpfError, Probe

from tests.waiting import CEILING_S

from .conftest import Capture

pytestmark = pytest.mark.kernel


def cat_hostname() -> int:
    proc = subprocess.Popen(["cat", "/etc/hostname"], stdout=subprocess.DEVNULL)
    assert proc.wait(timeout=10) == 0
    return proc.pid


def test_filter_changes_take_effect(probe: Probe, capture: Capture) -> None:
    enabled = probe.set_event_filter({"openat"}, with_lifecycle=False)
    assert enabled == {"openat"}
    pid = cat_hostname()
    got = capture.wait_for(lambda r: r.pid == pid and r.args.get("name") == "/etc/hostname")
    assert got and got[0].type == "openat"
    assert not [r for r in capture.settle(0.2) if r.pid == pid and r.type != "openat"]

    capture.drain()
    probe.set_event_filter({"close"}, with_lifecycle=False)
    pid = cat_hostname()
    closes = capture.wait_for(lambda r: r.pid == pid and r.type == "close")
    assert closes
    assert {r.type for r in capture.settle(0.2) if r.pid == pid} == {"close"}

    capture.drain()
    enabled = probe.set_event_filter({"openat", "no_such_event"})
    assert probe.unsupported == {"no_such_event"}
    assert {"execve", "clone", "procexit", "openat"} <= enabled
    pid = cat_hostname()
    capture.wait_for(lambda r: r.pid == pid and r.type == "procexit")
    types = {r.type for r in capture.seen if r.pid == pid}
    # the child's own side of its creation (vfork/clone) is a lifecycle event too
    assert {"execve", "openat", "procexit"} <= types <= {"execve", "openat", "procexit", "vfork", "clone",
                                                         "clone3", "fork"}


def test_own_pid_is_ignored(probe: Probe, capture: Capture, tmp_path: Path) -> None:
    probe.ignore_pid(os.getpid())
    try:
        capture.drain()
        marker = tmp_path / "mine"
        marker.write_text("x")
        marker.read_text()
        rc = subprocess.Popen(["cat", str(marker)], stdout=subprocess.DEVNULL).wait(timeout=10)
        assert rc == 0
        theirs = capture.wait_for(lambda r: r.comm == "cat" and r.args.get("name") == str(marker))
        assert theirs, "the child's open must still be captured"
        mine = [r for r in capture.settle(0.2) if r.pid == os.getpid()]
        assert mine == []
    finally:
        probe.unignore_pid(os.getpid())
    capture.drain()
    marker.read_text()
    assert capture.wait_for(lambda r: r.pid == os.getpid() and r.args.get("name") == str(marker))


def test_drops_are_counted_with_a_tiny_ring(bpf_object: Path) -> None:
    with Probe(bpf_object, ring_size=4096) as p:
        p.set_event_filter({"openat", "close"}, with_lifecycle=False)
        p.attach()
        assert p.drops() == 0
        # nobody consumes: the one-page ring fills after a few records
        for _ in range(300):
            os.close(os.open("/etc/hostname", os.O_RDONLY))
        dropped = p.drops()
        assert dropped > 100
        records = p.poll(0)
        # what fitted in one page before it filled, intact
        assert 0 < len(records) < 64
        assert all(r.type in {"openat", "close"} for r in records)
        assert p.drops() >= dropped


def test_load_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="power of two"):
        Probe(ring_size=5000)
    with pytest.raises(FileNotFoundError, match="make bpf"):
        Probe(tmp_path / "missing.bpf.o").load()
    bogus = tmp_path / "bogus.bpf.o"
    bogus.write_bytes(b"not an ELF file")
    with pytest.raises(BpfError, match="opening"):
        Probe(bogus).load()


def test_supported_events_cover_the_rules(compat_dir: Path) -> None:
    needed = {"connect", "dup", "dup2", "dup3", "execve", "execveat", "finit_module", "init_module", "link",
              "linkat", "open", "openat", "openat2", "ptrace", "sendmsg", "sendto", "socket", "symlink",
              "symlinkat", "accept", "accept4", "bpf", "chmod", "creat", "fchmod", "fchmodat", "listen",
              "rename", "renameat", "renameat2", "rmdir", "setns", "setuid", "unlink", "unlinkat", "unshare",
              "mkdir", "mkdirat", "recvfrom", "recvmsg", "userfaultfd", "procexit", "clone", "clone3",
              "fork", "vfork", "close", "setresuid", "setsid", "setpgid", "capset", "chdir", "fchdir",
              "chroot", "bind"}
    assert needed <= SUPPORTED_EVENTS
    # every evt.type the shipped rules compare against is one we can produce
    text = "".join(p.read_text() for p in compat_dir.glob("falco*_rules.yaml"))
    named = set()
    for m in re.finditer(r"evt\.type\s+in\s*\(([a-z0-9_, ]+)\)", text):
        named |= {t.strip() for t in m.group(1).split(",") if t.strip()}
    named |= set(re.findall(r"evt\.type\s*=\s*([a-z0-9_]+)", text))
    assert len(named) > 30
    assert named <= SUPPORTED_EVENTS, named - SUPPORTED_EVENTS


def test_poll_waits_then_returns(probe: Probe, tmp_path: Path) -> None:
    probe.set_event_filter({"openat"}, with_lifecycle=False)
    probe.poll(0)
    # an idle poll returns at its timeout (a ceiling, not a speed limit)
    idle = threading.Thread(target=probe.poll, args=(100,), daemon=True)
    idle.start()
    idle.join(CEILING_S)
    assert not idle.is_alive(), "poll(100) never returned"
    # a long poll is woken by the first records instead of sleeping out its timeout
    marker = tmp_path / f"poll-wake-{os.getpid()}"
    got: list[list] = []
    waiter = threading.Thread(target=lambda: got.append(probe.poll(600_000)), daemon=True)
    waiter.start()
    while waiter.is_alive() and not got:
        marker.touch()  # an openat the filter passes (repeated: the poll may start late)
        waiter.join(0.05)
    waiter.join(CEILING_S)
    assert not waiter.is_alive() and got and got[0], "poll(600 s) was not woken by records"


def test_generic_hook_only_while_needed(probe: Probe, capture: Capture) -> None:
    """getppid has no dedicated program: asking for it attaches the raw hook, whose record is
    named getppid; asking for dedicated types only detaches it again."""
    probe.set_event_filter({"openat"})
    assert not probe.generic_attached
    enabled = probe.set_event_filter({"openat", "getppid"})
    assert probe.generic_attached and "getppid" in enabled and "getppid" in probe.enabled_events
    capture.drain()
    os.getppid()
    recs = capture.wait_for(lambda r: r.type == "getppid" and r.pid == os.getpid())
    assert recs and recs[0].res == os.getppid() and recs[0].args["ID"] == "getppid"
    assert recs[0].args["nativeID"] == probe.syscalls.nr("getppid")
    probe.set_event_filter({"openat"})
    assert not probe.generic_attached
    capture.drain()
    os.getppid()
    assert not [r for r in capture.settle(0.3) if r.type == "getppid" and r.pid == os.getpid()]


def test_a_program_disabled_and_enabled_again_at_once_attaches(probe: Probe, capture: Capture) -> None:
    """A disabled program's link is destroyed in the background (a grace period per link);
    enabling it again before that ends must still attach it: the kernel refuses a second
    attachment of the same program to the same tracepoint until the old link is gone."""
    for _ in range(5):
        probe.set_event_filter({"openat"})
        probe.set_event_filter(None)
        assert "accept" in probe.enabled_events
    capture.drain()
    marker = f"/tmp/falcopy-reattach-{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        os.open(marker, os.O_RDONLY)
    recs = capture.wait_for(lambda r: r.type == "openat" and r.pid == os.getpid()
                            and r.args.get("name") == marker)
    assert recs
