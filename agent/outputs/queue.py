"""Bounded hand-off between the event thread and one sink.

``put`` never blocks and never waits for a lock held by a slow consumer: when
the queue is full the alert is refused and the caller counts a drop for that
sink only.  The consumer may be a thread (``get``) or an asyncio task
(``aget``) running in another thread's event loop.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    import asyncio

T = TypeVar("T")


class BoundedQueue(Generic[T]):
    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self.capacity = capacity
        # deque.append/popleft are atomic in CPython: the producer takes no lock
        self._items: deque[T] = deque()
        self._cond = threading.Condition(threading.Lock())
        self._thread_waiting = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._async_event: asyncio.Event | None = None
        self._async_waiting = False
        self.closed = False

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: T) -> bool:
        """Enqueue without blocking; False when full (the caller counts the drop)."""
        if len(self._items) >= self.capacity or self.closed:
            return False
        self._items.append(item)
        self._wake()
        return True

    def _wake(self) -> None:
        if self._thread_waiting:
            with self._cond:
                self._cond.notify()
        if self._async_waiting and self._loop is not None and self._async_event is not None:
            self._async_waiting = False
            try:
                self._loop.call_soon_threadsafe(self._async_event.set)
            except RuntimeError:  # loop closed during shutdown
                pass

    def close(self) -> None:
        """Refuse further items and wake the consumer so it can drain and stop."""
        self.closed = True
        with self._cond:
            self._cond.notify_all()
        if self._loop is not None and self._async_event is not None:
            try:
                self._loop.call_soon_threadsafe(self._async_event.set)
            except RuntimeError:
                pass

    def get(self, timeout: float | None = None) -> T | None:
        """Next item, or None on timeout / when closed and empty (thread consumer)."""
        try:
            return self._items.popleft()
        except IndexError:
            pass
        with self._cond:
            self._thread_waiting = True
            try:
                while not self._items:
                    if self.closed:
                        return None
                    if not self._cond.wait(timeout):
                        break
            finally:
                self._thread_waiting = False
        try:
            return self._items.popleft()
        except IndexError:
            return None

    async def aget(self) -> T | None:
        """Next item, or None once closed and empty (asyncio consumer)."""
        import asyncio  # an asyncio consumer's module: imported only where one runs

        if self._async_event is None:
            self._loop = asyncio.get_running_loop()
            self._async_event = asyncio.Event()
        while True:
            try:
                return self._items.popleft()
            except IndexError:
                pass
            if self.closed:
                return None
            self._async_event.clear()
            self._async_waiting = True
            # re-check after publishing the flag: an item appended just before would not wake us
            if self._items or self.closed:
                self._async_waiting = False
                continue
            await self._async_event.wait()
