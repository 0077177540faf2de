"""The one way tests wait: poll a condition until it holds, with a generous ceiling.

The machine running the suite is shared and often loaded, so a ceiling is a
"something is broken" limit, never a speed requirement (speed is measured in
``make bench``).  No test synchronises with a fixed sleep.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

#: default ceiling: far above what any healthy wait needs on a loaded 2-core machine
CEILING_S = 30.0
_POLL_S = 0.02


def wait_until(cond: Callable[[], Any], timeout: float = CEILING_S, interval: float = _POLL_S) -> bool:
    """True as soon as ``cond()`` is truthy; False if it is still falsy after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(interval)
    return bool(cond())


def wait_for(check: Callable[[], T], timeout: float = CEILING_S, what: str = "condition",
             interval: float = _POLL_S, describe: Callable[[], str] | None = None) -> T:
    """The first truthy value of ``check()``; exceptions count as "not yet" (the object
    may not exist yet).  Raises AssertionError naming ``what``, the last answer and, when
    given, ``describe()``'s account of the state."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = check()
        except Exception as exc:
            last = exc
        if last and not isinstance(last, Exception):
            return last
        if time.monotonic() >= deadline:
            state = f" ({describe()})" if describe is not None else ""
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}{state}")
        time.sleep(interval)
