"""What /healthz answers: the agent is ready once its probe is attached and a ruleset is
loaded.  Its own module so that the agent holds it without importing the web server
(aiohttp), which is imported only when ``webserver.enabled``."""

from __future__ import annotations

from typing import Any


class Readiness:
    """Ready = the probe is attached and a ruleset is loaded (both set by the app)."""

    def __init__(self) -> None:
        self.probe_attached = False
        self.rules_loaded = False
        self.shutting_down = False

    @property
    def ready(self) -> bool:
        return self.probe_attached and self.rules_loaded and not self.shutting_down

    def as_dict(self) -> dict[str, Any]:
        return {
            "probe_attached": self.probe_attached,
            "rules_loaded": self.rules_loaded,
            "shutting_down": self.shutting_down,
        }
