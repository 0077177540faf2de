"""program_output: alerts written to a program's stdin.

The command comes from the configuration only; alert text is never part of a
command line.  A plain command is split with shlex and executed directly.  A
command that uses shell syntax (``jq ... | curl ...``, as in Falco's own
falco.yaml example) runs under ``/bin/sh -c`` with that configured text: the
alert still only travels on stdin.

``keep_alive: true`` starts the program once and streams one line per alert
(restarted if it exits, and on SIGHUP); ``keep_alive: false`` runs it once per
alert with that alert on stdin, as Falco does.
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess

from falcopy.agent.outputs.format import FormattedAlert
from falcopy.agent.outputs.sinks.base import SinkError

log = logging.getLogger(__name__)

_SHELL_PUNCT = set("();<>|&")


def program_argv(program: str) -> list[str]:
    """argv to execute: shlex-split, or ``sh -c program`` when the configured text uses shell syntax."""
    try:
        argv = shlex.split(program)
        lex = shlex.shlex(program, posix=True, punctuation_chars=True)
        lex.whitespace_split = True
        tokens = list(lex)
    except ValueError as exc:
        raise SinkError(f"program_output.program cannot be parsed: {exc}") from exc
    if not argv:
        raise SinkError("program_output.program is empty")
    if "$(" in program or "`" in program or any(t and set(t) <= _SHELL_PUNCT for t in tokens):
        return ["/bin/sh", "-c", program]
    return argv


class ProgramSink:
    name = "program"

    def __init__(self, program: str, keep_alive: bool = False, timeout: float = 2.0) -> None:
        self.argv = program_argv(program)
        self._keep_alive = keep_alive
        self._timeout = timeout
        self._proc: subprocess.Popen[bytes] | None = None

    def _spawn(self) -> subprocess.Popen[bytes]:
        try:
            return subprocess.Popen(
                self.argv,
                stdin=subprocess.PIPE,
                stdout=None,
                stderr=None,
                close_fds=True,
                start_new_session=True,  # a Ctrl-C to the agent must not kill the program mid-alert
            )
        except OSError as exc:
            raise SinkError(f"cannot start {self.argv[0]}: {exc.strerror}") from exc

    def open(self) -> None:
        if self._keep_alive:
            self._proc = self._spawn()

    def write(self, item: FormattedAlert) -> None:
        data = item.line + b"\n"
        if not self._keep_alive:
            self._run_once(data)
            return
        proc = self._proc
        if proc is None or proc.poll() is not None:
            if proc is not None:
                log.warning("program output exited with status %s; restarting it", proc.returncode)
            proc = self._proc = self._spawn()
        assert proc.stdin is not None
        try:
            proc.stdin.write(data)
            proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            self._reap(proc)
            self._proc = None
            raise SinkError(f"program output stopped reading: {exc}") from exc

    def _run_once(self, data: bytes) -> None:
        proc = self._spawn()
        try:
            proc.communicate(data, timeout=self._timeout)
        except subprocess.TimeoutExpired as exc:
            self._kill(proc)
            raise SinkError(f"program did not finish within {self._timeout}s") from exc
        except (BrokenPipeError, OSError) as exc:
            self._reap(proc)
            raise SinkError(f"program did not read its input: {exc}") from exc
        if proc.returncode != 0:
            raise SinkError(f"program exited with status {proc.returncode}")

    def _kill(self, proc: subprocess.Popen[bytes]) -> None:
        try:
            os.killpg(proc.pid, 9)
        except OSError:
            proc.kill()
        proc.wait()

    def _reap(self, proc: subprocess.Popen[bytes]) -> None:
        try:
            proc.wait(timeout=self._timeout)
        except subprocess.TimeoutExpired:
            self._kill(proc)

    def flush(self) -> None:
        pass

    def reopen(self) -> None:
        if self._keep_alive:
            self.close()
            self._proc = self._spawn()

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            try:
                proc.stdin.close()
            except OSError:
                pass
        self._reap(proc)
