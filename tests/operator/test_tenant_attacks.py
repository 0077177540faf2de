"""A hostile tenant, with only the right to create FalcoRules in one namespace (issue 23, items 1-5).

Each attack is played as reproduced against the operator before confinement moved into the
engine; the objects go through the operator's validator (scope, render, read-back, quotas)
and what it publishes is loaded by the engine exactly as the agents load it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from falcopy.operator.model import ObjKey, RuleObject
from falcopy.operator.settings import Quotas
from falcopy.operator.validate import REASON_QUOTA, REASON_SCOPE, Validator

from falcopy.engine import LoadResult, RulesInput, load_rules
from falcopy.engine.event import DictEvent
from falcopy.engine.reader import read_documents
from falcopy.engine.source_text import FileTable
from falcopy.engine.tenancy import is_guarded

REPO = Path(__file__).resolve().parents[2]
DEFAULTS = REPO / "rules" / "falcopy_rules.yaml"
RULE = {"desc": "d", "output": "o %proc.name", "priority": "WARNING"}
MINERS = {
    "priority": 10,
    "lists": [{"list": "known_miner_processes", "items": ["xmrig", "minerd"]}],
    "rules": [
        {
            **RULE,
            "rule": "Crypto miner process started",
            "condition": "fp_spawned_process and proc.name in (known_miner_processes)",
            "priority": "CRITICAL",
        }
    ],
}


def ns_obj(ns: str, spec: dict[str, Any], name: str = "o", generation: int = 1) -> RuleObject:
    return RuleObject(ObjKey("FalcoRule", ns, name), generation, "uid", spec)


def cluster_obj(spec: dict[str, Any], name: str = "miners") -> RuleObject:
    return RuleObject(ObjKey("ClusterFalcoRule", "", name), 1, "uid", spec)


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator([DEFAULTS])


def publish(validator: Validator, objects: list[RuleObject], **kw: Any) -> tuple[Any, LoadResult]:
    """The operator's plan, and the engine load of what it publishes (as an agent loads it)."""
    plan = validator.plan(objects)
    result = load_rules([*validator.defaults, *(r.input() for r in plan.active)], **kw)
    assert result.ok, [str(e) for e in result.errors[:3]]
    return plan, result


def execve(ns: str | None, name: str, **fields: Any) -> DictEvent:
    return DictEvent({"evt.type": "execve", "proc.name": name, "k8s.ns.name": ns, **fields}, ts=1)


def fired(result: LoadResult, event: DictEvent) -> set[str]:
    assert result.ruleset is not None
    return {r.name for r in result.ruleset.evaluate(event)}


# ---------------------------------------------------------------------------- 1. rules-file injection


#: The injection that succeeded on the operator of 658e4c0, where a namespaced condition was only
#: parsed and then written as ``(<condition>) and k8s.ns.name = "<ns>"`` in a YAML literal block:
#: the condition is one complete comparison whose quoted string holds YAML. The parser takes the
#: line breaks inside the string as string characters; the agents' YAML reader ends the block at a
#: raw ``\r`` and reads the rest as top-level items. The last item replaces the tenant's own rule
#: (whose block now holds only ``(proc.name = '-``, so it would not compile) and the closing
#: ``#'`` turns the scope the operator appends into a YAML comment: the file loads cleanly.
INJECTED = (
    "proc.name = '-{br}"
    "- macro: fp_spawned_process{br}  condition: evt.num < 0{br}"
    "- rule: Crypto miner process started{br}  enabled: false{br}"
    "- rule: r [web]{br}  desc: d{br}  output: o{br}  priority: WARNING{br}  condition: evt.num < 0{br}"
    "#'"
)
BREAKS = ["\r", "\x85", "\u2028", "\u2029", "\r\n"]


def attack_rule(br: str, api_order: bool) -> dict[str, Any]:
    rule = {**RULE, "rule": "r", "condition": INJECTED.format(br=br)}
    # the API server hands custom objects back with their keys sorted (condition first)
    return dict(sorted(rule.items())) if api_order else rule


