"""Reading falcopy.yaml (and Falco's config.d includes) with the position of every key.

Validation errors must name the file and line of the offending key, so the raw
document is kept as plain Python data plus a map from each key path
(``("http_output", "url")``, ``("rules_files", 1)``) to where it was written.
Later sources (included files, ``-o`` overrides) overwrite the position of
what they change, so an error always points at the text that set the value.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from falcopy.common.errors import FalcopyError

Path_ = tuple[str | int, ...]


class ConfigError(FalcopyError):
    """A configuration that cannot be used; ``messages`` lists every problem found."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("\n".join(messages))
        self.messages = messages


@dataclass
class RawConfig:
    data: dict[str, Any] = field(default_factory=dict)
    #: key path -> "file:line:col" or "-o 'key=value'"
    positions: dict[Path_, str] = field(default_factory=dict)
    #: files read, in order (the main file first)
    files: list[str] = field(default_factory=list)

    def where(self, path: Path_) -> str:
        """The position of the longest known prefix of ``path``."""
        for n in range(len(path), 0, -1):
            pos = self.positions.get(tuple(path[:n]))
            if pos is not None:
                return pos
        return self.files[0] if self.files else "<config>"


_ENV_RE = re.compile(r"\$\$\{|\$\{([^}]*)\}")


def expand_env(text: str) -> str:
    """Falco expands ``${VAR}`` in config values; ``$${`` keeps a literal ``${``."""

    def repl(m: re.Match[str]) -> str:
        if m.group(0) == "$${":
            return "${"
        return os.environ.get(m.group(1), "")

    return _ENV_RE.sub(repl, text)


def _to_plain(node: Any, path: Path_, label: str, positions: dict[Path_, str]) -> Any:
    if isinstance(node, CommentedMap):
        out: dict[str, Any] = {}
        for key, value in node.items():
            line, col = node.lc.key(key)
            positions[(*path, key)] = f"{label}:{line + 1}:{col + 1}"
            out[key] = _to_plain(value, (*path, key), label, positions)
        return out
    if isinstance(node, CommentedSeq):
        items = []
        for i, value in enumerate(node):
            line, col = node.lc.item(i)
            positions[(*path, i)] = f"{label}:{line + 1}:{col + 1}"
            items.append(_to_plain(value, (*path, i), label, positions))
        return items
    if isinstance(node, str):
        return expand_env(str(node))
    return node


def read_yaml_file(path: Path) -> tuple[Any, dict[Path_, str]]:
    label = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{label}: cannot read configuration: {exc.strerror or exc}"]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{label}: not UTF-8 text ({exc.reason})"]) from exc
    yaml = YAML(typ="rt")
    try:
        doc = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{label}:{mark.line + 1}:{mark.column + 1}" if mark else label
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError([f"{where}: YAML syntax error: {problem}"]) from exc
    except YAMLError as exc:
        raise ConfigError([f"{label}: YAML error: {exc}"]) from exc
    positions: dict[Path_, str] = {}
    if doc is None:
        return {}, positions
    if not isinstance(doc, CommentedMap):
        raise ConfigError([f"{label}:1:1: the configuration must be a mapping of keys, got {_kind(doc)}"])
    return _to_plain(doc, (), label, positions), positions


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"{type(value).__name__} {value!r}"


def merge_into(raw: RawConfig, data: dict[str, Any], positions: dict[Path_, str]) -> None:
    """Falco's default ``append`` strategy: mappings merge, lists append, scalars override."""

    def merge(dst: dict[str, Any], src: dict[str, Any], path: Path_) -> None:
        for key, value in src.items():
            kpath = (*path, key)
            if key in dst and isinstance(dst[key], dict) and isinstance(value, dict):
                raw.positions.setdefault(kpath, positions[kpath])
                merge(dst[key], value, kpath)
            elif key in dst and isinstance(dst[key], list) and isinstance(value, list):
                offset = len(dst[key])
                dst[key].extend(value)
                for p, pos in positions.items():
                    if len(p) > len(kpath) and p[: len(kpath)] == kpath and isinstance(p[len(kpath)], int):
                        shifted = (*kpath, p[len(kpath)] + offset, *p[len(kpath) + 1 :])
                        raw.positions[shifted] = pos
            else:
                dst[key] = value
                for p in [p for p in raw.positions if p[: len(kpath)] == kpath]:
                    del raw.positions[p]
                for p, pos in positions.items():
                    if p[: len(kpath)] == kpath:
                        raw.positions[p] = pos

    merge(raw.data, data, ())
