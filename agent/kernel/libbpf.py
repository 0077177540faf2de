"""Thin ctypes binding to the system ``libbpf.so.1`` (Debian ``libbpf1``).

Only what the loader needs.  libbpf 1.x reports errors by returning NULL or a
negative errno and setting ``errno``; :class:`BpfError` carries the message and
libbpf's own log lines (verifier output included) captured through
``libbpf_set_print``.

Two costs of a ctypes binding matter while the probe loads in a thread beside the
agent's imports (docs/performance.md, "Start-up, fourth pass"):

- every foreign call releases the GIL and takes it back; while another thread runs
  Python, taking it back waits up to a switch interval (5 ms).  The quick calls
  (lookups, names, map updates: a few µs, never blocking) therefore keep the GIL
  (:data:`_HOLD_GIL`); the long ones (open, load, attach, detach) release it;
- libbpf calls the print callback for each of its debug lines (~11 000 per load of the
  probe: CO-RE relocations), each a trip into Python under the GIL.  The object steps
  run :meth:`LibBpf.quiet` (no callback at all); a quiet step that fails is repeated
  with the log on, so its error still carries libbpf's and the verifier's messages.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
from collections import deque
from collections.abc import Iterator

from falcopy.common.errors import FalcopyError

_LIBBPF_NAME = "libbpf.so.1"


class BpfError(FalcopyError, OSError):
    """A libbpf call failed; ``log`` holds libbpf's recent messages."""

    def __init__(self, what: str, err: int, log: list[str]) -> None:
        err = abs(err)
        detail = "\n".join(log[-40:])
        super().__init__(err, f"{what}: {os.strerror(err)}" + (f"\n{detail}" if detail else ""))
        self.log = log


_c_void_p = ctypes.c_void_p
_PRINT_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)

#: calls of a few µs that never block: made without releasing the GIL (see the module doc)
_HOLD_GIL = frozenset({
    "bpf_object__find_map_by_name", "bpf_object__find_program_by_name", "bpf_object__next_program",
    "bpf_object__next_map", "bpf_program__name", "bpf_map__name", "bpf_program__set_autoload",
    "bpf_program__fd", "bpf_map__set_max_entries", "bpf_map__fd", "bpf_map__reuse_fd",
    "bpf_map__value_size", "bpf_map_update_elem", "bpf_map_lookup_elem", "bpf_map_delete_elem",
    "libbpf_num_possible_cpus",
})


class LibBpf:
    """Function prototypes of libbpf, loaded once per process."""

    _instance: LibBpf | None = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        self.lib = ctypes.CDLL(_LIBBPF_NAME, use_errno=True)
        # the same library (dlopen returns the loaded one): its functions keep the GIL
        self._gil_lib = ctypes.PyDLL(_LIBBPF_NAME, use_errno=True)
        # the process's own symbols include libc's: no `ldconfig -p` subprocess (find_library)
        # on the start-up path
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.log: deque[str] = deque(maxlen=400)
        self._declare()
        # Kept referenced: libbpf calls it for as long as the process lives.
        self._printer = _PRINT_FN(self._print)
        self._silent = _PRINT_FN()  # NULL: libbpf formats nothing
        self._quiet_depth = 0
        self._print_lock = threading.Lock()
        self.lib.libbpf_set_print(self._printer)

    @classmethod
    def get(cls) -> LibBpf:
        with cls._lock:
            if cls._instance is None:
                cls._instance = LibBpf()
            return cls._instance

    @contextlib.contextmanager
    def quiet(self) -> Iterator[None]:
        """No log callback while inside (any thread: libbpf's printer is global)."""
        with self._print_lock:
            self._quiet_depth += 1
            if self._quiet_depth == 1:
                self.lib.libbpf_set_print(self._silent)
        try:
            yield
        finally:
            with self._print_lock:
                self._quiet_depth -= 1
                if self._quiet_depth == 0:
                    self.lib.libbpf_set_print(self._printer)

    def _print(self, level: int, fmt: bytes, va_list: int) -> int:
        # verifier logs arrive as one message: keep it whole enough to show its tail
        buf = ctypes.create_string_buffer(1 << 20)
        self.libc.vsnprintf(buf, len(buf), fmt, ctypes.c_void_p(va_list))
        self.log.extend(buf.value.decode("utf-8", "replace").rstrip("\n").splitlines()[-200:])
        return 0

    def _declare(self) -> None:
        lib = self.lib
        proto = {
            "libbpf_set_print": (_c_void_p, [_PRINT_FN]),
            "bpf_object__open_file": (_c_void_p, [ctypes.c_char_p, _c_void_p]),
            "bpf_object__load": (ctypes.c_int, [_c_void_p]),
            "bpf_object__close": (None, [_c_void_p]),
            "bpf_object__find_map_by_name": (_c_void_p, [_c_void_p, ctypes.c_char_p]),
            "bpf_object__find_program_by_name": (_c_void_p, [_c_void_p, ctypes.c_char_p]),
            "bpf_object__next_program": (_c_void_p, [_c_void_p, _c_void_p]),
            "bpf_object__next_map": (_c_void_p, [_c_void_p, _c_void_p]),
            "bpf_program__name": (ctypes.c_char_p, [_c_void_p]),
            "bpf_map__name": (ctypes.c_char_p, [_c_void_p]),
            "bpf_program__set_autoload": (ctypes.c_int, [_c_void_p, ctypes.c_bool]),
            "bpf_program__attach": (_c_void_p, [_c_void_p]),
            "bpf_program__fd": (ctypes.c_int, [_c_void_p]),
            "bpf_link__destroy": (ctypes.c_int, [_c_void_p]),
            "bpf_map__set_max_entries": (ctypes.c_int, [_c_void_p, ctypes.c_uint32]),
            "bpf_map__fd": (ctypes.c_int, [_c_void_p]),
            "bpf_map__reuse_fd": (ctypes.c_int, [_c_void_p, ctypes.c_int]),
            "bpf_map__value_size": (ctypes.c_uint32, [_c_void_p]),
            "bpf_map_update_elem": (ctypes.c_int, [ctypes.c_int, _c_void_p, _c_void_p, ctypes.c_uint64]),
            "bpf_map_lookup_elem": (ctypes.c_int, [ctypes.c_int, _c_void_p, _c_void_p]),
            "bpf_map_delete_elem": (ctypes.c_int, [ctypes.c_int, _c_void_p]),
            "libbpf_num_possible_cpus": (ctypes.c_int, []),
        }
        for name, (restype, argtypes) in proto.items():
            fn = getattr(self._gil_lib if name in _HOLD_GIL else lib, name)
            fn.restype = restype
            fn.argtypes = argtypes
            setattr(lib, name, fn)  # callers use self.lib.<name> either way
        self.libc.vsnprintf.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, _c_void_p]
        self.libc.vsnprintf.restype = ctypes.c_int
        self.libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, _c_void_p]
        self.libc.mount.restype = ctypes.c_int

    def error(self, what: str, rc: int | None = None) -> BpfError:
        err = ctypes.get_errno() if rc is None or rc == -1 else rc
        return BpfError(what, err or 1, list(self.log))
