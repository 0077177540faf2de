"""A ConfigMap volume updated the way kubelet's AtomicWriter does it.

Layout: ``..<timestamp>/`` holds the files, ``..data -> ..<timestamp>``, and
each key is a top-level symlink ``key -> ..data/key``.  An update writes a new
timestamped directory, points ``..data_tmp`` at it, renames ``..data_tmp`` over
``..data`` (the atomic step), then adds/removes the top-level symlinks and
deletes the old directory.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path


class KubeletVolume:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.updates = 0

    def update(self, files: dict[str, str]) -> None:
        self.updates += 1
        stamp = dt.datetime.now(dt.UTC).strftime("..%Y_%m_%d_%H_%M_%S.%f") + f"_{self.updates}"
        new = self.root / stamp
        new.mkdir()
        for name, text in files.items():
            (new / name).write_text(text)
        data = self.root / "..data"
        old = Path(os.readlink(data)) if data.is_symlink() else None
        tmp = self.root / "..data_tmp"
        os.symlink(stamp, tmp)
        os.rename(tmp, data)  # the atomic swap
        for name in files:
            link = self.root / name
            if not link.is_symlink():
                os.symlink(f"..data/{name}", link)
        for link in self.root.iterdir():
            if link.is_symlink() and not link.name.startswith("..") and link.name not in files:
                link.unlink()
        if old is not None:
            shutil.rmtree(self.root / old, ignore_errors=True)
