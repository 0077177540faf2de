"""An alert: what the engine produced for one matching rule and event.

The JSON shape mirrors Falco's (libs formats.cpp): keys `time`, `rule`,
`priority`, `output`, `output_fields`, `tags`, `hostname`, `source`, so that
falcosidekick accepts it unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Alert:
    #: wall clock of the event, ns since the epoch
    ts: int
    rule: str
    #: Falco's capitalised name: Emergency, Alert, Critical, Error, Warning, Notice, Informational, Debug
    priority: str
    #: the rendered output text, without the time/priority prefix
    message: str
    #: field name -> value (None for missing) for every %field of the output
    output_fields: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    source: str = "syscall"
    hostname: str = ""
    #: the capture file this alert's events go to (capture on alert), "" when none
    capture_file: str = ""
