"""`falcopy agent` on the real kernel with aggregation on: exact counts for a flood, separate keys,
a threshold rule, and windows flushed on reload and on shutdown.

Processes are matched by unique names (prctl) so other engineers' activity on the shared
machine cannot touch the counts; a run during which the probe dropped records is repeated
with new names (drops are counted by the agent, a test needs one clean window)."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.agent.reload.agentproc import AgentProcess
from tests.waiting import wait_until

pytestmark = pytest.mark.kernel

WORKER = textwrap.dedent("""
    import ctypes, sys
    ctypes.CDLL(None).prctl(15, sys.argv[1].encode(), 0, 0, 0)
    for spec in sys.argv[2:]:
        path, _, count = spec.rpartition(":")
        for _ in range(int(count)):
            with open(path, "rb") as f:
                f.read(1)
""")


def _name(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"  # comm: at most 15 characters


def run_as(name: str, *specs: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", WORKER, name, *specs])


def rules_text(readers: list[str], sweepers: list[str], window: str) -> str:
    return textwrap.dedent(f"""
        - rule: e2e shadow flood
          desc: shadow files read by the test's processes
          condition: >
            evt.type in (open, openat, openat2) and fd.name in (/etc/shadow, /etc/gshadow)
            and proc.name in ({", ".join(readers)})
          output: shadow read (file=%fd.name proc=%proc.name pid=%proc.pid)
          priority: WARNING
          tags: [e2e]
          aggregation:
            window: {window}
        - rule: e2e etc sweep
          desc: at least 20 different files below /etc opened by one process in 10 s
          condition: >
            evt.type in (open, openat, openat2) and fd.name startswith /etc/
            and proc.name in ({", ".join(sweepers)})
          output: file below /etc opened (file=%fd.name proc=%proc.name pid=%proc.pid)
          priority: WARNING
          tags: [e2e]
          threshold:
            count: 20
            window: 10s
            group_by: [proc.pid]
            distinct: fd.name
    """)


def etc_files(n: int) -> list[str]:
    files = sorted(p for p in Path("/etc").iterdir() if p.is_file() and not p.is_symlink())
    assert len(files) >= n, f"/etc has only {len(files)} regular files"
    return [str(p) for p in files[:n]]


def drops(agent: AgentProcess) -> float:
    return agent.metrics().get("falcopy_kernel_drops_total", 0.0)


def of(alerts: list[dict[str, Any]], rule: str, proc: str) -> list[dict[str, Any]]:
    return [a for a in alerts if a["rule"] == rule and a["output_fields"].get("proc.name") == proc]


def aggregated(agent: AgentProcess) -> float | None:
    return agent.metrics().get('falcopy_alerts_aggregated_total{rule="e2e shadow flood"}')


def is_summary(a: dict[str, Any]) -> bool:
    return "falcopy.close_reason" in a["output_fields"]


@pytest.fixture
def names() -> dict[str, list[str]]:
    # a few spare names per role: a run spoiled by kernel drops is repeated with fresh ones
    return {role: [_name(role) for _ in range(3)] for role in ("fpa", "fpb", "fpc", "fpd")}


@pytest.fixture
def agent(tmp_path: Path, require_root: None, names: dict[str, list[str]]) -> Iterator[AgentProcess]:
    rules = tmp_path / "rules.yaml"
    rules.write_text(rules_text(names["fpa"] + names["fpb"], names["fpc"] + names["fpd"], "5s"))
    a = AgentProcess(tmp_path, [rules],
                     falcopy_config="  aggregation:\n    enabled: true\n    window: 60s\n").start()
    yield a
    a.stop()


def test_flood_aggregates_exactly_and_thresholds_fire_live(agent: AgentProcess,
                                                          names: dict[str, list[str]]) -> None:
    for attempt in range(3):
        a, b, c, d = (names[r][attempt] for r in ("fpa", "fpb", "fpc", "fpd"))
        before = drops(agent)
        # one process: 1,000 reads of /etc/shadow, then another file within the same window;
        # a second process reads /etc/shadow meanwhile; two processes open 25 and 19 files below /etc
        procs = [run_as(a, "/etc/shadow:1000", "/etc/gshadow:1"), run_as(b, "/etc/shadow:10"),
                 run_as(c, *(f"{f}:1" for f in etc_files(25))), run_as(d, *(f"{f}:1" for f in etc_files(19)))]
        for p in procs:
            assert p.wait(60) == 0

        def settled(a: str = a, b: str = b) -> bool:
            alerts = agent.alerts()
            return all(any(is_summary(x) for x in of(alerts, "e2e shadow flood", n)) for n in (a, b))

        assert wait_until(settled, 60), f"no summaries: {agent.alerts()[-5:]} {agent.log()}"
        if drops(agent) == before:
            break
    else:
        pytest.fail("the probe dropped records in every attempt")
    alerts = agent.alerts()

    flood = of(alerts, "e2e shadow flood", a)
    firsts = [x for x in flood if not is_summary(x)]
    shadow_firsts = [x for x in firsts if x["output_fields"]["fd.name"] == "/etc/shadow"]
    summaries = [x for x in flood if is_summary(x) and x["output_fields"]["fd.name"] == "/etc/shadow"]
    assert len(shadow_firsts) == 1, flood
    assert sum(s["output_fields"]["falcopy.count"] for s in summaries) == 999
    assert all(s["output_fields"]["falcopy.window"] == 5.0 and s["priority"] == "Warning"
               and s["tags"] == ["e2e"] and s["source"] == "syscall" for s in summaries)
    assert summaries[0]["output"].split(": ", 1)[1].startswith("Warning 999 more alert(s) of this rule")
    # the other file alerted at once: before the shadow window closed, in the same window
    (gshadow,) = [x for x in firsts if x["output_fields"]["fd.name"] == "/etc/gshadow"]
    assert flood.index(gshadow) < flood.index(summaries[0])
    assert gshadow["output_fields"]["evt.time"] < shadow_firsts[0]["output_fields"]["evt.time"] + 5 * 10**9
    # the other process: its own key, its own count
    other = of(alerts, "e2e shadow flood", b)
    assert len([x for x in other if not is_summary(x)]) == 1
    assert sum(x["output_fields"]["falcopy.count"] for x in other if is_summary(x)) == 9

    # threshold: once for the process with 25 files, never for the one with 19
    (fired,) = of(alerts, "e2e etc sweep", c)
    f = fired["output_fields"]
    assert f["falcopy.count"] == 20 and f["falcopy.threshold"] == 20
    assert sorted(f["falcopy.distinct"]["fd.name"]) == sorted(etc_files(20))
    assert f["falcopy.group"] == {"proc.pid": procs[2].pid}
    assert of(alerts, "e2e etc sweep", d) == []
    m = agent.metrics()
    assert m['falcopy_threshold_fired_total{rule="e2e etc sweep"}'] >= 1
    assert m['falcopy_alerts_aggregated_total{rule="e2e shadow flood"}'] >= 999 + 9


def test_open_windows_are_flushed_on_reload_and_on_shutdown(tmp_path: Path, require_root: None) -> None:
    first, second = _name("fpr"), _name("fps")
    rules = tmp_path / "rules.yaml"
    rules.write_text(rules_text([first, second], ["fpnone"], "10m"))  # windows that never close by time
    agent = AgentProcess(tmp_path, [rules], falcopy_config="  aggregation:\n    enabled: true\n").start()
    try:
        assert run_as(first, "/etc/shadow:50").wait(60) == 0
        # the open's alert: its window is open; all 50 opens reached the agent once this one did
        assert wait_until(lambda: of(agent.alerts(), "e2e shadow flood", first), 30), agent.log()
        assert wait_until(lambda: aggregated(agent) == 49, 30)
        assert agent.proc is not None
        agent.proc.send_signal(signal.SIGHUP)
        assert wait_until(lambda: any(map(is_summary, of(agent.alerts(), "e2e shadow flood", first))), 30)
        (summary,) = filter(is_summary, of(agent.alerts(), "e2e shadow flood", first))
        assert summary["output_fields"]["falcopy.count"] == 49
        assert summary["output_fields"]["falcopy.close_reason"] == "reload"
        assert "closed early: the rules were reloaded" in summary["output"]

        assert run_as(second, "/etc/shadow:30").wait(60) == 0
        assert wait_until(lambda: aggregated(agent) == 49 + 29, 30)
    finally:
        agent.stop()
    assert agent.proc is not None and agent.proc.returncode == 0, agent.log()
    mine = of(agent.alerts(), "e2e shadow flood", second)
    assert [x["output_fields"].get("falcopy.count") for x in mine] == [None, 29]
    assert mine[1]["output_fields"]["falcopy.close_reason"] == "shutdown"
