"""Content-addressed disk cache of composed YAML node trees.

Composing Falco's stable rules with ruamel.yaml's pure-Python parser is most of
the time a rules load takes (about 80 % of it; docs/performance.md), and rules
files rarely change between two starts or reloads.  The composed trees are
stored under the SHA-256 of the file content (plus the cache format and the
ruamel.yaml version) as JSON: plain data, never code (no pickle), so the worst
a stale or damaged entry can do is miss.  Compiled conditions are closures and
are not cached; everything after composition runs as without the cache, so
messages, locations and verdicts are identical.

Where, and why only files private to the agent's user are read: see
:mod:`falcopy.common.private_cache`.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import orjson
import ruamel.yaml
from ruamel.yaml.error import StreamMark
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from falcopy.common import private_cache

log = logging.getLogger(__name__)

FORMAT = 1
#: entries kept; the oldest are removed beyond this (each start or reload may add one per file)
MAX_ENTRIES = 64

_SCALAR, _SEQ, _MAP = 0, 1, 2


class _Memory:
    """Serialised trees kept in this process (the operator loads the same few
    thousand small files again and again; the disk cache keeps only the last
    few dozen).  Bounded by bytes, oldest out first; off until enabled."""

    def __init__(self) -> None:
        self.limit = 0
        self.disk = True
        self.used = 0
        self.entries: OrderedDict[str, bytes] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self.lock:
            data = self.entries.get(key)
            if data is not None:
                self.entries.move_to_end(key)
            return data

    def put(self, key: str, data: bytes) -> None:
        if len(data) > self.limit:
            return
        with self.lock:
            old = self.entries.pop(key, None)
            self.used += len(data) - (len(old) if old is not None else 0)
            self.entries[key] = data
            while self.used > self.limit:
                _, dropped = self.entries.popitem(last=False)
                self.used -= len(dropped)


_memory = _Memory()


def keep_in_memory(limit: int, *, disk: bool = True) -> None:
    """Also keep up to ``limit`` bytes of composed trees in memory (0: off);
    ``disk``: whether the disk cache is used as well."""
    with _memory.lock:
        _memory.limit = limit
        _memory.disk = disk
        while _memory.entries and _memory.used > limit:
            _, dropped = _memory.entries.popitem(last=False)
            _memory.used -= len(dropped)


def cache_dir() -> Path | None:
    if not _memory.disk:
        return None
    return private_cache.cache_dir()


def content_key(content: str) -> str:
    h = hashlib.sha256(f"falcopy-compose/{FORMAT}/{ruamel.yaml.__version__}\n".encode())
    h.update(content.encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def _mark(m: Any) -> list[int]:
    return [m.index, m.line, m.column]


def _dump(node: Node) -> list[Any]:
    marks = _mark(node.start_mark) + _mark(node.end_mark)
    if isinstance(node, ScalarNode):
        return [_SCALAR, node.tag, node.value, node.style, *marks]
    if isinstance(node, SequenceNode):
        return [_SEQ, node.tag, [_dump(n) for n in node.value], node.flow_style, *marks]
    if isinstance(node, MappingNode):
        return [_MAP, node.tag, [[_dump(k), _dump(v)] for k, v in node.value], node.flow_style, *marks]
    raise TypeError(f"unexpected YAML node {type(node).__name__}")


def _load(data: list[Any], name: str) -> Node:
    kind, tag, value, style, si, sl, sc, ei, el, ec = data
    start, end = StreamMark(name, si, sl, sc), StreamMark(name, ei, el, ec)
    if kind == _SCALAR:
        return ScalarNode(tag, value, start, end, style=style)
    if kind == _SEQ:
        return SequenceNode(tag, [_load(n, name) for n in value], start, end, flow_style=style)
    if kind == _MAP:
        return MappingNode(tag, [(_load(k, name), _load(v, name)) for k, v in value], start, end,
                           flow_style=style)
    raise ValueError(f"unknown node kind {kind!r}")


def load(content: str, name: str) -> list[Node | None] | None:
    """The document roots composed from ``content`` earlier, or None (not cached, unusable)."""
    if _memory.limit:
        kept = _memory.get(content_key(content))
        if kept is not None:
            return [None if d is None else _load(d, name) for d in orjson.loads(kept)]
    directory = cache_dir()
    if directory is None:
        return None
    entry = f"{content_key(content)}.json"
    raw = private_cache.read_private(directory, entry)
    if raw is None:
        return None
    try:
        return [None if d is None else _load(d, name) for d in orjson.loads(raw)]
    except (ValueError, TypeError) as exc:
        log.debug("rules cache entry %s unusable: %s", directory / entry, exc)
        return None


def store(content: str, roots: list[Node | None]) -> None:
    """Remember the composed ``roots`` of ``content``; failures only cost the cache."""
    directory = cache_dir()
    if directory is None and not _memory.limit:
        return
    try:
        data = orjson.dumps([None if r is None else _dump(r) for r in roots])
        if _memory.limit:
            _memory.put(content_key(content), data)
        if directory is None:
            return
        if private_cache.write_private(directory, f"{content_key(content)}.json", data):
            private_cache.prune(directory, ".json", MAX_ENTRIES)
    except (OSError, TypeError, orjson.JSONEncodeError) as exc:
        log.debug("rules cache not written in %s: %s", directory, exc)

