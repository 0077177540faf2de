"""The program cache: which probe programs the last start of a command line needed."""

from __future__ import annotations

from pathlib import Path

import pytest
from falcopy.agent.runtime import program_cache


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "cache"
    monkeypatch.setenv("FALCOPY_CACHE_DIR", str(d))
    return d


@pytest.fixture
def obj(tmp_path: Path) -> Path:
    p = tmp_path / "falcopy.bpf.o"
    p.write_bytes(b"\x7fELF object")
    return p


def test_the_set_comes_back_for_the_same_command_line_and_object(cache: Path, obj: Path) -> None:
    key = program_cache.command_key(["agent", "-c", "/etc/falcopy/falcopy.yaml"])
    assert program_cache.remembered(key, obj) is None
    program_cache.remember(key, obj, {"openat", "execve", "generic"})
    assert program_cache.remembered(key, obj) == {"openat", "execve", "generic"}
    assert oct(cache.stat().st_mode & 0o777) == "0o700"
    # another command line, or a rebuilt object: unknown
    other = program_cache.command_key(["agent", "-c", "/etc/other.yaml"])
    assert other != key and program_cache.remembered(other, obj) is None
    obj.write_bytes(b"\x7fELF rebuilt object")
    assert program_cache.remembered(key, obj) is None


def test_the_environment_is_part_of_the_command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    argv = ["agent"]
    monkeypatch.setenv("FALCOPY_CONFIG", "/a.yaml")
    a = program_cache.command_key(argv)
    monkeypatch.setenv("FALCOPY_CONFIG", "/b.yaml")
    assert program_cache.command_key(argv) != a


def test_an_entry_others_could_write_is_not_read(cache: Path, obj: Path) -> None:
    key = program_cache.command_key(["agent"])
    program_cache.remember(key, obj, {"openat"})
    (entry,) = cache.glob("*.programs")
    entry.chmod(0o666)
    assert program_cache.remembered(key, obj) is None
    entry.chmod(0o600)
    entry.write_text('{"not": "a list"}')
    assert program_cache.remembered(key, obj) is None


def test_off_when_the_cache_directory_is_empty(monkeypatch: pytest.MonkeyPatch, obj: Path,
                                               tmp_path: Path) -> None:
    monkeypatch.setenv("FALCOPY_CACHE_DIR", "")
    key = program_cache.command_key(["agent"])
    program_cache.remember(key, obj, {"openat"})
    assert program_cache.remembered(key, obj) is None
    assert not any(p.suffix == ".programs" for p in tmp_path.rglob("*"))


def test_old_entries_are_pruned(cache: Path, obj: Path) -> None:
    for i in range(program_cache.MAX_ENTRIES + 5):
        key = program_cache.command_key(["agent", str(i)])
        program_cache.remember(key, obj, {"openat"})
    assert len(list(cache.glob("*.programs"))) == program_cache.MAX_ENTRIES