def read_back_items(plan: Any) -> list[tuple[str, str]]:
    """(kind, name) of every top-level item of the published files, read as the agents read them."""
    out = []
    for r in plan.active:
        _, docs = read_documents(r.key.label, r.text, FileTable())
        for doc in docs:
            for item in doc.convert(doc.root) or []:
                kind = next(k for k in ("list", "macro", "rule") if k in item)
                out.append((kind, item[kind]))
    return out


@pytest.mark.parametrize("api_order", [False, True], ids=["user-order", "api-order"])
@pytest.mark.parametrize("br", BREAKS, ids=repr)
def test_line_break_injection_is_refused(validator: Validator, br: str, api_order: bool) -> None:
    attack = ns_obj("web", {"rules": [attack_rule(br, api_order)]})
    plan, result = publish(validator, [cluster_obj(MINERS), attack])
    verdict = plan.verdicts[attack.key]
    assert not verdict.valid and verdict.reason == REASON_SCOPE
    assert "spec.rules[0].condition" in verdict.message and "control character" in verdict.message
    # what the agents read back is exactly the cluster object's items: nothing injected
    intended = [("list", "known_miner_processes"), ("rule", "Crypto miner process started")]
    assert read_back_items(plan) == intended
    assert result.ruleset is not None
    assert "Crypto miner process started" in {r.name for r in result.ruleset.rules if r.enabled}
    # the default macro is intact and the cluster's detection too: a miner in kube-system raises its alert
    assert "Crypto miner process started" in fired(result, execve("kube-system", "xmrig"))
    assert "Crypto miner process started" in fired(result, execve("web", "xmrig"))


@pytest.mark.parametrize("br", BREAKS, ids=repr)
def test_line_break_injection_in_a_cluster_object_does_not_read_back(validator: Validator, br: str) -> None:
    """A ClusterFalcoRule may hold any string, but the file written must yield exactly its items.

    Written as the old operator wrote it, the ``\\r`` payload reads back as the tenant's truncated
    item plus the three injected ones; after the others ruamel re-indents (so they inject
    nothing) and the file does not parse, or the condition reads back changed."""
    obj = cluster_obj({"rules": [attack_rule(br, api_order=True)]})
    verdict = validator.plan([obj]).verdicts[obj.key]
    assert not verdict.valid and verdict.reason == REASON_SCOPE
    expected = {
        "\r": "reads back as 4 items instead of 1",
        "\r\n": "spec.rules[0] does not read back as written",
    }.get(br, "the rendered rules file does not parse")
    assert expected in verdict.message, verdict.message


def test_engine_confines_a_namespaced_file_whatever_its_text() -> None:
    """Defence in depth: even a file that did hold injected top-level items cannot leave its namespace."""
    defaults = [RulesInput(str(DEFAULTS), DEFAULTS.read_text())]
    for item, what in (
        ("- macro: fp_spawned_process\n  condition: evt.num < 0\n", "may only name its own macros"),
        ("- rule: Some rule\n  enabled: false\n", "may only name its own rules"),
        ("- list: x__other\n  items: [a]\n", "may only name its own lists"),
    ):
        result = load_rules([*defaults, RulesInput("falcorule/web/o.yaml", item, "web")])
        assert not result.ok and what in result.errors[0].message, [str(e) for e in result.errors]
        assert result.errors[0].file == "falcorule/web/o.yaml"
    cluster = RulesInput("c.yaml", "- macro: m__web\n  condition: evt.num > 0\n")
    tenant = RulesInput("falcorule/web/o.yaml", "- macro: m__web\n  condition: evt.num < 0\n", "web")
    result = load_rules([*defaults, cluster, tenant])
    assert not result.ok and "cannot change a macro defined outside it" in result.errors[0].message


# ---------------------------------------------------------------------------- 2. guard breakouts


BREAKOUT = "nc))\tor\t((proc.name=zzz"


