"""Per-record user-space cost, stage by stage (`make bench`; measured, not asserted
on time): open/close and connect records captured once from the real probe, replayed
through decoder -> process table -> fields/rules -> output formatting with Falco's
stable rules.  See tests/bench/record_bench.py and docs/performance.md."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.bench import record_bench

pytestmark = [pytest.mark.bench, pytest.mark.kernel]

SECONDS = float(os.environ.get("FALCOPY_BENCH_SECONDS", "1.5"))
ROUNDS = int(os.environ.get("FALCOPY_BENCH_ROUNDS", "5"))


@pytest.mark.parametrize("mode", ["openclose", "connect"])
def test_per_record_cost(mode: str, workload_bin: Path, require_root: None, compat_dir: Path,
                         tmp_path: Path) -> None:
    rules = [str(compat_dir / "falco_rules.yaml")]
    rec = tmp_path / f"{mode}.rec"
    got = record_bench.record(workload_bin, mode, SECONDS, rec, rules)
    assert got["records"] > 1000, got
    out = record_bench.replay(rec, rules, rounds=ROUNDS)
    assert out["errors"] == 0
    # the workload's own calls are what was recorded: an open is one record in 2 (open,
    # close), a connect one in 5 (socket, connect, accept, and both ends' close)
    main_type, share = ("openat", 3) if mode == "openclose" else ("connect", 6)
    assert out["types"].get(main_type, 0) > got["records"] // share, out["types"]
    stages = out["us_per_record"]
    print(f"\n{mode} ({'compiled' if out['compiled'] else 'plain Python'} fast loop): "
          f"{out['records']} records, CPU µs per record: "
          + ", ".join(f"{k} {v:.2f}" for k, v in stages.items())
          + "; Python calls per record: "
          + ", ".join(f"{k} {v:.1f}" for k, v in out["calls_per_record"].items()))
    (Path(os.environ.get("FALCOPY_BENCH_OUT", "/tmp")) / f"falcopy-record-bench-{mode}.json").write_text(
        json.dumps(out, indent=1))
