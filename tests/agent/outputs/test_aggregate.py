"""The aggregation stage on real rules and the real alert builder (event values given
directly): exact counts, separate keys, the window cap, <NA> keys, threshold rules,
flushes, metrics, and a dead output while summaries are due."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from falcopy.agent.control.metrics import AgentMetrics
from falcopy.agent.outputs.aggregate import AggregationSettings, AlertStage
from falcopy.agent.outputs.alert import Alert
from falcopy.agent.outputs.builder import AlertBuilder
from falcopy.agent.outputs.dispatch import build_dispatcher
from prometheus_client import generate_latest

from falcopy.engine import Ruleset, RulesInput, default_sources, load_rules
from falcopy.engine.event import DictEvent
from tests.agent.outputs.helpers import config
from tests.agent.outputs.servers import free_port
from tests.waiting import wait_until

T0 = 1_781_085_600_000_000_000
S = 1_000_000_000

RULES = """
- rule: shadow read
  desc: shadow
  condition: evt.type = openat and fd.name in (/etc/shadow, /etc/gshadow)
  output: shadow read (file=%fd.name proc=%proc.name pid=%proc.pid)
  priority: WARNING
  tags: [filesystem, T1555]
- rule: keyed
  desc: keyed by a field that may be missing
  condition: evt.type = openat and fd.name = /tmp/keyed
  output: keyed (proc=%proc.name container=%container.id pid=%proc.pid)
  priority: NOTICE
  aggregation:
    key: [container.id]
- rule: never aggregated
  desc: opted out
  condition: evt.type = openat and fd.name = /tmp/loud
  output: loud (proc=%proc.name)
  priority: NOTICE
  aggregation: false
- rule: etc sweep
  desc: many files below /etc opened by one process
  condition: evt.type = openat and fd.name startswith /etc/sweep/
  output: etc file opened (file=%fd.name proc=%proc.name pid=%proc.pid)
  priority: WARNING
  threshold:
    count: 20
    window: 10s
    group_by: [proc.pid]
    distinct: fd.name
