"""Kernel capture: the CO-RE BPF probe, its loader and the record decoder."""

from falcopy.agent.kernel.libbpf import BpfError
from falcopy.agent.kernel.probe import SUPPORTED_EVENTS, Probe

__all__ = ["SUPPORTED_EVENTS", "BpfError", "Probe"]
