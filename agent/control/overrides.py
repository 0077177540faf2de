"""``-o key.sub=value`` overrides, with the syntax of Falco's ``-o`` option.

- dots separate keys (``http_output.url=...``); ``\\.`` is a literal dot in a key;
- ``list[1]`` addresses an item, ``list[]`` appends one;
- the value is read as YAML, so ``true``, ``5``, ``[a, b]`` and ``{json}`` are typed.
"""

from __future__ import annotations

import re
from typing import Any

from falcopy.agent.control.yamlsource import ConfigError, RawConfig, expand_env
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

_SEGMENT_RE = re.compile(r"^(?P<key>(?:[^\[\]])*)(?P<idx>(?:\[\d*\])*)$")
_INDEX_RE = re.compile(r"\[(\d*)\]")


def parse_key(key: str) -> list[str | int | None]:
    """``a.b[2].c[]`` -> ``["a", "b", 2, "c", None]`` (None = append)."""
    parts: list[str] = []
    cur = ""
    i = 0
    while i < len(key):
        ch = key[i]
        if ch == "\\" and i + 1 < len(key) and key[i + 1] == ".":
            cur += "."
            i += 2
            continue
        if ch == ".":
            parts.append(cur)
            cur = ""
        else:
            cur += ch
        i += 1
    parts.append(cur)
    out: list[str | int | None] = []
    for part in parts:
        m = _SEGMENT_RE.match(part)
        if not m or not m.group("key"):
            raise ValueError(f"invalid key segment {part!r}")
        out.append(m.group("key"))
        for idx in _INDEX_RE.findall(m.group("idx")):
            out.append(int(idx) if idx else None)
    return out


def parse_value(text: str) -> Any:
    """``{...}``/``[...]`` is YAML/JSON; anything else is one scalar, typed as YAML would type it."""
    if text == "":
        return ""
    structured = text.lstrip()[:1] in ("{", "[")
    try:
        value = YAML(typ="safe", pure=True).load(text)
    except YAMLError as exc:
        if structured:
            raise ValueError(f"value is not valid YAML/JSON: {str(exc).splitlines()[0]}") from exc
        return expand_env(text)
    if not structured and isinstance(value, dict | list):
        return expand_env(text)
    return _expand(value)


def _expand(value: Any) -> Any:
    """``${VAR}`` is expanded in -o values as in the file's."""
    if isinstance(value, str):
        return expand_env(value)
    if isinstance(value, dict):
        return {k: _expand(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v) for v in value]
    return value


def apply_override(raw: RawConfig, option: str) -> None:
    label = f"-o '{option}'"
    key, sep, value_text = option.partition("=")
    if not sep:
        raise ConfigError([f"{label}: expected key=value"])
    try:
        segments = parse_key(key.strip())
        value = parse_value(value_text)
    except ValueError as exc:
        raise ConfigError([f"{label}: {exc}"]) from exc

    node: Any = raw.data
    path: list[str | int] = []
    for n, seg in enumerate(segments):
        last = n == len(segments) - 1
        nxt = None if last else segments[n + 1]
        if path:
            raw.positions.setdefault(tuple(path), label)
        if isinstance(seg, str):
            if not isinstance(node, dict):
                raise ConfigError([f"{label}: {'.'.join(map(str, path))} is not a mapping"])
            if last:
                node[seg] = value
            elif seg in node and node[seg] is not None and not isinstance(node[seg], dict | list):
                kind = "mapping" if isinstance(nxt, str) else "list"
                raise ConfigError([f"{label}: {'.'.join(map(str, [*path, seg]))} is not a {kind}"])
            elif seg not in node or node[seg] is None:
                node[seg] = {} if isinstance(nxt, str) else []
            path.append(seg)
            if not last:
                node = node[seg]
        else:
            if not isinstance(node, list):
                raise ConfigError([f"{label}: {'.'.join(map(str, path))} is not a list"])
            if seg is None:
                seg = len(node)
                node.append(None)
            if seg >= len(node):
                where = ".".join(map(str, path))
                raise ConfigError([f"{label}: index {seg} is out of range ({where} has {len(node)} items)"])
            if last:
                node[seg] = value
            elif not isinstance(node[seg], dict | list):
                node[seg] = {} if isinstance(nxt, str) else []
            path.append(seg)
            if not last:
                node = node[seg]
    tpath = tuple(path)
    for p in [p for p in raw.positions if p[: len(tpath)] == tpath]:
        del raw.positions[p]
    raw.positions[tpath] = label
