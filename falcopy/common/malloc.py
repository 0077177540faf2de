"""glibc malloc settings of the agent process: its memory goes back to the system.

- **One arena.**  glibc gives each thread that allocates its own arena (up to 8 per
  core), each a heap of its own whose freed space serves only that arena: the rules
  compiled on an executor thread, the probe loaded on another and the /proc walk on
  a third each left megabytes behind.  The GIL serialises the agent's allocations
  anyway, so one arena costs no contention (docs/performance.md: 2-3 MiB of RSS).
- **A pinned mmap threshold.**  glibc raises its mmap threshold every time a large
  mmapped block is freed, so after the first few large buffers (a 16 MiB audit body,
  a libbpf log buffer, a /proc file read) the next ones come from the heap, where
  freed space stays in the process.  Pinning the threshold keeps every large block
  an mmap of its own, returned on free.
- ``malloc_trim`` hands back the free pages the small allocations left behind.

All are no-ops where the C library lacks them (musl).
"""

from __future__ import annotations

import ctypes
import logging

log = logging.getLogger(__name__)

# glibc's mallopt parameter numbers
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
#: blocks of this size and more are mmapped (glibc's initial default; pinning it stops the growth)
MMAP_THRESHOLD = 128 << 10

try:
    _libc: ctypes.CDLL | None = ctypes.CDLL(None)
except OSError:  # pragma: no cover - no C library to talk to
    _libc = None


def _mallopt(param: int, value: int) -> bool:
    mallopt = getattr(_libc, "mallopt", None)
    if mallopt is None:
        return False
    return bool(mallopt(ctypes.c_int(param), ctypes.c_int(value)))


def tune_for_agent() -> bool:
    """One arena and a pinned mmap threshold: call before the agent starts threads
    (a thread keeps the arena it first allocated from)."""
    one_arena = _mallopt(_M_ARENA_MAX, 1)
    pinned = pin_mmap_threshold()
    return one_arena and pinned


def pin_mmap_threshold(nbytes: int = MMAP_THRESHOLD) -> bool:
    """Stop glibc from moving large allocations onto the heap (process-wide)."""
    return _mallopt(_M_MMAP_THRESHOLD, nbytes)


def release_free_memory() -> bool:
    """Return free heap pages to the operating system (glibc ``malloc_trim(0)``)."""
    trim = getattr(_libc, "malloc_trim", None)
    if trim is None:
        return False
    return bool(trim(ctypes.c_size_t(0)))
