"""FalcoRule specs carry the aggregation / threshold rule keys: the CRD schema declares them
and the operator validates their values with the engine, like any rule key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
from falcopy.operator.crd import crd
from falcopy.operator.model import ObjKey, RuleObject
from falcopy.operator.validate import Validator

from falcopy.engine import RulesInput, load_rules

REPO = Path(__file__).resolve().parents[2]


def rule(**extra: Any) -> dict[str, Any]:
    return {"rule": "R", "desc": "d", "condition": "evt.type = openat and fd.name startswith /etc/",
            "output": "opened %fd.name by %proc.name", "priority": "WARNING", **extra}


THRESHOLD = {"count": 20, "window": "10s", "group_by": ["proc.pid"], "distinct": "fd.name"}
AGGREGATION = {"enabled": True, "window": 30, "key": ["container.id", "fd.name"]}


def doc(**extra: Any) -> dict[str, Any]:
    return {"apiVersion": "falcopy.io/v1alpha1", "kind": "FalcoRule",
            "metadata": {"name": "o", "namespace": "team-a"}, "spec": {"rules": [rule(**extra)]}}


def schema() -> dict[str, Any]:
    return crd("FalcoRule")["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def test_schema_accepts_the_keys() -> None:
    jsonschema.validate(doc(threshold=THRESHOLD, aggregation=AGGREGATION), schema())
    jsonschema.validate(doc(aggregation={"enabled": False}), schema())


@pytest.mark.parametrize("extra", [
    {"threshold": {**THRESHOLD, "count": 0}},
    {"threshold": {"count": 3}},                        # no window
    {"threshold": {**THRESHOLD, "group_by": []}},
    {"threshold": {**THRESHOLD, "distinct": ["fd.name"]}},
    {"aggregation": {"key": "fd.name"}},
    {"aggregation": False},                             # the mapping form only in a CR
])
def test_schema_rejects_malformed_values(extra: dict[str, Any]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc(**extra), schema())


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator([REPO / "rules" / "falcopy_rules.yaml"])


def obj(**extra: Any) -> RuleObject:
    return RuleObject(ObjKey("FalcoRule", "team-a", "o"), 1, "uid", {"rules": [rule(**extra)]})


def test_operator_rejects_an_unknown_field_naming_item_and_line(validator: Validator) -> None:
    verdict = validator.check(obj(threshold={**THRESHOLD, "distinct": "fd.nme"}), [])
    assert not verdict.valid and verdict.reason == "InvalidRules"
    assert "spec.rules[0]" in verdict.message
    assert "'fd.nme' is not a supported field (threshold.distinct)" in verdict.message
    verdict = validator.check(obj(aggregation={"window": "soon"}), [])
    assert not verdict.valid and "'aggregation.window'" in verdict.message


def test_operator_publishes_the_keys_to_the_agents(validator: Validator) -> None:
    o = obj(threshold=THRESHOLD, aggregation=AGGREGATION)
    assert validator.check(o, []).valid
    plan = validator.plan([o])
    (rendered,) = plan.active
    res = load_rules([RulesInput("defaults", (REPO / "rules" / "falcopy_rules.yaml").read_text()),
                      rendered.input()])
    assert res.ok and res.ruleset is not None
    r = next(x for x in res.ruleset.rules if x.name == "R [team-a]")
    assert r.threshold is not None and (r.threshold.count, r.threshold.distinct) == (20, "fd.name")
    assert r.aggregation is not None and r.aggregation.key == ("container.id", "fd.name")
