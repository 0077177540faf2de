"""libbpf's log while the probe loads: off on the way (no trip into Python per debug line,
each under the GIL, while the agent's imports run beside the load), on again for a step
that failed, so its error carries libbpf's and the kernel's messages."""

from __future__ import annotations

from pathlib import Path

import pytest
from falcopy.agent.kernel import BpfError, Probe, layout
from falcopy.agent.kernel.libbpf import LibBpf

pytestmark = pytest.mark.kernel


def test_a_load_calls_no_log_callback(bpf_object: Path) -> None:
    lib = LibBpf.get()
    lib.log.clear()
    probe = Probe(bpf_object)
    probe.load(events={"openat", "execve"} | layout.LIFECYCLE)
    try:
        # ~11 000 debug lines per load reached the callback before
        assert list(lib.log) == []
        probe.set_event_filter({"openat", "mkdir"})
        probe.attach()  # mkdir: a program loaded now, in a second instance
        assert "mkdir" in probe.loaded_events and list(lib.log) == []
    finally:
        probe.close()


def test_a_failed_open_is_reported_with_libbpfs_messages(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.bpf.o"
    bogus.write_bytes(b"not an ELF file")
    with pytest.raises(BpfError, match=r"opening .*bogus\.bpf\.o") as err:
        Probe(bogus).load()
    assert "is not a proper ELF object" in str(err.value)


class _EmptyMap(Probe):
    """A load the kernel refuses: one of the object's maps asks for no entries."""

    def _load_object(self, path, events, set_up, before_verify=None):  # type: ignore[no-untyped-def]
        lib = LibBpf.get().lib

        def empty_trie(obj: int) -> None:
            set_up(obj)
            lib.bpf_map__set_max_entries(lib.bpf_object__find_map_by_name(obj, b"kf_trie"), 0)

        return super()._load_object(path, events, empty_trie, before_verify)


def test_a_failed_load_is_reported_with_the_kernels_answer(bpf_object: Path) -> None:
    probe = _EmptyMap(bpf_object)
    with pytest.raises(BpfError, match=r"loading .*Invalid argument") as err:
        probe.load(events={"openat"} | layout.LIFECYCLE)
    # the quiet attempt failed; the repeat with the log on names the map and the error
    assert "map 'kf_trie': failed to create" in str(err.value), str(err.value)
    assert not probe.loaded
