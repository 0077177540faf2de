"""The capture file: JSON Lines that ``falcopy replay`` reads.

Line 1, the header::

    {"falcopy_capture": 1, "agent_version": ..., "hostname": ..., "rules_hash": ...,
     "scope": {...}, "trigger": {"rule", "evt.num", "ts"}, "alerts": [...],
     "time_range": [first_ns, last_ns], "events_before": N, "events_after": M, ...}

Line 2, the state snapshot replay starts from::

    {"snapshot": {"start_ts": ns, "threads": [...], "containers": {...},
                  "users": {cid: {uid: [name, home, shell]}}, "groups": {cid: {gid: name}}}}

Then one kernel record per line, in event order, with its live event number::

    {"evt.num": 1234, "type": "openat", "ts": ..., "pid": ..., ..., "args": {...}}

Strings keep the kernel's raw bytes: JSON escapes (``\\udcxx``) carry the
surrogate-escaped bytes that are not UTF-8, so a file round-trips exactly.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

from falcopy.agent.events.record import SyscallRecord
from falcopy.agent.state.model import FdInfo, ThreadInfo

FORMAT_KEY = "falcopy_capture"
FORMAT_VERSION = 1

_RECORD_FIELDS = tuple(f.name for f in dataclasses.fields(SyscallRecord))
_THREAD_FIELDS = tuple(f.name for f in dataclasses.fields(ThreadInfo) if f.name not in ("fds", "threads"))
_FD_FIELDS = tuple(f.name for f in dataclasses.fields(FdInfo))


class CaptureFormatError(ValueError):
    """A capture file that cannot be read; the message names the file and line."""


def _default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return os.fsdecode(bytes(value))
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def dumps_line(obj: dict[str, Any]) -> bytes:
    # ensure_ascii: lone surrogates (undecodable kernel bytes) survive as \udcxx escapes
    return json.dumps(obj, default=_default, ensure_ascii=True, separators=(",", ":")).encode() + b"\n"


def is_header(obj: Any) -> bool:
    return isinstance(obj, dict) and obj.get(FORMAT_KEY) is not None


# --- records ------------------------------------------------------------------------------------


def encode_record(rec: SyscallRecord, num: int) -> dict[str, Any]:
    out: dict[str, Any] = {"evt.num": num}
    for name in _RECORD_FIELDS:
        out[name] = getattr(rec, name)
    return out


def decode_record(obj: dict[str, Any]) -> tuple[SyscallRecord, int]:
    try:
        values = {name: obj[name] for name in _RECORD_FIELDS if name in obj}
        rec = SyscallRecord(**values)
        num = int(obj.get("evt.num", 0))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"not a kernel record: {exc}") from None
    if not isinstance(rec.args, dict) or not isinstance(rec.type, str):
        raise ValueError("not a kernel record: 'type' must be a string and 'args' an object")
    return rec, num


# --- process state ------------------------------------------------------------------------------


def encode_thread(info: ThreadInfo) -> dict[str, Any]:
    out: dict[str, Any] = {name: getattr(info, name) for name in _THREAD_FIELDS}
    out["fds"] = [{name: getattr(fd, name) for name in _FD_FIELDS} for fd in info.fds.values()]
    return out


def decode_thread(obj: dict[str, Any]) -> ThreadInfo:
    values = {name: obj[name] for name in _THREAD_FIELDS if name in obj}
    info = ThreadInfo(**values)
    for fd_obj in obj.get("fds") or []:
        fd = FdInfo(**{name: fd_obj[name] for name in _FD_FIELDS if name in fd_obj})
        info.fds[fd.num] = fd
    return info
