"""Critical records never lose to bulk I/O: with nobody consuming, a flood of opens
fills the ring up to the reserved part and is then dropped (counted as bulk), while the
execs that follow still get in (no critical drop)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from falcopy.agent.kernel import Probe

pytestmark = pytest.mark.kernel


def test_execs_get_in_when_file_events_filled_the_ring(bpf_object: Path, tmp_path: Path) -> None:
    exe = tmp_path / f"kfcrit{os.getpid() % 100000}"
    shutil.copy2("/bin/true", exe)
    flood = tmp_path / "flood"
    # bulk may fill 1 MiB; the other 3 MiB are left to critical records (the whole
    # machine's execs and connects land there too while nobody reads)
    probe = Probe(bpf_object, ring_size=4 << 20, critical_reserve=3 << 20)
    probe.load()
    try:
        probe.set_event_filter({"openat", "close", "execve"})
        probe.ignore_pid(os.getpid())
        probe.attach()
        before = probe.drops_by_class()
        # nobody reads the ring: 20000 open+close (~6 MiB of records) overflow 1 MiB
        subprocess.run([sys.executable, "-c",
                        "import os, sys\nfor _ in range(20000):\n"
                        "    os.close(os.open(sys.argv[1], os.O_RDONLY | os.O_CREAT))", str(flood)],
                       check=True)
        mid = probe.drops_by_class()
        assert mid["bulk"] > before["bulk"], mid
        pids = []
        for _ in range(3):
            p = subprocess.Popen([str(exe)], env={})
            p.wait()
            pids.append(p.pid)
        after = probe.drops_by_class()
        assert after["critical"] == before["critical"], after
        records = []
        while batch := probe.poll(0):
            records.extend(batch)
        execs = {r.pid for r in records if r.type == "execve" and r.pid in pids}
        assert execs == set(pids), f"execve records of {pids}: {execs}"
        # the type counters saw it too
        assert probe.filter_stats()["execve"][0] >= 3
    finally:
        probe.close()
