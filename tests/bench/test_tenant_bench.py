"""What a hostile tenant can make others pay (issue 23): compile-time bombs, validated by the
operator and loaded by the engine, and the per-event cost of another namespace's 1,500 rules.

Before the macro/list graph resolution, a 20-level macro chain took 15 s to validate and doubled
per level (then 0.9-1.5 s under load with it: a render and a load of the default rules; now the
operator's pre-check refuses it on the object's own items in milliseconds); nested lists of depth 5
took over 60 s; 1,500 regex rules in one namespace raised the
cost of an openat in another namespace from microseconds to milliseconds."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from falcopy.operator.render import render
from falcopy.operator.scope import namespace_local_names, scope_object
from falcopy.operator.validate import Validator

from falcopy.engine import RulesInput, load_rules
from falcopy.engine.event import DictEvent
from tests.operator.test_tenant_attacks import RULE, macro_chain, nested_lists, ns_obj

pytestmark = pytest.mark.bench

REPO = Path(__file__).resolve().parents[2]
DEFAULTS = REPO / "rules" / "falcopy_rules.yaml"


def _wall(fn) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


@pytest.mark.parametrize(
    "label,spec",
    [
        *((f"macro chain, {n} levels", macro_chain(n)) for n in (10, 13, 16, 20, 22, 40)),
        *((f"nested lists, depth {d} x {w}", nested_lists(d, w)) for d, w in ((5, 40), (5, 10), (3, 20))),
    ],
)
def test_compile_bombs(label: str, spec: dict) -> None:  # type: ignore[type-arg]
    validator = Validator([DEFAULTS])
    obj = ns_obj("web", spec)
    wall, plan = _wall(lambda: validator.plan([obj]))
    verdict = plan.verdicts[obj.key]  # type: ignore[attr-defined]
    outcome = "valid" if verdict.valid else "refused: " + verdict.message.split(": ", 2)[-1][:90]
    print(f"\n[bench] operator validation of a {label}: {wall * 1000:.0f} ms, {outcome}")
    # the agent's load of the same file, for comparison
    # rendered without the operator's cost pre-check: what an agent would face if it were skipped
    text = render(obj, scope_object(obj, validator.names, namespace_local_names([obj], "web"))).text
    agent, result = _wall(lambda: load_rules([RulesInput("falcorule/web/o.yaml", text, "web")]))
    print(f"[bench] agent load of the same file: {agent * 1000:.0f} ms, ok={result.ok}")  # type: ignore[attr-defined]


def test_other_namespaces_rules_cost_per_event() -> None:
    validator = Validator([DEFAULTS])
    rules = [
        {
            **RULE,
            "rule": f"r{i}",
            "condition": f"evt.type in (openat, execve, connect) and fd.name regex '/x{i}.*'",
        }
        for i in range(1500)
    ]
    for n in (1, 1500):
        plan = validator.plan([ns_obj("noisy", {"rules": rules[:n]})])
        result = load_rules([*validator.defaults, *(r.input() for r in plan.active)])
        assert result.ruleset is not None
        for ns in ("quiet", "noisy"):
            event = DictEvent(
                {"evt.type": "openat", "proc.name": "cat", "fd.name": "/etc/hosts", "k8s.ns.name": ns}
            )
            count = 20_000 if ns == "quiet" else 200
            start = time.perf_counter()
            for _ in range(count):
                result.ruleset.evaluate(event)
            per = (time.perf_counter() - start) / count * 1e6
            print(f"\n[bench] {n} rules in namespace 'noisy': openat in '{ns}' costs {per:.1f} us")
