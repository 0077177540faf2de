"""Falco's own rule-loading manifests (0.35.1 test suite) through our loader.

One test per manifest case, read from the fixture YAML at test time: the
verdict (valid/invalid), every expected error (code, item type, item name,
message) and every expected warning (code, item name) must be reproduced.
Behaviour Falco changed after 0.35 is listed in DIFFERENCES with the reason
and checked in its 0.44 form.
"""

from __future__ import annotations

import pytest

from falcopy.engine import load_rules_files
from falcopy.engine.event import DictEvent
from tests.conftest import FIXTURES_DIR
from tests.engine.manifests import ManifestCase, load_cases

CASES = [c for m in ("falco_tests.yaml", "falco_tests_exceptions.yaml") for c in load_cases(FIXTURES_DIR, m)]

#: case -> (what 0.35 expected, what Falco 0.44 and falcopy do, why)
DIFFERENCES: dict[str, dict[str, str]] = {
    "invalid_yaml_parse_error": {
        "field": "message",
        "falco_0_35": "yaml-cpp: error at line 1, column 11: illegal map value",
        "falcopy": "yaml: error at line 1, column 11: mapping values are not allowed here",
        "reason": "the text comes from the YAML library (yaml-cpp in Falco, ruamel.yaml here); "
                  "code, item and position are the same",
    },
    "invalid_append_macro_dangling": {
        "field": "message",
        "falco_0_35": "Macro has 'append' key but no macro by that name already exists",
        "falcopy": "Macro has 'append' key or an append override but no macro by that name already exists",
        "reason": "Falco 0.37 (override: support, PR #2981) reworded ERROR_NO_PREVIOUS_MACRO",
    },
    "invalid_list_append_dangling": {
        "field": "message",
        "falco_0_35": "List has 'append' key but no list by that name already exists",
        "falcopy": "List has 'append' key or an append override but no list by that name already exists",
        "reason": "Falco 0.37 reworded ERROR_NO_PREVIOUS_LIST",
    },
    "invalid_rule_append_dangling": {
        "field": "message",
        "falco_0_35": "Rule has 'append' key but no rule by that name already exists",
        "falcopy": "Rule has 'append' key or an append override but no rule by that name already exists",
        "reason": "Falco 0.37 reworded ERROR_NO_PREVIOUS_RULE_APPEND",
    },
    "validate_skip_unknown_noevt": {
        "field": "code",
        "falco_0_35": "LOAD_UNKNOWN_FIELD",
        "falcopy": "LOAD_UNKNOWN_FILTER",
        "reason": "Falco renamed the warning code when skip-if-unknown-filter also covered unknown "
                  "event types (falco_load_result.cpp in 0.44 has no LOAD_UNKNOWN_FIELD)",
    },
}

#: rules_events of test_warnings that said "all": that list was produced by the Lua loader and its
#: check was disabled in 0.35 (see the manifest's comment).  libs' ppm_codes.cpp pushes `not` to
#: the leaves, so a negated non-evt.type check is neutral and these rules get a precise set; the
#: same manifest's validate_warnings agree (no LOAD_NO_EVTTYPE for any of them).
PRECISE_EVTTYPES: dict[str, list[str]] = {
    "not_before_trailing_evttype": ["execve", "open"],
    "not_equals_before_trailing_evttype": ["execve", "open"],
    "not_equals_before_in": ["connect", "execve", "open"],
    "not_before_in": ["connect", "execve", "open"],
    "not_in_before_in": ["connect", "execve", "open"],
    "leading_in_not_equals_before_evttype": ["connect", "execve", "open"],
    "not_equals_before_evttype": ["execve"],
    "not_equals_before_in_evttype": ["execve", "open"],
    "not_before_evttype": ["execve"],
    "not_before_evttype_using_in": ["execve", "open"],
}

#: warnings that did not exist in 0.35 and that 0.44 (and falcopy) add on these fixtures
NEWER_WARNINGS = {"LOAD_DEPRECATED_ITEM", "LOAD_INVALID_MACRO_NAME", "LOAD_INVALID_LIST_NAME",
                  "LOAD_UNUSED_MACRO", "LOAD_UNUSED_LIST", "LOAD_UNKNOWN_KEY", "LOAD_NO_EVTTYPE",
                  "LOAD_APPEND_NO_VALUES"}


