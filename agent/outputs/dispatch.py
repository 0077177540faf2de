"""Fan-out of alerts to the sinks without ever blocking the event path.

Each sink has its own bounded queue and its own worker (a thread for the
blocking sinks; asyncio tasks in one outputs thread for http), so a slow or
dead sink only fills and overflows its own queue: the overflow is counted as
dropped for that sink, the other sinks and detection go on.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from falcopy.agent.control.metrics import AgentMetrics
from falcopy.agent.outputs.alert import Alert
from falcopy.agent.outputs.format import AlertFormatter, FormattedAlert
from falcopy.agent.outputs.queue import BoundedQueue
from falcopy.agent.outputs.sinks.base import AsyncSink, Sink

if TYPE_CHECKING:
    import asyncio

log = logging.getLogger(__name__)


@dataclass
class SinkStats:
    delivered: int = 0
    failed: int = 0
    dropped: int = 0


class _FailureLog:
    """At most one log line per sink every ``interval`` seconds, with the count since the last."""

    def __init__(self, name: str, interval: float = 30.0) -> None:
        self.name = name
        self.interval = interval
        self._last = 0.0
        self._count = 0

    def __call__(self, exc: BaseException) -> None:
        self._count += 1
        now = time.monotonic()
        if now - self._last >= self.interval:
            log.error("output %s: %s (%d failure(s) since last report)", self.name, exc, self._count)
            self._last = now
            self._count = 0


class _Channel:
    def __init__(self, name: str, capacity: int, metrics: AgentMetrics | None) -> None:
        self.name = name
        self.queue: BoundedQueue[FormattedAlert] = BoundedQueue(capacity)
        self.stats = SinkStats()
        self.fail_log = _FailureLog(name)
        self._m_delivered = metrics.output_delivered.labels(sink=name) if metrics else None
        self._m_failed = metrics.output_failed.labels(sink=name) if metrics else None
        self._m_dropped = metrics.output_dropped.labels(sink=name) if metrics else None
        if metrics is not None:
            metrics.output_queue.labels(sink=name).set_function(lambda: len(self.queue))

    def put(self, item: FormattedAlert) -> None:
        if not self.queue.put(item):
            self.dropped(1)

    def delivered(self) -> None:
        self.stats.delivered += 1
        if self._m_delivered is not None:
            self._m_delivered.inc()

    def failed(self, exc: BaseException) -> None:
        self.stats.failed += 1
        if self._m_failed is not None:
            self._m_failed.inc()
        self.fail_log(exc)

    def dropped(self, n: int) -> None:
        self.stats.dropped += n
        if self._m_dropped is not None:
            self._m_dropped.inc(n)


class _ThreadWorker:
    def __init__(self, sink: Sink, channel: _Channel, buffered: bool) -> None:
        self.sink = sink
        self.channel = channel
        self.buffered = buffered
        self.reopen_requested = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"falcopy-out-{sink.name}", daemon=True)

    def _reopen_if_requested(self) -> None:
        if self.reopen_requested.is_set():
            self.reopen_requested.clear()
            try:
                self.sink.reopen()
            except Exception as exc:  # logged; the next write retries the open
                self.channel.fail_log(exc)

    def _run(self) -> None:
        q = self.channel.queue
        try:
            while True:
                self._reopen_if_requested()
                item = q.get(timeout=0.25)
                if item is None:
                    if q.closed and not len(q):
                        break
                    continue
                # SIGHUP may have come while get() waited: an alert taken after it must
                # reach the new file, not the one logrotate just renamed
                self._reopen_if_requested()
                try:
                    self.sink.write(item)
                    self.channel.delivered()
                except Exception as exc:
                    self.channel.failed(exc)
                if self.buffered and not len(q):
                    try:
                        self.sink.flush()
                    except Exception as exc:  # the batch is lost: counted and logged like a write
                        self.channel.failed(exc)
        finally:
            try:
                self.sink.close()
            except Exception as exc:
                log.error("output %s: close failed: %s", self.sink.name, exc)


class OutputDispatcher:
    def __init__(
        self,
        formatter: AlertFormatter,
        *,
        capacity: int,
        metrics: AgentMetrics | None = None,
        buffered: bool = False,
    ) -> None:
        self.formatter = formatter
        self.capacity = capacity
        self.metrics = metrics
        self.buffered = buffered
        self._channels: dict[str, _Channel] = {}
        self._workers: list[_ThreadWorker] = []
        self._async_sinks: list[tuple[AsyncSink, _Channel]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._async_done: asyncio.Future[None] | None = None
        self._started = False
        self.alerts_total = 0

    # -- set-up ------------------------------------------------------------------------------
    def add_sink(self, sink: Sink) -> None:
        channel = self._channel(sink.name)
        self._workers.append(_ThreadWorker(sink, channel, self.buffered))

    def add_async_sink(self, sink: AsyncSink) -> None:
        self._async_sinks.append((sink, self._channel(sink.name)))

    def _channel(self, name: str) -> _Channel:
        if name in self._channels:
            raise ValueError(f"sink {name} added twice")
        channel = _Channel(name, self.capacity, self.metrics)
        self._channels[name] = channel
        return channel

    def total_dropped(self) -> int:
        return sum(c.stats.dropped for c in self._channels.values())

    @property
    def sink_names(self) -> list[str]:
        return list(self._channels)

    def stats(self, name: str) -> SinkStats:
        return self._channels[name].stats

    def start(self) -> None:
        """Open every sink (errors propagate: the agent must not start half-configured)."""
        opened: list[Sink] = []
        try:
            for worker in self._workers:
                worker.sink.open()
                opened.append(worker.sink)
        except BaseException:
            for sink in opened:
                with contextlib.suppress(Exception):
                    sink.close()
            raise
        for worker in self._workers:
            worker.thread.start()
        if self._async_sinks:
            ready = threading.Event()
            errors: list[BaseException] = []
            self._loop_thread = threading.Thread(
                target=self._async_main, args=(ready, errors), name="falcopy-out-async", daemon=True
            )
            self._loop_thread.start()
            ready.wait()
            if errors:
                self.close(timeout=1.0)
                raise errors[0]
        self._started = True

    # -- event path --------------------------------------------------------------------------
    def submit(self, alert: Alert) -> None:
        """Called from the event thread: O(number of sinks), never blocks."""
        self.alerts_total += 1
        if self.metrics is not None:
            self.metrics.alerts.labels(rule=alert.rule, priority=alert.priority, source=alert.source).inc()
            matches = self.metrics.events.rule_matches
            key = (alert.rule, alert.priority, alert.source, tuple(alert.tags))
            matches[key] = matches.get(key, 0) + 1
        item = FormattedAlert(alert, self.formatter)
        for channel in self._channels.values():
            channel.put(item)

    # -- control -----------------------------------------------------------------------------
    def reopen(self) -> None:
        """SIGHUP: each worker reopens its sink in its own thread before its next write."""
        for worker in self._workers:
            worker.reopen_requested.set()

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued (within ``timeout``), then close every sink."""
        deadline = time.monotonic() + timeout
        for channel in self._channels.values():
            channel.queue.close()
        for worker in self._workers:
            if worker.thread.is_alive():
                worker.thread.join(max(0.0, deadline - time.monotonic()))
            if worker.thread.is_alive():
                log.error("output %s did not finish within %.1fs", worker.sink.name, timeout)
            left = len(worker.channel.queue)
            if left:
                worker.channel.dropped(left)
        if self._loop is not None and self._loop_thread is not None:
            loop = self._loop
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._schedule_async_stop, max(0.0, deadline - time.monotonic()))
            self._loop_thread.join(max(0.5, deadline - time.monotonic() + 1.0))

    # -- asyncio side ------------------------------------------------------------------------
    def _async_main(self, ready: threading.Event, errors: list[BaseException]) -> None:
        # asyncio is imported in the outputs thread of async sinks only (not on the way to
        # the first alert for the others: Agent.run)
        import asyncio

        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._async_run(ready, errors))
        finally:
            loop.close()

    async def _async_run(self, ready: threading.Event, errors: list[BaseException]) -> None:
        import asyncio

        self._async_done = asyncio.get_running_loop().create_future()
        tasks: list[asyncio.Task[None]] = []
        started: list[AsyncSink] = []
        try:
            for sink, channel in self._async_sinks:
                await sink.start()
                started.append(sink)
                for _ in range(max(1, sink.concurrency)):
                    tasks.append(asyncio.create_task(self._consume(sink, channel)))
        except BaseException as exc:
            errors.append(exc)
        ready.set()
        if not errors:
            await self._async_done
        drain_timeout = self._drain_timeout
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=drain_timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for _sink, channel in self._async_sinks:
            left = len(channel.queue)
            if left:
                channel.dropped(left)
        for sink in started:
            with contextlib.suppress(Exception):
                await sink.close()

    _drain_timeout = 5.0

    def _schedule_async_stop(self, drain_timeout: float) -> None:
        self._drain_timeout = drain_timeout
        if self._async_done is not None and not self._async_done.done():
            self._async_done.set_result(None)

    async def _consume(self, sink: AsyncSink, channel: _Channel) -> None:
        import asyncio

        while True:
            item = await channel.queue.aget()
            if item is None:
                return
            try:
                await sink.send(item)
                channel.delivered()
            except asyncio.CancelledError:
                channel.dropped(1)
                raise
            except Exception as exc:
                channel.failed(exc)


