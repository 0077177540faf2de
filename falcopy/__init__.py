"""falcopy: runtime security for Kubernetes nodes speaking Falco's rule language."""

from importlib.metadata import PackageNotFoundError, version

try:
    #: one source of truth: pyproject.toml's version, as installed
    __version__ = version("falcopy")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
