"""The pipeline's fast path (``Pipeline.process_raw`` reading open, close, socket and
accept records straight into the tables, decoding a record in full only for a candidate
rule) against the generic path (``fast_path=False``: every record decoded): the same raw
bytes through both give the same process/fd state after every record and the same
alerts, in order, with the same output text.  Constructed records cover the edge
cases; recorded ones (the real probe, the bench workloads) the ordinary stream."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
from collections.abc import Iterator
from dataclasses import astuple
from pathlib import Path
from typing import Any

import pytest
from falcopy.agent.fields.syscall import AgentSyscallSource
from falcopy.agent.kernel import layout
from falcopy.agent.kernel.decoder import HDR, Decoder
from falcopy.agent.kernel.ringbuf import RingBuffer
from falcopy.agent.pipeline import Pipeline
from falcopy.agent.state import ProcessTable
from falcopy.agent.state.model import FdInfo, ThreadInfo

from falcopy.engine import default_sources, load_rules, load_rules_files
from falcopy.engine.loader import RulesInput
from tests.agent.kernel.test_ring_walk import PAGE, Producer
from tests.agent.pipeline.test_prefilter import _corpus
from tests.bench import record_bench
from tests.bench.workloads import build_workload

AT_FDCWD = -100
#: above any pid_max: a thread no table and no /proc knows
GHOST = 5_000_000

EXTRA_RULES = """
- rule: fast path close
  desc: a close of a marked file
  condition: evt.type = close and fd.name startswith /tmp/fp-fast
  output: close %fd.name %fd.num %proc.name
  priority: NOTICE
- rule: fast path failed open
  desc: a failed open
  condition: evt.type in (open, openat, openat2, creat) and evt.res != SUCCESS and fd.name startswith /tmp
  output: failed %fd.name %evt.res %evt.arg.flags
  priority: NOTICE
- rule: fast path truncate
  desc: an open that truncates or creates
  condition: >
    evt.type in (open, openat, openat2, creat) and (evt.arg.flags contains O_TRUNC
    or evt.arg.flags contains O_CREAT) and fd.directory = /var/tmp/fp
  output: trunc %fd.name %fd.nameraw %evt.arg.flags %user.uid %user.loginuid %proc.name
  priority: NOTICE
- rule: fast path directory
  desc: a directory opened
  condition: evt.type in (open, openat, openat2) and fd.typechar = d
  output: dir %fd.name %fd.typechar
  priority: NOTICE
- rule: fast path unicode
  desc: a name that is not UTF-8
  condition: evt.type = openat and fd.filename startswith "fp-bytes"
  output: bytes %fd.name
  priority: NOTICE
- rule: fast path accept
  desc: a connection accepted on the marked port
  condition: evt.type in (accept, accept4) and fd.sport = 8443
  output: accepted %fd.name %fd.l4proto %fd.cip %fd.cport %fd.sip %fd.typechar %fd.num
  priority: NOTICE
- rule: fast path socket
  desc: a datagram or raw socket
  condition: evt.type = socket and (fd.l4proto in (udp, raw) or fd.typechar = u)
  output: socket %fd.type %fd.l4proto %fd.num %evt.arg.domain
  priority: NOTICE
"""

#: a rule every open meets (no file named): the prefilter always evaluates
CONTAINER_RULE = """
- rule: fast path any open in a container
  desc: opens outside the host
  condition: evt.type = openat and container.id != host and fd.num >= 0
  output: in container %fd.name
  priority: NOTICE
"""

#: a namespaced FalcoRule: the ruleset has tenants, so no open is skipped
TENANT_RULE = """
- rule: fast path tenant open [team-a]
  desc: a tenant's rule on opens
  condition: evt.type = openat and fd.name startswith /tmp/fp-fast
  output: tenant %fd.name
  priority: NOTICE
