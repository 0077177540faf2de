"""Process, thread and fd state kept from /proc and the kernel records."""

from falcopy.agent.state.model import FdInfo, ThreadInfo
from falcopy.agent.state.procfs import HostPaths, ProcReader
from falcopy.agent.state.table import STATE_EVENT_TYPES, ProcessTable
from falcopy.agent.state.users import GroupEntry, UserDirectory, UserEntry

__all__ = ["STATE_EVENT_TYPES", "FdInfo", "GroupEntry", "HostPaths", "ProcReader", "ProcessTable",
           "ThreadInfo", "UserDirectory", "UserEntry"]