def test_list_item_breakout_stays_a_value(validator: Validator) -> None:
    attack = ns_obj(
        "web",
        {
            "lists": [{"list": "tools", "items": ["nc", BREAKOUT]}],
            "rules": [{**RULE, "rule": "Tools", "condition": "fp_spawned_process and proc.name in (tools)"}],
        },
    )
    plan, result = publish(validator, [attack], rule_matching="all")
    assert plan.verdicts[attack.key].valid, plan.verdicts[attack.key].message
    assert "Tools [web]" in fired(result, execve("web", "nc"))
    assert "Tools [web]" in fired(result, execve("web", BREAKOUT))  # the item is one value
    for ns in ("kube-system", "other", None):
        assert "Tools [web]" not in fired(result, execve(ns, "zzz"))
        assert "Tools [web]" not in fired(result, execve(ns, "nc"))


def test_exception_value_breakout_stays_a_value(validator: Validator) -> None:
    attack = ns_obj(
        "web",
        {
            "rules": [
                {
                    **RULE,
                    "rule": "Shell",
                    "condition": "fp_spawned_process and proc.name = bash",
                    "exceptions": [
                        {
                            "name": "e",
                            "fields": ["proc.pname"],
                            "comps": ["="],
                            "values": [[") or (proc.name exists"]],
                        },
                        {
                            "name": "f",
                            "fields": ["proc.cwd"],
                            "comps": ["in"],
                            "values": [["x) or (proc.name exists"]],
                        },
                    ],
                }
            ]
        },
    )
    plan, result = publish(validator, [attack], rule_matching="all")
    assert plan.verdicts[attack.key].valid, plan.verdicts[attack.key].message
    assert "Shell [web]" in fired(result, execve("web", "bash", **{"proc.pname": "sh"}))
    assert "Shell [web]" not in fired(
        result, execve("web", "bash", **{"proc.pname": ") or (proc.name exists"})
    )
    for ns in ("kube-system", None):
        assert "Shell [web]" not in fired(result, execve(ns, "bash", **{"proc.pname": "sh"}))


def test_exception_list_text_must_be_one_list(validator: Validator) -> None:
    """Falco accepts an exception value written as a list, "(a, b)"; it must be exactly one list."""
    attack = ns_obj(
        "web",
        {
            "rules": [
                {
                    **RULE,
                    "rule": "Shell",
                    "condition": "proc.name = bash",
                    "exceptions": [
                        {
                            "name": "e",
                            "fields": ["proc.pname"],
                            "comps": ["in"],
                            "values": [["(nc)) or ((proc.name=zzz"]],
                        }
                    ],
                }
            ]
        },
    )
    verdict = validator.plan([attack]).verdicts[attack.key]
    assert not verdict.valid and "is not a list of values" in verdict.message


def test_first_match_slot_stays_with_cluster_rules(validator: Validator) -> None:
    catch_all = ns_obj(
        "web", {"priority": 0, "rules": [{**RULE, "rule": "Everything", "condition": "evt.type = execve"}]}
    )
    objects = [cluster_obj(MINERS), catch_all]
    _, result = publish(validator, objects, rule_matching="first")
    assert fired(result, execve("kube-system", "xmrig")) == {"Crypto miner process started"}
    assert fired(result, execve(None, "xmrig")) == {"Crypto miner process started"}
    # inside the tenant's namespace too: the cluster rule keeps the slot ...
    assert fired(result, execve("web", "xmrig")) == {"Crypto miner process started"}
    assert fired(result, execve("web", "ls")) == {"Everything [web]"}
    # ... unless the cluster admin lets tenants go first (by load order), in their namespace only
    _, ordered = publish(validator, objects, rule_matching="first", tenant_precedence=True)
    assert fired(ordered, execve("web", "xmrig")) == {"Everything [web]"}
    assert fired(ordered, execve("kube-system", "xmrig")) == {"Crypto miner process started"}