def build_dispatcher(config: Any, metrics: AgentMetrics | None = None) -> OutputDispatcher:
    """The dispatcher with the sinks enabled in ``config`` (an AgentConfig)."""
    # each sink's module is imported only when that sink is enabled: the HTTP sink's
    # client (httpx) alone keeps megabytes resident
    from falcopy.agent.outputs.format import FormatOptions

    timeout = config.output_timeout / 1000.0
    dispatcher = OutputDispatcher(
        AlertFormatter(FormatOptions.from_config(config)),
        capacity=config.queue_capacity(),
        metrics=metrics,
        buffered=config.buffered_outputs,
    )
    if config.stdout_output.enabled:
        from falcopy.agent.outputs.sinks.stdout import StdoutSink

        dispatcher.add_sink(StdoutSink(buffered=config.buffered_outputs))
    if config.file_output.enabled:
        from falcopy.agent.outputs.sinks.file import FileSink

        fo = config.file_output
        dispatcher.add_sink(FileSink(fo.filename, keep_alive=fo.keep_alive, buffered=config.buffered_outputs))
    if config.syslog_output.enabled:
        from falcopy.agent.outputs.sinks.syslog import SyslogSink

        dispatcher.add_sink(SyslogSink(config.falcopy.syslog_socket, timeout=timeout))
    if config.program_output.enabled:
        from falcopy.agent.outputs.sinks.program import ProgramSink

        po = config.program_output
        dispatcher.add_sink(ProgramSink(po.program, keep_alive=po.keep_alive, timeout=timeout))
    if config.http_output.enabled:
        from falcopy.agent.outputs.sinks.http import HttpSink

        dispatcher.add_async_sink(HttpSink(config.http_output, config.json_output, timeout=timeout))
    return dispatcher
