"""Writes finished captures to disk on its own thread.

The event thread only ever does a non-blocking ``put``: a slow or full disk
delays nothing but the writer, and what cannot be written is counted by reason
(``queue_full``, ``too_large``, ``ENOSPC``, ...).  Files are created 0600 with
``O_NOFOLLOW`` inside a directory opened with ``O_NOFOLLOW`` (a symlink planted
at the path is never followed), written under a hidden ``.partial`` name and
renamed into place once complete, so a reader never sees half a file.  All
captures under ``path_prefix`` together stay below ``total_bytes``: the oldest
are removed first.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import queue
import threading
from dataclasses import dataclass, field

from falcopy.agent.capture.fileformat import (
    FORMAT_KEY,
    FORMAT_VERSION,
    dumps_line,
    encode_record,
    encode_thread,
)
from falcopy.agent.capture.recorder import CaptureJob

log = logging.getLogger(__name__)

_SUFFIX = ".jsonl"
_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(slots=True)
class WriterStats:
    written: int = 0
    bytes: int = 0
    events: int = 0
    #: capture files removed to stay under total_bytes
    rotated: int = 0
    failures: dict[str, int] = field(default_factory=dict)

    def fail(self, reason: str) -> None:
        self.failures[reason] = self.failures.get(reason, 0) + 1


def render(job: CaptureJob, filesize: int) -> list[bytes]:
    """Header, snapshot and event lines; with a ``filesize`` cap (bytes, 0 = none) the
    events before the alert go first (oldest first), then the last ones after it."""
    s = job.session
    snapshot = dumps_line({"snapshot": {
        "start_ts": job.start_ts,
        "threads": [encode_thread(t) for t in s.snaps.values()],
        "containers": job.containers,
        "users": job.users,
        "groups": job.groups,
    }})
    before = [dumps_line(encode_record(rec, num)) for rec, num, _ in s.before]
    after = [dumps_line(encode_record(rec, num)) for rec, num, _ in s.after]
    drop_before = 0
    if filesize:
        # room for the header's own few hundred bytes is kept aside
        budget = filesize - len(snapshot) - 1024
        used = sum(map(len, before)) + sum(map(len, after))
        # the trigger (last of `before`) is always kept
        while used > budget and drop_before < len(before) - 1:
            used -= len(before[drop_before])
            drop_before += 1
        while used > budget and after:
            used -= len(after.pop())
        before = before[drop_before:]
    truncated = drop_before > 0 or len(after) < len(s.after)
    events = s.before[drop_before:] + s.after[: len(after)]
    header = dict(job.header)
    header.update({
        FORMAT_KEY: FORMAT_VERSION,
        "events_before": len(before),
        "events_after": len(after),
        "time_range": [events[0][0].ts, events[-1][0].ts] if events else [0, 0],
        "truncated": truncated,
    })
    return [dumps_line(header), snapshot, *before, *after]


class CaptureWriter:
    def __init__(self, path_prefix: str, total_bytes: int, filesize_kib: int = 0,
                 max_pending: int = 64) -> None:
        self.directory, self.prefix = os.path.split(os.path.abspath(path_prefix))
        self.total_bytes = total_bytes
        self.filesize = filesize_kib * 1024
        self.stats = WriterStats()
        self._queue: queue.Queue[CaptureJob | None] = queue.Queue(maxsize=max_pending)
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ event thread
    def submit(self, job: CaptureJob) -> bool:
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            self.stats.fail("queue_full")
            return False
        return True

    def pending(self) -> int:
        return self._queue.qsize()

    # ------------------------------------------------------------ writer thread
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="falcopy-capture-writer", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued (within ``timeout``), then stop."""
        if self._thread is None:
            return
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=timeout)
        self._thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            try:
                self.write(job)
            except Exception:  # the writer must outlive any one bad capture
                self.stats.fail("error")
                log.exception("capture %s: writing failed", job.session.path)

    def write(self, job: CaptureJob) -> str | None:
        """Write one capture; returns its path, or None (the failure is counted and logged)."""
        path = job.session.path
        name = os.path.basename(path)
        lines = render(job, self.filesize)
        size = sum(map(len, lines))
        if size > self.total_bytes:
            self.stats.fail("too_large")
            log.error("capture %s: %d bytes exceed capture total_bytes (%d)", path, size, self.total_bytes)
            return None
        try:
            dfd = self._open_dir()
        except OSError as exc:
            return self._failed(path, exc)
        try:
            self._rotate(dfd, size)
            tmp = f".{name}.partial"
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp, dir_fd=dfd)
            fd = os.open(tmp, _OPEN_FLAGS, 0o600, dir_fd=dfd)
            try:
                os.fchmod(fd, 0o600)  # whatever the umask
                with os.fdopen(fd, "wb", closefd=False) as fh:
                    fh.writelines(lines)
                    fh.flush()
                os.fsync(fd)
            except OSError as exc:
                with contextlib.suppress(OSError):
                    os.unlink(tmp, dir_fd=dfd)
                return self._failed(path, exc)
            finally:
                os.close(fd)
            try:
                os.rename(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
            except OSError:
                with contextlib.suppress(OSError):
                    os.unlink(tmp, dir_fd=dfd)
                raise
        except OSError as exc:
            return self._failed(path, exc)
        finally:
            os.close(dfd)
        st = self.stats
        st.written += 1
        st.bytes += size
        st.events += len(lines) - 2
        log.info("capture written: %s (%d events, %d bytes)", path, len(lines) - 2, size)
        return path

    def _failed(self, path: str, exc: OSError) -> None:
        reason = errno.errorcode.get(exc.errno or 0, "error")
        self.stats.fail(reason)
        log.error("capture %s not written: %s", path, exc.strerror or exc)
        return None

    def _open_dir(self) -> int:
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        return os.open(self.directory, _DIR_FLAGS)

    def _captures(self, dfd: int) -> list[tuple[int, str, int]]:
        """(mtime, name, size) of the capture files under path_prefix, oldest first."""
        found = []
        with os.scandir(dfd) as it:
            for entry in it:
                name = entry.name
                if not (name.startswith(self.prefix + "_") and name.endswith(_SUFFIX)):
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if entry.is_file(follow_symlinks=False):
                    found.append((st.st_mtime_ns, name, st.st_size))
        found.sort()
        return found

    def _rotate(self, dfd: int, incoming: int) -> None:
        files = self._captures(dfd)
        total = sum(size for _, _, size in files) + incoming
        for _, name, size in files:
            if total <= self.total_bytes:
                break
            try:
                os.unlink(name, dir_fd=dfd)
            except FileNotFoundError:
                pass
            total -= size
            self.stats.rotated += 1
            log.info("capture %s removed: captures over total_bytes (%d)", name, self.total_bytes)

