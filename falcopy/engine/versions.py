"""What this engine is and what it provides, checked by rules files'
``required_engine_version`` and ``required_plugin_versions``."""

from __future__ import annotations

import re

#: Falco 0.44's rules engine version
ENGINE_VERSION = "0.62.0"

#: the Falco release whose rules, configuration and alert format falcopy matches
FALCO_COMPAT_VERSION = "0.44.1"

#: the plugins falcopy provides the fields of (name -> version it is compatible with)
PROVIDED_PLUGINS: dict[str, str] = {
    "container": "0.4.0",
    "k8saudit": "0.18.0",
    "json": "0.7.0",
}

_SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:[-+].*)?$")


def parse_semver(text: str) -> tuple[int, int, int] | None:
    m = _SEMVER.match(str(text).strip())
    if m is None:
        return None
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def engine_version_requirement(value: object) -> tuple[int, int, int] | None:
    """An integer N means ``0.N.0`` (pre-semver Falco); else a semver string."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return (0, value, 0)
    text = str(value).strip()
    if text.isdigit():
        return (0, int(text), 0)
    return parse_semver(text)


def satisfies(provided: str, required: str) -> bool:
    """Semver compatibility as Falco checks plugin requirements: same major,
    provided >= required."""
    p = parse_semver(provided)
    r = parse_semver(required)
    if p is None or r is None:
        return False
    return p[0] == r[0] and p >= r
