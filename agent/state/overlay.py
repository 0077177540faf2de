"""Whether a container's executable comes from the overlay's upper (writable) layer.

Falco's ``proc.is_exe_upper_layer`` is true for a binary written into the
container after it started (dropped by an attacker) rather than shipped in
the image.  The overlay mount of the process's root names its ``upperdir``;
the executable is on the upper layer when it exists below that directory.
"""

from __future__ import annotations

import os

from falcopy.agent.state.procfs import HostPaths


def _root_overlay_options(paths: HostPaths, pid: int) -> dict[str, str] | None:
    try:
        with open(f"{paths.proc}/{pid}/mountinfo", "rb") as fh:
            raw = fh.read(1 << 20)
    except OSError:
        return None
    for line in raw.split(b"\n"):
        left, sep, right = line.partition(b" - ")
        if not sep:
            continue
        fields = left.split()
        if len(fields) < 5 or fields[4] != b"/":
            continue
        rfields = right.split()
        if len(rfields) < 3 or rfields[0] != b"overlay":
            continue
        opts: dict[str, str] = {}
        for opt in rfields[2].decode("utf-8", "surrogateescape").split(","):
            key, _, value = opt.partition("=")
            opts[key] = value
        return opts
    return None


def exe_layer(paths: HostPaths, pid: int, exepath: str) -> tuple[bool, bool]:
    """(upper, lower) layer of the process's executable; (False, False) outside overlayfs."""
    if not exepath.startswith("/"):
        return False, False
    opts = _root_overlay_options(paths, pid)
    if not opts:
        return False, False
    upper = opts.get("upperdir", "")
    if upper and os.path.lexists(paths.host_file(upper + exepath)):
        return True, False
    return False, True
