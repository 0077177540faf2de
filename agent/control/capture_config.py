"""Capture settings: Falco's ``capture`` section, unchanged, and falcopy's own
flight-recorder knobs (``falcopy.capture``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: cheap, rare event types worth keeping for the story even when no rule asks for
#: them: what changes files and their permissions (a download made executable)
DEFAULT_RECORD_TYPES = (
    "chmod", "fchmod", "fchmodat", "rename", "renameat", "renameat2", "unlink", "unlinkat",
    "mkdir", "mkdirat", "symlink", "symlinkat", "link", "linkat",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True, defer_build=True)


class CaptureConfig(_Strict):
    """Falco's ``capture`` keys (0.42 sandbox, 0.44 ``capture_events`` / ``capture_filesize``)."""

    enabled: bool = False
    #: files are ``<path_prefix>_<time>_<event number>.jsonl`` (Falco: ``.scap``)
    path_prefix: str = "/tmp/falco"  # noqa: S108 (Falco's default; the chart sets a private directory)
    #: ``rules``: only rules with ``capture: true`` trigger; ``all_rules``: every alert
    mode: Literal["rules", "all_rules"] = "rules"
    #: ms of events kept after the alert when the rule sets no ``capture_duration``
    default_duration: int = Field(default=5000, ge=0)
    #: at most this many events after the alert (0 = no limit)
    capture_events: int = Field(default=0, ge=0)
    #: at most this many KiB per capture file (0 = no limit)
    capture_filesize: int = Field(default=0, ge=0)


class RecorderConfig(_Strict):
    """``falcopy.capture``: what the flight recorder keeps and what the disk may hold."""

    #: ``process_tree``: one buffer per session (setsid) of a container or the host;
    #: ``container``: one buffer per container (host processes: per session)
    scope: Literal["process_tree", "container"] = "process_tree"
    #: events kept per scope key before the alert
    max_events: int = Field(default=2000, ge=1)
    #: events older than this (seconds) are dropped from the buffers
    max_age_s: float = Field(default=60.0, gt=0)
    #: memory for all buffers together (estimated record bytes); over it, the
    #: oldest events of any key go first
    max_bytes: int = Field(default=64 << 20, ge=1 << 16)
    #: bytes all capture files under path_prefix may take; oldest removed first
    total_bytes: int = Field(default=1 << 30, ge=1 << 16)
    #: captures still open or waiting for the disk; more are refused and counted
    max_pending: int = Field(default=64, ge=1)
    #: extra kernel event types to record although no rule needs them
    record_types: list[str] = Field(default_factory=lambda: list(DEFAULT_RECORD_TYPES))


#: the agent's output settings a capture records, so replay renders alerts the same way
OUTPUT_SETTINGS = ("append_output", "time_format_iso_8601", "priority", "rule_matching",
                   "json_include_output_property", "json_include_message_property",
                   "json_include_output_fields_property", "json_include_tags_property")


def output_settings(config: Any) -> dict[str, Any]:
    """The header's ``outputs`` entry, from the live AgentConfig."""
    out = {k: getattr(config, k) for k in OUTPUT_SETTINGS}
    out["append_output"] = [a.model_dump(exclude_defaults=True) for a in config.append_output]
    return out
