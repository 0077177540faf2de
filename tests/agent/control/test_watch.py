"""Rules/config file watching: edits, atomic renames and ConfigMap ..data swaps each reload once."""

from __future__ import annotations

import os
import threading
import time

from falcopy.agent.control.watch import RulesWatcher

from tests.waiting import CEILING_S


def _watch(paths):
    fired = []
    ev = threading.Event()

    def on_change() -> None:
        fired.append(time.monotonic())
        ev.set()

    w = RulesWatcher(paths, on_change, debounce_s=0.2)
    w.start()
    return w, fired, ev


def test_directory_burst_single_reload(tmp_path) -> None:
    d = tmp_path / "rules.d"
    d.mkdir()
    w, fired, ev = _watch([d])
    try:
        for i in range(4):  # files landing one by one, as a sync would
            (d / f"{i}.yaml").write_text("- list: x\n  items: []\n")
        assert ev.wait(CEILING_S)
        time.sleep(0.5)
        assert len(fired) == 1
    finally:
        w.stop()


def test_file_rewritten_atomically(tmp_path) -> None:
    f = tmp_path / "rules.yaml"
    f.write_text("a")
    (tmp_path / "unrelated.txt").write_text("x")
    w, fired, ev = _watch([f])
    try:
        (tmp_path / "unrelated.txt").write_text("y")
        time.sleep(0.5)
        assert not fired  # other files of the directory do not trigger
        tmp = tmp_path / ".rules.yaml.tmp"
        tmp.write_text("b")
        os.replace(tmp, f)
        assert ev.wait(CEILING_S)
    finally:
        w.stop()


def test_configmap_symlink_swap(tmp_path) -> None:
    # kubelet's layout: rules.yaml -> ..data/rules.yaml, ..data -> ..2026_01_01 (swapped atomically)
    v1 = tmp_path / "..v1"
    v1.mkdir()
    (v1 / "rules.yaml").write_text("a")
    os.symlink("..v1", tmp_path / "..data")
    os.symlink("..data/rules.yaml", tmp_path / "rules.yaml")
    w, _fired, ev = _watch([tmp_path / "rules.yaml"])
    try:
        v2 = tmp_path / "..v2"
        v2.mkdir()
        (v2 / "rules.yaml").write_text("b")
        os.symlink("..v2", tmp_path / "..data_tmp")
        os.replace(tmp_path / "..data_tmp", tmp_path / "..data")
        assert ev.wait(CEILING_S)
    finally:
        w.stop()