def _expected(case: ManifestCase, entry: dict[str, str], field: str) -> str | None:
    diff = DIFFERENCES.get(case.name)
    if diff is not None and diff["field"] == field:
        assert entry.get(field, entry.get("message_contains")) == diff["falco_0_35"], \
            "the manifest changed: update DIFFERENCES"
        return diff["falcopy"]
    return entry.get(field)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_manifest_case(case: ManifestCase) -> None:
    result = load_rules_files([FIXTURES_DIR / f for f in case.files])
    assert result.ok == (case.exit_status == 0), [str(m) for m in result.errors]
    for exp in case.errors:
        code = _expected(case, exp, "code")
        matches = [m for m in result.errors
                   if m.code == code and m.item_type == exp["item_type"] and m.item_name == exp["item_name"]]
        assert matches, f"expected {exp}, got {[str(m) for m in result.errors]}"
        message = _expected(case, exp, "message")
        if message is not None:
            assert any(m.message == message for m in matches), [m.message for m in matches]
        if "message_contains" in exp and case.name not in DIFFERENCES:
            assert any(exp["message_contains"] in m.message for m in matches)
        # every error names a file and a position in it
        assert all(m.file and m.line >= 1 and m.column >= 1 for m in matches)
    for exp in case.warnings:
        code = _expected(case, exp, "code")
        matches = [m for m in result.warnings
                   if m.code == code and m.item_type == exp["item_type"] and m.item_name == exp["item_name"]]
        assert matches, f"expected warning {exp}, got {[str(m) for m in result.warnings]}"
        if "message" in exp and case.name not in DIFFERENCES:
            assert any(m.message == exp["message"] for m in matches)
    expected_codes = {_expected(case, w, "code") for w in case.warnings}
    extra = {m.code for m in result.warnings} - expected_codes - NEWER_WARNINGS
    assert not extra, f"unexpected warnings: {[str(m) for m in result.warnings if m.code in extra]}"
    if case.rules_events:
        assert result.ruleset is not None
        for rule_name, types in case.rules_events.items():
            rule = result.ruleset.rule(rule_name)
            assert rule is not None, rule_name
            if rule_name in PRECISE_EVTTYPES:
                assert rule.evttypes is not None and sorted(rule.evttypes) == PRECISE_EVTTYPES[rule_name]
            elif types == ["all"]:
                # "all" = no useful restriction: every type, or the complement of a few
                # (libs' ppm_codes gives every type but execve for evt.type!=execve)
                assert rule.evttypes is None or len(rule.evttypes) > 100, rule_name
            else:
                assert rule.evttypes is not None and sorted(rule.evttypes) == sorted(types), rule_name


def test_every_manifest_case_is_covered() -> None:
    # 31 validate cases in falco_tests.yaml, 10 + 20 in the exceptions manifest
    assert len([c for c in CASES if c.validate]) == 31 + 10
    assert len([c for c in CASES if not c.validate]) == 20
    assert set(DIFFERENCES) <= {c.name for c in CASES}


def test_differences_are_explained() -> None:
    for name, diff in DIFFERENCES.items():
        assert diff["reason"] and diff["falco_0_35"] != diff["falcopy"], name


#: the process of trace_files/cat_write.scap, which the exceptions manifest replays
CAT_WRITE_EVENT = {"evt.type": "open", "proc.name": "cat", "proc.cmdline": "cat /dev/null",
                   "proc.pname": "bash"}
DETECT_CASES = [c for c in CASES if c.detect is not None and c.exit_status == 0 and not c.validate]


@pytest.mark.parametrize("case", DETECT_CASES, ids=[c.id for c in DETECT_CASES])
def test_exception_case_detects_like_falco(case: ManifestCase) -> None:
    """The exceptions cases do not only load: replaying the cat process of
    cat_write.scap fires the rule exactly when Falco's manifest says it detects."""
    result = load_rules_files([FIXTURES_DIR / f for f in case.files])
    assert result.ok and result.ruleset is not None
    fired = result.ruleset.evaluate(DictEvent(dict(CAT_WRITE_EVENT)))
    assert bool(fired) == case.detect
    if fired:
        text, fields = result.ruleset.format(fired[0], DictEvent(dict(CAT_WRITE_EVENT)))
        assert text == "An open was seen (command=cat /dev/null)"
        assert fields == {"proc.cmdline": "cat /dev/null"}
