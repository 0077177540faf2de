"""The operator at scale (issue 22): 1,000 FalcoRules in 200 namespaces plus 100
ClusterFalcoRules rendered from scratch, then single changes and a burst, with the CPU and
memory the operator spends; the figures go to docs/scale.md ("Operator render scale")."""

from __future__ import annotations

import dataclasses
import resource
import statistics
import time
from pathlib import Path

import pytest
from falcopy.operator.app import COMPOSE_MEMORY
from falcopy.operator.bundle import plan_bundle
from falcopy.operator.model import RuleObject
from falcopy.operator.settings import OperatorSettings
from falcopy.operator.validate import Validator

from falcopy.engine import compose_cache
from tests.operator.scale import clusterrule_spec, falcorule_spec, scale_objects

pytestmark = pytest.mark.bench

REPO = Path(__file__).resolve().parents[2]
DEFAULTS = REPO / "rules" / "falcopy_rules.yaml"
SETTINGS = OperatorSettings(default_rules=[DEFAULTS])


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def _cpu() -> float:
    return time.process_time()


def _publish(validator: Validator, objects: list[RuleObject], placed: dict) -> tuple[object, object]:  # type: ignore[type-arg]
    plan = validator.plan(objects, None)
    bundle = plan_bundle(
        plan.active,
        SETTINGS.shards,
        SETTINGS.shard_budget,
        cluster_reserve=SETTINGS.cluster_reserve,
        previous=placed,
    )
    return plan, bundle


def _index(o: RuleObject) -> int:
    return int(o.key.name.rsplit("-", 1)[1])


@pytest.fixture
def operator_cache():  # type: ignore[no-untyped-def]
    compose_cache.keep_in_memory(COMPOSE_MEMORY, disk=False)  # as the operator process runs
    yield
    compose_cache.keep_in_memory(0, disk=True)


def test_render_scale(operator_cache: None) -> None:
    objects = scale_objects(falcorules=1000, namespaces=200, clusterrules=100)
    rss0 = _rss_mib()
    validator = Validator([DEFAULTS], quotas=SETTINGS.quotas)
    wall, cpu = time.perf_counter(), _cpu()
    plan, bundle = _publish(validator, objects, {})
    wall, cpu = time.perf_counter() - wall, _cpu() - cpu
    assert all(v.valid for v in plan.verdicts.values()) and not bundle.overflow  # type: ignore[attr-defined]
    size = sum(len(k) + len(v) for s in bundle.shards for k, v in s.items())  # type: ignore[attr-defined]
    print(
        f"\n[bench] from scratch: {len(objects)} objects, {wall:.1f} s wall, {cpu:.1f} s CPU, "
        f"bundle {size / 2**20:.2f} MiB in {len(bundle.files)} files, RSS +{_rss_mib() - rss0:.0f} MiB"  # type: ignore[attr-defined]
    )

    placed = {f.key: f.shard for f in bundle.files}  # type: ignore[attr-defined]
    walls, cpus, rewritten = [], [], []
    current = list(objects)
    tenants = [i for i, o in enumerate(current) if o.key.namespaced]
    for n in range(20):
        i = tenants[(n * 53) % len(tenants)]
        o = current[i]
        current[i] = dataclasses.replace(
            o, generation=o.generation + 1, spec=falcorule_spec(o.key.namespace, _index(o), n + 1)
        )
        w, c = time.perf_counter(), _cpu()
        _, after = _publish(validator, current, placed)
        walls.append(time.perf_counter() - w)
        cpus.append(_cpu() - c)
        rewritten.append(sum(a != b for a, b in zip(bundle.shards, after.shards, strict=True)))  # type: ignore[attr-defined]
        bundle, placed = after, {f.key: f.shard for f in after.files}  # type: ignore[attr-defined]
    print(
        f"[bench] one FalcoRule changed (20 times): p50 {statistics.median(walls) * 1000:.0f} ms, "
        f"max {max(walls) * 1000:.0f} ms wall; p50 {statistics.median(cpus) * 1000:.0f} ms CPU; "
        f"ConfigMaps rewritten per change: {sorted(set(rewritten))}"
    )

    c = next(i for i, o in enumerate(current) if not o.key.namespaced)
    o = current[c]
    current[c] = dataclasses.replace(o, generation=2, spec=clusterrule_spec(_index(o), 1))
    w, cp = time.perf_counter(), _cpu()
    _publish(validator, current, placed)
    print(
        f"[bench] one ClusterFalcoRule changed (every namespace revalidated): "
        f"{time.perf_counter() - w:.1f} s wall, {_cpu() - cp:.1f} s CPU"
    )

    for i in tenants[:100]:
        o = current[i]
        current[i] = dataclasses.replace(
            o, generation=o.generation + 1, spec=falcorule_spec(o.key.namespace, _index(o), 99)
        )
    w, cp = time.perf_counter(), _cpu()
    _publish(validator, current, placed)
    print(
        f"[bench] 100 FalcoRules changed in one coalesced pass: {time.perf_counter() - w:.1f} s wall, "
        f"{_cpu() - cp:.1f} s CPU; RSS +{_rss_mib() - rss0:.0f} MiB over the start"
    )
