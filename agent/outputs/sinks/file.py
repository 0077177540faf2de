"""file_output: append one line per alert.

``keep_alive: true`` keeps the file open (reopened on SIGHUP, so logrotate's
rename + HUP starts a new file); ``keep_alive: false`` opens and closes it for
each alert, as Falco does, which also follows a rename without a signal.
Every open refuses symbolic links, files of other users and unprotected
world-writable directories (see :mod:`falcopy.agent.outputs.sinks.appendfile`).
"""

from __future__ import annotations

import os

from falcopy.agent.outputs.format import FormattedAlert
from falcopy.agent.outputs.sinks.appendfile import UnsafeFileError, open_append
from falcopy.agent.outputs.sinks.base import SinkError


class FileSink:
    name = "file"

    def __init__(self, filename: str, keep_alive: bool = False, buffered: bool = False) -> None:
        self.filename = filename
        self._keep_alive = keep_alive
        self._buffered = buffered
        self._fd: int | None = None
        self._pending: list[bytes] = []

    def _open(self) -> int:
        try:
            return open_append(self.filename)
        except UnsafeFileError as exc:
            raise SinkError(f"file_output: {exc}") from exc
        except OSError as exc:
            raise SinkError(f"file_output: cannot open {self.filename}: {exc.strerror}") from exc

    def open(self) -> None:
        # fail at start-up on an unusable path rather than at the first alert
        fd = self._open()
        if self._keep_alive:
            self._fd = fd
        else:
            os.close(fd)

    def _write_all(self, fd: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                n = os.write(fd, view)
            except OSError as exc:
                raise SinkError(f"write to {self.filename} failed: {exc.strerror}") from exc
            view = view[n:]

    def write(self, item: FormattedAlert) -> None:
        data = item.line + b"\n"
        if self._buffered and self._keep_alive:
            self._pending.append(data)
            if len(self._pending) >= 256:
                self.flush()
            return
        if self._keep_alive:
            if self._fd is None:
                self._fd = self._open()
            self._write_all(self._fd, data)
            return
        fd = self._open()
        try:
            self._write_all(fd, data)
        finally:
            os.close(fd)

    def flush(self) -> None:
        if not self._pending:
            return
        data, self._pending = b"".join(self._pending), []
        if self._fd is None:
            self._fd = self._open()
        self._write_all(self._fd, data)

    def reopen(self) -> None:
        self.flush()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._keep_alive:
            self._fd = self._open()

    def close(self) -> None:
        try:
            self.flush()
        finally:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
