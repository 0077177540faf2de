"""The rules watcher and the bundle reader on ConfigMap-shaped directories (no kernel needed)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from falcopy.agent.control.watch import RulesWatcher
from falcopy.operator.bundle import plan_bundle
from falcopy.operator.model import ObjKey, RuleObject
from falcopy.operator.validate import Validator

from falcopy.distribution.bundle import BundleIncomplete, read_rules
from tests.agent.reload.kubelet import KubeletVolume
from tests.waiting import CEILING_S, wait_until

REPO = Path(__file__).resolve().parents[3]


class Calls:
    def __init__(self) -> None:
        self.times: list[float] = []
        self.event = threading.Event()

    def __call__(self) -> None:
        self.times.append(time.monotonic())
        self.event.set()

    def wait(self, n: int, timeout: float = CEILING_S) -> None:
        assert wait_until(lambda: len(self.times) >= n, timeout), f"{len(self.times)} reloads, wanted {n}"


@pytest.fixture
def watcher_factory():
    made: list[RulesWatcher] = []

    def make(paths: list[Path], calls: Calls, **kw: float) -> RulesWatcher:
        w = RulesWatcher(paths, calls, **kw)
        w.start()
        made.append(w)
        return w

    yield make
    for w in made:
        w.stop()


def test_configmap_swap_is_one_debounced_reload(tmp_path, watcher_factory):
    vol = KubeletVolume(tmp_path / "rules.d")
    vol.update({"a.yaml": "- list: a\n  items: [x]\n"})
    calls = Calls()
    w = watcher_factory([vol.root], calls, debounce_s=0.1)
    t0 = time.monotonic()
    vol.update({"a.yaml": "- list: a\n  items: [y]\n", "b.yaml": "- list: b\n  items: [z]\n"})
    calls.wait(1)
    latency = calls.times[0] - t0
    assert latency >= 0.09, latency  # it waited for the debounce (a loaded machine only adds)
    time.sleep(0.3)
    assert len(calls.times) == 1 and w.events >= 1
    # kubelet re-syncing identical data: events, but no reload
    events = w.events
    vol.update({"a.yaml": "- list: a\n  items: [y]\n", "b.yaml": "- list: b\n  items: [z]\n"})
    time.sleep(0.4)
    assert w.events > events and len(calls.times) == 1


def test_burst_of_files_is_one_reload_with_bounded_delay(tmp_path, watcher_factory):
    d = tmp_path / "plain"
    d.mkdir()
    calls = Calls()
    watcher_factory([d], calls, debounce_s=0.1, max_delay_s=0.5)
    # files keep landing every ~50 ms (falco-operator#410): a plain debounce would wait for
    # the burst to end; max_delay_s makes it reload while files are still coming
    written = 0
    while not calls.times and written < 2000:  # ~100 s: far above max_delay_s
        (d / f"{written:04d}.yaml").write_text(f"- list: l{written}\n  items: [x]\n")
        written += 1
        time.sleep(0.05)
    assert calls.times, f"no reload during a burst of {written} files"
    first = len(calls.times)
    (d / "last.yaml").write_text("- list: last\n  items: [x]\n")  # the end of the burst
    # the rest of the burst is picked up by one more reload
    calls.wait(first + 1)


def test_single_file_replaced_by_rename(tmp_path, watcher_factory):
    f = tmp_path / "my_rules.yaml"
    f.write_text("- list: a\n  items: [x]\n")
    (tmp_path / "unrelated.txt").write_text("x")
    calls = Calls()
    watcher_factory([f], calls, debounce_s=0.05)
    (tmp_path / "unrelated.txt").write_text("y")
    time.sleep(0.3)  # a window to prove an absence
    assert calls.times == []
    tmp = tmp_path / ".my_rules.yaml.swp"
    tmp.write_text("- list: a\n  items: [y]\n")
    os.rename(tmp, f)  # an editor's save
    calls.wait(1)


def _objects(n: int) -> list[RuleObject]:
    return [
        RuleObject(
            ObjKey("ClusterFalcoRule", "", f"o{i}"),
            1,
            "",
            {
                "lists": [{"list": f"l{i}", "items": [f"bin{i}"]}],
                "rules": [
                    {
                        "rule": f"R{i}",
                        "desc": "d",
                        "condition": f"evt.type = execve and proc.name in (l{i})",
                        "output": "o",
                        "priority": "INFO",
                    }
                ],
            },
        )
        for i in range(n)
    ]


def test_bundle_reader_refuses_a_half_synced_projection(tmp_path):
    validator = Validator([REPO / "rules"])
    old = plan_bundle(validator.plan(_objects(2)).active, shards=2, budget=1500)
    new = plan_bundle(validator.plan(_objects(6)).active, shards=2, budget=1500)
    assert any(f.shard == 1 for f in new.files)
    vol = KubeletVolume(tmp_path / "rules.d")
    merged = lambda shards: {k: v for s in shards for k, v in s.items()}  # noqa: E731
    vol.update(merged(old.shards))
    assert read_rules([vol.root]).version == old.version
    # kubelet saw the new shard 1 but still the old shard 0 (manifest)
    vol.update(merged([old.shards[0], new.shards[1]]))
    with pytest.raises(BundleIncomplete):
        read_rules([vol.root])
    vol.update(merged(new.shards))
    loaded = read_rules([vol.root])
    assert loaded.version == new.version
    assert [Path(i.name).name for i in loaded.inputs] == [f.name for f in new.files]
    assert all(Path(i.name).parent == vol.root for i in loaded.inputs)  # the mount path, not ..<timestamp>