"""


def _sources() -> dict[str, Any]:
    sources = default_sources()
    sources["syscall"] = AgentSyscallSource()
    return sources


@pytest.fixture(scope="module")
def stable_rules(compat_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    extra = tmp_path_factory.mktemp("rules") / "extra.yaml"
    extra.write_text(EXTRA_RULES)
    result = load_rules_files([compat_dir / "falco_rules.yaml", extra], sources=_sources())
    assert result.ok and result.ruleset is not None, [str(m) for m in result.errors]
    return result.ruleset


@pytest.fixture(scope="module")
def actor() -> Iterator[int]:
    """A real process whose parent is this test (the stable rules read the parent)."""
    child = subprocess.Popen(["sleep", "600"])
    try:
        yield child.pid
    finally:
        child.kill()
        child.wait()


class Raw:
    """Records in the probe's layout (record.h), appended to one buffer."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.spans: list[tuple[int, int]] = []
        self.ts = 1_000_000

    def add(self, ev: str, scalars: list[int], variables: list[bytes | None], *, pid: int,
            tid: int | None = None, res: int = 0, comm: bytes = b"fp-actor", euid: int = 0,
            loginuid: int = 0xFFFFFFFF, ppid: int | None = None, cut: int = 0, hdr_flags: int = 0) -> None:
        body = b"".join(struct.pack("<q", v) for v in scalars)
        for v in variables:
            body += struct.pack("<H", layout.ABSENT) if v is None else struct.pack("<H", len(v)) + v
        size = layout.HDR_SIZE + len(body)
        self.ts += 1000
        tid = pid if tid is None else tid
        hdr = HDR.pack(self.ts, 0, res, size, layout.EVENT_IDS[ev], hdr_flags, tid, pid,
                       os.getpid() if ppid is None else ppid, tid, pid, euid, euid, euid, euid,
                       loginuid, 0, 0, comm)
        rec = hdr + body
        # a cut record: the ring holds fewer bytes than its header claims
        self.spans.append((len(self.buf), len(rec) - cut))
        self.buf += rec + bytes(8)

    def open(self, name: bytes | None, *, pid: int, res: int, flags: int = os.O_RDONLY,
             dirpath: bytes | None = None, dirfd: int = AT_FDCWD, ev: str = "openat", **kw: Any) -> None:
        variables = [None if name is None else name + b"\0", dirpath]
        if ev == "openat":
            self.add(ev, [dirfd, flags, 0o644, 2049, 77], variables, pid=pid, res=res, **kw)
        elif ev == "openat2":
            self.add(ev, [dirfd, flags, 0o644, 0, 2049, 77], variables, pid=pid, res=res, **kw)
        elif ev == "open":
            self.add(ev, [flags, 0o644, 2049, 77], variables, pid=pid, res=res, **kw)
        else:
            self.add("creat", [0o644, 2049, 77], variables, pid=pid, res=res, **kw)

    def close(self, num: int, *, pid: int, res: int = 0, **kw: Any) -> None:
        self.add("close", [num], [], pid=pid, res=res, **kw)


def _edge_cases(actor: int) -> Raw:
    r = Raw()
    a = actor
    r.open(b"/etc/shadow", pid=a, res=5)                      # a stable rule's file
    r.close(5, pid=a)
    r.open(b"/tmp/fp-fast-missing", pid=a, res=-2)            # failed open
    r.open(b"/var/tmp/fp/log", pid=a, res=6, flags=os.O_WRONLY | os.O_CREAT | os.O_TRUNC, loginuid=1000)
    r.open(b"/var/tmp/fp/new", pid=a, res=7, ev="creat", euid=1000)
    r.open(b"/var/tmp/fp/old", pid=a, res=8, ev="open", flags=os.O_RDWR | os.O_TRUNC)
    r.open(b"/etc", pid=a, res=9, flags=os.O_DIRECTORY | os.O_RDONLY)     # directory
    r.open(b"shadow", pid=a, res=10, dirfd=9)                 # relative to a dirfd, no dirpath
    r.open(b"../../etc/shadow", pid=a, res=11, dirpath=b"/usr/lib")      # traversal
    r.open(b"rel/x", pid=a, res=12, ev="open", dirpath=b"/work/dir (deleted)")
    r.open(b"rel/y", pid=a, res=13, ev="openat2", dirpath=None)          # against the cwd
    r.open(b"/etc//./passwd", pid=a, res=14)                  # not in normal form
    r.open(b"/tmp/fp-fast/dir/", pid=a, res=15)
    r.open(b"/tmp/fp-fast-a", pid=a, res=16)
    r.open(b"/tmp/fp-fast-b", pid=a, res=16)                  # fd reuse without a close
    r.close(16, pid=a)
    r.close(16, pid=a, res=-9)                                # close of an fd already gone
    r.close(99, pid=a)                                        # never opened
    r.close(-1, pid=a, res=-9)
    r.open(b"/tmp/fp-bytes-\xff\xfe-name", pid=a, res=17)    # not UTF-8
    r.open(b"", pid=a, res=18)                                # empty name
    r.open(None, pid=a, res=19)                               # name absent
    r.open(b"/tmp/fp-fast-cut-name", pid=a, res=20, cut=12)  # name cut by the record's end
    r.open(b"/tmp/fp-fast-cut-scalars", pid=a, res=21, cut=60)          # cut in the scalars
    r.open(b"/etc/" + b"x" * 4000, pid=a, res=22, flags=os.O_WRONLY)   # a long name
    r.open(b"/etc/shadow", pid=a, res=23, hdr_flags=layout.F_TRUNCATED)   # marked truncated
    r.close(23, pid=a, hdr_flags=layout.F_TRUNCATED)
    r.open(b"/tmp/fp-fast-thread", pid=a, tid=GHOST + 1, res=24)          # a new thread of a process
    r.open(b"/tmp/fp-fast-ghost", pid=GHOST, res=3)           # a thread nobody knows
    r.close(3, pid=GHOST)
    r.open(b"/tmp/fp-fast-ghost2", pid=GHOST, res=4)          # known now (from its record)
    r.close(4, pid=GHOST)
    r.add("procexit", [0], [], pid=GHOST)                     # deferred exit, then opens
    r.open(b"/tmp/fp-fast-after-exit", pid=GHOST, res=5)
    r.close(24, pid=a)
    r.open(b"/etc/shadow", pid=a, res=25, comm=b"sshd")       # a new comm
    r.open(b"/etc/shadow", pid=a, res=26, ev="open")
    r.open(b"/etc/shadow", pid=a, res=27, ev="openat2")
    _sockets(r, a)
    return r


