"""Property: whatever strings a tenant puts in any field, the operator refuses the object
clearly, or publishes a file that reads back as exactly the intended items and whose every
rule the engine confines to the tenant's namespace; the cluster's rules stay as they were."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from falcopy.operator.model import ObjKey, RuleObject
from falcopy.operator.render import plain
from falcopy.operator.scope import ScopeError, namespace_local_names, scope_object
from falcopy.operator.validate import Validator
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from falcopy.engine import load_rules
from falcopy.engine.tenancy import is_guarded

REPO = Path(__file__).resolve().parents[2]
DEFAULTS = REPO / "rules" / "falcopy_rules.yaml"
CLUSTER = RuleObject(
    ObjKey("ClusterFalcoRule", "", "cluster"),
    1,
    "uid",
    {
        "lists": [{"list": "miners", "items": ["xmrig"]}],
        "rules": [
            {
                "rule": "Miner",
                "desc": "d",
                "condition": "fp_spawned_process and proc.name in (miners)",
                "output": "o %proc.name",
                "priority": "CRITICAL",
            }
        ],
    },
)

# the tokens attacks are made of: quotes, parentheses, operators, YAML syntax ...
_SYNTAX = [
    *"()\"',=\\ #:-|>&*!%@`[]{}",
    " or ",
    " and ",
    "not ",
    "proc.name",
    "k8s.ns.name",
    ")) or ((",
    "- rule: x",
]
# ... and the characters that end a YAML line: control and Unicode line breaks
_BREAKS = [*"\t\n\r\x0b\x0c\x85\u2028\u2029\x00\x1b"]
_PRINTABLE = st.text(st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp")), max_size=4)
_CLEAN = st.lists(st.one_of(st.sampled_from(_SYNTAX), _PRINTABLE), max_size=6).map("".join)
_DIRTY = st.lists(st.one_of(st.sampled_from(_SYNTAX + _BREAKS), st.text(max_size=4)), max_size=6).map("".join)
#: strings that pass the character check (so that most objects get as far as the engine);
#: SPEC then puts a string with line breaks in one field of a third of the objects
TEXT = _CLEAN
_VALID = st.sampled_from(
    ["proc.name in (l)", "fp_spawned_process and proc.name in (l, m)", "mac and not proc.name in (m)", "mac"]
)
#: mostly conditions that parse (list items and exception values carry the arbitrary strings)
CONDITION = st.one_of(
    *[_VALID] * 7,
    st.tuples(
        st.sampled_from(["proc.name = ", "proc.name in (", "evt.type = execve and ", "l or "]), TEXT
    ).map("".join),
)
RULE_ITEM = st.fixed_dictionaries(
    {
        "rule": TEXT.filter(bool),
        "desc": TEXT.filter(bool),
        "condition": CONDITION,
        "output": TEXT.filter(bool),
        "priority": st.sampled_from(["WARNING", "CRITICAL"]),
    },
    optional={
        "tags": st.lists(TEXT, max_size=3),
        "exceptions": st.lists(
            st.fixed_dictionaries(
                {
                    "name": TEXT.filter(bool),
                    "fields": st.just(["proc.pname"]),
                    "comps": st.sampled_from([["="], ["in"], ["startswith"]]),
                    "values": st.lists(st.lists(TEXT, min_size=1, max_size=1), max_size=2),
                }
            ),
            max_size=2,
        ),
    },
)
CLEAN_SPEC = st.fixed_dictionaries(
    {
        "lists": st.tuples(st.lists(TEXT, max_size=3), st.lists(TEXT, max_size=3)).map(
            lambda t: [{"list": "l", "items": t[0]}, {"list": "m", "items": t[1]}]
        ),
        "macros": st.one_of(st.just("proc.name in (m) or proc.name = a"), CONDITION).map(
            lambda c: [{"macro": "mac", "condition": c}]
        ),
        "rules": st.lists(RULE_ITEM, min_size=1, max_size=3),
    }
)


def _with_one(value: Any, dirty: str, k: int) -> tuple[Any, int]:
    """``value`` with its k-th string (depth first, keys excluded) replaced by ``dirty``."""
    if isinstance(value, str):
        return (dirty if k == 0 else value), k - 1
    if isinstance(value, list):
        out = []
        for v in value:
            v, k = _with_one(v, dirty, k)
            out.append(v)
        return out, k
    if isinstance(value, dict):
        res = {}
        for key, v in value.items():
            res[key], k = _with_one(v, dirty, k)
        return res, k
    return value, k


SPEC = st.one_of(
    CLEAN_SPEC,
    CLEAN_SPEC,
    st.tuples(CLEAN_SPEC, _DIRTY, st.integers(0, 40)).map(lambda t: _with_one(t[0], t[1], t[2])[0]),
)


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator([DEFAULTS])


@pytest.fixture(scope="module")
def cluster_rule(validator: Validator) -> Any:
    result = load_rules([*validator.defaults, validator.render(CLUSTER, [CLUSTER]).input()])
    assert result.ruleset is not None
    return result.ruleset.rule("Miner")


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(spec=SPEC)
def test_any_namespaced_object_is_refused_or_confined(
    validator: Validator, cluster_rule: Any, spec: dict[str, Any]
) -> None:
    obj = RuleObject(ObjKey("FalcoRule", "web", "o"), 1, "uid", spec)
    plan = validator.plan([CLUSTER, obj])
    verdict = plan.verdicts[obj.key]
    assert plan.verdicts[CLUSTER.key].valid
    published = {r.key: r for r in plan.active}
    event("published" if obj.key in published else f"refused: {verdict.reason}")
    if obj.key not in published:
        # a clear refusal: a reason and a message naming where
        assert verdict.reason in ("ScopeViolation", "InvalidRules")
        assert verdict.message.startswith("spec"), verdict.message
        return
    rendered = published[obj.key]
    # the file reads back as exactly the scoped items, nothing more
    intended = scope_object(obj, validator.names, namespace_local_names([obj], "web"))
    assert YAML(typ="safe", pure=True).load(rendered.text) == [plain(item) for _, item in intended]
    result = load_rules([*validator.defaults, *(r.input() for r in plan.active)])
    assert result.ok and result.ruleset is not None
    tenant = [r for r in result.ruleset.rules if r.namespace is not None]
    assert len(tenant) == len({item["rule"] for _, item in intended if "rule" in item})
    assert all(
        r.namespace == "web" and r.name.endswith(" [web]") and is_guarded(r.tree, "web") for r in tenant
    )
    # the cluster's rules and the defaults are untouched
    cluster = [r for r in result.ruleset.rules if r.namespace is None]
    miner = result.ruleset.rule("Miner")
    assert miner is not None and miner.condition == cluster_rule.condition and miner.enabled
    assert {r.name for r in cluster} == {
        r.name
        for r in load_rules([*validator.defaults, validator.render(CLUSTER, [CLUSTER]).input()]).ruleset.rules  # type: ignore[union-attr]
    }


def test_scope_error_is_the_only_refusal_of_rendering(validator: Validator) -> None:
    """A refused string is reported per path (what the property accepts as a clear refusal)."""
    obj = RuleObject(ObjKey("FalcoRule", "web", "o"), 1, "uid", {"rules": [{"rule": "a\u2028b"}]})
    with pytest.raises(ScopeError) as err:
        validator.render(obj, [obj])
    assert str(err.value).startswith("spec.rules[0].rule (string): control character U+2028")
