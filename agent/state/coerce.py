"""Record argument values as ints: the kernel gives ints, replays and tests may
give strings ("0x10"), and a missing argument is None."""

from __future__ import annotations


def as_int(value: object, default: int = 0) -> int:
    if type(value) is int:  # the kernel's case, checked first: it is per event
        return value
    if isinstance(value, int):  # bool and IntEnum
        return int(value)
    if value is None:
        return default
    try:
        return int(str(value), 0)
    except (TypeError, ValueError):
        return default