def _tuple(family: int, proto: int, lport: int, rport: int, laddr: bytes, raddr: bytes,
           path: bytes | None = None) -> bytes:
    raw = struct.pack("<HHHH16s16s", family, proto, lport, rport, laddr, raddr)
    return raw if path is None else raw + struct.pack("<H", len(path)) + path


def _sockets(r: Raw, a: int) -> None:
    lo4, peer4 = bytes([127, 0, 0, 1]), bytes([10, 1, 2, 3])
    lo6 = bytes(15) + b"\x01"
    r.add("socket", [socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_CLOEXEC, 0], [], pid=a, res=30)
    r.add("socket", [socket.AF_INET, socket.SOCK_DGRAM, 17], [], pid=a, res=31)
    r.add("socket", [socket.AF_INET6, socket.SOCK_RAW, 255], [], pid=a, res=32)
    r.add("socket", [socket.AF_UNIX, socket.SOCK_STREAM, 0], [], pid=a, res=33)
    r.add("socket", [17, socket.SOCK_RAW, 0], [], pid=a, res=34)           # AF_PACKET
    r.add("socket", [socket.AF_INET, socket.SOCK_STREAM, 0], [], pid=a, res=-24)   # EMFILE
    r.add("socket", [socket.AF_INET, socket.SOCK_STREAM, 0], [], pid=GHOST, res=6)
    # accepts on listener 30 (known) and 77 (never seen)
    r.add("accept", [30], [_tuple(socket.AF_INET, 6, 8443, 51000, lo4, peer4)], pid=a, res=35)
    r.add("accept4", [30, socket.SOCK_CLOEXEC], [_tuple(socket.AF_INET, 6, 8443, 51001, lo4, peer4)],
          pid=a, res=36)
    r.add("accept", [77], [_tuple(socket.AF_INET6, 6, 8443, 51002, lo6, lo6)], pid=a, res=37)
    r.add("accept", [77], [_tuple(socket.AF_INET, 99, 8443, 51003, lo4, peer4)], pid=a, res=38)  # odd l4
    r.add("accept", [33], [_tuple(socket.AF_UNIX, 0, 0, 0, b"", b"", b"/run/fp.sock\0")], pid=a, res=39)
    r.add("accept", [30], [None], pid=a, res=40)                            # tuple absent
    r.add("accept", [30], [_tuple(socket.AF_INET, 6, 8443, 1, lo4, peer4)[:20]], pid=a, res=41)  # short
    r.add("accept", [30], [_tuple(socket.AF_INET, 6, 8443, 51004, lo4, peer4)], pid=a, res=-11)  # EAGAIN
    r.add("accept", [30], [_tuple(socket.AF_INET, 6, 8443, 51005, lo4, peer4)], pid=a, res=35)   # fd reuse
    r.add("accept", [30], [_tuple(socket.AF_INET, 6, 8443, 51006, lo4, peer4)], pid=a, res=42, cut=8)
    r.add("accept", [6], [_tuple(socket.AF_INET, 6, 8443, 51007, lo4, peer4)], pid=GHOST, res=7)
    for num in (35, 36, 37, 38, 39, 30):
        r.close(num, pid=a)


def _table(actor: int) -> ProcessTable:
    table = ProcessTable()
    info = ThreadInfo(pid=actor, tid=actor, ptid=os.getpid(), comm="fp-actor", exe="/usr/bin/fp-actor",
                      exepath="/usr/bin/fp-actor", cwd="/home/fp", container_id="host")
    info.fds[1] = FdInfo("file", "/dev/null", 1, os.O_WRONLY)
    table.threads[actor] = info
    return table


def _snapshot(table: ProcessTable) -> list[Any]:
    out = []
    for tid, info in sorted(table.threads.items()):
        # this test process is read from /proc when a rule asks for a parent: its own
        # fds are not the records' business
        fds = [] if info.pid == os.getpid() else sorted((n, astuple(fd)) for n, fd in info.fds.items())
        out.append((tid, info.pid, info.tid, info.ptid, info.uid, info.gid, info.loginuid, info.comm,
                    info.cwd, info.partial, sorted(info.threads), fds))
    pending = table.pending_fd_close
    out.append(None if pending is None else (pending[0].pid, pending[1]))
    out.append(None if table.pending_exit is None else table.pending_exit.pid)
    return out


