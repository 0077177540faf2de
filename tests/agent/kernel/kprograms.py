"""The BPF programs a process holds, as the kernel lists them (not as libbpf reports)."""

from __future__ import annotations

import json
import os
import subprocess


def kernel_programs(pid: int) -> set[str]:
    """Names of the BPF programs process ``pid`` holds a descriptor (program or link) of."""
    ids: set[int] = set()
    fdinfo = f"/proc/{pid}/fdinfo"
    for fd in os.listdir(fdinfo):
        try:
            with open(os.path.join(fdinfo, fd)) as f:
                for line in f:
                    if line.startswith("prog_id:"):
                        ids.add(int(line.split()[1]))
        except OSError:  # closed meanwhile
            continue
    out = subprocess.run(["bpftool", "-j", "prog", "show"], check=True, capture_output=True, text=True,
                         timeout=60).stdout
    return {p["name"] for p in json.loads(out) if p["id"] in ids and "name" in p}
