"""Incremental operator work (issue 22): one changed FalcoRule is revalidated and re-rendered
alone, with the same verdicts a from-scratch validation gives, and only its shard (and the
manifest's) changes."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from falcopy.operator.bundle import plan_bundle
from falcopy.operator.model import ObjKey, RuleObject
from falcopy.operator.validate import Validator

from tests.operator.scale import falcorule_spec, namespace, scale_objects

REPO = Path(__file__).resolve().parents[2]
DEFAULTS = REPO / "rules" / "falcopy_rules.yaml"


class Counting(Validator):
    """A validator that records what each engine load and each render was given."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.loads: list[list[str]] = []
        self.renders: list[ObjKey] = []
        super().__init__(*args, **kwargs)

    def _load(self, rendered):  # type: ignore[no-untyped-def]
        self.loads.append([r.key.label for r in rendered])
        return super()._load(rendered)

    def _render_scoped(self, obj, local):  # type: ignore[no-untyped-def]
        self.renders.append(obj.key)
        return super()._render_scoped(obj, local)

    def reset(self) -> None:
        self.loads.clear()
        self.renders.clear()


def changed(objects: list[RuleObject], key: ObjKey, spec: dict[str, Any]) -> list[RuleObject]:
    return [
        dataclasses.replace(o, generation=o.generation + 1, spec=spec) if o.key == key else o for o in objects
    ]


def summary(plan: Any) -> dict[ObjKey, tuple[bool, str, str, int | None]]:
    return {k: (v.valid, v.reason, v.message, v.active_generation) for k, v in plan.verdicts.items()}


@pytest.fixture(scope="module")
def objects() -> list[RuleObject]:
    return scale_objects(falcorules=40, namespaces=8, clusterrules=6)


def test_one_change_revalidates_only_its_namespace(objects: list[RuleObject]) -> None:
    validator = Counting([DEFAULTS])
    first = validator.plan(objects)
    assert all(v.valid for v in first.verdicts.values()), [v.message for v in first.verdicts.values()]
    assert len(validator.renders) == len(objects)

    target = next(o for o in objects if o.key.namespace == namespace(3))
    updated = changed(objects, target.key, falcorule_spec(target.key.namespace, 3, variant=7))
    validator.reset()
    plan = validator.plan(updated)
    # one render (the changed object) and one load: defaults, the cluster's objects, its namespace
    assert validator.renders == [target.key]
    assert len(validator.loads) == 1
    loaded = {label for label in validator.loads[0] if label.startswith(("falcorule/", "clusterfalcorule/"))}
    expected = {o.key.label for o in updated if not o.key.namespaced or o.key.namespace == namespace(3)}
    assert loaded == expected
    assert summary(plan) == summary(Validator([DEFAULTS]).plan(updated))  # same as from scratch
    assert plan.verdicts[target.key].valid and plan.verdicts[target.key].generation == target.generation + 1

    validator.reset()
    again = validator.plan(updated)  # nothing changed: nothing rendered or loaded
    assert validator.renders == [] and validator.loads == []
    assert [r.digest for r in again.active] == [r.digest for r in plan.active]


def test_cached_verdicts_match_from_scratch_with_failures(objects: list[RuleObject]) -> None:
    """Invalid objects, a refused scope, a dependency and a cluster change: the incremental
    plan after each step equals a fresh validator's plan of the same objects."""
    validator = Validator([DEFAULTS])
    validator.plan(objects)
    ns_a, ns_b = [o for o in objects if o.key.namespace == namespace(1)][:2]
    cluster = next(o for o in objects if not o.key.namespaced)
    broken_rule = {
        "rules": [
            {
                "rule": "bad",
                "desc": "d",
                "output": "o",
                "priority": "INFO",
                "condition": "proc.name = x and no.such.field = 1",
            }
        ]
    }
    steps = [
        (ns_a.key, broken_rule),
        (
            ns_b.key,
            {
                **falcorule_spec(namespace(1), 2),
                "rules": [
                    {
                        "rule": "r",
                        "desc": "d\rx",
                        "output": "o",
                        "priority": "INFO",
                        "condition": "proc.name = x",
                    }
                ],
            },
        ),
        (
            cluster.key,
            {
                "rules": [
                    {
                        "rule": "c",
                        "desc": "d",
                        "output": "o",
                        "priority": "INFO",
                        "condition": "allowed_1 and proc.name = x",
                    }
                ]
            },
        ),
        (ns_a.key, falcorule_spec(namespace(1), 1, variant=3)),
    ]
    current = objects
    fallback: dict[ObjKey, Any] = {}
    for key, spec in steps:
        current = changed(current, key, spec)
        plan = validator.plan(current, fallback)
        fresh = Validator([DEFAULTS]).plan(current, fallback)
        assert summary(plan) == summary(fresh), key
        assert [r.digest for r in plan.active] == [r.digest for r in fresh.active]
        fallback = {r.key: r for r in plan.active}
    verdicts = summary(validator.plan(current, fallback))
    assert verdicts[ns_b.key][0] is False and verdicts[cluster.key][0] is False
    assert verdicts[ns_a.key][0] is True


def test_a_change_rewrites_its_shard_and_the_manifest_only(objects: list[RuleObject]) -> None:
    validator = Validator([DEFAULTS])
    plan = validator.plan(objects)
    total = sum(len(r.text) + 100 for r in plan.active)
    budget = max(4096, total // 4)  # small shards: the set spans most of them, with room to spare
    before = plan_bundle(plan.active, 6, budget, cluster_reserve=0.25)
    assert len({f.shard for f in before.files}) >= 4 and not before.overflow
    placed = {f.key: f.shard for f in before.files}

    # a new object early in load order, one changed, one removed
    first = next(o for o in objects if o.key.namespaced)
    newcomer = RuleObject(
        ObjKey("FalcoRule", namespace(0), "aaa-new"),
        1,
        "u",
        {**falcorule_spec(namespace(0), 999), "priority": 1},
    )
    gone = objects[-10]
    updated = [*changed(objects, first.key, falcorule_spec(first.key.namespace, 0, variant=5)), newcomer]
    updated = [o for o in updated if o.key != gone.key]
    after_plan = validator.plan(updated)
    after = plan_bundle(after_plan.active, 6, budget, cluster_reserve=0.25, previous=placed)
    rewritten = {i for i in range(6) if before.shards[i] != after.shards[i]}
    touched = {placed[first.key], placed[gone.key], after.file_of(newcomer.key).shard, 0}  # type: ignore[union-attr]
    assert rewritten <= touched and len(rewritten) < 6
    # everything else stayed where it was, and the manifest still gives the load order
    for f in after.files:
        if f.key in placed and f.key not in (first.key,):
            assert f.shard == placed[f.key]
    assert [f.key for f in after.files] == [r.key for r in after_plan.active]
