"""Encode a :class:`~falcopy.engine.kernel_filter.KernelFilter` into the probe's
filter maps (``agent/bpf/kfilter_maps.h``) and switch it in atomically.

Each clause of an event type is one bit of a u64.  Per type, ``kf_types``
holds the masks that do not need a lookup (clauses requiring success, an open
class, the clauses without a positive set on a dimension...); the value sets
live in ``kf_trie`` (paths, directories, basenames: an LPM trie keyed by
type, dimension and string), ``kf_comm`` and ``kf_uid``, each entry giving
the clauses whose positive set holds the value and those whose negated set
holds it.  A path prefix entry's bits are copied into every longer entry it
is a prefix of: the trie returns only the longest match.

Two banks: a new filter is written into the idle bank, ``kf_conf.bank`` is
flipped (one aligned 4-byte store: records see the old filter or the new one,
never a mix), then the old bank is emptied.
"""

from __future__ import annotations

import ctypes
import struct
from dataclasses import dataclass, field

from falcopy.engine.kernel_filter import (
    F_CREATE,
    F_DOTDOT,
    F_READ,
    F_TRUNC,
    F_WRITE,
    OPEN_TYPES,
    RES_FAIL,
    RES_OK,
    Clause,
    KernelFilter,
)

# kfilter_maps.h
KF_TYPES = 1024
KF_FDI = KF_TYPES - 1
KF_STR = 251
KF_BANK_SHIFT = 16
KF_EVAL, KF_STATE, KF_HAS_FILE, KF_HAS_COMM, KF_HAS_UID = 1, 2, 4, 8, 16
DIM_PATH, DIM_DIR, DIM_BASE = 0, 1, 2
CLASS_BITS = (F_READ, F_WRITE, F_CREATE, F_TRUNC, F_DOTDOT)

TYPE = struct.Struct("<19QII")
VAL = struct.Struct("<QQ")
TRIE_KEY = struct.Struct(f"<IIB{KF_STR}s")
COMM_KEY = struct.Struct("<I16s")
UID_KEY = struct.Struct("<II")
CONF = struct.Struct("<IIII")
FD_KEY = struct.Struct("<Ii")


def _b(s: str) -> bytes:
    return s.encode("utf-8", "surrogateescape")


@dataclass
class Tables:
    """Map contents for one bank; keys and values as the kernel reads them."""

    types: dict[int, bytes] = field(default_factory=dict)
    trie: dict[bytes, bytes] = field(default_factory=dict)
    comm: dict[bytes, bytes] = field(default_factory=dict)
    uid: dict[bytes, bytes] = field(default_factory=dict)


def _bits(clauses: list[Clause], pred: object) -> int:
    return sum(1 << i for i, c in enumerate(clauses) if pred(c))  # type: ignore[operator]


def _add(vals: dict[object, list[int]], key: object, bit: int, neg: bool) -> None:
    v = vals.setdefault(key, [0, 0])
    v[1 if neg else 0] |= bit


def encode(kf: KernelFilter, event_ids: dict[str, int], bank: int) -> Tables:
    out = Tables()
    for name, tf in kf.types.items():
        ev = event_ids.get(name)
        if ev is None or ev >= KF_FDI:
            continue
        if tf.clauses is None:
            # no entry: the type passes (a zeroed entry is written over old ones)
            out.types[ev] = TYPE.pack(*([0] * 19), 0, 0)
            continue
        _encode_type(out, ev, tf.clauses, tf.state, bank, file_dims=name in OPEN_TYPES)
    if kf.fd_interest is None:
        out.types[KF_FDI] = TYPE.pack(*([0] * 19), 0, 0)
    else:
        _encode_type(out, KF_FDI, kf.fd_interest, False, bank, file_dims=True)
    return out


