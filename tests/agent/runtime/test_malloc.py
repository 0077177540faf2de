"""The agent's malloc settings (``falcopy.common.malloc``, set at the top of `falcopy
agent`), observed in the process's own memory map: threads that allocate get no arenas
of their own, and a freed large block leaves the process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.agent.reload.agentproc import AgentProcess

REPO = Path(__file__).resolve().parents[3]
HEAP_MAX = 64 << 20

_THREADS = """
import sys, threading
from falcopy.common.malloc import tune_for_agent
if sys.argv[1] == "tuned":
    assert tune_for_agent()
ready, done = threading.Barrier(5), threading.Event()
def work():
    keep = [bytearray(600) for _ in range(2000)]  # over 512 bytes: malloc, not pymalloc
    ready.wait()
    done.wait()
threads = [threading.Thread(target=work) for _ in range(4)]
for t in threads:
    t.start()
ready.wait()
from tests.agent.runtime.test_malloc import arena_heaps
print(arena_heaps("self"))
done.set()
"""

_LARGE = """
import sys
from falcopy.common.malloc import tune_for_agent
if sys.argv[1] == "tuned":
    assert tune_for_agent()
def rss_kib():
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmRSS")).split()[1])
warm = bytearray(8 << 20)  # untuned, glibc raises its mmap threshold when this is freed
del warm
before = rss_kib()
big = bytearray(4 << 20)  # zero-filled: resident
keep = [bytearray(1000) for _ in range(100)]  # allocated after it, still alive
del big
print(rss_kib() - before)
"""


def arena_heaps(pid: str | int) -> int:
    """glibc's per-thread arenas of a process: an arena's heap is a 64 MiB-aligned
    reservation, read-write up to its top and PROT_NONE to the end of the 64 MiB."""
    maps = []
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        cols = line.split()
        lo, hi = (int(x, 16) for x in cols[0].split("-"))
        maps.append((lo, hi, cols[1], len(cols) == 5))
    n = 0
    for i, (lo, hi, perm, anon) in enumerate(maps):
        if not (anon and perm == "rw-p" and lo % HEAP_MAX == 0):
            continue
        rest = maps[i + 1] if i + 1 < len(maps) else None
        if hi - lo == HEAP_MAX or (rest is not None and rest[0] == hi and rest[2] == "---p"
                                   and rest[3] and rest[1] == lo + HEAP_MAX):
            n += 1
    return n


def _run(code: str, mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", code, mode], cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return int(out.stdout.strip().splitlines()[-1])


def test_threads_share_the_main_arena() -> None:
    assert _run(_THREADS, "default") >= 2  # the check sees glibc's per-thread arenas
    assert _run(_THREADS, "tuned") == 0


def test_freed_large_blocks_leave_the_process() -> None:
    # 4 MiB freed below live blocks: resident on the heap by default, unmapped at once
    # with the threshold pinned
    assert _run(_LARGE, "default") >= 3 << 10
    assert _run(_LARGE, "tuned") < 1 << 10


@pytest.mark.kernel
def test_the_agents_threads_share_one_arena(tmp_path: Path, require_root: None) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("- rule: malloc marker\n  desc: an open of the test's marker\n"
                     f"  condition: evt.type = openat and fd.name = {tmp_path}/marker\n"
                     "  output: '%fd.name'\n  priority: WARNING\n")
    agent = AgentProcess(tmp_path, [rules]).start(timeout=300)
    try:
        # probe loader, rules compile, /proc walk, event, sink and web threads have all
        # allocated by the time the agent is ready
        assert agent.proc is not None
        threads = len(list(Path(f"/proc/{agent.proc.pid}/task").iterdir()))
        assert threads > 4
        assert arena_heaps(agent.proc.pid) == 0
    finally:
        agent.stop()
