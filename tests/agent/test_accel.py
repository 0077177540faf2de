"""Which implementation of the compiled modules runs (falcopy.agent.accel): the Cython
extensions `make accel` builds, or their .py under FALCOPY_NO_ACCEL=1 or when an
extension is older than its source.  `make test` runs this file in both passes."""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import subprocess
import sys
import sysconfig
import types
from pathlib import Path

import falcopy.agent.pipeline as pipeline
import pytest
from falcopy.agent import accel

ROOT = Path(__file__).resolve().parents[2]
SUFFIX = sysconfig.get_config_var("EXT_SUFFIX")


def _build_script() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("build_accel", ROOT / "scripts" / "build_accel.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_path_that_runs_is_the_one_asked_for() -> None:
    build = _build_script()
    for name in accel.ACCELERATED:
        module = importlib.import_module(name)
        source = build.source_of(name)
        assert source.is_file(), name
        if accel.disabled():
            assert module.__file__ == str(source), name
            assert not accel.is_compiled(module)
        else:
            # make test builds them first (make accel): a missing or stale one fails here
            ext = source.with_name(source.stem + SUFFIX)
            assert module.__file__ == str(ext), f"{name} ran from {module.__file__}: run make accel"
            assert accel.is_compiled(module)
    # the pipeline calls the loop it imported, compiled or not
    assert pipeline.fastpath is sys.modules["falcopy.agent.fastpath"]
    assert isinstance(pipeline.fastpath.run, types.FunctionType) == accel.disabled()


_EXT_C = """
#include <Python.h>
static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "mod", NULL, -1, NULL};
PyMODINIT_FUNC PyInit_mod(void) {
    PyObject *m = PyModule_Create(&def);
    if (m != NULL && PyModule_AddStringConstant(m, "VALUE", "ext") < 0) { Py_DECREF(m); return NULL; }
    return m;
}
"""


@pytest.fixture
def toy_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A package ``accel_toy_<pid>`` with ``mod.py`` (VALUE "py") and a real extension
    ``mod`` beside it (VALUE "ext") with the digest of the sources, as the build leaves it."""
    name = f"accel_toy_{os.getpid()}"
    pkg = tmp_path / name
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "mod.py").write_text('VALUE = "py"\n')
    (pkg / "mod.pxd").write_text("")
    (tmp_path / "mod.c").write_text(_EXT_C)
    ext = pkg / f"mod{SUFFIX}"
    subprocess.run([os.environ.get("CC", "gcc"), "-shared", "-fPIC",
                    f"-I{sysconfig.get_paths()['include']}", str(tmp_path / "mod.c"), "-o", str(ext)],
                   check=True)
    accel.digest_file(ext).write_text(accel.source_digest(pkg / "mod.py") + "\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(accel, "ACCELERATED", (f"{name}.mod",))
    monkeypatch.delenv(accel.ENV, raising=False)
    return pkg


def _value(pkg: Path) -> str:
    for key in [k for k in sys.modules if k.startswith(pkg.name)]:
        del sys.modules[key]
    importlib.invalidate_caches()
    return importlib.import_module(f"{pkg.name}.mod").VALUE


def test_chooser_takes_the_fresh_extension_unless_told_not_to(
        toy_package: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _value(toy_package) == "ext"
    monkeypatch.setenv(accel.ENV, "1")
    assert _value(toy_package) == "py"
    monkeypatch.setenv(accel.ENV, "0")
    assert _value(toy_package) == "ext"


@pytest.mark.parametrize("changed", ["mod.py", "mod.pxd", "digest"])
def test_a_stale_extension_is_never_used(toy_package: Path, changed: str,
                                         caplog: pytest.LogCaptureFixture) -> None:
    # the source edited after the build (or the .pxd), or no record of what it was built from
    if changed == "digest":
        accel.digest_file(toy_package / f"mod{SUFFIX}").unlink()
    else:
        with (toy_package / changed).open("a") as fh:
            fh.write("# edited\n")
    with caplog.at_level(logging.WARNING, logger=accel.__name__):
        assert _value(toy_package) == "py"
    assert any("not built from mod.py" in r.getMessage() for r in caplog.records)


def test_the_source_runs_without_cython_installed() -> None:
    # the agent's image has no Cython: `import cython` fails and the shim stands in
    code = ("import sys, importlib; sys.modules['cython'] = None\n"
            "import falcopy.agent.fastpath as f\n"
            "assert f.__file__.endswith('.py'), f.__file__\n"
            "assert f.cython.__name__ == 'falcopy.agent.cython_shim' and not f.cython.compiled\n"
            "from falcopy.agent.accel import ACCELERATED\n"
            "for name in ACCELERATED:\n"
            "    m = importlib.import_module(name)\n"
            "    c = getattr(m, 'cython', None)\n"
            "    assert m.__file__.endswith('.py') and (c is None or c is f.cython), name\n"
            # the shim's declarations are no-ops: the typed check and the factory run as Python
            "from falcopy.agent.prefilter import _compile\n"
            "from falcopy.agent.state import fdops, model\n"
            "fd = fdops.open_fd(model.ThreadInfo(1, 1), '/etc/hostname', -100, None, 0, 0, 0, 3)\n"
            "assert not fdops.slot_factory()\n"
            "assert fd == model.FdInfo('file', '/etc/hostname', 3, nameraw='/etc/hostname')\n"
            "assert _compile([])(fd, None) is False\n"
            "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/",
                         env={**os.environ, accel.ENV: "1"}, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
