"""stdout: one line per alert (``kubectl logs`` reads it)."""

from __future__ import annotations

import os
import sys
from typing import BinaryIO

from falcopy.agent.outputs.format import FormattedAlert


class StdoutSink:
    name = "stdout"

    def __init__(self, buffered: bool = False, stream: BinaryIO | None = None) -> None:
        self._buffered = buffered
        self._stream = stream

    def open(self) -> None:
        if self._stream is None:
            # a private handle on fd 1: Python's sys.stdout may be replaced or closed by others
            self._stream = os.fdopen(os.dup(sys.stdout.fileno()), "wb", buffering=1 << 16)

    def write(self, item: FormattedAlert) -> None:
        assert self._stream is not None
        self._stream.write(item.line + b"\n")
        if not self._buffered:
            self._stream.flush()

    def flush(self) -> None:
        if self._stream is not None:
            self._stream.flush()

    def reopen(self) -> None:
        self.flush()

    def close(self) -> None:
        if self._stream is not None:
            try:
                self._stream.flush()
            finally:
                self._stream.close()
                self._stream = None
