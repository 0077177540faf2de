"""Per-record user-space cost of the event path, stage by stage (issue "Event path").

Records are captured once from the real probe while a workload runs (the raw bytes of
each ring record, exactly as the probe lays them out), then replayed from memory through
the agent's own code, without the kernel:

- ``decode+state``: :meth:`Pipeline.process_raw` without rules (the raw bytes into the
  process/fd tables: the fast path for the hot types, the decoder for the others);
- ``fields+rules``: the pipeline with the rules (fields, compiled conditions);
- ``output``: the same with every alert formatted (Falco's output line and fields);
- ``generic decode``: :meth:`Decoder.decode_at` alone over every record, for reference;
- ``ring walk`` / ``ring spans``: the rules stage read from a ring laid out as the kernel's
  (a memfd holding the recording, a lap per pass), as the agent reads it: the fast loop
  walking the ring in place (``RingBuffer.drain_walk`` -> :meth:`Pipeline.process_ring`),
  and the span list of ``RingBuffer.drain_spans`` -> :meth:`Pipeline.process_raw` (the
  reading before it), in the probe's batches.

``--no-fast`` replays with every record decoded in full (the fast path off).

Besides CPU µs, each stage's Python-level function calls per record (cProfile's count:
deterministic, so before/after comparisons hold on a machine too busy for timings).

Each stage is timed in CPU time (``time.process_time``: robust to neighbours on a shared
machine), best of ``--rounds`` passes over the whole recording; the difference between
stages is that stage's cost per record.  ``--profile`` prints a cProfile of the full path.

    python -m tests.bench.record_bench record WORKLOAD SECONDS OUT [RULES...]   (root)
    python -m tests.bench.record_bench replay IN [--rounds N] [--profile] RULES...
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import os
import pstats
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

_LEN = struct.Struct("<I")


def _rules_types(rules: list[str]) -> set[str] | None:
    from falcopy.agent.fields.syscall import AgentSyscallSource

    from falcopy.engine import default_sources, load_rules_files

    sources = default_sources()
    sources["syscall"] = AgentSyscallSource()
    result = load_rules_files(rules, sources=sources)
    assert result.ok and result.ruleset is not None, [str(m) for m in result.errors]
    types = result.ruleset.evttypes("syscall")
    return set(types) if types is not None else None


def record(workload: Path, mode: str, seconds: float, out: Path, rules: list[str]) -> dict[str, Any]:
    """Run ``workload MODE SECONDS`` with the probe attached (filter off, the event types
    the rules and the tables need) and store every record the workload's process made."""
    from falcopy.agent.kernel.probe import SUPPORTED_EVENTS, Probe
    from falcopy.agent.state import STATE_EVENT_TYPES

    types = _rules_types(rules)
    wanted = (types if types is not None else set(SUPPORTED_EVENTS)) | STATE_EVENT_TYPES
    # a uniquely named copy: its records are told from the neighbours' by its pid
    with tempfile.TemporaryDirectory() as tmp:
        binary = Path(tmp) / f"falcopy-recbench-{os.getpid()}"
        binary.write_bytes(workload.read_bytes())
        binary.chmod(0o755)
        raw: list[bytes] = []
        with Probe() as probe:
            probe.load()
            probe.set_event_filter(wanted & SUPPORTED_EVENTS)
            probe.ignore_pid(os.getpid())
            probe.attach()
            ring = probe._need_ring()  # the raw records, before decoding
            proc = subprocess.Popen([str(binary), mode, str(seconds)], stdout=subprocess.PIPE)
            pid = proc.pid
            kept: list[tuple[bytes, int]] = []

            def keep(buf: Any, off: int, size: int) -> None:
                # tgid at header offset 36 (record.h: ts, cgroup_id, res, len/type/flags, tid, pid)
                kept.append((bytes(buf[off:off + size]), _LEN.unpack_from(buf, off + 36)[0]))

            while proc.poll() is None:
                ring.wait(50)
                ring.drain(keep, 1 << 20)
            for _ in range(20):
                ring.drain(keep, 1 << 20)
            drops = probe.drops()
        raw = [b for b, tgid in kept if tgid == pid]
    with out.open("wb") as fh:
        for b in raw:
            fh.write(_LEN.pack(len(b)))
            fh.write(b)
    return {"records": len(raw), "all_records": len(kept), "drops": drops}