def _pipes(ruleset: Any, actor: int,
           table_of: Any = _table) -> tuple[Pipeline, Pipeline, list[Any], list[Any]]:
    alerts: dict[bool, list[Any]] = {True: [], False: []}
    pipes = []
    for fast in (True, False):
        got = alerts[fast]
        # the reference: every record decoded and every candidate evaluated (no prefilter)
        pipes.append(Pipeline(ruleset, table_of(actor), fast_path=fast, prefilter=fast,
                              on_alert=lambda rule, ev, got=got: got.append(
                                  (ev.num, rule.name, ruleset.format(rule, ev)))))
    return pipes[0], pipes[1], alerts[True], alerts[False]


def _same(raw: Raw, ruleset: Any, actor: int, batch: int, table_of: Any = _table) -> list[Any]:
    """Replay in batches of ``batch`` through both paths, comparing after each batch
    (inside a batch the deferred removals are applied by the next record, so batches of
    one compare the state after every record, larger ones the removals in flight)."""
    fast, generic, got_fast, got_generic = _pipes(ruleset, actor, table_of)
    decoder = Decoder()
    for i in range(0, len(raw.spans), batch):
        spans = raw.spans[i:i + batch]
        fast.process_raw(bytes(raw.buf), spans, decoder)
        generic.process_raw(bytes(raw.buf), spans, decoder)
        assert got_fast == got_generic, f"records {i}..{i + batch}"
        assert _snapshot(fast.state) == _snapshot(generic.state), f"records {i}..{i + batch}"
    assert (fast.events, fast.errors, fast.alerts) == (generic.events, generic.errors, generic.alerts)
    assert fast.type_counts == generic.type_counts
    assert fast.errors == 0
    return got_generic


@pytest.mark.parametrize("batch", [1, 3, 1000])
def test_edge_cases_same_state_and_alerts(stable_rules: Any, actor: int, batch: int) -> None:
    raw = _edge_cases(actor)
    alerts = _same(raw, stable_rules, actor, batch)
    names = {name for _, name, _ in alerts}
    # the cases above do reach the rules: the comparison is not between two silences
    assert {"Read sensitive file untrusted", "fast path close", "fast path failed open",
            "fast path truncate", "fast path directory", "fast path unicode", "fast path accept",
            "fast path socket"} <= names, names
    outputs = "\n".join(text[0] for _, _, text in alerts)
    assert "bytes /tmp/fp-bytes-" in outputs and "fileraw=../../etc/shadow" in outputs
    assert "evt_type=open " in outputs and "evt_type=openat2 " in outputs
    assert "accepted 10.1.2.3:51001->127.0.0.1:8443 tcp" in outputs
    assert "accepted ::1:51002->::1:8443" in outputs


def test_fast_path_skips_the_full_decode(compat_dir: Path, actor: int) -> None:
    """With Falco's stable rules (no rule on close), opens of files no rule names and
    their closes are never decoded in full: the fast pipeline runs the generic decoder
    only for what a rule is a candidate for, plus the odd records."""
    result = load_rules_files([compat_dir / "falco_rules.yaml"], sources=_sources())
    assert result.ok and result.ruleset is not None
    stable_rules = result.ruleset
    raw = Raw()
    for i in range(200):
        raw.open(f"/usr/lib/fp-lib-{i}.so".encode(), pid=actor, res=5)
        raw.close(5, pid=actor)
    decoded = {True: 0, False: 0}

    class Counting(Decoder):
        __slots__ = ("fast",)

        def decode_at(self, buf: Any, off: int, size: int) -> Any:
            decoded[self.fast] += 1
            return super().decode_at(buf, off, size)

    fast, generic, _, _ = _pipes(stable_rules, actor)
    for pipe, is_fast in ((fast, True), (generic, False)):
        dec = Counting()
        dec.fast = is_fast
        pipe.process_raw(bytes(raw.buf), raw.spans, dec)
    assert decoded == {True: 0, False: 400}
    assert _snapshot(fast.state) == _snapshot(generic.state)
    assert fast.events == generic.events == 400


def test_prefilter_corpus_same_alerts(stable_rules: Any, actor: int) -> None:
    """The prefilter's corpus (every path, directory and name of the stable rules, raw
    ``../`` names, four flag sets, several process names) as raw records."""
    raw = Raw()
    for name, comm, flags in _corpus(stable_rules):
        raw.open(name.encode(), pid=actor, res=9, flags=flags, comm=comm.encode(), dirpath=b"/srv/app")
        raw.close(9, pid=actor)
    alerts = _same(raw, stable_rules, actor, 257)
    assert {"Read sensitive file untrusted", "Clear Log Activities",
            "Directory traversal monitored file read"} <= {name for _, name, _ in alerts}