def _encode_type(out: Tables, ev: int, clauses: list[Clause], state: bool, bank: int, *,
                 file_dims: bool) -> None:
    key_type = bank << KF_BANK_SHIFT | ev
    active = (1 << len(clauses)) - 1
    nofd = _bits(clauses, lambda c: not c.reads_fd)
    dims = ("path", "dir", "base", "comm", "euid")
    dc = [_bits(clauses, lambda c, f=f: getattr(c, f) is None) for f in dims]
    req = [_bits(clauses, lambda c, b=b: c.req & b) for b in CLASS_BITS]
    forbid = [_bits(clauses, lambda c, b=b: c.forbid & b) for b in CLASS_BITS]
    need_ok = _bits(clauses, lambda c: c.res == RES_OK)
    need_fail = _bits(clauses, lambda c: c.res == RES_FAIL)
    paths: dict[object, list[int]] = {}
    strs: dict[object, list[int]] = {}
    comms: dict[object, list[int]] = {}
    uids: dict[object, list[int]] = {}
    for i, c in enumerate(clauses):
        bit = 1 << i
        if file_dims:
            for p in c.path or ():
                _add(paths, _b(p.text) + (b"\0" if p.exact else b""), bit, False)
            for p in c.npath:
                _add(paths, _b(p.text) + (b"\0" if p.exact else b""), bit, True)
            for dim, pos, neg in ((DIM_DIR, c.dir, c.ndir), (DIM_BASE, c.base, c.nbase)):
                for v in pos or ():
                    _add(strs, (dim, _b(v) + b"\0"), bit, False)
                for v in neg:
                    _add(strs, (dim, _b(v) + b"\0"), bit, True)
        for v in c.comm or ():
            _add(comms, v, bit, False)
        for v in c.ncomm:
            _add(comms, v, bit, True)
        for u in c.euid or ():
            _add(uids, u, bit, False)
        for u in c.neuid:
            _add(uids, u, bit, True)
    flags = KF_EVAL | (KF_STATE if state else 0)
    flags |= KF_HAS_FILE if paths or strs else 0
    flags |= KF_HAS_COMM if comms else 0
    flags |= KF_HAS_UID if uids else 0
    out.types[ev] = TYPE.pack(active, nofd, *dc, *req, *forbid, need_ok, need_fail, flags, 0)
    # the trie answers with the longest match only: a prefix's bits go to every
    # longer entry below it
    keys = sorted(paths)  # type: ignore[type-var]
    for k in keys:
        pos = neg = 0
        for other in keys:
            if k.startswith(other):  # type: ignore[attr-defined]
                pos |= paths[other][0]
                neg |= paths[other][1]
        out.trie[_trie_key(key_type, DIM_PATH, k)] = VAL.pack(pos, neg)  # type: ignore[arg-type]
    for (dim, raw), (pos, neg) in strs.items():  # type: ignore[misc]
        out.trie[_trie_key(key_type, dim, raw)] = VAL.pack(pos, neg)
    for name, (pos, neg) in comms.items():
        out.comm[COMM_KEY.pack(key_type, _b(name))] = VAL.pack(pos, neg)  # type: ignore[arg-type]
    for u, (pos, neg) in uids.items():
        out.uid[UID_KEY.pack(key_type, int(u) & 0xFFFFFFFF)] = VAL.pack(pos, neg)  # type: ignore[call-overload]


def _trie_key(key_type: int, dim: int, raw: bytes) -> bytes:
    raw = raw[:KF_STR]
    return TRIE_KEY.pack((4 + 1 + len(raw)) * 8, key_type, dim, raw)


class FilterMaps:
    """The filter maps of a loaded probe: writes a filter into the idle bank and flips.

    The bank switched away from is emptied only at the next switch, before it is
    refilled: a record being filtered while the flip happens may still read it."""

    def __init__(self, lib: object, fds: dict[str, int], *, reserve: int) -> None:
        self._lib = lib
        self._fds = fds
        self.bank = 0
        self.enabled = False
        self.reserve = reserve
        self._tables: list[Tables | None] = [None, None]
        self._write_conf()

    def set(self, kf: KernelFilter | None, event_ids: dict[str, int]) -> None:
        """Put ``kf`` in force (None: every record passes)."""
        if kf is None:
            self.enabled = False
            self._write_conf()
            return
        nxt = 1 - self.bank
        self._clear(nxt)
        tables = encode(kf, event_ids, nxt)
        self._write(tables, nxt)
        self._tables[nxt] = tables
        self.bank, self.enabled = nxt, True
        self._write_conf()

    # --- map writes -------------------------------------------------------
    def _update(self, name: str, key: bytes, value: bytes) -> None:
        lib = self._lib.lib  # type: ignore[attr-defined]
        kb = ctypes.create_string_buffer(key, len(key))
        vb = ctypes.create_string_buffer(value, len(value))
        if lib.bpf_map_update_elem(self._fds[name], kb, vb, 0) != 0:
            raise self._lib.error(f"writing the kernel filter ({name})")  # type: ignore[attr-defined]

    def _delete(self, name: str, key: bytes) -> None:
        lib = self._lib.lib  # type: ignore[attr-defined]
        kb = ctypes.create_string_buffer(key, len(key))
        lib.bpf_map_delete_elem(self._fds[name], kb)

    def _write(self, t: Tables, bank: int) -> None:
        for name, entries in (("kf_trie", t.trie), ("kf_comm", t.comm), ("kf_uid", t.uid)):
            for k, v in entries.items():
                self._update(name, k, v)
        for ev, v in t.types.items():
            self._update("kf_types", struct.pack("<I", bank * KF_TYPES + ev), v)

    def _clear(self, bank: int) -> None:
        t = self._tables[bank]
        if t is None:
            return
        zero = TYPE.pack(*([0] * 19), 0, 0)
        for ev in t.types:
            self._update("kf_types", struct.pack("<I", bank * KF_TYPES + ev), zero)
        for name, entries in (("kf_trie", t.trie), ("kf_comm", t.comm), ("kf_uid", t.uid)):
            for k in entries:
                self._delete(name, k)
        self._tables[bank] = None

    def _write_conf(self) -> None:
        self._update("kf_conf_map", struct.pack("<I", 0),
                     CONF.pack(self.reserve, 1 if self.enabled else 0, self.bank, 0))


def describe(kf: KernelFilter, ruleset: object) -> dict[str, object]:
    """The filter in readable form (``falcopy kernel-filter``)."""
    types = []
    for name, tf in sorted(kf.types.items()):
        types.append({
            "type": name,
            "verdict": "pass" if tf.clauses is None else "filter",
            "state": tf.state,
            "clauses": [] if tf.clauses is None else [c.describe() for c in tf.clauses],
            "why": list(dict.fromkeys(tf.why)),
        })
    fdi = None if kf.fd_interest is None else [c.describe() for c in kf.fd_interest]
    return {"types": types, "fd_interest": fdi}
