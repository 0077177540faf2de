"""The BPF verifier's share of a first start: the probe's main object loaded with every
program (what a start without a program cache entry verifies), CPU seconds of the load
and of ``bpf_object__load`` (the kernel's verification), and the instructions the
verifier processed per program (``verified_insns`` in the program's fdinfo: deterministic
for a kernel and an object, so comparable on a busy machine where the seconds are not).

Measured, not asserted: ``make bench`` prints it (run with -s); the numbers are in
docs/performance.md ("Start-up, fifth pass").  ``FALCOPY_BENCH_BPF_OBJECT=PATH`` measures
another build of the object (e.g. the tree before a change), ``FALCOPY_BENCH_VERIFIER_ROUNDS``
the number of loads (default 3; the CPU seconds are the median).
"""

from __future__ import annotations

import os
import statistics
import time

import pytest
from falcopy.agent.kernel import Probe

pytestmark = [pytest.mark.bench, pytest.mark.kernel]

ROUNDS = int(os.environ.get("FALCOPY_BENCH_VERIFIER_ROUNDS", "3"))
OBJECT = os.environ.get("FALCOPY_BENCH_BPF_OBJECT")


def test_first_start_verification(require_root: None) -> None:
    load_cpu, verify_cpu = [], []
    insns: dict[str, int] = {}
    for _ in range(ROUNDS):
        probe = Probe(OBJECT) if OBJECT else Probe()
        cpu0 = time.thread_time()
        probe.load()  # every program: a first start
        load_cpu.append(time.thread_time() - cpu0)
        verify_cpu.append(probe.verify_cpu)
        try:
            insns = probe.verified_insns()
        finally:
            probe.close()
    total = sum(insns.values())
    print(f"\nBPF main object {OBJECT or '(this tree)'}: {len(insns)} programs, load average"
          f" {os.getloadavg()[0]:.1f}")
    print(f"  load CPU {statistics.median(load_cpu):.3f} s (verification"
          f" {statistics.median(verify_cpu):.3f} s), median of {ROUNDS}")
    print(f"  instructions processed by the verifier: {total}")
    for event, n in sorted(insns.items(), key=lambda kv: -kv[1])[:12]:
        print(f"    {event:14} {n:6}  {100 * n / total:4.1f} %")
    assert insns, "no program loaded"
