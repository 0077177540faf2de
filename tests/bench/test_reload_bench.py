"""Cost of a hot reload: reading a verified bundle and compiling the full upstream ruleset
(what the agent does in its executor thread), the swap on the event thread, and the
operator's planning of many FalcoRules."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import pytest
from falcopy.agent.fields.syscall import AgentSyscallSource
from falcopy.agent.pipeline import Pipeline
from falcopy.agent.state import ProcessTable
from falcopy.operator.bundle import plan_bundle
from falcopy.operator.model import ObjKey, RuleObject
from falcopy.operator.validate import Validator

from falcopy.distribution.bundle import read_rules
from falcopy.engine import default_sources, load_rules

pytestmark = pytest.mark.bench

REPO = Path(__file__).resolve().parents[2]
UPSTREAM = ("falco_rules.yaml", "falco-incubating_rules.yaml", "falco-sandbox_rules.yaml")


def _timed(fn, n: int = 3) -> tuple[float, float, object]:  # type: ignore[no-untyped-def]
    walls, cpus, out = [], [], None
    for _ in range(n):
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus), out


def test_reload_cost_full_upstream(compat_dir: Path, tmp_path: Path) -> None:
    paths = [compat_dir / n for n in UPSTREAM] + [REPO / "rules"]
    sources = dict(default_sources())
    sources["syscall"] = AgentSyscallSource()

    def reload() -> object:
        loaded = read_rules(paths)
        result = load_rules(loaded.inputs, sources=sources)
        assert result.ok, [str(e) for e in result.errors[:3]]
        return result.ruleset

    wall, cpu, ruleset = _timed(reload)
    pipeline = Pipeline(ruleset, ProcessTable(), on_alert=lambda r, e: None)  # type: ignore[arg-type]
    swap_wall, _, _ = _timed(lambda: pipeline.set_ruleset(ruleset), n=20)  # type: ignore[arg-type]
    print(
        f"\nreload of stable+incubating+sandbox+falcopy rules ({len(ruleset.rules)} rules): "  # type: ignore[attr-defined]
        f"{wall * 1000:.0f} ms wall, {cpu * 1000:.0f} ms CPU (executor thread); "
        f"swap on the event thread {swap_wall * 1e6:.1f} us"
    )


def test_operator_planning_cost() -> None:
    validator = Validator([REPO / "rules"])
    objects = [
        RuleObject(
            ObjKey("FalcoRule", f"ns{i % 10}", f"r{i}"),
            1,
            "",
            {
                "lists": [{"list": "allowed", "items": ["nginx", f"bin{i}"]}],
                "rules": [
                    {
                        "rule": f"R{i}",
                        "desc": "d",
                        "priority": "WARNING",
                        "output": "o %proc.name",
                        "condition": "fp_spawned_process and not proc.name in (allowed)"
                        f" and proc.pname = p{i}",
                    }
                ],
            },
        )
        for i in range(100)
    ]
    wall, cpu, plan = _timed(lambda: validator.plan(objects))
    bundle = plan_bundle(plan.active, shards=4, budget=900 * 1024)  # type: ignore[attr-defined]
    bad = [
        *objects[:-1],
        RuleObject(
            objects[-1].key,
            2,
            "",
            {
                "rules": [
                    {"rule": "x", "condition": "bogus.f = 1", "desc": "d", "output": "o", "priority": "INFO"}
                ]
            },
        ),
    ]
    bad_wall, _, _ = _timed(lambda: validator.plan(bad), n=1)
    print(
        f"\noperator plan of 100 namespaced FalcoRules: {wall * 1000:.0f} ms wall ({cpu * 1000:.0f} ms CPU), "
        f"{len(bundle.files)} files in {sum(1 for s in bundle.shards if len(s) > 1)} shard(s); "
        f"with one invalid object: {bad_wall * 1000:.0f} ms"
    )
