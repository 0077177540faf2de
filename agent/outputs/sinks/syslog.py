"""syslog_output: the local syslog socket (``/dev/log``), as glibc's syslog(3) writes it.

Facility ``user``, severity from the alert priority (Falco's priorities are
syslog's severities: Emergency=0 ... Debug=7).  The socket is reconnected when
the syslog daemon restarts.
"""

from __future__ import annotations

import os
import socket
import time

from falcopy.agent.outputs.format import FormattedAlert
from falcopy.agent.outputs.sinks.base import SinkError

SEVERITY = {
    "Emergency": 0,
    "Alert": 1,
    "Critical": 2,
    "Error": 3,
    "Warning": 4,
    "Notice": 5,
    "Informational": 6,
    "Debug": 7,
}
LOG_USER = 1


class SyslogSink:
    name = "syslog"

    def __init__(self, path: str = "/dev/log", ident: str = "falcopy", timeout: float = 2.0) -> None:
        self.path = path
        self.timeout = timeout
        self.ident = ident
        self._sock: socket.socket | None = None

    def _connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        # a stalled syslog daemon must not hold the worker (and shutdown) forever
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.path)
        except OSError as exc:
            sock.close()
            raise SinkError(f"cannot connect to syslog socket {self.path}: {exc.strerror}") from exc
        return sock

    def open(self) -> None:
        # a missing /dev/log (minimal containers) is reported per alert and retried, not fatal
        try:
            self._sock = self._connect()
        except SinkError:
            self._sock = None

    def frame(self, item: FormattedAlert) -> bytes:
        pri = LOG_USER * 8 + SEVERITY.get(item.alert.priority, 6)
        stamp = time.strftime("%b %e %H:%M:%S", time.localtime())
        return f"<{pri}>{stamp} {self.ident}[{os.getpid()}]: ".encode() + item.line

    def write(self, item: FormattedAlert) -> None:
        data = self.frame(item)
        for attempt in (1, 2):
            if self._sock is None:
                self._sock = self._connect()
            try:
                self._sock.send(data)
                return
            except OSError as exc:
                self._sock.close()
                self._sock = None
                if attempt == 2:
                    raise SinkError(f"syslog send failed: {exc.strerror}") from exc

    def flush(self) -> None:
        pass

    def reopen(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def close(self) -> None:
        self.reopen()
