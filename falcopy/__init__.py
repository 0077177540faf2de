"""falcopy: runtime security for Kubernetes nodes speaking Falco's rule language."""

from __future__ import annotations

import functools


@functools.cache
def _version() -> str:
    # importlib.metadata costs ~50 ms of imports: paid when the version is first asked for,
    # not by every `import falcopy` on the agent's start-up path
    from importlib.metadata import PackageNotFoundError, version

    try:
        #: one source of truth: pyproject.toml's version, as installed
        return version("falcopy")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


def __getattr__(name: str) -> str:
    if name == "__version__":
        return _version()
    raise AttributeError(f"module 'falcopy' has no attribute {name!r}")
