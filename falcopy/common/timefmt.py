"""Event times as Falco prints them: nanosecond timestamps with nine fraction digits.

One place for the shapes libsinsp uses (``evt.time``, ``evt.datetime``,
``evt.time.iso8601``, the alert prefix and the JSON ``time``), so the agent's
outputs, the engine's fields and the CLI agree to the digit.
"""

from __future__ import annotations

import time

NS_PER_S = 1_000_000_000

CLOCK = "%H:%M:%S"
DATE_TIME = "%Y-%m-%d %H:%M:%S"
ISO_8601 = "%Y-%m-%dT%H:%M:%S"


def struct_of(ns: int, *, utc: bool) -> time.struct_time:
    secs = int(ns) // NS_PER_S
    return time.gmtime(secs) if utc else time.localtime(secs)


def with_fraction(pattern: str, when: time.struct_time, ns: int) -> str:
    """``pattern`` applied to ``when`` (the broken-down ``ns``), then ``.nnnnnnnnn``."""
    return f"{time.strftime(pattern, when)}.{int(ns) % NS_PER_S:09d}"


def clock(ns: int, *, utc: bool = False) -> str:
    """``HH:MM:SS.nnnnnnnnn`` (``evt.time``; the text alert prefix)."""
    return with_fraction(CLOCK, struct_of(ns, utc=utc), ns)


def iso8601(ns: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`` in UTC (``evt.time.iso8601``; the JSON ``time``)."""
    return with_fraction(ISO_8601, time.gmtime(int(ns) // NS_PER_S), ns) + "Z"


def iso8601_offset(ns: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS.nnnnnnnnn+0000``: the alert prefix with ``time_format_iso_8601``."""
    return with_fraction(ISO_8601, time.gmtime(int(ns) // NS_PER_S), ns) + "+0000"
