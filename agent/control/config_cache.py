"""The validated configuration, cached by the content it was validated from.

Validating falcopy.yaml builds pydantic's schemas for ~40 models (~0.1 s of CPU on the
agent's start-up path, before the first alert can be raised).  The result is a pure
function of the merged raw document (after ``config_files`` and ``-o`` overrides), the
environment (defaults such as ``HOST_ROOT``, ``${VAR}`` in values) and the code of the
models, so it is kept in falcopy's private cache (:mod:`falcopy.common.private_cache`:
same ownership and permission rules as the composed rules) under the SHA-256 of all of
them, as plain JSON (no pickle), and a restart with the same inputs constructs the models
from it without validating (``model_construct``; the models defer their schemas until
first used).  A file that includes no other (no ``config_files`` in its text) is keyed by
its bytes, so a hit does not even parse the YAML (~40 ms for the chart's file); one that
does is keyed by the merged document.

Only a configuration that validated is stored, and only if constructing it back from
the entry gives an equal configuration: an invalid one is validated at every start, so
its errors (file, line, key) are exactly those of :func:`~falcopy.agent.control.config.load_config`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import sys
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel
from pydantic.version import VERSION as PYDANTIC_VERSION

from falcopy.common import private_cache

log = logging.getLogger(__name__)

FORMAT = 1
SUFFIX = ".config.json"
#: entries kept (one per configuration); the oldest go beyond this
MAX_ENTRIES = 16

M = TypeVar("M", bound=BaseModel)


def _code_identity(model: type[BaseModel]) -> list[str]:
    """The source files defining ``model`` and every model or dataclass it nests (size and
    mtime: an upgrade or an edit of a model misses)."""
    modules: set[str] = set()
    seen: set[type] = set()

    def visit(tp: Any) -> None:
        for t in _classes_in(tp):
            if t in seen:
                continue
            seen.add(t)
            modules.update(c.__module__ for c in t.__mro__ if c.__module__ not in ("builtins", "typing"))
            if issubclass(t, BaseModel):
                for f in t.model_fields.values():
                    visit(f.annotation)
            elif dataclasses.is_dataclass(t):
                for f in dataclasses.fields(t):
                    visit(f.type)

    visit(model)
    out = []
    for name in sorted(modules):
        path = getattr(sys.modules.get(name), "__file__", None)
        if path and not name.startswith("pydantic"):
            try:
                st = os.stat(path)
            except OSError:
                continue
            out.append(f"{path}:{st.st_size}:{st.st_mtime_ns}")
    return out


def _classes_in(tp: Any) -> list[type]:
    """The model and dataclass types an annotation names (through list, dict, unions...)."""
    if isinstance(tp, type) and (issubclass(tp, BaseModel) or dataclasses.is_dataclass(tp)):
        return [tp]
    return [c for arg in typing.get_args(tp) for c in _classes_in(arg)]


def _common_key(model: type[BaseModel], kind: str) -> Any:
    h = hashlib.sha256(f"falcopy-config/{FORMAT}/{kind}\npydantic {PYDANTIC_VERSION}\n".encode())
    for part in _code_identity(model):
        h.update(part.encode("utf-8", "surrogateescape") + b"\0")
    h.update(b"\1")
    # defaults read the environment (HOST_ROOT...), values expand ${VAR}: all of it, so no
    # reader can be missed
    for k, v in sorted(os.environ.items()):
        h.update(f"{k}={v}".encode("utf-8", "surrogateescape") + b"\0")
    h.update(b"\1")
    return h


#: a file mentioning this may include others (Falco's config.d): keyed by the merged document
_INCLUDES = re.compile(rb"(?<!watch_)config_files")


def source_key(model: type[BaseModel], path: Path | None, overrides: Sequence[str]) -> str | None:
    """The key of a configuration file with these overrides, from its bytes; None if it may
    include other files (or cannot be read: the parse reports that)."""
    if path is None:
        return None
    try:
        text = path.read_bytes()
    except OSError:
        return None
    if _INCLUDES.search(text):
        return None
    h = _common_key(model, "source")
    h.update(str(path).encode("utf-8", "surrogateescape") + b"\0" + text + b"\1")
    for option in overrides:
        h.update(option.encode("utf-8", "surrogateescape") + b"\0")
    return h.hexdigest()


def data_key(model: type[BaseModel], data: dict[str, Any]) -> str:
    """The key of a merged document (files, includes and overrides applied)."""
    h = _common_key(model, "data")
    # plain YAML data: repr is deterministic and keeps types and order
    h.update(repr(data).encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def construct(model: type[M], values: dict[str, Any]) -> M:
    """``model`` and everything it nests, built from its JSON dump without validation."""
    kwargs = {}
    for name, f in model.model_fields.items():
        key = f.alias or name
        if key in values:
            kwargs[name] = _build(f.annotation, values[key])
    extra = {k: v for k, v in values.items() if k not in kwargs and k not in model.model_fields}
    return model.model_construct(**kwargs, **extra)


def _build(tp: Any, value: Any) -> Any:
    if value is None:
        return None
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        return _build(args[0], value)
    if isinstance(tp, type) and issubclass(tp, BaseModel) and isinstance(value, dict):
        return construct(tp, value)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp) and isinstance(value, dict):
        return tp(**value)
    if origin is list and isinstance(value, list):
        return [_build(args[0], v) for v in value] if args else value
    if origin is dict and isinstance(value, dict):
        return {k: _build(args[1], v) for k, v in value.items()} if len(args) == 2 else value
    if origin in (typing.Union, types.UnionType):
        models = [a for a in args if _classes_in(a)]
        if len(models) == 1 and isinstance(value, dict | list):
            return _build(models[0], value)
    return value


def lookup(model: type[M], key: str) -> M | None:
    """The configuration validated from the inputs of ``key`` at an earlier start, or None."""
    directory = private_cache.cache_dir()
    if directory is None:
        return None
    raw = private_cache.read_private(directory, key[:40] + SUFFIX)
    if raw is None:
        return None
    try:
        return construct(model, json.loads(raw))
    except (ValueError, TypeError) as exc:  # a damaged entry: validate instead
        log.debug("config cache entry unusable: %s", exc)
        return None


def store(model: type[M], key: str, config: M) -> None:
    """Remember ``config``, validated from the inputs of ``key``, if it comes back equal
    from JSON."""
    directory = private_cache.cache_dir()
    if directory is None:
        return
    try:
        dumped = config.model_dump(mode="json", by_alias=True)
        if construct(model, dumped) != config:  # e.g. a value JSON cannot carry: not cached
            return
        if private_cache.write_private(directory, key[:40] + SUFFIX,
                                       json.dumps(dumped).encode()):
            private_cache.prune(directory, SUFFIX, MAX_ENTRIES)
    except (OSError, ValueError, TypeError) as exc:
        log.debug("config cache not written in %s: %s", directory, exc)
