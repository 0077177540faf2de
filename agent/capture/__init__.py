"""Capture on alert: a flight recorder of recent events per process tree or
container, capture files written when a rule with ``capture: true`` fires, and
the reading side ``falcopy replay`` uses (see docs/capture.md).

Data flow: the pipeline hands every record to :class:`~.recorder.FlightRecorder`
(event thread, memory only); an alert opens a capture session that collects the
events after it; a finished session goes to :class:`~.writer.CaptureWriter`
(its own thread: JSON Lines on disk); :mod:`.reader` turns a file back into
events for the rule engine.
"""