def load(path: Path) -> tuple[bytes, list[tuple[int, int]]]:
    """The recording as one buffer and the (offset, size) of each record in it."""
    data = path.read_bytes()
    spans: list[tuple[int, int]] = []
    pos = 0
    buf = bytearray()
    while pos < len(data):
        (n,) = _LEN.unpack_from(data, pos)
        pos += 4
        spans.append((len(buf), n))
        buf += data[pos:pos + n]
        pos += n
    return bytes(buf), spans


def _cpu(fn: Callable[[], Any]) -> float:
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


class _Ring:
    """The recording in a ring laid out as the kernel's (a memfd: consumer page, producer
    page, data area), padded to the ring's size by a discarded record so that every lap
    holds the same records at the same places: a pass publishes one more lap and reads it."""

    def __init__(self, buf: Any, spans: list[tuple[int, int]]) -> None:
        import mmap

        from falcopy.agent.kernel.ringbuf import DISCARD, RingBuffer

        page = mmap.PAGESIZE
        total = sum((size + 15) & ~7 for _, size in spans) + 8
        size = page
        while size < total:
            size <<= 1
        fd = os.memfd_create("record-bench-ring")
        os.ftruncate(fd, 2 * page + size)
        self.map = mmap.mmap(fd, 2 * page + size)
        pos = 2 * page
        for off, n in spans:
            struct.pack_into("<II", self.map, pos, n, 0)
            self.map[pos + 8:pos + 8 + n] = buf[off:off + n]
            pos += (n + 15) & ~7
        struct.pack_into("<II", self.map, pos, (2 * page + size - pos - 8) | DISCARD, 0)
        self.page = page
        self.size = size
        self.laps = 0
        self.ring = RingBuffer(fd, size)

    def lap(self) -> None:
        self.laps += 1
        struct.pack_into("<Q", self.map, self.page, self.laps * self.size)


