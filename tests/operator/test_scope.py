"""What namespaced and cluster-scoped FalcoRules may do, checked with the real engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from falcopy.operator.model import ObjKey, RuleObject
from falcopy.operator.scope import DefaultNames, ScopeError, scope_object
from falcopy.operator.validate import Validator

from falcopy.engine import load_rules
from falcopy.engine.event import DictEvent

REPO = Path(__file__).resolve().parents[2]
DEFAULTS = REPO / "rules" / "falcopy_rules.yaml"


def ns_obj(ns: str, spec: dict[str, Any], name: str = "o") -> RuleObject:
    return RuleObject(ObjKey("FalcoRule", ns, name), 1, "uid", spec)


def cluster_obj(spec: dict[str, Any], name: str = "c") -> RuleObject:
    return RuleObject(ObjKey("ClusterFalcoRule", "", name), 1, "uid", spec)


RULE = {"rule": "R", "desc": "d", "output": "o %proc.name", "priority": "WARNING"}


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator([DEFAULTS])


def issues(obj: RuleObject, **kw: Any) -> list[str]:
    with pytest.raises(ScopeError) as err:
        scope_object(obj, DefaultNames(macros={"fp_container"}, rules={"Default rule"}), **kw)
    return [str(i) for i in err.value.issues]


def test_conditions_are_scoped_and_local_names_qualified() -> None:
    obj = ns_obj(
        "team-a",
        {
            "lists": [
                {"list": "allowed", "items": ["nginx", "other_list"]},
                {"list": "other_list", "items": ["x"]},
            ],
            "macros": [{"macro": "web", "condition": "proc.name in (allowed) and not fp_container"}],
            "rules": [
                {**RULE, "condition": 'evt.type = execve and web and proc.pname in (allowed, "allowed")'}
            ],
        },
    )
    items = dict(scope_object(obj, DefaultNames()))
    assert items["spec.lists[0]"]["list"] == "allowed__team_a"
    assert items["spec.lists[0]"]["items"] == ["nginx", "other_list__team_a"]
    assert items["spec.macros[0]"]["condition"] == "proc.name in (allowed__team_a) and not fp_container"
    rule = items["spec.rules[0]"]
    assert rule["rule"] == "R [team-a]"
    # a quoted "allowed" is a string value, not a list reference; the namespace guard is
    # not text: the engine puts it on the final tree (tests/operator/test_tenant_attacks.py)
    assert rule["condition"] == (
        'evt.type = execve and web__team_a and proc.pname in (allowed__team_a, "allowed")'
    )


def test_escapes_are_refused() -> None:
    found = issues(
        ns_obj(
            "a",
            {
                "macros": [
                    {
                        "macro": "fp_container",
                        "condition": "or evt.num > 0",
                        "override": {"condition": "append"},
                    },
                    {"macro": "a__b", "condition": "evt.num > 0"},
                ],
                "rules": [
                    {**RULE, "condition": "evt.type = execve) or (evt.type = openat"},
                    {"rule": "R", "condition": "or evt.num > 0", "append": True},
                    {"rule": "S", "condition": "or evt.num > 0", "override": {"condition": "append"}},
                    {**RULE, "rule": "K", "source": "k8s_audit", "condition": "ka.verb = create"},
                ],
            },
        )
    )
    assert any(f.startswith("spec.macros[0]") and "not defined in namespace 'a'" in f for f in found)
    assert any(f.startswith("spec.macros[1]") and "'__' is reserved" in f for f in found)
    assert any(f.startswith("spec.rules[0]") and "does not parse at column" in f for f in found)
    assert sum("appending to a rule condition" in f for f in found) == 2
    assert any(f.startswith("spec.rules[3]") and "source 'k8s_audit'" in f for f in found)


def test_cluster_objects_and_default_overrides() -> None:
    disable = cluster_obj(
        {
            "rules": [{"rule": "Default rule", "enabled": False}],
            "macros": [{"macro": "fp_container", "condition": "evt.num > 0"}],
        }
    )
    found = issues(disable)
    assert len(found) == 2 and all("allow_default_overrides" in f for f in found)
    assert "modifies the default rule" in found[1] and "redefines the default macro" in found[0]
    items = scope_object(
        disable, DefaultNames(macros={"fp_container"}, rules={"Default rule"}), allow_default_overrides=True
    )
    assert items[1][1] == {"rule": "Default rule", "enabled": False}


def test_namespaced_rule_only_sees_its_namespace(validator: Validator) -> None:
    obj = ns_obj("web", {"rules": [{**RULE, "condition": "fp_spawned_process and proc.name = curl"}]})
    plan = validator.plan([obj])
    assert plan.verdicts[obj.key].valid, plan.verdicts[obj.key].message
    result = load_rules([*validator.defaults, plan.active[0].input()])
    rule = next(r for r in result.ruleset.rules if r.name == "R [web]")

    def event(ns: str | None) -> DictEvent:
        fields = {"evt.type": "execve", "evt.dir": "<", "proc.name": "curl", "k8s.ns.name": ns}
        return DictEvent(fields, ts=1)

    def matches(ns: str | None) -> bool:
        return rule in result.ruleset.evaluate(event(ns))

    assert matches("web")
    assert not matches("db") and not matches(None)


def test_same_names_in_two_namespaces_do_not_collide(validator: Validator) -> None:
    objs = [
        ns_obj(
            ns,
            {
                "macros": [{"macro": "m", "condition": f"proc.name = {ns}"}],
                "rules": [{**RULE, "condition": "fp_spawned_process and m"}],
            },
        )
        for ns in ("a", "b")
    ]
    plan = validator.plan(objs)
    assert all(v.valid for v in plan.verdicts.values())
    result = load_rules([*validator.defaults, *(r.input() for r in plan.active)])
    assert {"R [a]", "R [b]"} <= {r.name for r in result.ruleset.rules}


def test_error_names_item_and_line(validator: Validator) -> None:
    obj = ns_obj(
        "web",
        {
            "rules": [
                {**RULE, "rule": "ok", "condition": "fp_spawned_process"},
                {**RULE, "rule": "bad", "condition": "fp_spawned_process and\nproc.nmae = x"},
            ]
        },
    )
    verdict = validator.plan([obj]).verdicts[obj.key]
    assert not verdict.valid and verdict.reason == "InvalidRules"
    assert verdict.message.startswith(
        "spec.rules[1] (rule 'bad [web]') at condition line 2 column 1: LOAD_ERR_COMPILE_CONDITION"
    )
    assert "proc.nmae" in verdict.message
    one_line = ns_obj("web", {"rules": [{**RULE, "condition": "fp_spawned_process and proc.nmae = x"}]})
    message = validator.plan([one_line]).verdicts[one_line.key].message
    assert "at condition line 1 column 24:" in message
