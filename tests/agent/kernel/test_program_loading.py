"""Which programs the probe verifies: only those asked for at load, the rest when a
filter first needs them; and the build for kernels without bpf_rdonly_cast."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest
from falcopy.agent.kernel import BpfError, Probe, layout
from falcopy.agent.kernel.probe import compat_path

from .conftest import Capture
from .kprograms import kernel_programs

pytestmark = pytest.mark.kernel

FIRST = {"openat", "execve", "clone", "procexit"}


def test_only_the_programs_asked_for_are_loaded_the_rest_when_a_filter_needs_them(
        bpf_object: Path, tmp_path: Path) -> None:
    probe = Probe(bpf_object)
    probe.load(events=FIRST | {"mmap"})  # mmap: a program of the extra object
    try:
        assert probe.loaded_events == FIRST | {"mmap"}
        held = kernel_programs(os.getpid())
        assert {"exit_openat", "exit_execve", "exit_clone", "on_procexit", "exit_mmap"} <= held
        assert not held & {"exit_mkdir", "exit_mkdirat", "exit_unlink", "generic_exit", "exit_open"}
        # the verifier's work per program, from the kernel (the verifier bench prints it)
        insns = probe.verified_insns()
        assert set(insns) == FIRST | {"mmap"} and all(n > 0 for n in insns.values()), insns

        probe.set_event_filter({"mkdir", "mkdirat", "openat"})
        probe.attach()
        assert {"mkdir", "mkdirat"} <= probe.loaded_events
        assert {"exit_mkdir", "exit_mkdirat"} <= kernel_programs(os.getpid())
        cap = Capture(probe)
        target = tmp_path / f"late-{os.getpid()}"
        subprocess.run(["mkdir", str(target)], check=True)
        got = cap.wait_for(lambda r: r.type in ("mkdir", "mkdirat")
                           and str(target) in str(r.args.get("path")))
        assert got, "the late-loaded mkdir program captured nothing"
    finally:
        probe.close()


def test_the_build_for_kernels_without_the_kfunc_loads_and_fills_the_header(
        bpf_object: Path, tmp_path: Path) -> None:
    # the kernel here has bpf_rdonly_cast; the compat build (trusted task loads) must work
    # on it too, and give the same header as the default build
    compat = compat_path(bpf_object)
    assert compat.is_file()
    headers = []
    for obj in (compat, bpf_object):
        probe = Probe(obj)
        probe.load(events={"openat"} | layout.LIFECYCLE)
        try:
            probe.set_event_filter({"openat"})
            probe.attach()
            cap = Capture(probe)
            marker = tmp_path / f"hdr-{obj.name}-{os.getpid()}"
            marker.write_text("x")
            child = subprocess.Popen(["cat", str(marker)], stdout=subprocess.DEVNULL)
            assert child.wait(timeout=30) == 0
            got = cap.wait_for(lambda r, m=str(marker), c=child.pid: r.type == "openat" and r.pid == c
                               and r.args.get("name") == m)
            assert got, f"{obj.name}: no openat of {marker}"
            rec = got[0]
            assert (rec.ppid, rec.uid, rec.euid, rec.comm) == (os.getpid(), os.getuid(), os.geteuid(), "cat")
            headers.append((rec.ppid, rec.uid, rec.gid, rec.euid, rec.egid, rec.loginuid))
        finally:
            probe.close()
    assert headers[0] == headers[1]


class _KernelWithoutKfunc(Probe):
    """The default build's load fails as libbpf 1.1 fails it on a kernel before 6.2."""

    def _load_main(self, events, before_verify):  # type: ignore[no-untyped-def]
        if "compat" not in self._main_path.name:
            raise BpfError(f"loading {self._main_path}", -errno.ESRCH, [
                "libbpf: extern (func ksym) 'bpf_rdonly_cast': not found in kernel or module BTFs",
                "libbpf: failed to load object 'falcopy_bpf'"])
        super()._load_main(events, before_verify)


def test_a_kernel_without_the_kfunc_gets_the_compat_build(bpf_object: Path, tmp_path: Path) -> None:
    probe = _KernelWithoutKfunc(bpf_object)
    probe.load(events={"openat", "mmap"} | layout.LIFECYCLE)
    try:
        assert probe._main_path == compat_path(bpf_object)
        assert "exit_mmap" in kernel_programs(os.getpid())  # the extra object's compat build
        probe.set_event_filter({"openat"})
        probe.attach()
        cap = Capture(probe)
        marker = tmp_path / f"compat-{os.getpid()}"
        marker.write_text("x")
        child = subprocess.Popen(["cat", str(marker)], stdout=subprocess.DEVNULL)
        assert child.wait(timeout=30) == 0
        assert cap.wait_for(lambda r: r.type == "openat" and r.pid == child.pid
                            and r.args.get("name") == str(marker))
    finally:
        probe.close()


def test_another_load_error_is_not_retried(bpf_object: Path) -> None:
    class Broken(Probe):
        def _load_main(self, events, before_verify):  # type: ignore[no-untyped-def]
            raise BpfError(f"loading {self._main_path}", -errno.EPERM, ["libbpf: prog 'exit_open': failed"])

    with pytest.raises(BpfError, match="Operation not permitted"):
        Broken(bpf_object).load()