def replay(path: Path, rules: list[str], rounds: int = 5, profile: bool = False,
           repeat: int = 1, fast: bool = True) -> dict[str, Any]:
    """Replay the recording through ``Pipeline.process_raw`` (the agent's entry point),
    with the fast path (``fast``) or with every record decoded in full (the generic
    path, the reference)."""
    from falcopy.agent.fields.syscall import AgentSyscallSource
    from falcopy.agent.kernel.decoder import Decoder
    from falcopy.agent.pipeline import Pipeline, tune_gc
    from falcopy.agent.state import ProcessTable

    from falcopy.engine import default_sources, load_rules_files

    buf, spans = load(path)
    spans = spans * repeat
    sources = default_sources()
    sources["syscall"] = AgentSyscallSource()
    result = load_rules_files(rules, sources=sources)
    assert result.ok and result.ruleset is not None
    ruleset = result.ruleset
    decoder = Decoder()
    decoder.ts_offset = time.time_ns() - time.clock_gettime_ns(time.CLOCK_BOOTTIME)
    decode_at = decoder.decode_at

    def decode_all() -> list[Any]:
        return [r for off, size in spans if (r := decode_at(buf, off, size)) is not None]

    alerts = {"n": 0}

    def count(rule: Any, event: Any) -> None:
        alerts["n"] += 1

    def fmt(rule: Any, event: Any) -> None:
        alerts["n"] += 1
        ruleset.format(rule, event)

    pipes = {
        "state": Pipeline(None, ProcessTable(), fast_path=fast),
        "rules": Pipeline(ruleset, ProcessTable(), on_alert=count, fast_path=fast),
        "output": Pipeline(ruleset, ProcessTable(), on_alert=fmt, fast_path=fast),
    }
    # the first pass loads the recorded processes (gone by now) from their records
    for p in pipes.values():
        p.process_raw(buf, spans, decoder)
    tune_gc()
    n = len(spans)
    # stages interleaved within each round, best of the rounds: a neighbour's burst
    # inflates one round of every stage rather than all rounds of one stage
    runs: dict[str, Callable[[], Any]] = {"decode": decode_all}
    for name, p in pipes.items():
        runs[name] = lambda p=p: p.process_raw(buf, spans, decoder)
    # the rules stage read from the ring: walked in place, and as spans (the reading before)
    from falcopy.agent.kernel.probe import BATCH_LIMIT

    ring = _Ring(buf, spans)
    for stage in ("ring walk", "ring spans"):
        p = Pipeline(ruleset, ProcessTable(), on_alert=count, fast_path=fast)
        p.process_raw(buf, spans, decoder)

        def read(p: Pipeline = p, walk: bool = stage == "ring walk") -> None:
            def consume(b: Any, s: list[tuple[int, int]]) -> None:
                p.process_raw(b, s, decoder)

            ring.lap()
            if walk:
                while ring.ring.drain_walk(lambda w: p.process_ring(w, decoder), consume, BATCH_LIMIT):
                    pass
            else:
                while ring.ring.drain_spans(consume, BATCH_LIMIT):
                    pass
        runs[stage] = read
    cpu = dict.fromkeys(runs, float("inf"))
    alerts["n"] = 0
    for _ in range(rounds):
        for name, fn in runs.items():
            cpu[name] = min(cpu[name], _cpu(fn))
    per_alerts = alerts["n"] / (4 * rounds)
    us = {k: v / n * 1e6 for k, v in cpu.items()}
    # the fast path reads the hot records straight into the tables: decoding and the
    # table update are one stage; "generic decode" is the full decoder alone, for reference
    stages = {
        "generic decode": us["decode"],
        "decode+state": us["state"],
        "fields+rules": us["rules"] - us["state"],
        "output": us["output"] - us["rules"],
        "total": us["output"],
        "ring walk": us["ring walk"],
        "ring spans": us["ring spans"],
    }
    # Python-level calls per record, per stage: deterministic, so comparable between runs
    # on a machine too busy for CPU times to be
    calls = {}
    for name, fn in runs.items():
        prof = cProfile.Profile()
        prof.enable()
        fn()
        prof.disable()
        calls[name] = pstats.Stats(prof).total_calls / n  # type: ignore[attr-defined]
    calls_per_record = {
        "generic decode": calls["decode"], "decode+state": calls["state"],
        "fields+rules": calls["rules"] - calls["state"], "output": calls["output"] - calls["rules"],
        "total": calls["output"], "ring walk": calls["ring walk"], "ring spans": calls["ring spans"],
    }
    types: dict[str, int] = {}
    for r in decode_all()[:len(spans) // repeat]:
        types[r.type] = types.get(r.type, 0) + 1
    import falcopy.agent.fastpath as fastpath
    from falcopy.agent.accel import is_compiled

    out = {"records": n, "fast_path": fast, "compiled": is_compiled(fastpath), "types": types,
           "alerts_per_pass": per_alerts,
           "us_per_record": stages, "calls_per_record": calls_per_record,
           "evaluated_per_pass": pipes["rules"].evaluated / (rounds + 2),
           "errors": sum(p.errors for p in pipes.values())}
    if profile:
        prof = cProfile.Profile()
        p = Pipeline(ruleset, ProcessTable(), on_alert=fmt, fast_path=fast)
        p.process_raw(buf, spans, decoder)
        gc.collect()
        prof.enable()
        for _ in range(rounds):
            p.process_raw(buf, spans, decoder)
        prof.disable()
        # FALCOPY_BENCH_SORT=ncalls shows where the calls per record go
        order = os.environ.get("FALCOPY_BENCH_SORT", "tottime")
        top = int(os.environ.get("FALCOPY_BENCH_TOP", "25"))
        pstats.Stats(prof, stream=sys.stderr).sort_stats(order).print_stats(top)
    return out


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    rec = sub.add_parser("record")
    rec.add_argument("workload", type=Path)
    rec.add_argument("mode")
    rec.add_argument("seconds", type=float)
    rec.add_argument("out", type=Path)
    rec.add_argument("rules", nargs="+")
    rep = sub.add_parser("replay")
    rep.add_argument("path", type=Path)
    rep.add_argument("rules", nargs="+")
    rep.add_argument("--rounds", type=int, default=5)
    rep.add_argument("--repeat", type=int, default=1)
    rep.add_argument("--profile", action="store_true")
    rep.add_argument("--no-fast", action="store_true", help="every record decoded in full (the reference)")
    args = ap.parse_args(argv)
    if args.cmd == "record":
        print(json.dumps(record(args.workload, args.mode, args.seconds, args.out, args.rules)))
    else:
        print(json.dumps(replay(args.path, args.rules, args.rounds, args.profile, args.repeat,
                                fast=not args.no_fast), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
