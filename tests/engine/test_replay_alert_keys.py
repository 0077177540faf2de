"""`falcopy replay` honours threshold rules and aggregation, on the recorded clock."""

from __future__ import annotations

from pathlib import Path

from tests.engine.test_replay import replay

T0 = 1_781_085_600_000_000_000
MS = 1_000_000

RULES = """
- rule: etc sweep
  desc: many files below /etc opened by one process
  condition: evt.type in (open, openat) and fd.name startswith /etc/
  output: etc file opened (file=%fd.name proc=%proc.name pid=%proc.pid)
  priority: WARNING
  threshold:
    count: 20
    window: 10s
    group_by: [proc.pid]
    distinct: fd.name
- rule: tmp write
  desc: writes below /tmp
  condition: evt.type in (open, openat) and fd.name startswith /tmp/
  output: tmp file opened (file=%fd.name proc=%proc.name pid=%proc.pid)
  priority: NOTICE
  aggregation:
    window: 5s
"""


def _opens(pid: int, name: str, files: list[str], start: int, step: int) -> list[dict]:
    return [{"evt.type": "openat", "evt.time": start + i * step, "fd.name": f, "proc.name": name,
             "proc.pid": pid} for i, f in enumerate(files)]


def _rules(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES)
    return path


def test_threshold_rule_fires_once_for_25_files_not_for_19(tmp_path: Path) -> None:
    events = _opens(100, "sweeper", [f"/etc/f{i}" for i in range(25)], T0, 300 * MS)
    events += _opens(200, "reader", [f"/etc/g{i}" for i in range(19)], T0 + 1, 300 * MS)
    events.sort(key=lambda e: e["evt.time"])
    code, alerts = replay(tmp_path, [_rules(tmp_path)], events)
    assert code == 0
    (alert,) = alerts
    f = alert["output_fields"]
    assert alert["rule"] == "etc sweep" and f["proc.pid"] == 100 and f["falcopy.count"] == 20
    assert f["falcopy.group"] == {"proc.pid": 100}
    assert f["falcopy.distinct"] == {"fd.name": sorted((f"/etc/f{i}" for i in range(20)), key=str)}
    assert alert["time"] == "2026-06-10T10:00:05.700000000Z"  # the 20th file, at 19 x 300 ms


def test_threshold_needs_the_files_within_the_window(tmp_path: Path) -> None:
    events = _opens(100, "slow", [f"/etc/f{i}" for i in range(25)], T0, 600 * MS)  # 25 files in 14.4 s
    code, alerts = replay(tmp_path, [_rules(tmp_path)], events)
    assert code == 0 and alerts == []


def test_replay_aggregates_on_request(tmp_path: Path) -> None:
    events = _opens(7, "cat", ["/tmp/x"] * 1000, T0, 1 * MS)            # 1 s of repeats
    events += _opens(8, "cat", ["/tmp/x"] * 10, T0 + 7000 * MS, 1 * MS)  # after the window: a new one
    code, plain = replay(tmp_path, [_rules(tmp_path)], events)
    assert code == 0 and len(plain) == 1010  # aggregation off by default, as in the agent

    code, alerts = replay(tmp_path, [_rules(tmp_path)], events, "--aggregate")
    assert code == 0
    assert [a["output_fields"].get("falcopy.count") for a in alerts] == [None, 999, None, 9]
    assert [a["output_fields"].get("falcopy.close_reason") for a in alerts] == [None, "window", None, "end"]
    assert alerts[1]["output_fields"]["falcopy.varied"] == {}  # same process, same file: nothing varied
    assert alerts[1]["output"].startswith("2026-06-10T10:00:00.999000000+0000: Notice 999 more alert(s)")

    cfg = tmp_path / "falcopy.yaml"
    cfg.write_text("falcopy:\n  aggregation:\n    enabled: true\n    window: 100ms\n")
    code, alerts = replay(tmp_path, [_rules(tmp_path)], events, "-c", str(cfg))
    assert code == 0
    # the rule's own 5 s window wins over the configured 100 ms
    assert [a["output_fields"].get("falcopy.count") for a in alerts] == [None, 999, None, 9]
    code, alerts = replay(tmp_path, [_rules(tmp_path)], events, "-c", str(cfg), "--no-aggregate")
    assert code == 0 and len(alerts) == 1010


def test_replay_rejects_a_bad_window(tmp_path: Path) -> None:
    code, _ = replay(tmp_path, [_rules(tmp_path)], [], "--aggregate", "--aggregation-window", "soon")
    assert code == 2