def test_every_tenant_rule_tree_starts_with_the_guard(validator: Validator) -> None:
    obj = ns_obj(
        "web",
        {
            "macros": [{"macro": "m", "condition": "proc.name = a or proc.name = b"}],
            "rules": [
                {**RULE, "rule": "one", "condition": "m or evt.type = openat"},
                {
                    **RULE,
                    "rule": "two",
                    "condition": "not m",
                    "exceptions": [{"name": "e", "fields": ["proc.pname"], "values": [["x"]]}],
                },
            ],
        },
    )
    _, result = publish(validator, [cluster_obj(MINERS), obj])
    assert result.ruleset is not None
    tenant = [r for r in result.ruleset.rules if r.namespace is not None]
    assert {r.name for r in tenant} == {"one [web]", "two [web]"}
    assert all(is_guarded(r.tree, "web") for r in tenant)
    assert not any(is_guarded(r.tree, "web") for r in result.ruleset.rules if r.namespace is None)


# ---------------------------------------------------------------------------- 3. quotas


def test_quotas_refuse_with_a_clear_reason() -> None:
    v = Validator([DEFAULTS], quotas=Quotas(bytes=0, rules=3, patterns=2))
    regex = {**RULE, "condition": "proc.name regex 'a.*'"}
    first = ns_obj("web", {"rules": [{**regex, "rule": "a"}, {**regex, "rule": "b"}]}, "first")
    second = ns_obj("web", {"rules": [{**regex, "rule": "c"}]}, "second")
    other = ns_obj("db", {"rules": [{**regex, "rule": "a"}, {**regex, "rule": "b"}]}, "other")
    plan = v.plan([first, second, other])
    assert plan.verdicts[first.key].valid and plan.verdicts[other.key].valid
    verdict = plan.verdicts[second.key]
    assert not verdict.valid and verdict.reason == REASON_QUOTA
    assert "3 regex/glob checks, over its quota of 2" in verdict.message
    assert "quotas.patterns" in verdict.message
    assert {r.key for r in plan.active} == {first.key, other.key}


# ---------------------------------------------------------------------------- 4. compile bombs


def macro_chain(levels: int) -> dict[str, Any]:
    macros = [{"macro": "m0", "condition": "proc.name = x"}]
    macros += [{"macro": f"m{i}", "condition": f"m{i - 1} or m{i - 1}"} for i in range(1, levels + 1)]
    return {
        "macros": macros,
        "rules": [{**RULE, "rule": "bomb", "condition": f"evt.type = execve and m{levels}"}],
    }


def nested_lists(depth: int, width: int = 40) -> dict[str, Any]:
    lists = [{"list": "l0", "items": [f"v{i}" for i in range(width)]}]
    lists += [{"list": f"l{d}", "items": [f"l{d - 1}"] * width} for d in range(1, depth + 1)]
    return {"lists": lists, "rules": [{**RULE, "rule": "bomb", "condition": f"proc.name in (l{depth})"}]}


def test_macro_chain_bomb_is_refused_naming_the_macro(validator: Validator) -> None:
    bomb = ns_obj("web", macro_chain(40))
    verdict = validator.plan([bomb]).verdicts[bomb.key]
    assert not verdict.valid
    assert (
        "macro 'm12__web' expands to" in verdict.message and "more than the limit of 5000" in verdict.message
    )
    small = ns_obj("web", macro_chain(8))
    assert validator.plan([small]).verdicts[small.key].valid


def test_deep_macro_nesting_is_refused() -> None:
    macros = [{"macro": "d0", "condition": "proc.name = x"}]
    macros += [{"macro": f"d{i}", "condition": f"d{i - 1}"} for i in range(1, 40)]
    text = "\n".join(f"- macro: {m['macro']}\n  condition: {m['condition']}" for m in macros)
    text += "\n- rule: r\n  desc: d\n  output: o\n  priority: INFO\n  condition: evt.type = execve and d39\n"
    result = load_rules([RulesInput("deep.yaml", text)])
    assert not result.ok
    assert "is nested deeper than the limit of 32 macros" in result.errors[0].message