@pytest.mark.parametrize("extra", ["container", "tenant"])
def test_rules_evaluated_on_every_open(compat_dir: Path, actor: int, extra: str) -> None:
    """A rule no file constrains (any open in a container) and a tenant's rules leave no
    open to skip: each is evaluated, through the fast path as through the generic one."""
    text = (compat_dir / "falco_rules.yaml").read_text()
    inputs = [RulesInput("falco_rules.yaml", text)]
    if extra == "container":
        inputs.append(RulesInput("container.yaml", CONTAINER_RULE))
    else:
        inputs.append(RulesInput("tenant.yaml", TENANT_RULE, namespace="team-a"))
    result = load_rules(inputs, sources=_sources())
    assert result.ok and result.ruleset is not None, [str(m) for m in result.errors]
    ruleset = result.ruleset

    def in_container(actor: int) -> ProcessTable:
        table = _table(actor)
        table.threads[actor].container_id = "0123456789ab"
        return table

    raw = Raw()
    for i in range(50):
        raw.open(f"/tmp/fp-fast-{i}".encode(), pid=actor, res=5)
        raw.close(5, pid=actor)
    fast, generic, got_fast, got_generic = _pipes(ruleset, actor, in_container)
    decoder = Decoder()
    fast.process_raw(bytes(raw.buf), raw.spans, decoder)
    generic.process_raw(bytes(raw.buf), raw.spans, decoder)
    assert got_fast == got_generic
    assert fast.evaluated == generic.evaluated >= 50
    if extra == "container":
        assert sum(name == "fast path any open in a container" for _, name, _ in got_fast) == 50


@pytest.mark.parametrize("batch", [2, 1000])
def test_credentials_and_names_change_between_records_of_a_batch(compat_dir: Path, actor: int,
                                                                batch: int) -> None:
    """Records no rule is a candidate for, one thread after another in one batch: the fast
    loop stores a thread's credentials and name again only when they differ from what the
    last record stored, and a thread that is not the last record's takes its own.  In
    pairs, the change second: batches of 2 compare the state right after each change."""
    other = GHOST + 7

    def two_threads(actor: int) -> ProcessTable:
        table = _table(actor)
        table.threads[other] = ThreadInfo(pid=other, tid=other, ptid=os.getpid(), comm="fp-other",
                                          exe="/usr/bin/fp-other", container_id="host")
        return table

    r = Raw()
    lib = b"/usr/lib/fp-lib.so"
    r.open(lib, pid=actor, res=5)
    r.open(lib, pid=actor, res=6, loginuid=1000)               # the same thread, a new loginuid
    r.open(lib, pid=actor, res=7, loginuid=1000)
    r.open(lib, pid=actor, res=8, loginuid=1000, euid=1000)    # a new uid and gid
    r.open(lib, pid=actor, res=9, loginuid=1000, euid=1000)
    r.open(lib, pid=actor, res=10, loginuid=1000, euid=1000, ppid=1)   # a new parent
    r.open(lib, pid=actor, res=11, loginuid=1000, euid=1000, ppid=1)
    r.open(lib, pid=other, res=5)                              # another thread, the same comm
    r.open(lib, pid=other, res=6)
    r.open(lib, pid=other, res=7, comm=b"fp-renamed")          # a new comm
    r.open(lib, pid=other, res=8, comm=b"fp-renamed")
    r.open(lib, pid=other, res=9, comm=b"fp-renamed", euid=33)
    r.open(lib, pid=actor, res=12, comm=b"fp-renamed")         # back to the first thread
    r.close(5, pid=actor, comm=b"fp-renamed")
    # Falco's stable rules alone: no rule is a candidate for these opens (nothing evaluated
    # between them, so the loop keeps the last record's thread)
    result = load_rules_files([compat_dir / "falco_rules.yaml"], sources=_sources())
    assert result.ok and result.ruleset is not None
    _same(r, result.ruleset, actor, batch, two_threads)


