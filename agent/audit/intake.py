"""The bounded queue between the audit endpoint and rule evaluation.

The web server only reads bodies; decoding and evaluation run on one worker
thread, in arrival order, so a flood of large EventLists can neither stall the
event loop that serves the endpoint nor hold more than one decoded event at a
time. Admission is by bytes: a request reserves its body's size before it is
read, and is refused (counted as overflow) when the reservation would take the
bytes being read or waiting past ``max_bytes``; the reservation is returned
when the worker is done with the body.
"""

from __future__ import annotations

import collections
import concurrent.futures
import logging
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from falcopy.common.malloc import release_free_memory

log = logging.getLogger(__name__)

T = TypeVar("T")

#: after this many bytes processed, an idle worker returns free memory to the system
_TRIM_AFTER_BYTES = 8 << 20


class Reservation:
    """Room for one body in the intake's byte budget (release exactly once)."""

    __slots__ = ("_intake", "nbytes", "queued")

    def __init__(self, intake: AuditIntake[object], nbytes: int) -> None:
        self._intake: AuditIntake[object] | None = intake
        self.nbytes = nbytes
        #: handed to the worker with its body: the worker releases it when done
        self.queued = False

    def release(self) -> None:
        intake, self._intake = self._intake, None
        if intake is not None:
            intake._give_back(self.nbytes)


class AuditIntake(Generic[T]):
    """``reserve(n)`` then ``submit(reservation, body)`` -> future of ``process(body)``."""

    def __init__(self, process: Callable[[bytes | bytearray], T], max_bytes: int,
                 name: str = "falcopy-audit-eval") -> None:
        self._process = process
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._reserved = 0
        self._queue: collections.deque[
            tuple[Reservation, bytes | bytearray, concurrent.futures.Future[T]]] = collections.deque()
        self._stopping = False
        self._since_trim = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        #: reservations refused for lack of room
        self.overflows = 0

    @property
    def reserved_bytes(self) -> int:
        return self._reserved

    def __len__(self) -> int:
        return len(self._queue)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Finish the bodies already queued (within ``timeout``), then end the worker."""
        with self._ready:
            self._stopping = True
            self._ready.notify()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def reserve(self, nbytes: int) -> Reservation | None:
        with self._lock:
            if self._stopping or self._reserved + nbytes > self.max_bytes:
                self.overflows += 1
                return None
            self._reserved += nbytes
        return Reservation(self, nbytes)  # type: ignore[arg-type]

    def _give_back(self, nbytes: int) -> None:
        with self._lock:
            self._reserved -= nbytes

    def submit(self, reservation: Reservation, body: bytes | bytearray) -> concurrent.futures.Future[T]:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        with self._ready:
            if self._stopping:
                reservation.release()
                future.set_exception(RuntimeError("audit intake stopped"))
                return future
            reservation.queued = True
            self._queue.append((reservation, body, future))
            self._ready.notify()
        return future

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._queue and not self._stopping:
                    self._ready.wait()
                if not self._queue:
                    return
                reservation, body, future = self._queue.popleft()
            size = len(body)
            try:
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(self._process(body))
                    except BaseException as exc:
                        future.set_exception(exc)
            finally:
                del body
                reservation.release()
            self._since_trim += size
            if self._since_trim >= _TRIM_AFTER_BYTES and not self._queue:
                self._since_trim = 0
                release_free_memory()
