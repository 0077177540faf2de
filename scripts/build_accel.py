"""Compile the accelerated modules (falcopy.agent.accel.ACCELERATED) in place: each
``.py`` through Cython (pure-Python mode; a ``.pxd`` beside it adds C types) and the C
compiler into an extension beside it.  Run with the interpreter that runs the agent
(``make accel``, the image's build stage); needs Cython (the ``accel`` extra), a C compiler
(``CC``, default gcc) and that interpreter's headers.  Beside each extension, the digest
of the sources it was built from (``accel.source_digest``): the agent imports an
extension only when it matches, and an extension that matches is not rebuilt."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
#: package -> folder, as setup.py maps them
FOLDERS = {"falcopy.agent": "agent", "falcopy.operator": "operator", "falcopy": "falcopy"}


def _accel() -> Any:
    # accel.py by path: the package may not be importable yet (the image's build stage)
    spec = importlib.util.spec_from_file_location("_accel", ROOT / "agent" / "accel.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


ACCEL = _accel()


def source_of(module: str) -> Path:
    for pkg, folder in FOLDERS.items():
        if module.startswith(pkg + "."):
            return ROOT / folder / (module[len(pkg) + 1:].replace(".", "/") + ".py")
    raise ValueError(f"{module}: not in a package of this tree")


def build(module: str, suffix: str, include: str, cc: str) -> bool:
    """Build ``module``'s extension if it is missing or older than its sources; returns
    whether it was built."""
    src = source_of(module)
    ext = src.with_name(src.stem + suffix)
    stamp = ACCEL.digest_file(ext)
    digest = ACCEL.source_digest(src)
    if ext.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return False
    c_file = ROOT / "build" / "accel" / src.relative_to(ROOT).with_suffix(".c")
    c_file.parent.mkdir(parents=True, exist_ok=True)
    # annotations are hints only: a compiled module accepts what its source accepts
    # -P: the tree's operator/ package must not shadow the standard library's operator
    subprocess.run([sys.executable, "-P", "-m", "cython", "-3", "-X", "annotation_typing=False",
                    str(src), "-o", str(c_file)], check=True)
    tmp = ext.with_name(ext.name + ".tmp")
    cmd = [cc, "-shared", "-fPIC", "-O2", "-fwrapv", "-fno-strict-aliasing", f"-I{include}",
           str(c_file), "-o", str(tmp)]
    # Cython's generated C warns about its own unused helpers: shown only on failure
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.stderr.write(out.stderr)
        raise SystemExit(f"{module}: {' '.join(cmd)} failed")
    stamp.unlink(missing_ok=True)  # the old digest never names the new extension, nor the reverse
    tmp.replace(ext)  # atomically: a process importing it now sees the old or the new one
    stamp.write_text(digest + "\n")
    print(f"built {ext.relative_to(ROOT)}")
    return True


def main() -> int:
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    include = sysconfig.get_paths()["include"]
    if not (Path(include) / "Python.h").exists():
        raise SystemExit(f"no Python.h in {include}: install this interpreter's headers "
                         "(Debian: python3-dev)")
    cc = os.environ.get("CC", "gcc")
    for module in ACCEL.ACCELERATED:
        build(module, suffix, include, cc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