def test_nested_list_bomb_is_refused_naming_the_list(validator: Validator) -> None:
    bomb = ns_obj("web", nested_lists(5))
    verdict = validator.plan([bomb]).verdicts[bomb.key]
    assert not verdict.valid
    assert (
        "list 'l2__web'" in verdict.message
        and "expands to 64000 items, more than the limit of 20000" in verdict.message
    )
    assert "l3__web" not in verdict.message  # the lists using it are not reported again


def test_same_caps_for_cluster_files_as_the_agent_loads_them() -> None:
    text = "- list: l0\n  items: [" + ", ".join(f"v{i}" for i in range(40)) + "]\n"
    text += "".join(f"- list: l{d}\n  items: [{', '.join([f'l{d - 1}'] * 40)}]\n" for d in range(1, 6))
    result = load_rules([RulesInput("lists.yaml", text)])
    assert not result.ok and [e.item_name for e in result.errors] == ["l2"]


def test_a_spent_budget_blames_the_object_being_compiled(monkeypatch: pytest.MonkeyPatch) -> None:
    """A clock that advances one second per look: the budget runs out at a known item."""
    from falcopy.engine import limits

    clock = iter(range(10**9))
    monkeypatch.setattr(limits.time, "monotonic", lambda: float(next(clock)))
    v = Validator([DEFAULTS])
    start = next(clock)
    load_rules(v.defaults, budget=limits.Budget(1e9))
    looks = next(clock) - start  # what the default rules alone cost, in looks at the clock
    v.timeout = looks + 8  # the default rules, two more files, the fine rule: time runs out in 'slow'
    fine = ns_obj("web", {"rules": [{**RULE, "rule": "r", "condition": "proc.name = a"}]}, "fine")
    many = [{**RULE, "rule": f"r{i}", "condition": "proc.name = a"} for i in range(100)]
    slow = ns_obj("web", {"rules": many}, "slow")
    plan = v.plan([fine, slow])
    assert plan.verdicts[fine.key].valid
    verdict = plan.verdicts[slow.key]
    assert not verdict.valid and verdict.reason == "ValidationBudgetExceeded"
    assert "spec.rules[" in verdict.message and "exceeded its time budget" in verdict.message


# ---------------------------------------------------------------------------- 5. per-event cost


class CountingFields(dict):  # type: ignore[type-arg]
    """An event's field values that count how often the rules read them."""

    reads = 0

    def get(self, key: Any, default: Any = None) -> Any:
        CountingFields.reads += 1
        return super().get(key, default)


def reads_per_event(result: LoadResult, ns: str) -> int:
    assert result.ruleset is not None
    CountingFields.reads = 0
    for etype, name in (("openat", "cat"), ("execve", "bash"), ("connect", "curl")):
        values = CountingFields(
            {"evt.type": etype, "proc.name": name, "fd.name": "/etc/passwd", "k8s.ns.name": ns}
        )
        event = DictEvent({}, ts=1)
        event.values = values
        event.type = etype
        result.ruleset.evaluate(event)
    return CountingFields.reads


def test_another_namespaces_1500_rules_cost_nothing(validator: Validator) -> None:
    rules = [
        {
            **RULE,
            "rule": f"r{i}",
            "condition": f"evt.type in (openat, execve, connect) and fd.name regex '/x{i}.*'",
        }
        for i in range(1500)
    ]
    noisy = ns_obj("noisy", {"rules": rules})
    # the baseline has one rule in that namespace: any tenant rule costs each event one
    # namespace lookup; the question is what the other 1,499 cost
    _, baseline = publish(validator, [cluster_obj(MINERS), ns_obj("noisy", {"rules": rules[:1]})])
    _, loaded = publish(validator, [cluster_obj(MINERS), noisy])
    assert len(loaded.ruleset.rules) == len(baseline.ruleset.rules) + 1499  # type: ignore[union-attr]
    # the same field reads for an event of another namespace (and of the host) ...
    assert reads_per_event(loaded, "quiet") == reads_per_event(baseline, "quiet")
    assert reads_per_event(loaded, "") == reads_per_event(baseline, "")
    # ... while the tenant's own events do meet its rules
    assert reads_per_event(loaded, "noisy") > reads_per_event(baseline, "noisy") + 1000