@pytest.mark.parametrize("limit", [1, 7, 8192])
def test_the_ring_walked_in_place_same_state_and_alerts(stable_rules: Any, actor: int, limit: int) -> None:
    """The edge cases written into a ring laid out as the kernel's (a 16 KiB memfd, three
    rounds: records straddle its end, batches run across it) and walked in place by the
    fast loop (``RingBuffer.drain_walk`` -> ``Pipeline.process_ring``), against the same
    records as spans through the generic path."""
    raw = _edge_cases(actor)
    payloads = [bytes(raw.buf[off:off + size]) for off, size in raw.spans]
    size = 4 * PAGE
    fd = os.memfd_create("fast-path-ring")
    os.ftruncate(fd, 2 * PAGE + size)
    producer = Producer(fd, size)
    rb = RingBuffer(fd, size)
    fast, generic, got_fast, got_generic = _pipes(stable_rules, actor)
    decoder = Decoder()
    walked = 0
    try:
        for _ in range(3):
            i = 0
            while i < len(payloads):
                # as much as the ring holds, then read until it is empty
                j, room = i, size
                while j < len(payloads) and (need := (len(payloads[j]) + 15) & ~7) <= room:
                    producer.put(payloads[j])
                    room -= need
                    j += 1
                while n := rb.drain_walk(lambda w: fast.process_ring(w, decoder),
                                         lambda buf, spans: fast.process_raw(buf, spans, decoder), limit):
                    assert n <= limit
                    walked += n
                generic.process_raw(bytes(raw.buf), raw.spans[i:j], decoder)
                assert producer.consumed() == producer.prod
                assert got_fast == got_generic, f"records {i}..{j}"
                assert _snapshot(fast.state) == _snapshot(generic.state), f"records {i}..{j}"
                i = j
    finally:
        rb.close()
        producer.map.close()
    assert walked == 3 * len(payloads)
    assert rb.wrapped > 0
    assert (fast.events, fast.errors, fast.alerts) == (generic.events, 0, generic.alerts)
    assert fast.type_counts == generic.type_counts
    assert {"Read sensitive file untrusted", "fast path accept"} <= {name for _, name, _ in got_fast}


@pytest.mark.kernel
@pytest.mark.parametrize("mode", ["openclose", "connect"])
def test_recorded_records_same_state_and_alerts(stable_rules: Any, require_root: None, compat_dir: Path,
                                               mode: str, tmp_path: Path) -> None:
    """The records the real probe made for the bench workloads (open/close; socket,
    connect, accept, close), replayed through both paths."""
    rec = tmp_path / f"{mode}.rec"
    rules = [str(compat_dir / "falco_rules.yaml")]
    got = record_bench.record(build_workload(tmp_path), mode, 0.2, rec, rules)
    assert got["records"] > 500, got
    buf, spans = record_bench.load(rec)
    fast, generic, got_fast, got_generic = _pipes(stable_rules, 0, lambda _: ProcessTable())
    decoder = Decoder()
    for i in range(0, len(spans), 500):
        fast.process_raw(buf, spans[i:i + 500], decoder)
        generic.process_raw(buf, spans[i:i + 500], decoder)
        assert got_fast == got_generic
        assert _snapshot(fast.state) == _snapshot(generic.state)
    assert fast.events == generic.events == len(spans)
    assert fast.errors == generic.errors == 0


# ---------------------------------------------------------------- socket and connect
#: rules on connect and socket that constrain what the socket prefilter decides (ports of
#: each end, the host, process names, protocols), beside the stable rules' own
NET_RULES = """
- rule: fast path host connect to a database
  desc: a host process connecting to a database port
  condition: evt.type = connect and container.id = host and fd.rport in (5432, 6379) and fd.l4proto = tcp
  output: db %fd.name %fd.rport %proc.name
  priority: NOTICE
- rule: fast path connect by a marked process
  desc: a marked process connecting from a fixed local port
  condition: evt.type = connect and proc.name in (fp-curl) and fd.lport = 40000
  output: marked %fd.name %fd.lport
  priority: NOTICE
- rule: fast path udp6 connect
  desc: a datagram socket connected over IPv6 from a client port
  condition: evt.type = connect and fd.typechar = 6 and fd.l4proto = udp and fd.cport in (53000, 53001)
  output: udp6 %fd.name %fd.cport %fd.sip
  priority: NOTICE
- rule: fast path netlink socket in a container
  desc: a netlink socket in a container
  condition: evt.type = socket and container.id != host and fd.type = netlink
  output: netlink %fd.type %proc.name
  priority: NOTICE
"""

_PORT_FIELDS = ("fd.sport", "fd.cport", "fd.lport", "fd.rport", "fd.port")
_NET_FIELDS = ("fd.ip", "fd.sip", "fd.cip", "fd.rip", "fd.lip", "fd.net", "fd.snet", "fd.cnet", "fd.rnet",
               "fd.lnet")


def _net_literals(ruleset: Any) -> tuple[set[int], set[str], set[str]]:
    """Ports, addresses and process names the rules on socket/connect compare with:
    the corpus is built from them (each network's first, second and last address)."""
    import ipaddress

    from falcopy.engine import ast

    ports: set[int] = set()
    addrs: set[str] = set()
    comms: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, ast.MacroRef):
            walk(node.body)
        elif isinstance(node, ast.Not):
            walk(node.child)
        elif isinstance(node, ast.And | ast.Or):
            for c in node.children:
                walk(c)
        elif isinstance(node, ast.Check) and isinstance(node.left, ast.FieldRef):
            r = node.right
            vals = [r.value] if isinstance(r, ast.Value) else list(r.values) if isinstance(r, ast.ListValue) \
                else []
            name = node.left.name
            for v in vals:
                if name in _PORT_FIELDS and v.isdigit():
                    ports.add(int(v))
                elif name in _NET_FIELDS:
                    net = ipaddress.ip_network(v, strict=False)
                    addrs.update(str(a) for a in (net.network_address, net.network_address + 1,
                                                  net.broadcast_address))
                elif name == "proc.name":
                    comms.add(v)

    for r in ruleset.enabled_rules():
        if r.source == "syscall" and (r.evttypes is None or r.evttypes & {"socket", "connect"}):
            walk(r.tree)
    return ports, addrs, comms


