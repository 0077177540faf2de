"""Field transformers: ``tolower toupper b64 basename len join concat getopt``.

Each transformer maps the value(s) of its arguments to a new value; a missing
argument value gives a missing result (so the check is false), like libsinsp.
On list values the string transformers apply element-wise.
"""

from __future__ import annotations

import base64
import binascii
import shlex
from collections.abc import Callable
from typing import Any

from falcopy.common.errors import FalcopyError
from falcopy.engine.fields.base import FieldType

#: transformer name -> (min args, max args or None, result type or None = same as input)
SIGNATURES: dict[str, tuple[int, int | None, FieldType | None]] = {
    "tolower": (1, 1, FieldType.STRING),
    "toupper": (1, 1, FieldType.STRING),
    "b64": (1, 1, FieldType.STRING),
    "basename": (1, 1, FieldType.STRING),
    "len": (1, 1, FieldType.UINT),
    "join": (2, 2, FieldType.STRING),
    "concat": (2, None, FieldType.STRING),
    "getopt": (2, 2, FieldType.STRING),
}

STRING_INPUT = frozenset({"tolower", "toupper", "b64", "basename"})


class TransformerError(FalcopyError, ValueError):
    pass


def _each(v: Any, fn: Callable[[str], Any]) -> Any:
    if v is None:
        return None
    if isinstance(v, list):
        return [fn(x) if isinstance(x, str) else fn(str(x)) for x in v]
    return fn(v if isinstance(v, str) else str(v))


def _b64(s: str) -> Any:
    try:
        return base64.b64decode(s, validate=False).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return None


def _basename(s: str) -> str:
    # libsinsp: "/a/b/" -> "" and "" -> ""; no path normalisation
    return s.rsplit("/", 1)[-1]


def _len(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, list | bytes | str):
        return len(v)
    return len(str(v))


def _text(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, list):
        return " ".join(str(x) for x in v)
    return v if isinstance(v, str) else str(v)


def getopt(args: Any, optstring: str) -> list[str] | None:
    """Options present in a command line, POSIX getopt style: ``-abc`` sets a,
    b and c unless one takes a value (``t:``), which then swallows the rest or
    the next argument.  Parsing stops at ``--`` or the first operand."""
    if args is None:
        return None
    if isinstance(args, str):
        try:
            words = shlex.split(args)
        except ValueError:
            words = args.split()
    else:
        words = [str(a) for a in args]
    takes_value = {optstring[i] for i in range(len(optstring) - 1) if optstring[i + 1] == ":"}
    found: list[str] = []
    i = 0
    while i < len(words):
        w = words[i]
        if w == "--" or not w.startswith("-") or w == "-":
            break
        j = 1
        while j < len(w):
            c = w[j]
            if c in optstring and c != ":":
                found.append(c)
                if c in takes_value:
                    if j == len(w) - 1:
                        i += 1
                    break
            j += 1
        i += 1
    return found


def apply(name: str, values: list[Any]) -> Any:
    """Apply transformer ``name`` to its argument values (already extracted)."""
    if name == "tolower":
        return _each(values[0], str.lower)
    if name == "toupper":
        return _each(values[0], str.upper)
    if name == "b64":
        return _each(values[0], _b64)
    if name == "basename":
        return _each(values[0], _basename)
    if name == "len":
        return _len(values[0])
    if name == "join":
        sep, v = values
        if sep is None or v is None:
            return None
        return str(sep).join(str(x) for x in v) if isinstance(v, list) else str(v)
    if name == "concat":
        parts = [_text(v) for v in values]
        if any(p is None for p in parts):
            return None
        return "".join(parts)  # type: ignore[arg-type]
    if name == "getopt":
        return getopt(values[0], str(values[1]) if values[1] is not None else "")
    raise TransformerError(f"unknown transformer '{name}'")
