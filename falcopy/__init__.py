"""falcopy: runtime security for Kubernetes nodes speaking Falco's rule language."""

__version__ = "0.1.0"
