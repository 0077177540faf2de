"""Reload when rules or configuration files change (Falco's ``watch_config_files``).

What is watched (inotify through watchdog, non-recursive, like Falco):
- a rules *directory*: the directory itself; kubelet updates a ConfigMap
  volume by writing a new ``..<timestamp>`` directory, pointing ``..data_tmp``
  at it and renaming that over ``..data`` - one ``moved`` event for the
  whole set;
- a *file*: its parent directory, so an editor's write-then-rename, a
  ``..data`` swap of a ConfigMap mounted file and a delete-and-recreate are
  all seen (a watch on the file's inode would be lost with the old inode).

Events are debounced (``debounce_s`` of quiet, at most ``max_delay_s`` after
the first event) so files landing one by one cause one reload.  A content
fingerprint of every watched file (read through the symlinks) is compared
before calling back: events that change nothing (kubelet re-syncing the same
data, ``touch``, an editor's swap file) do not recompile the rules.  A slow
poll of the same fingerprint backs up inotify (queue overflow, network
filesystems).

The callback runs in the watcher's thread; it must only *schedule* the reload
(the agent compiles in an executor and swaps between two event batches).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

log = logging.getLogger(__name__)

RULE_SUFFIXES = (".yaml", ".yml")
IGNORED_EVENTS = ("opened", "closed_no_write")


def fingerprint(paths: Iterable[Path]) -> str:
    """A digest of what a reload would read: names and contents, symlinks followed."""
    h = hashlib.sha256()
    for p in paths:
        h.update(str(p).encode() + b"\0")
        try:
            if p.is_dir():
                for f in sorted(p.iterdir()):
                    if f.suffix in RULE_SUFFIXES or f.name.endswith(".json"):
                        _add_file(h, f)
            else:
                _add_file(h, p)
        except OSError:
            h.update(b"<unreadable>")
    return h.hexdigest()


def _add_file(h: hashlib._Hash, f: Path) -> None:
    h.update(f.name.encode() + b"\0")
    try:
        h.update(f.read_bytes())
    except OSError:  # missing or mid-swap: counts as a change; the reload reports it
        h.update(b"<missing>")
    h.update(b"\0")


class _Handler(FileSystemEventHandler):
    def __init__(self, owner: RulesWatcher) -> None:
        self.owner = owner

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in IGNORED_EVENTS:
            return
        for path in (event.src_path, getattr(event, "dest_path", "")):
            if path and self.owner.relevant(os.fsdecode(path)):
                self.owner.poke()
                return


class RulesWatcher:
    def __init__(
        self,
        paths: Iterable[Path],
        on_change: Callable[[], None],
        debounce_s: float = 0.1,
        *,
        max_delay_s: float = 1.0,
        poll_s: float = 30.0,
    ) -> None:
        self.paths = [Path(p).absolute() for p in paths]
        self.on_change = on_change
        self.debounce_s = debounce_s
        self.max_delay_s = max(max_delay_s, debounce_s)
        self.poll_s = poll_s
        self._dirs = {p for p in self.paths if p.is_dir()}
        self._files = {p for p in self.paths if p not in self._dirs}
        self._observer = Observer()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._first_event: float | None = None
        self._last_event = 0.0
        self._stopped = False
        self._thread: threading.Thread | None = None
        self._seen = fingerprint(self.paths)
        #: reloads requested / events seen (for tests and metrics)
        self.fired = 0
        self.events = 0

    # ---------------------------------------------------------------- filtering
    def relevant(self, path: str) -> bool:
        p = Path(path)
        if p in self._files or p in self._dirs:
            return True
        parent = p.parent
        if parent in self._dirs:
            # the ..data swap, or a rules file (a bundle manifest too)
            return p.name.startswith("..data") or p.suffix in RULE_SUFFIXES or p.suffix == ".json"
        # a file mounted from a ConfigMap: its ..data moved
        return any(f.parent == parent and p.name.startswith("..data") for f in self._files)

    # ---------------------------------------------------------------- debounce
    def poke(self) -> None:
        now = time.monotonic()
        with self._lock:
            self.events += 1
            self._last_event = now
            if self._first_event is None:
                self._first_event = now
            self._wake.notify()

    def _run(self) -> None:
        next_poll = time.monotonic() + self.poll_s
        while True:
            with self._lock:
                while not self._stopped and self._first_event is None:
                    if not self._wake.wait(timeout=max(0.0, next_poll - time.monotonic())):
                        break  # poll time
                if self._stopped:
                    return
                if self._first_event is not None:
                    now = time.monotonic()
                    due = min(self._last_event + self.debounce_s, self._first_event + self.max_delay_s)
                    if now < due:
                        self._wake.wait(timeout=due - now)
                        continue
                    self._first_event = None
            next_poll = time.monotonic() + self.poll_s
            self._check()

    def _check(self) -> None:
        current = fingerprint(self.paths)
        if current == self._seen:
            return
        self._seen = current
        self.fired += 1
        try:
            self.on_change()
        except Exception:
            log.exception("reload trigger failed")

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> None:
        handler = _Handler(self)
        watched: set[Path] = set()
        targets = set(self._dirs) | {f.parent for f in self._files}
        for d in sorted(targets):
            if d in watched:
                continue
            if not d.is_dir():
                log.warning("cannot watch %s: not a directory; changes there need SIGHUP", d)
                continue
            self._observer.schedule(handler, str(d), recursive=False)
            watched.add(d)
        self._observer.daemon = True
        self._observer.start()
        self._thread = threading.Thread(target=self._run, name="falcopy-rules-watch", daemon=True)
        self._thread.start()
        log.info("watching %s for changes", ", ".join(map(str, sorted(watched))) or "nothing")

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            self._wake.notify()
        self._observer.stop()
        self._observer.join(2)
        if self._thread is not None:
            self._thread.join(2)
