"""The recorder's and writer's bounds, on real files: per-key event cap, scope
isolation, memory and age caps, capture_duration, capture_events,
capture_filesize, total_bytes rotation, symlinks, and capture off."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from falcopy.agent.app import wanted_types
from falcopy.agent.capture.replay import read_capture, replay_events
from falcopy.agent.control.capture_config import DEFAULT_RECORD_TYPES
from falcopy.agent.control.config import AgentConfig

from .synth import MS, T0, make_rig


def lines(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    raw = [json.loads(x) for x in path.read_text().splitlines()]
    return raw[0], raw[2:]


def test_per_key_event_cap_keeps_the_newest_of_that_scope_only(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, duration_ms=0, recorder={"max_events": 50})
    rig.process(100, sid=100)
    rig.process(200, sid=200)  # another process tree: another key
    mixed = []
    for a, b in zip(rig.opens(100, 300, "/a/"), rig.opens(200, 300, "/b/"), strict=True):
        mixed += [a, b]
    rig.feed([*mixed, rig.trigger(100)])
    rig.finish(T0 + 10_000 * MS)
    [path] = rig.files()
    header, recs = lines(path)
    # 50 per key: the trigger and the 49 events of its tree before it, none of the other tree
    assert len(recs) == 50 and header["events_before"] == 50 and header["events_after"] == 0
    assert {r["pid"] for r in recs} == {100}
    assert [r["args"]["name"] for r in recs[:-1]] == [f"/a/{i}" for i in range(251, 300)]
    assert recs[-1]["type"] == "execve" and header["trigger"]["evt.num"] == recs[-1]["evt.num"]
    rec = rig.service.recorder
    # memory holds at most a quarter more per key (dropped per chunk, not per event)
    assert 2 * 50 <= rec.held() <= 2 * (50 + 12) and rec.evicted() == 2 * 300 + 1 - rec.held()


def test_container_scope_shares_one_buffer_per_container(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, duration_ms=0, recorder={"scope": "container"})
    for pid, sid in ((100, 1), (200, 7)):
        rig.process(pid, sid).container_id = "abcdef012345"
    rig.process(300, sid=300)  # a host process: its own tree
    rig.feed(rig.opens(100, 3, "/c1/") + rig.opens(200, 3, "/c2/") + rig.opens(300, 3, "/h/")
             + [rig.trigger(200)])
    rig.finish(T0 + 10_000 * MS)
    [path] = rig.files()
    header, recs = lines(path)
    assert {r["pid"] for r in recs} == {100, 200}
    assert header["scope"] == {"kind": "container", "container_id": "abcdef012345"}


def test_memory_cap_and_age_drop_the_oldest_events(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, recorder={"max_bytes": 1 << 16, "max_age_s": 5})
    rec = rig.service.recorder
    for pid in range(100, 140):
        rig.process(pid, sid=pid)
        rig.feed(rig.opens(pid, 50, "/" + "x" * 100 + "/"))
        assert rec.bytes <= 1 << 16
    assert rec.evicted() > 0
    # all buffers are within the memory cap, and what went first was the oldest
    assert rec._keys[("host", 139)].events and not rec._keys[("host", 100)].events
    # age: ten seconds later every buffer has been emptied by the sweep
    rec._last_sweep = 0.0
    rec.tick(T0 + 3_600_000 * MS)
    assert rec.keys() == 0 and rec.bytes == 0
    rig.service.stop()


def test_capture_duration_ends_the_capture_by_event_time_and_by_the_clock(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, duration_ms=200)
    rig.process(100, sid=100)
    t = T0 + 1_000 * MS
    # 50, 100, 150 ms after the alert: inside the 200 ms
    inside = [rig.record("openat", 100, 3, ts=t + i * 50 * MS, dirfd=-100, name=f"/after/{i}", flags=0,
                         mode=0) for i in range(1, 4)]
    rig.feed([rig.trigger(100, ts=t), *inside])
    rig.feed([rig.record("openat", 100, 3, ts=t + 250 * MS, dirfd=-100, name="/late", flags=0, mode=0)])
    [alert] = rig.alerts
    path = Path(alert["capture"])
    rig.service.writer.close()
    assert path.exists()
    header, recs = lines(path)
    assert header["ended_by"] == "duration"
    assert [r["args"].get("name") for r in recs[1:]] == ["/after/1", "/after/2", "/after/3"]

    # no more events of that tree: the clock ends the session (tick between batches)
    (tmp_path / "b").mkdir()
    rig2 = make_rig(tmp_path / "b", duration_ms=200)
    rig2.process(100, sid=100)
    rig2.feed([rig2.trigger(100, ts=t)])
    # by the clock, a grace second after the deadline (the ring may still hold its last events)
    rig2.service.recorder.tick(t + 1_100 * MS)
    assert rig2.service.recorder.open_sessions() == 1
    rig2.service.recorder.tick(t + 1_201 * MS)
    assert rig2.service.recorder.open_sessions() == 0
    rig2.service.stop()
    assert len(rig2.files()) == 1


def test_capture_events_caps_the_events_after_the_alert(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, duration_ms=60_000, capture={"capture_events": 3})
    rig.process(100, sid=100)
    rig.feed([*rig.opens(100, 5, "/before/"), rig.trigger(100), *rig.opens(100, 10, "/after/")])
    assert rig.service.recorder.open_sessions() == 0  # ended by the count, not the clock
    rig.finish(T0)
    [path] = rig.files()
    header, recs = lines(path)
    assert header["ended_by"] == "events" and header["events_after"] == 3
    assert [r["args"].get("name") for r in recs[-3:]] == ["/after/0", "/after/1", "/after/2"]


def test_capture_filesize_trims_oldest_events_and_keeps_the_trigger(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, duration_ms=0, capture={"capture_filesize": 8})  # KiB
    rig.process(100, sid=100)
    rig.feed([*rig.opens(100, 400, "/" + "p" * 60 + "/"), rig.trigger(100)])
    rig.finish(T0 + 10_000 * MS)
    [path] = rig.files()
    assert path.stat().st_size <= 8 * 1024
    header, recs = lines(path)
    assert header["truncated"] is True
    assert recs[-1]["type"] == "execve" and recs[-1]["evt.num"] == header["trigger"]["evt.num"]
    assert recs[-2]["args"]["name"].endswith("/399")  # what is kept is the newest
    assert header["events_before"] == len(recs) < 401


def test_total_bytes_rotation_removes_the_oldest_captures(tmp_path: Path) -> None:
    cap = 64 * 1024
    rig = make_rig(tmp_path, duration_ms=0, recorder={"total_bytes": cap})
    for i in range(12):
        pid = 1000 + i
        rig.process(pid, sid=pid)
        rig.feed([*rig.opens(pid, 40, "/" + "r" * 80 + "/"), rig.trigger(pid)])
        rig.service.recorder.tick(T0 + 10_000 * MS)
        rig.service.writer.close()  # flush this one (mtime order = capture order)
        rig.service.writer.start()
    rig.service.stop()
    expected = [Path(a["capture"]).name for a in rig.alerts]
    files = rig.files()
    assert sum(p.stat().st_size for p in files) <= cap
    assert rig.service.writer.stats.rotated == 12 - len(files) > 0
    assert [p.name for p in files] == expected[-len(files):]  # the newest survive


def test_files_are_0600_and_symlinks_are_never_followed(tmp_path: Path) -> None:
    target = tmp_path / "victim"
    target.write_text("untouched")
    # the capture directory itself is a symlink: refused, counted, nothing written through it
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "captures").symlink_to(real)
    rig = make_rig(tmp_path, duration_ms=0)
    rig.process(100, sid=100)
    rig.feed([rig.trigger(100)])
    rig.finish(T0 + 10_000 * MS)
    assert list(real.iterdir()) == []
    assert sum(rig.service.writer.stats.failures.values()) == 1

    # a symlink planted where the file is first written: replaced, not followed
    where = tmp_path / "c2"
    where.mkdir(mode=0o700)
    rig2 = make_rig(tmp_path, duration_ms=0, captures=where)
    rig2.process(100, sid=100)
    rig2.feed([rig2.trigger(100)])
    path = Path(rig2.alerts[0]["capture"])
    (where / f".{path.name}.partial").symlink_to(target)
    path.symlink_to(target)
    rig2.finish(T0 + 10_000 * MS)
    assert target.read_text() == "untouched"
    st = os.lstat(path)
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    assert read_capture(str(path)).trigger["rule"] == "capture trigger"


def test_mode_rules_captures_only_capture_rules_and_all_rules_every_alert(tmp_path: Path) -> None:
    for mode, expected in (("rules", [True, False]), ("all_rules", [True, True])):
        where = tmp_path / mode
        where.mkdir()
        rig = make_rig(where, duration_ms=0, capture={"mode": mode})
        rig.process(100, sid=100)
        rig.process(200, sid=200)
        rig.feed([rig.trigger(100), rig.trigger(200, name="plain")])
        rig.finish(T0 + 10_000 * MS)
        assert [a["rule"] for a in rig.alerts] == ["capture trigger", "plain rule"]
        assert [a["capture"] is not None for a in rig.alerts] == expected, mode
        assert len(rig.files()) == sum(expected)


def test_capture_off_records_nothing_and_asks_the_kernel_for_nothing_more() -> None:
    from falcopy.engine import load_rules_files

    rules = Path(__file__).resolve().parents[3] / "rules"
    ruleset = load_rules_files([rules]).ruleset
    assert ruleset is not None
    off = wanted_types(ruleset, AgentConfig())
    on = wanted_types(ruleset, AgentConfig.model_validate({"capture": {"enabled": True}}))
    assert off is not None and on is not None
    assert set(DEFAULT_RECORD_TYPES) <= on and on - off == set(DEFAULT_RECORD_TYPES) - off
    assert set(DEFAULT_RECORD_TYPES) - off, "the default rules already ask for every recorded type"
    assert AgentConfig().capture.enabled is False


def test_replay_state_comes_from_the_file_alone(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, duration_ms=0)
    info = rig.process(4242, sid=4242)
    info.args = ["--flag"]
    info.cwd = "/srv"
    rig.feed([*rig.opens(4242, 2, "/srv/data"), rig.trigger(4242)])
    rig.finish(T0 + 10_000 * MS)
    [path] = rig.files()
    events = []
    for ev in replay_events(read_capture(str(path))):
        events.append((ev.type, ev.thread.pid, ev.thread.cwd, ev.fd.name if ev.fd else None))
    assert events == [("openat", 4242, "/srv", "/srv/data0"), ("openat", 4242, "/srv", "/srv/data1"),
                      ("execve", 4242, "/srv", None)]
