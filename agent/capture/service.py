"""The agent's capture set-up: one recorder (event thread), one writer (its own
thread), their metrics, and the extra event types the kernel must deliver."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from falcopy.agent.capture.recorder import FlightRecorder
from falcopy.agent.capture.writer import CaptureWriter
from falcopy.agent.control.capture_config import output_settings
from falcopy.agent.state.table import ProcessTable

from falcopy import __version__


def recorded_types(config: Any) -> set[str]:
    """Event types the probe must deliver for the recorder (on top of the rules')."""
    if not config.capture.enabled:
        return set()
    return set(config.falcopy.capture.record_types)


class CaptureService:
    def __init__(self, config: Any, state: ProcessTable, *, metadata: Any = None) -> None:
        falco, own = config.capture, config.falcopy.capture
        self.writer = CaptureWriter(falco.path_prefix, own.total_bytes, falco.capture_filesize,
                                    own.max_pending)
        header = {"agent_version": __version__, "hostname": config.hostname(),
                  "outputs": output_settings(config)}
        self.recorder = FlightRecorder(falco, own, state, self.writer.submit, metadata=metadata,
                                       header=header)

    def start(self) -> None:
        self.writer.start()

    def stop(self, timeout: float = 5.0) -> None:
        """After the event thread has stopped: write the open captures, then stop."""
        self.recorder.close_all()
        self.writer.close(timeout)

    def collect(self) -> Iterable[Any]:
        """Prometheus families, read at scrape time."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        ws, rs = self.writer.stats, self.recorder.stats
        yield CounterMetricFamily("falcopy_capture_files", "Capture files written", value=ws.written)
        yield CounterMetricFamily("falcopy_capture_written_bytes", "Bytes of capture files written",
                                  value=ws.bytes)
        yield CounterMetricFamily("falcopy_capture_rotated_files",
                                  "Capture files removed to stay under total_bytes", value=ws.rotated)
        fail = CounterMetricFamily("falcopy_capture_failures", "Captures not written, by reason",
                                   labels=["reason"])
        for reason, n in list(ws.failures.items()):
            fail.add_metric([reason], n)
        fail.add_metric(["refused"], rs.refused)
        yield fail
        yield CounterMetricFamily("falcopy_capture_sessions", "Captures started by alerts", value=rs.sessions)
        yield CounterMetricFamily("falcopy_capture_recorded_events", "Events kept by the flight recorder",
                                  value=self.recorder.recorded)
        yield CounterMetricFamily("falcopy_capture_evicted_events",
                                  "Events the flight recorder dropped (caps)", value=self.recorder.evicted())
        yield GaugeMetricFamily("falcopy_capture_buffer_bytes", "Estimated bytes held by the flight recorder",
                                value=self.recorder.bytes)
        yield GaugeMetricFamily("falcopy_capture_buffer_keys", "Scope keys held by the flight recorder",
                                value=self.recorder.keys())
        yield GaugeMetricFamily("falcopy_capture_pending", "Captures collecting or waiting for the disk",
                                value=self.recorder.open_sessions() + self.writer.pending())
