"""The composed-YAML cache: a hit loads exactly what a fresh parse loads (rules, messages,
locations), entries are plain data keyed by content, and entries another user could have
written are never read."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from falcopy.engine import compose_cache, load_rules_files
from falcopy.engine.event import DictEvent

WARNED = """
- macro: m
  condition: evt.type = open
- rule: r1
  desc: d
  condition: m and proc.name = "a b"
  output: "x %proc.name"
  priority: WARNING
  unknown_key: 1
- list: l
  items: [a, 'b', "c d", 1, 0x10, true]
- rule: r2
  desc: >
    folded
    text
  condition: >
    proc.name in (l)
    and fd.name startswith /etc
  output: |
    literal %fd.name
  priority: ERROR
  enabled: yes
"""


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "cache"
    monkeypatch.setenv("FALCOPY_CACHE_DIR", str(d))
    return d


def _summary(paths: list[Path]) -> tuple[list[str], list[str], list[tuple[str, str, bool]]]:
    res = load_rules_files(paths)
    assert res.ruleset is not None, [str(e) for e in res.errors]
    rules = [(r.name, str(r.priority), r.enabled) for r in res.ruleset.rules]
    return [str(e) for e in res.errors], [str(w) for w in res.warnings], rules


def test_hit_loads_what_a_fresh_parse_loads(cache: Path, tmp_path: Path, compat_dir: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    mine = tmp_path / "warned.yaml"
    mine.write_text(WARNED)
    paths = [compat_dir / "falco_rules.yaml", mine]
    monkeypatch.setenv("FALCOPY_CACHE_DIR", "")
    fresh = _summary(paths)
    monkeypatch.setenv("FALCOPY_CACHE_DIR", str(cache))
    first = _summary(paths)
    assert len(list(cache.glob("*.json"))) == 2
    hit = _summary(paths)
    assert first == fresh and hit == fresh
    assert any("unknown_key" in w and "warned.yaml" in w for w in hit[1])
    # conditions compiled from cached nodes evaluate as before
    res = load_rules_files([mine])
    assert res.ruleset is not None
    event = DictEvent({"evt.type": "open", "proc.name": "c d", "fd.name": "/etc/shadow"})
    assert [r.name for r in res.ruleset.evaluate(event)] == ["r2"]


def test_entry_is_keyed_by_content_and_read_back(cache: Path, tmp_path: Path) -> None:
    rules = tmp_path / "r.yaml"
    rules.write_text(WARNED)
    load_rules_files([rules])
    entry = cache / f"{compose_cache.content_key(WARNED)}.json"
    assert entry.is_file()
    # the loader reads the entry, not the file: renaming r1 in the entry renames the rule
    entry.write_text(entry.read_text().replace('"r1"', '"from-the-cache"'))
    names = [r.name for r in load_rules_files([rules]).ruleset.rules]  # type: ignore[union-attr]
    assert names == ["from-the-cache", "r2"]
    # a different content is a different key: the edit is not seen
    rules.write_text(WARNED + "\n")
    names = [r.name for r in load_rules_files([rules]).ruleset.rules]  # type: ignore[union-attr]
    assert names == ["r1", "r2"]


def test_damaged_entry_is_a_miss(cache: Path, tmp_path: Path) -> None:
    rules = tmp_path / "r.yaml"
    rules.write_text(WARNED)
    load_rules_files([rules])
    entry = cache / f"{compose_cache.content_key(WARNED)}.json"
    for garbage in ("not json", json.dumps([[9, "x"]]), json.dumps({"a": 1})):
        entry.write_text(garbage)
        res = load_rules_files([rules])
        assert res.ok and [r.name for r in res.ruleset.rules] == ["r1", "r2"]  # type: ignore[union-attr]


def test_entries_others_could_write_are_ignored(cache: Path, tmp_path: Path) -> None:
    rules = tmp_path / "r.yaml"
    rules.write_text(WARNED)
    load_rules_files([rules])
    entry = cache / f"{compose_cache.content_key(WARNED)}.json"
    entry.write_text(entry.read_text().replace('"r1"', '"planted"'))
    os.chmod(entry, 0o666)
    assert [r.name for r in load_rules_files([rules]).ruleset.rules] == ["r1", "r2"]  # type: ignore[union-attr]
    os.chmod(entry, 0o600)
    os.chmod(cache, 0o777)
    assert [r.name for r in load_rules_files([rules]).ruleset.rules] == ["r1", "r2"]  # type: ignore[union-attr]


def test_unwritable_cache_directory_only_costs_the_cache(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("FALCOPY_CACHE_DIR", str(blocker / "sub"))
    rules = tmp_path / "r.yaml"
    rules.write_text(WARNED)
    res = load_rules_files([rules])
    assert res.ok and not (blocker / "sub").exists()
