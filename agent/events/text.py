"""Kernel bytes as record text: the one decoding used by the decoder and by /proc reads.

Strings are decoded with ``surrogateescape`` (``os.fsencode`` gives the bytes back;
rules only ever compare text); NUL-separated lists (argv, environ) split once.
"""

from __future__ import annotations


def decode(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def split_nul(raw: bytes) -> list[str]:
    """``a\\0b\\0`` -> ``["a", "b"]``; empty -> ``[]``."""
    if raw.endswith(b"\0"):
        raw = raw[:-1]
    if not raw:
        return []
    # one decode, then split: a NUL is never part of a UTF-8 sequence, so this is the
    # same as decoding each part (surrogateescape included), at a fraction of the calls
    return raw.decode("utf-8", "surrogateescape").split("\0")