def _sockaddr(family: int, addr: str, port: int) -> bytes:
    if family == socket.AF_INET:
        return struct.pack("<H", family) + struct.pack(">H", port) + socket.inet_pton(family, addr) + bytes(8)
    return (struct.pack("<H", family) + struct.pack(">H", port) + bytes(4) + socket.inet_pton(family, addr)
            + bytes(4))


#: actors of the socket corpus: (pid offset, comm, exe, container id)
_NET_ACTORS = [
    (0, "fp-actor", "/usr/bin/fp-actor", "host"), (1, "ssh", "/usr/bin/ssh", "host"),
    (2, "fp-curl", "/usr/bin/fp-curl", "host"), (3, "fp-actor", "/usr/bin/fp-actor", "0123456789ab"),
    (4, "ssh", "/usr/bin/ssh", "0123456789ab")]
NET_BASE = 4_000_000


def _net_table(actor: int) -> ProcessTable:
    table = _table(actor)
    for i, comm, exe, cid in _NET_ACTORS:
        pid = NET_BASE + i
        table.threads[pid] = ThreadInfo(pid=pid, tid=pid, ptid=os.getpid(), comm=comm, exe=exe, exepath=exe,
                                        cwd="/", container_id=cid)
    return table


def _net_corpus(ruleset: Any) -> Raw:
    """socket, connect and close records of every actor to the rules' own ports and
    addresses (and ports/addresses no rule names), over IPv4 and IPv6, TCP and UDP,
    succeeded, under way and failed; sockets of five families."""
    ports, addrs, comms = _net_literals(ruleset)
    assert {22, 443, 8080, 5432, 40000, 53000} - {22} <= ports and {"fp-curl"} <= comms, (ports, comms)
    ports |= {22, 2222, 0, 65535}
    v4 = [*sorted(a for a in addrs if ":" not in a), "8.8.8.8", "127.0.0.1"]
    v6 = [*sorted(a for a in addrs if ":" in a), "2001:db8::1", "::1"]
    r = Raw()
    for i, comm, _, _ in _NET_ACTORS:
        pid = NET_BASE + i
        kw: dict[str, Any] = {"pid": pid, "comm": comm.encode()}
        for domain, stype in ((socket.AF_INET, socket.SOCK_STREAM), (socket.AF_INET6, socket.SOCK_DGRAM),
                              (socket.AF_UNIX, socket.SOCK_STREAM), (17, socket.SOCK_RAW),
                              (socket.AF_NETLINK, socket.SOCK_RAW)):
            r.add("socket", [domain, stype, 0], [], res=7, **kw)
            r.close(7, **kw)
        n = 0
        for family, pool, proto, stype in ((socket.AF_INET, v4, 6, socket.SOCK_STREAM),
                                           (socket.AF_INET6, v6, 17, socket.SOCK_DGRAM)):
            local = "10.0.0.5" if family == socket.AF_INET else "fd00::5"
            for addr in pool:
                for port in sorted(ports):
                    n += 1
                    res = (0, -115, -111)[n % 3]        # connected, EINPROGRESS, ECONNREFUSED
                    lport = (40000, 53000, 33000 + n % 7)[n % 3]
                    r.add("socket", [family, stype, proto], [], res=8, **kw)
                    tup = _tuple(family, proto, lport, port, socket.inet_pton(family, local),
                                 socket.inet_pton(family, addr))
                    r.add("connect", [8], [_sockaddr(family, addr, port), tup], res=res, **kw)
                    r.close(8, **kw)
    return r


