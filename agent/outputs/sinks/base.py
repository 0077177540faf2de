"""What every sink implements.  Sinks run off the event path (their own thread or task)."""

from __future__ import annotations

from typing import Protocol

from falcopy.agent.outputs.format import FormattedAlert

from falcopy.common.errors import FalcopyError


class SinkError(FalcopyError):
    """A delivery failed; the worker counts it and goes on with the next alert."""


class Sink(Protocol):
    """A blocking sink, driven by a dedicated worker thread."""

    name: str

    def open(self) -> None: ...

    def write(self, item: FormattedAlert) -> None: ...

    def flush(self) -> None: ...

    def reopen(self) -> None:
        """SIGHUP: reopen files (logrotate), restart a kept-alive program."""
        ...

    def close(self) -> None: ...


class AsyncSink(Protocol):
    """A sink driven by asyncio tasks in the outputs' event loop (http)."""

    name: str
    concurrency: int

    async def start(self) -> None: ...

    async def send(self, item: FormattedAlert) -> None: ...

    async def close(self) -> None: ...
