"""Container id of a process, from its /proc/PID/cgroup text.

The enrichment package owns the runtime-specific cgroup patterns; when it
provides ``container_id_from_cgroup`` we use it, otherwise the fallback below
recognises the common runtimes (docker, containerd/CRI, cri-o, podman).
"""

from __future__ import annotations

import re
from collections.abc import Callable

HOST = "host"

# a 64-hex id as the last path element of one of the runtimes' cgroup layouts
_PATTERNS = (
    re.compile(r"/docker[-/]([0-9a-f]{64})(?:\.scope)?$"),
    re.compile(r"/cri-containerd[-:]([0-9a-f]{64})(?:\.scope)?$"),
    re.compile(r":cri-containerd:([0-9a-f]{64})$"),
    re.compile(r"/crio-(?:conmon-)?([0-9a-f]{64})(?:\.scope)?$"),
    re.compile(r"/libpod-(?:conmon-)?([0-9a-f]{64})(?:\.scope)?(?:/container)?$"),
    re.compile(r"/kubepods[^\n]*/(?:pod[^/]+/)?([0-9a-f]{64})$"),
    re.compile(r"/([0-9a-f]{64})$"),
)


def _fallback(cgroup_text: str) -> str:
    for line in cgroup_text.splitlines():
        path = line.split(":", 2)[-1]
        for pattern in _PATTERNS:
            match = pattern.search(path)
            if match:
                return match.group(1)
    return ""


def _resolve() -> Callable[[str], str]:
    try:
        from falcopy.agent.enrichment import cgroup as enrichment_cgroup  # type: ignore[attr-defined]
    except ImportError:
        return _fallback
    func = getattr(enrichment_cgroup, "container_id_from_cgroup", None)
    return func if callable(func) else _fallback


def full_container_id(cgroup_text: str | None) -> str:
    """64-hex id, or "" for a host process."""
    if not cgroup_text:
        return ""
    parser = _resolve()
    try:
        result = parser(cgroup_text)
    except Exception:
        result = _fallback(cgroup_text)
    if isinstance(result, tuple):  # enrichment answers (id, full_id, runtime)
        result = result[1] if len(result) > 1 else result[0]
    text = str(result or "")
    return "" if text == HOST else text


def container_id(cgroup_text: str | None) -> str:
    """Falco's container.id: 12 hex chars, or "host"."""
    full = full_container_id(cgroup_text)
    return full[:12] if full else HOST