def _connect_edge_cases(actor: int) -> Raw:
    r = Raw()
    a = actor
    lo4 = socket.inet_pton(socket.AF_INET, "127.0.0.1")
    peer = socket.inet_pton(socket.AF_INET, "93.184.216.34")
    tup4 = _tuple(socket.AF_INET, 6, 41000, 443, lo4, peer)
    sin = _sockaddr(socket.AF_INET, "93.184.216.34", 443)
    r.add("connect", [50], [sin, tup4], pid=a, res=0)                       # an fd never seen: created
    r.add("connect", [-1], [sin, tup4], pid=a, res=-9)                      # EBADF
    r.add("socket", [socket.AF_INET, socket.SOCK_STREAM, 0], [], pid=a, res=51)
    r.add("connect", [51], [sin, tup4], pid=a, res=-115)                    # under way
    r.add("connect", [51], [sin, tup4], pid=a, res=0)                       # named again: name_changed
    r.add("socket", [socket.AF_UNIX, socket.SOCK_STREAM, 0], [], pid=a, res=52)
    r.add("connect", [52], [struct.pack("<H", socket.AF_UNIX) + b"/run/fp.sock\0",
                            _tuple(socket.AF_UNIX, 0, 0, 0, b"", b"", b"/run/fp.sock\0")], pid=a, res=0)
    r.add("connect", [53], [sin[:6], tup4], pid=a, res=0)                   # sockaddr cut short
    r.add("connect", [54], [None, tup4], pid=a, res=0)                      # sockaddr absent
    r.add("connect", [55], [sin, None], pid=a, res=0)                       # tuple absent
    r.add("connect", [56], [sin, tup4[:20]], pid=a, res=0)                  # tuple short
    r.add("connect", [57], [struct.pack("<H", 0) + bytes(14), tup4], pid=a, res=-97)  # AF_UNSPEC
    r.add("connect", [58], [sin, _tuple(socket.AF_INET6, 6, 41000, 443, bytes(15) + b"\x01",
                                        bytes(15) + b"\x01")], pid=a, res=0)  # v4 address, v6 tuple
    r.add("connect", [59], [_sockaddr(socket.AF_INET6, "2001:db8::7", 22),
                            _tuple(socket.AF_INET6, 99, 41000, 22, bytes(15) + b"\x01",
                                   socket.inet_pton(socket.AF_INET6, "2001:db8::7"))], pid=a, res=0)  # odd l4
    r.add("connect", [60], [sin, tup4], pid=a, res=0, cut=10)               # cut in the tuple
    r.add("connect", [61], [sin, tup4], pid=GHOST, res=0)                   # a thread nobody knows
    for num in (50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60):
        r.close(num, pid=a)
    return r


@pytest.fixture(scope="module")
def net_rules(compat_dir: Path) -> Any:
    text = (compat_dir / "falco_rules.yaml").read_text()
    result = load_rules([RulesInput("falco_rules.yaml", text), RulesInput("net.yaml", NET_RULES)],
                        sources=_sources())
    assert result.ok and result.ruleset is not None, [str(m) for m in result.errors]
    return result.ruleset


@pytest.mark.parametrize("batch", [1, 1000])
def test_connect_edge_cases_same_state_and_alerts(net_rules: Any, actor: int, batch: int) -> None:
    _same(_connect_edge_cases(actor), net_rules, actor, batch)


def test_socket_corpus_same_alerts_fewer_evaluations(net_rules: Any, actor: int) -> None:
    """The rules' own ports, addresses and names, from the host and from a container:
    the socket prefilter skips most records, and every alert is still raised."""
    raw = _net_corpus(net_rules)
    alerts = _same(raw, net_rules, actor, 499, _net_table)
    names = {name for _, name, _ in alerts}
    assert {"Disallowed SSH Connection Non Standard Port", "Packet socket created in container",
            "fast path host connect to a database", "fast path connect by a marked process",
            "fast path udp6 connect", "fast path netlink socket in a container"} <= names, names
    fast, generic, _, _ = _pipes(net_rules, actor, _net_table)
    decoder = Decoder()
    fast.process_raw(bytes(raw.buf), raw.spans, decoder)
    generic.process_raw(bytes(raw.buf), raw.spans, decoder)
    # most of the corpus is made to meet the rules, yet a good part is still skipped
    assert len(alerts) <= fast.evaluated < generic.evaluated * 0.7, (fast.evaluated, generic.evaluated)


def _flip_container(atom: Any) -> Any:
    from falcopy.agent.socket_prefilter import SockClause

    def mutant(node: Any, neg: bool) -> Any:
        return [SockClause(container=not c.container) if c.container is not None else c
                for c in atom(node, neg)]
    return mutant


def _server_port_as_client(atom: Any) -> Any:
    from dataclasses import replace

    def mutant(node: Any, neg: bool) -> Any:
        return [replace(c, sport=None, cport=c.sport) if c.sport is not None else c for c in atom(node, neg)]
    return mutant


@pytest.mark.parametrize("mutate", [_flip_container, _server_port_as_client])
def test_socket_prefilter_mutants_are_caught(net_rules: Any, actor: int, monkeypatch: pytest.MonkeyPatch,
                                             mutate: Any) -> None:
    """A prefilter that reads the container the wrong way round, or the server's port
    from the client's end, skips records a rule matches: the corpus comparison fails."""
    from falcopy.agent import socket_prefilter

    monkeypatch.setattr(socket_prefilter, "_atom", mutate(socket_prefilter._atom))
    with pytest.raises(AssertionError):
        _same(_net_corpus(net_rules), net_rules, actor, 499, _net_table)