"""


def _ruleset() -> Ruleset:
    res = load_rules([RulesInput("agg.yaml", RULES)])
    assert res.ok, [str(e) for e in res.errors]
    assert res.ruleset is not None
    return res.ruleset


class Harness:
    def __init__(self, emit: Any = None, **settings: Any) -> None:
        self.ruleset = _ruleset()
        cfg = config("append_output=[]")
        self.builder = AlertBuilder(cfg, self.ruleset, default_sources(), hostname="node-1")
        self.out: list[Alert] = []
        settings.setdefault("enabled", True)
        settings.setdefault("window", 5.0)
        self.stage = AlertStage(self.builder.build, emit or self.out.append, AggregationSettings(**settings))
        self.matches = 0

    def event(self, ts: int, **values: Any) -> None:
        ev = DictEvent({"evt.type": "openat", "evt.time": ts, **values})
        self.stage.tick(ts)
        for rule in self.ruleset.evaluate(ev):
            self.matches += 1
            self.stage.on_match(rule, ev)

    def firsts(self, rule: str) -> list[Alert]:
        return [a for a in self.out if a.rule == rule and "falcopy.count" not in a.output_fields]

    def summaries(self, rule: str) -> list[Alert]:
        return [a for a in self.out if a.rule == rule and "falcopy.close_reason" in a.output_fields]


def _count(alerts: list[Alert]) -> int:
    return sum(a.output_fields["falcopy.count"] for a in alerts)


def test_1000_repeats_give_one_alert_and_a_summary_of_999() -> None:
    h = Harness()
    for i in range(1000):
        h.event(T0 + i * 1_000_000, **{"fd.name": "/etc/shadow", "proc.name": "cat",
                                       "proc.pid": 4000 + i % 7})
    first = h.firsts("shadow read")
    assert len(first) == 1 and h.out == first  # nothing else yet: repeats are only counted
    assert first[0].message == "shadow read (file=/etc/shadow proc=cat pid=4000)"  # unchanged
    h.stage.tick(T0 + 5 * S)  # the window (from the first alert) ends
    (summary,) = h.summaries("shadow read")
    f = summary.output_fields
    assert f["falcopy.count"] == 999 and 1 + _count([summary]) == h.matches == 1000
    assert (f["fd.name"], f["proc.name"]) == ("/etc/shadow", "cat") and "proc.pid" not in f
    assert f["falcopy.first_time"] == T0 + 1_000_000 and f["falcopy.last_time"] == T0 + 999_000_000
    assert f["falcopy.close_reason"] == "window" and f["falcopy.window"] == 5.0
    assert f["falcopy.varied"] == {"proc.pid": [4001, 4002, 4003, 4004, 4005]}  # sample_size 5
    assert (summary.priority, summary.tags, summary.source, summary.hostname) == (
        "Warning", ["T1555", "filesystem"], "syscall", "node-1")
    assert summary.message.startswith(
        "999 more alert(s) of this rule with fd.name=/etc/shadow proc.name=cat ")
    assert "2026-06-10T10:00:00.001000000Z to 2026-06-10T10:00:00.999000000Z (0.998s, 5s window)" in \
        summary.message
    # a new window after the close starts with a first alert again
    h.event(T0 + 6 * S, **{"fd.name": "/etc/shadow", "proc.name": "cat", "proc.pid": 1})
    assert len(h.firsts("shadow read")) == 2


def test_other_file_and_other_process_alert_at_once_and_count_separately() -> None:
    h = Harness()
    for i in range(300):
        h.event(T0 + i * 1000, **{"fd.name": "/etc/shadow", "proc.name": "cat", "proc.pid": 10})
        if i == 100:
            h.event(T0 + i * 1000 + 1, **{"fd.name": "/etc/gshadow", "proc.name": "cat", "proc.pid": 10})
            assert h.out[-1].output_fields["fd.name"] == "/etc/gshadow"  # at once, in the window
        if i % 3 == 0:
            h.event(T0 + i * 1000 + 2, **{"fd.name": "/etc/shadow", "proc.name": "head", "proc.pid": 11})
    h.stage.tick(T0 + 10 * S)
    firsts = {(a.output_fields["fd.name"], a.output_fields["proc.name"]) for a in h.firsts("shadow read")}
    assert firsts == {("/etc/shadow", "cat"), ("/etc/gshadow", "cat"), ("/etc/shadow", "head")}
    by_key = {(a.output_fields["fd.name"], a.output_fields["proc.name"]): a.output_fields["falcopy.count"]
              for a in h.summaries("shadow read")}
    assert by_key == {("/etc/shadow", "cat"): 299, ("/etc/shadow", "head"): 99}
    assert len(h.firsts("shadow read")) + _count(h.summaries("shadow read")) == h.matches


def test_window_cap_closes_the_oldest_early_and_says_so() -> None:
    m = AgentMetrics()
    h = Harness(max_keys=3)
    m.add_collector(h.stage.metric_families)
    ts = T0
    for k in range(5):  # 5 keys one after the other, 10 matches each; room for 3 windows
        for _ in range(10):
            ts += 1000
            h.event(ts, **{"fd.name": "/etc/shadow", "proc.name": f"p{k}", "proc.pid": k})
    early = [a for a in h.summaries("shadow read") if a.output_fields["falcopy.close_reason"] == "cap"]
    assert [(a.output_fields["proc.name"], a.output_fields["falcopy.count"]) for a in early] == [
        ("p0", 9), ("p1", 9)]  # the oldest first, when the 4th and 5th keys opened
    assert all("closed early: falcopy.aggregation.max_keys windows were open" in a.message for a in early)
    assert h.stage.open_windows() == 3
    h.stage.flush("shutdown")
    assert h.stage.open_windows() == 0
    assert len(h.firsts("shadow read")) + _count(h.summaries("shadow read")) == h.matches == 50
    text = generate_latest(m.registry).decode()
    assert "falcopy_aggregation_windows_closed_early_total 2.0" in text
    assert 'falcopy_aggregation_summaries_total{rule="shadow read"} 5.0' in text


def test_na_key_values_aggregate_together() -> None:
    h = Harness()
    for i in range(50):  # no container.id in these events: <NA>
        h.event(T0 + i, **{"fd.name": "/tmp/keyed", "proc.name": f"p{i % 2}", "proc.pid": i})
    h.event(T0 + 100, **{"fd.name": "/tmp/keyed", "proc.name": "p", "proc.pid": 1, "container.id": "abc"})
    first = h.firsts("keyed")
    assert [a.output_fields["container.id"] for a in first] == [None, "abc"]
    assert "container=<NA>" in first[0].message
    h.stage.flush("shutdown")
    (summary,) = h.summaries("keyed")
    assert summary.output_fields["container.id"] is None and summary.output_fields["falcopy.count"] == 49
    assert "with container.id=<NA> " in summary.message
    assert set(summary.output_fields["falcopy.varied"]) == {"proc.name", "proc.pid"}


def test_rule_opt_out_and_global_off() -> None:
    h = Harness()
    for i in range(10):
        h.event(T0 + i, **{"fd.name": "/tmp/loud", "proc.name": "x"})
    assert len(h.firsts("never aggregated")) == 10
    off = Harness(enabled=False)
    for i in range(10):
        off.event(T0 + i, **{"fd.name": "/etc/shadow", "proc.name": "x", "proc.pid": 1})
    off.stage.flush("shutdown")
    assert len(off.out) == 10 and not off.summaries("shadow read")


def test_threshold_fires_once_for_25_and_not_for_19() -> None:
    h = Harness(enabled=False)
    for i in range(25):
        h.event(T0 + i * 100_000_000, **{"fd.name": f"/etc/sweep/f{i}", "proc.name": "a", "proc.pid": 100})
    for i in range(19):
        h.event(T0 + i * 100_000_000, **{"fd.name": f"/etc/sweep/g{i}", "proc.name": "b", "proc.pid": 200})
    for i in range(40):  # one file again and again: one distinct value
        h.event(T0 + i, **{"fd.name": "/etc/sweep/same", "proc.name": "c", "proc.pid": 300})
    (alert,) = h.out
    f = alert.output_fields
    assert (f["proc.pid"], f["falcopy.count"], f["falcopy.threshold"]) == (100, 20, 20)
    assert f["falcopy.group"] == {"proc.pid": 100}
    assert sorted(f["falcopy.distinct"]["fd.name"]) == sorted(f"/etc/sweep/f{i}" for i in range(20))
    assert alert.message.endswith("(threshold >= 20 distinct fd.name in 10s per proc.pid: 20)")
    stats = h.stage.gate.stats
    assert stats.fired == {"etc sweep": 1} and stats.absorbed == {"etc sweep": 5}
    # after the window the same process can fire again; spread over more than 10 s it cannot
    for i in range(20):
        h.event(T0 + 20 * S + i, **{"fd.name": f"/etc/sweep/h{i}", "proc.name": "a", "proc.pid": 100})
    assert len(h.out) == 2
    for i in range(30):
        h.event(T0 + 40 * S + i * S, **{"fd.name": f"/etc/sweep/s{i}", "proc.name": "d", "proc.pid": 400})
    assert len(h.out) == 2


def test_summaries_reach_a_live_output_while_another_is_down(tmp_path: Path) -> None:
    """An http output that is down while summaries are due: each alert (firsts and summaries)
    is counted as failed for that output; the file output receives all of them."""
    path = tmp_path / "events.json"
    m = AgentMetrics()
    cfg = config("file_output.enabled=true", f"file_output.filename={path}", "http_output.enabled=true",
                 f"http_output.url=http://127.0.0.1:{free_port()}/", "http_output.retries=0")
    d = build_dispatcher(cfg, m)
    d.start()
    h = Harness(emit=d.submit)
    m.add_collector(h.stage.metric_families)
    for i in range(200):
        h.event(T0 + i, **{"fd.name": "/etc/shadow", "proc.name": f"p{i % 2}", "proc.pid": i})
    h.stage.flush("shutdown")  # what the agent does before closing the outputs
    assert wait_until(lambda: d.stats("http").failed == 4, 30)
    d.close()
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    summaries = [x for x in lines if "falcopy.count" in x["output_fields"]]
    assert len(lines) == 4 and sum(x["output_fields"]["falcopy.count"] for x in summaries) == 198
    assert all(x["output_fields"]["falcopy.close_reason"] == "shutdown" for x in summaries)
    text = generate_latest(m.registry).decode()
    assert 'falcopy_output_failed_total{sink="http"} 4.0' in text
    assert 'falcopy_aggregation_summaries_total{rule="shadow read"} 2.0' in text
    assert 'falcopy_alerts_aggregated_total{rule="shadow read"} 198.0' in text


def test_memory_stays_bounded_under_key_churn() -> None:
    h = Harness(max_keys=10, window=3600.0)
    for i in range(20_000):  # every match a new key: windows close early all the time
        h.event(T0 + i, **{"fd.name": "/etc/shadow", "proc.name": f"p{i}", "proc.pid": i})
    agg = h.stage.aggregator
    assert len(agg) == 10 and len(agg._ends) <= 2 * 10 + 1024
    assert len(h.out) == 20_000 and agg.stats.closed_early == 20_000 - 10
