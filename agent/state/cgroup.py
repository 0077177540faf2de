"""Container id of a process, read from its cgroup paths as Falco does.

Falco's container plugin (and libsinsp before it) looks at every cgroup path
of a thread and accepts the path when its *last* occurrence of a runtime
prefix is followed by exactly 64 hex characters and then the runtime suffix
(``/docker-<id>.scope``, ``/crio-<id>``, ``:cri-containerd:<id>``...).
``container.id`` is the first 12 characters, ``container.full_id`` the 64;
anything else is ``host``.  The kubelet's ``kubepods`` layouts (cgroupfs and
systemd drivers, all QoS classes, cgroup v1 and v2) end in one of these forms.

The 64-hex rule is what keeps non-container cgroups out: systemd slices,
``/process_api/<32 hex>`` sandboxes and ``/user.slice/...`` never match.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from falcopy.agent.state.procfs import read_cgroup

#: Falco's container.id of a host process
HOST_CONTAINER_ID = "host"
ID_LEN = 64
SHORT_ID_LEN = 12
_HEX = frozenset("0123456789abcdefABCDEF")

# (prefix, suffix, runtime type) in the order runtimes are tried.  A plain
# "/<64hex>" leaf is docker's cgroupfs layout and also containerd/CRI-O under
# the kubelet's cgroupfs driver: the runtime that answers the metadata query
# settles the type later (see store.py).
_LAYOUTS: tuple[tuple[str, str, str], ...] = (
    ("/libpod-payload-", ".scope/container", "podman"),
    ("/libpod-payload-", ".scope", "podman"),
    ("/libpod-payload-", "", "podman"),
    ("/libpod-", ".scope/container", "podman"),
    ("/libpod-", ".scope", "podman"),
    ("/libpod-", "", "podman"),
    ("/docker-", ".scope", "docker"),
    ("/cri-containerd-", ".scope", "containerd"),
    (":cri-containerd:", "", "containerd"),
    ("/crio-", ".scope", "cri-o"),
    ("/crio-", "", "cri-o"),
    ("/", "", "docker"),
)

_KUBEPODS_RUNTIME_HINT = "cri"
_POD_UID_RE = re.compile(
    r"pod([0-9a-fA-F]{8}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{12})"
)

HOST_RESULT: tuple[str, str, str] = (HOST_CONTAINER_ID, HOST_CONTAINER_ID, "host")


def _match_layout(path: str, prefix: str, suffix: str) -> str | None:
    start = path.rfind(prefix)
    if start < 0:
        return None
    start += len(prefix)
    end = len(path) - len(suffix)
    if suffix and not path.endswith(suffix):
        return None
    if end - start != ID_LEN:
        return None
    candidate = path[start:end]
    if not _HEX.issuperset(candidate):
        return None
    return candidate.lower()


def container_id_from_path(path: str) -> tuple[str, str] | None:
    """(full 64-hex id, runtime type) for one cgroup path, or None."""
    for prefix, suffix, runtime in _LAYOUTS:
        full = _match_layout(path, prefix, suffix)
        if full is not None:
            if runtime == "docker" and prefix == "/" and "kubepods" in path:
                # cgroupfs-driver kubelet: docker, containerd or CRI-O alike
                runtime = _KUBEPODS_RUNTIME_HINT
            return full, runtime
    return None


def _cgroup_paths(text: str) -> Iterable[str]:
    # "hierarchy-id:controllers:path"; the path itself may contain ':' (the
    # ":cri-containerd:" layout), so split only twice.
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3 and parts[2]:
            yield parts[2]


def container_id_from_cgroup(text: str) -> tuple[str, str, str]:
    """``(container.id, container.full_id, runtime type)`` for /proc/PID/cgroup text.

    Host processes give ``("host", "host", "host")``.  The runtime type is
    Falco's container.type guess from the path (docker, containerd, cri-o,
    podman; ``cri`` for a kubelet cgroupfs path whose runtime the path does not
    tell)."""
    for path in _cgroup_paths(text):
        found = container_id_from_path(path)
        if found is not None:
            full, runtime = found
            return full[:SHORT_ID_LEN], full, runtime
    return HOST_RESULT


def pod_uid_from_cgroup(text: str) -> str | None:
    """The pod UID a kubelet-managed cgroup path carries (``pod<uid>``), or None.

    The systemd driver writes the UID with underscores
    (``kubepods-burstable-pod1b2c_...slice``); it is returned with dashes."""
    for path in _cgroup_paths(text):
        if "kubepods" not in path:
            continue
        m = _POD_UID_RE.search(path)
        if m is not None:
            return m.group(1).replace("_", "-").lower()
    return None


def container_id_for_pid(pid: int, proc_root: str = "/proc") -> tuple[str, str, str] | None:
    """Container ids of a live process; None when /proc/PID/cgroup cannot be read."""
    text = read_cgroup(pid, proc_root)
    if text is None:
        return None
    return container_id_from_cgroup(text)


def _cgroup2_mount(mounts_file: str) -> str | None:
    try:
        with open(mounts_file, encoding="utf-8") as fh:
            for line in fh:
                fields = line.split()
                if len(fields) >= 3 and fields[2] == "cgroup2":
                    return fields[1]
    except OSError:
        return None
    return None


def find_cgroup2_root(proc_root: str = "/proc") -> str | None:
    """Where the host's cgroup v2 hierarchy can be read (``/sys/fs/cgroup``, the
    hybrid ``/sys/fs/cgroup/unified``...), or None.

    With the host's /proc mounted elsewhere (agent in a DaemonSet), the host's
    own mount, seen through ``<proc>/1/root``, is preferred: the agent's
    /sys/fs/cgroup may be a cgroup-namespaced view of its own subtree."""
    if proc_root.rstrip("/") != "/proc":
        mnt = _cgroup2_mount(f"{proc_root}/1/mounts")
        if mnt is not None:
            path = f"{proc_root}/1/root{mnt}"
            if os.path.isdir(path):
                return path
    return _cgroup2_mount("/proc/self/mounts")


class ContainerIdResolver:
    """Container id per process, cached by the kernel's cgroup v2 id.

    The probe reports each event's cgroup v2 id; all processes of a container
    share it, so /proc is read once per container rather than once per
    process.  A process that is already gone (short-lived ``sudo``/``sh -c``)
    is resolved by the cgroup id alone: the cgroup v2 tree is indexed by
    directory inode (the kernel's cgroup id), at most once per ``rescan_s``.
    Thread-safe; the hot path is one dict lookup.
    """

    def __init__(self, proc_root: str = "/proc", cgroup2_root: str | None = None,
                 rescan_s: float = 1.0) -> None:
        self.proc_root = proc_root
        self._cgroup2_root = cgroup2_root if cgroup2_root is not None else find_cgroup2_root(proc_root)
        self._rescan_s = rescan_s
        self._by_cgid: dict[int, tuple[str, str, str]] = {}
        self._pod_uids: dict[str, str] = {}
        self._inode_paths: dict[int, str] = {}
        self._last_scan = float("-inf")
        self._lock = threading.Lock()

    def resolve(self, pid: int, cgroup_id: int = 0) -> tuple[str, str, str] | None:
        if cgroup_id:
            hit = self._by_cgid.get(cgroup_id)
            if hit is not None:
                return hit
        text = read_cgroup(pid, self.proc_root)
        if text is None:
            return self._from_cgroup_tree(cgroup_id) if cgroup_id else None
        result = container_id_from_cgroup(text)
        if result[0] != HOST_CONTAINER_ID and result[0] not in self._pod_uids:
            uid = pod_uid_from_cgroup(text)
            if uid is not None:
                if len(self._pod_uids) > 65536:
                    self._pod_uids.clear()
                self._pod_uids[result[0]] = uid
        # Cache only what the v2 path itself proves: on a v1-only runtime every
        # process shares a v2 cgroup, whose id then says nothing about containers.
        if cgroup_id and result[0] != HOST_CONTAINER_ID and _v2_names(text, result[1]):
            self._by_cgid[cgroup_id] = result
        return result

    def pod_uid(self, container_id: str) -> str | None:
        """The pod UID the container's cgroup path carried (kubelet-managed containers)."""
        return self._pod_uids.get(container_id)

    def forget(self, cgroup_id: int) -> None:
        self._by_cgid.pop(cgroup_id, None)

    def _from_cgroup_tree(self, cgroup_id: int) -> tuple[str, str, str] | None:
        with self._lock:
            path = self._inode_paths.get(cgroup_id)
            if path is None and self._cgroup2_root is not None:
                now = time.monotonic()
                if now - self._last_scan >= self._rescan_s:
                    self._last_scan = now
                    self._inode_paths = _index_cgroup_tree(Path(self._cgroup2_root))
                    path = self._inode_paths.get(cgroup_id)
        if path is None:
            return None
        found = container_id_from_path(path)
        if found is None:
            return HOST_RESULT
        full, runtime = found
        return full[:SHORT_ID_LEN], full, runtime


def _v2_names(text: str, full_id: str) -> bool:
    return any(line.startswith("0::") and full_id in line.lower() for line in text.splitlines())


def _index_cgroup_tree(root: Path, max_dirs: int = 200_000) -> dict[int, str]:
    index: dict[int, str] = {}
    root_str = str(root)
    for dirpath, _dirnames, _files in os.walk(root_str):
        try:
            ino = os.stat(dirpath).st_ino
        except OSError:
            continue
        rel = dirpath[len(root_str):] or "/"
        index[ino] = rel
        if len(index) >= max_dirs:
            break
    return index


# ------------------------------------------------------------------ the process table's view


def full_container_id(cgroup_text: str | None) -> str:
    """64-hex id, or "" for a host process."""
    if not cgroup_text:
        return ""
    _short, full, _runtime = container_id_from_cgroup(cgroup_text)
    return "" if full == HOST_CONTAINER_ID else full


def container_id(cgroup_text: str | None) -> str:
    """Falco's container.id: 12 hex chars, or "host"."""
    full = full_container_id(cgroup_text)
    return full[:12] if full else HOST_CONTAINER_ID
