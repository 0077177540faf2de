"""Cost of a DNS-named address check on the event path (`make bench`).

µs per connect record through ProcessTable + SyscallEvent + one rule, three ways: the
rule compares ``fd.sip`` with an IP (the floor), ``fd.sip.name`` with a resolved name
(a snapshot lookup, no DNS on the event path), and ``fd.sip.name`` with a name whose
lookup hangs in a resolver that never answers (must cost the same)."""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any

import pytest
from falcopy.agent.enrichment.dns import DnsConfig, DnsNames
from falcopy.agent.fields.syscall import AgentSyscallSource
from falcopy.agent.pipeline import Pipeline
from falcopy.agent.state import ProcessTable

from falcopy.engine import RulesInput, default_sources, load_rules
from tests.agent.state.helpers import rec
from tests.waiting import wait_until

pytestmark = pytest.mark.bench

RULE = """\
- rule: api server
  desc: d
  condition: evt.type = connect and {check}
  output: "%fd.name %fd.sip.name"
  priority: WARNING
"""


def _pipeline(check: str, dns: DnsNames | None) -> tuple[Pipeline, list[Any]]:
    sources = default_sources()
    sources["syscall"] = AgentSyscallSource(dns=dns)
    result = load_rules([RulesInput("bench.yaml", RULE.format(check=check))], sources=sources)
    assert result.ok and result.ruleset is not None
    alerts: list[Any] = []
    table = ProcessTable()
    return Pipeline(result.ruleset, table, on_alert=lambda rule, ev: alerts.append(rule)), alerts


def _batch(pid: int) -> list[Any]:
    out = [rec("clone", pid, ppid=os.getpid(), comm="bench")]
    for i in range(500):
        out.append(rec("socket", pid, res=5, comm="bench", domain=socket.AF_INET, type=socket.SOCK_STREAM,
                       proto=0))
        dip = "10.96.0.1" if i % 10 == 0 else f"10.0.{i % 250}.{i % 7 + 1}"
        out.append(rec("connect", pid, res=0, comm="bench", fd=5,
                       addr={"family": "inet", "ip": dip, "port": 443},
                       tuple={"family": "inet", "l4proto": "tcp", "sip": "10.1.0.5", "sport": 40000 + i,
                              "dip": dip, "dport": 443}))
        out.append(rec("close", pid, res=0, comm="bench", fd=5))
    return out


def _per_record(pipe: Pipeline, batch: list[Any], rounds: int = 30) -> float:
    pipe.process(batch)  # warm-up
    t0 = time.perf_counter()
    for _ in range(rounds):
        pipe.process(batch)
    return (time.perf_counter() - t0) / (rounds * len(batch)) * 1e6


def test_name_check_costs_like_an_ip_check() -> None:
    pid = 4_000_000 - 77
    batch = _batch(pid)
    ip_pipe, ip_alerts = _pipeline('fd.sip = "10.96.0.1"', None)
    floor = _per_record(ip_pipe, batch)

    gate = threading.Event()

    def resolve(name: str) -> frozenset[str]:
        if name == "silent.example":
            gate.wait(120)
            raise OSError("no answer")
        return frozenset({"10.96.0.1"})

    dns = DnsNames(DnsConfig(), resolve=resolve)
    dns.watch({"kubernetes.default.svc.cluster.local", "silent.example"})
    dns.start()
    try:
        assert wait_until(lambda: dns.contains("kubernetes.default.svc.cluster.local", "10.96.0.1"))
        name_pipe, name_alerts = _pipeline('fd.sip.name = "kubernetes.default.svc.cluster.local"', dns)
        named = _per_record(name_pipe, batch)
        silent_pipe, silent_alerts = _pipeline('fd.sip.name in ("silent.example")', dns)
        silent = _per_record(silent_pipe, batch)
        assert dns.stats()["silent.example"]["failures"] == 0, "the silent lookup must still hang"
    finally:
        gate.set()
        dns.stop()
    assert len(name_alerts) == len(ip_alerts) > 0 and not silent_alerts
    print(f"\nper record (socket/connect/close, 1 rule): fd.sip = IP {floor:.2f} µs, "
          f"fd.sip.name = resolved name {named:.2f} µs, fd.sip.name = name never answered {silent:.2f} µs")
