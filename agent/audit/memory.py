"""Give the memory of a burst of large request bodies back to the operating system.

glibc's malloc raises its mmap threshold every time a large mmapped block is
freed, so after the first few 16 MiB bodies the next ones come from the heap,
where freed space stays in the process (RSS stays high after a flood). Pinning
the threshold keeps every large body an mmap of its own, returned on free;
``malloc_trim`` hands back the free pages the small allocations left behind.
Both are no-ops where the C library lacks them (musl).
"""

from __future__ import annotations

import ctypes
import logging

log = logging.getLogger(__name__)

_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
#: blocks of this size and more are mmapped (glibc's initial default; pinning it stops the growth)
MMAP_THRESHOLD = 128 << 10

try:
    _libc: ctypes.CDLL | None = ctypes.CDLL(None)
except OSError:  # pragma: no cover - no C library to talk to
    _libc = None


def pin_mmap_threshold(nbytes: int = MMAP_THRESHOLD) -> bool:
    """Stop glibc from moving large allocations onto the heap (process-wide)."""
    mallopt = getattr(_libc, "mallopt", None)
    if mallopt is None:
        return False
    return bool(mallopt(ctypes.c_int(_M_MMAP_THRESHOLD), ctypes.c_int(nbytes)))


def release_free_memory() -> bool:
    """Return free heap pages to the operating system (glibc ``malloc_trim(0)``)."""
    trim = getattr(_libc, "malloc_trim", None)
    if trim is None:
        return False
    return bool(trim(ctypes.c_size_t(0)))
