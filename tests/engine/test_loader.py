"""Collector and compiler semantics: lists, macros, appends, overrides,
exceptions, evttype index, selection, rule matching, memoisation, outputs."""

from __future__ import annotations

from typing import Any

import pytest

from falcopy.engine import Priority, RulesInput, load_rules
from falcopy.engine.event import DictEvent
from falcopy.engine.fields import default_sources
from falcopy.engine.fields.base import FieldDef, FieldSource
from falcopy.engine.passes import resolve_list
from falcopy.engine.source_text import SourceText
from tests.engine.helpers import load, ruleset

RULE = """
- rule: {name}
  desc: d
  condition: {cond}
  output: "{output}"
  priority: {prio}
  tags: {tags}
"""


def rule(name: str, cond: str, output: str = "o", prio: str = "WARNING", tags: str = "[]") -> str:
    return RULE.format(name=name, cond=cond, output=output, prio=prio, tags=tags)


def ev(**values: Any) -> DictEvent:
    return DictEvent({k.replace("__", "."): v for k, v in values.items()})


# ---------------------------------------------------------------- lists
def _sub(cond: str, name: str, items: list[str]) -> str:
    st, _ = resolve_list(SourceText.generated(cond, 0), name, items)
    return " ".join(st.text.split())


def test_list_substitution_is_textual_like_falco() -> None:
    assert _sub("proc.name in (shells)", "shells", ["bash", "sh"]) == "proc.name in ( bash, sh )"
    assert _sub("proc.name in (a, shells)", "shells", []) == "proc.name in (a )"
    assert _sub("proc.name in (shells, a)", "shells", []) == "proc.name in ( a)"
    assert _sub("proc.name in (shells)", "shells", ["my app", "x"]) == 'proc.name in ( "my app", x )'
    # not inside other words, nor after a dot
    assert _sub("proc.name in (myshells, shells.x)", "shells", ["b"]) == "proc.name in (myshells, shells.x)"


def test_lists_nest_only_on_earlier_lists_and_are_used_by_name() -> None:
    rs = ruleset("""
- list: a
  items: [bash]
- list: b
  items: [a, zsh, c]
- list: c
  items: [sh]
""" + rule("r", "evt.type=execve and proc.name in (b)"))
    r = rs.rules[0]
    assert rs.evaluate(ev(evt__type="execve", proc__name="bash")) == [r]
    assert rs.evaluate(ev(evt__type="execve", proc__name="zsh")) == [r]
    # 'c' is defined after 'b': b keeps the literal item "c", but the condition text is then
    # substituted with every list in turn, so Falco (and falcopy) still expand it to "sh"
    assert rs.evaluate(ev(evt__type="execve", proc__name="sh")) == [r]
    assert rs.evaluate(ev(evt__type="execve", proc__name="c")) == []


def test_list_append_and_override() -> None:
    rs = ruleset("""
- list: shells
  items: [bash]
- list: shells
  items: [zsh]
  append: true
- list: shells
  items: [ksh]
  override:
    items: append
""" + rule("r", "evt.type=execve and proc.name in (shells)"))
    for name, fired in (("bash", True), ("zsh", True), ("ksh", True), ("sh", False)):
        assert bool(rs.evaluate(ev(evt__type="execve", proc__name=name))) is fired
    rs = ruleset("""
- list: shells
  items: [bash]
- list: shells
  items: [ksh]
  override:
    items: replace
""" + rule("r", "evt.type=execve and proc.name in (shells)"))
    assert not rs.evaluate(ev(evt__type="execve", proc__name="bash"))
    assert rs.evaluate(ev(evt__type="execve", proc__name="ksh"))


# ---------------------------------------------------------------- macros
def test_macro_override_append_is_textual_concatenation() -> None:
    rs = ruleset("""
- macro: m
  condition: proc.name = bash
- macro: m
  condition: or proc.name = zsh
  override:
    condition: append
""" + rule("r", "evt.type=execve and m"))
    assert rs.evaluate(ev(evt__type="execve", proc__name="zsh"))


def test_redefining_a_macro_replaces_it_in_place() -> None:
    rs = ruleset("""
- macro: m
  condition: proc.name = bash
- macro: uses_m
  condition: m
- macro: m
  condition: proc.name = zsh
""" + rule("r", "evt.type=execve and uses_m"))
    assert rs.evaluate(ev(evt__type="execve", proc__name="zsh"))
    assert not rs.evaluate(ev(evt__type="execve", proc__name="bash"))


def test_unused_macros_and_lists_warn() -> None:
    res = load("""
- list: lonely
  items: [x]
- macro: unused
  condition: proc.name = x
""" + rule("r", "evt.type=open"))
    assert sorted((w.code, w.item_name) for w in res.warnings) == [
        ("LOAD_UNUSED_LIST", "lonely"), ("LOAD_UNUSED_MACRO", "unused")]


# ---------------------------------------------------------------- rules: append, override, enabled
def test_rule_override_append_and_replace() -> None:
    rs = ruleset(rule("r", "evt.type=execve and proc.name=bash", output="base", tags="[a]") + """
- rule: r
  condition: and proc.pname=sshd
  output: "more %proc.pname"
  tags: [b]
  override:
    condition: append
    output: append
    tags: append
- rule: r
  priority: ERROR
  desc: replaced
  override:
    priority: replace
    desc: replace
""")
    r = rs.rules[0]
    assert (r.priority, r.desc, r.tags) == (Priority.ERROR, "replaced", ["a", "b"])
    assert rs.evaluate(ev(evt__type="execve", proc__name="bash", proc__pname="sshd")) == [r]
    assert not rs.evaluate(ev(evt__type="execve", proc__name="bash", proc__pname="cron"))
    assert rs.format(r, ev(proc__pname="sshd")) == ("base more sshd", {"proc.pname": "sshd"})


def test_standalone_enabled_and_enabled_override() -> None:
    res = load(rule("r", "evt.type=open") + rule("s", "evt.type=open") + """
- rule: r
  enabled: false
- rule: s
  enabled: false
  override:
    enabled: replace
""")
    assert res.ok and res.ruleset is not None
    assert [r.enabled for r in res.ruleset.rules] == [False, False]
    assert [w.code for w in res.warnings] == ["LOAD_DEPRECATED_ITEM"]


def test_disabled_rules_are_still_compiled() -> None:
    res = load("""
- rule: r
  desc: d
  condition: evt.type=open and proc.nobody=1
  output: o
  priority: INFO
  enabled: false
""")
    assert [e.code for e in res.errors] == ["LOAD_ERR_COMPILE_CONDITION"]


def test_unknown_keys_warn_and_are_ignored() -> None:
    res = load(rule("r", "evt.type=open") + "  colour: blue\n")
    assert res.ok
    assert [(w.code, w.message) for w in res.warnings] == [
        ("LOAD_UNKNOWN_KEY", "Unknown key 'colour'. The key will be ignored.")]


def test_unknown_top_level_item_and_unknown_source() -> None:
    res = load("- foo: bar\n" + rule("r", "evt.type=open") + "  source: aws_cloudtrail\n")
    assert res.ok
    assert sorted(w.code for w in res.warnings) == ["LOAD_UNKNOWN_ITEM", "LOAD_UNKNOWN_SOURCE"]
    assert res.ruleset is not None and res.ruleset.rules == []


def test_priorities_accept_aliases_case_insensitively() -> None:
    for text, prio in (("info", Priority.INFORMATIONAL), ("Informational", Priority.INFORMATIONAL),
                       ("EMERGENCY", Priority.EMERGENCY), ("debug", Priority.DEBUG),
                       ("Notice", Priority.NOTICE)):
        rs = ruleset(rule("r", "evt.type=open", prio=text))
        assert rs.rules[0].priority is prio
    assert Priority.INFORMATIONAL.falco_name == "Informational"


def test_required_engine_and_plugin_versions() -> None:
    ok = load("- required_engine_version: 0.57.0\n- required_engine_version: 15\n"
              "- required_plugin_versions:\n  - name: container\n    version: 0.4.0\n"
              "  - name: k8saudit-eks\n    version: 0.1.0\n    alternatives:\n"
              "      - name: k8saudit\n        version: 0.18.0\n")
    assert ok.ok, [str(e) for e in ok.errors]
    bad = load("- required_plugin_versions:\n  - name: container\n    version: 0.9.0\n")
    assert [e.code for e in bad.errors] == ["LOAD_ERR_VALIDATE"]


# ---------------------------------------------------------------- exceptions
def test_exceptions_tuple_and_single_field_forms() -> None:
    rs = ruleset(rule("r", "evt.type=open and proc.name in (cat, less)") + """  exceptions:
    - name: by_name_and_file
      fields: [proc.name, fd.name]
      comps: [=, startswith]
      values:
        - [cat, /tmp/]
    - name: by_parent
      fields: proc.pname
      values: [cron, "my daemon"]
    - name: by_file_list
      fields: [fd.name]
      comps: [in]
      values:
        - [[/etc/hosts, /etc/resolv.conf]]
""")
    fires = lambda **v: bool(rs.evaluate(ev(evt__type="open", **v)))  # noqa: E731
    assert fires(proc__name="cat", fd__name="/etc/shadow", proc__pname="bash")
    assert not fires(proc__name="cat", fd__name="/tmp/x", proc__pname="bash")
    assert fires(proc__name="less", fd__name="/tmp/x", proc__pname="bash")
    assert not fires(proc__name="cat", fd__name="/etc/shadow", proc__pname="my daemon")
    assert not fires(proc__name="cat", fd__name="/etc/hosts", proc__pname="bash")
    assert rs.rules[0].exception_fields == ["fd.name", "proc.name", "proc.pname"]


def test_exception_values_appended_later() -> None:
    rs = ruleset(rule("r", "evt.type=open and proc.name=cat") + """  exceptions:
    - name: files
      fields: [fd.name]
- rule: r
  exceptions:
    - name: files
      values: [[/etc/hosts]]
  override:
    exceptions: append
""")
    assert not rs.evaluate(ev(evt__type="open", proc__name="cat", fd__name="/etc/hosts"))
    assert rs.evaluate(ev(evt__type="open", proc__name="cat", fd__name="/etc/shadow"))


def test_duplicate_exception_names_warn() -> None:
    res = load(rule("r", "evt.type=open") + """  exceptions:
    - name: e
      fields: [proc.name]
      values: [[a]]
    - name: e
      fields: [proc.name]
      values: [[b]]
""")
    assert "LOAD_EXCEPTION_NAME_NOT_UNIQUE" in [w.code for w in res.warnings]


# ---------------------------------------------------------------- evttype index
@pytest.mark.parametrize(("cond", "types"), [
    ("evt.type = open", {"open"}),
    ("evt.type in (open, openat) and proc.name = cat", {"open", "openat"}),
    ("evt.type = open or evt.type = connect", {"connect", "open"}),
    ("evt.type in (open, connect) and evt.type = open", {"open"}),
    ("not evt.type != open", {"open"}),
    ("not (evt.type != open or evt.type != connect)", set()),
    ("not (evt.type != open and evt.type != connect)", {"connect", "open"}),
    ("proc.name = x", None),
    ("not proc.name = x and evt.type = execve", {"execve"}),
])
def test_event_type_sets_follow_ppm_codes(cond: str, types: set[str] | None) -> None:
    res = load(rule("r", cond) + "  warn_evttypes: false\n")
    assert res.ok and res.ruleset is not None
    got = res.ruleset.rules[0].evttypes
    assert (None if got is None else set(got)) == types


def test_no_evttype_warning_and_its_switch() -> None:
    assert [w.code for w in load(rule("r", "proc.name = x")).warnings] == ["LOAD_NO_EVTTYPE"]
    assert load(rule("r", "proc.name = x") + "  warn_evttypes: false\n").warnings == []


def test_ruleset_evttypes_union() -> None:
    rs = ruleset(rule("a", "evt.type = open") + rule("b", "evt.type in (connect, open)"))
    assert rs.evttypes("syscall") == {"open", "connect"}
    rs = ruleset(rule("a", "evt.type = open") + rule("b", "proc.name = x") + "  warn_evttypes: false\n")
    assert rs.evttypes("syscall") is None


# ---------------------------------------------------------------- ruleset behaviour
def test_rule_matching_first_and_all_in_definition_order() -> None:
    text = rule("generic", "proc.name = cat") + "  warn_evttypes: false\n" + \
        rule("first", "evt.type = open") + rule("second", "evt.type in (open, openat)")
    e = ev(evt__type="open", proc__name="cat")
    assert [r.name for r in ruleset(text).evaluate(e)] == ["first"]
    assert [r.name for r in ruleset(text, rule_matching="all").evaluate(e)] == ["first", "second", "generic"]


def test_selection_by_name_wildcard_and_tag_in_order() -> None:
    text = (rule("k8s_a", "evt.type=open", tags="[network]") + rule("k8s_b", "evt.type=open") +
            rule("other", "evt.type=open", tags="[network]"))
    rs = ruleset(text, selection=[{"disable": {"rule": "*"}}, {"enable": {"tag": "network"}},
                                  {"disable": {"rule": "k8s_*"}}], rule_matching="all")
    assert [r.name for r in rs.enabled_rules()] == ["other"]
    assert [r.name for r in rs.evaluate(ev(evt__type="open"))] == ["other"]


def test_min_priority_drops_less_severe_rules() -> None:
    rs = ruleset(rule("warn", "evt.type=open") + rule("dbg", "evt.type=open", prio="DEBUG"),
                 min_priority=Priority.NOTICE, rule_matching="all")
    assert [r.name for r in rs.evaluate(ev(evt__type="open"))] == ["warn"]


def test_events_of_other_sources_or_types_see_no_rules() -> None:
    rs = ruleset(rule("r", "evt.type = open"))
    assert rs.evaluate(ev(evt__type="read")) == []
    assert rs.evaluate(DictEvent({"evt.type": "open"}, source="k8s_audit")) == []


# ---------------------------------------------------------------- memoisation
class CountingSource(FieldSource):
    """Accessors that count their calls (real accessors are costly)."""

    def __init__(self) -> None:
        base = default_sources()["syscall"]
        super().__init__("syscall", base.fields)
        self.calls: dict[str, int] = {}

    def accessor(self, fdef: FieldDef, arg: str | None) -> Any:
        key = fdef.name if arg is None else f"{fdef.name}[{arg}]"

        def get(event: Any) -> Any:
            self.calls[key] = self.calls.get(key, 0) + 1
            return event.values.get(key)
        return get


def test_fields_and_shared_macros_are_computed_once_per_event() -> None:
    src = CountingSource()
    text = """
- macro: suspicious
  condition: (proc.aname = sshd and fd.name startswith /etc and user.name != root)
""" + "".join(rule(f"r{i}", f"evt.type=open and suspicious and proc.name = p{i}") for i in range(5))
    res = load_rules([RulesInput("t.yaml", text)], sources={"syscall": src}, rule_matching="all")
    assert res.ok and res.ruleset is not None
    e = DictEvent({"evt.type": "open", "proc.aname": ["sshd"], "fd.name": "/etc/x", "user.name": "bob",
                   "proc.name": "p3"})
    assert [r.name for r in res.ruleset.evaluate(e)] == ["r3"]
    assert src.calls["fd.name"] == 1 and src.calls["user.name"] == 1 and src.calls["proc.aname"] == 1
    assert src.calls["proc.name"] == 1      # five rules read it, the accessor ran once
    src.calls.clear()
    res.ruleset.evaluate(e)
    assert src.calls["proc.name"] == 1      # a new evaluation starts a new cache


# ---------------------------------------------------------------- outputs
def test_output_formatting_text_and_fields() -> None:
    rs = ruleset(rule("r", "evt.type=open",
                      output="%proc.name %(fd.name) %proc.aname[2] %tolower(proc.name) pid=%proc.pid "
                             "missing=%container.name %container.info."))
    text, fields = rs.format(rs.rules[0], DictEvent({
        "proc.name": "CAT", "fd.name": "/etc/shadow", "proc.aname[2]": "bash", "proc.pid": 42,
        "container.id": "host"}))
    assert text == "CAT /etc/shadow bash cat pid=42 missing=<NA> <NA> (id=host)."
    assert fields == {"proc.name": "CAT", "fd.name": "/etc/shadow", "proc.aname[2]": "bash",
                      "tolower(proc.name)": "cat", "proc.pid": 42, "container.name": None,
                      "container.id": "host"}


def test_evt_time_renders_as_clock_in_text_and_ns_in_fields() -> None:
    rs = ruleset(rule("r", "evt.type=open", output="at %evt.time"))
    ns = 1781085600123456789
    text, fields = rs.format(rs.rules[0], DictEvent({"evt.time": ns}))
    assert text == "at 10:00:00.123456789"
    assert fields == {"evt.time": ns}


def test_falco_json_result_shape() -> None:
    res = load("- rule: r\n  desc: d\n")
    out = res.to_falco_json()["falco_load_results"][0]
    assert out["name"] == "test.yaml" and out["successful"] is False
    err = out["errors"][0]
    assert err["code"] == "LOAD_ERR_YAML_VALIDATE"
    assert err["context"]["locations"][0]["item_type"] == "rule"
    assert err["context"]["locations"][0]["position"]["line"] == 1


# ---------------------------------------------------------------- hot-path rewrites keep semantics
def test_consecutive_rules_sharing_a_first_test_keep_definition_order() -> None:
    text = """
- macro: writing
  condition: (evt.type in (open, openat) and evt.is_open_write = true and fd.typechar = f)
- macro: other_user
  condition: (writing and user.name = nobody)
""" + rule("a", "writing and fd.name = /etc/a") + rule("b", "writing and fd.name startswith /etc") + \
        rule("c", "other_user")
    e = ev(evt__type="openat", evt__is_open_write=True, fd__typechar="f", fd__name="/etc/b",
           user__name="nobody")
    assert [r.name for r in ruleset(text).evaluate(e)] == ["b"]
    assert [r.name for r in ruleset(text, rule_matching="all").evaluate(e)] == ["b", "c"]
    e.values["evt.is_open_write"] = False
    assert ruleset(text, rule_matching="all").evaluate(e) == []


def test_full_predicate_checks_the_event_type_the_index_made_implicit() -> None:
    rs = ruleset(rule("r", "evt.type in (open, openat) and proc.name = cat"))
    r = rs.rules[0]
    assert r.predicate(ev(evt__type="openat", proc__name="cat"), {})
    assert not r.predicate(ev(evt__type="connect", proc__name="cat"), {})


@pytest.mark.parametrize(("values", "expected"), [
    ({"proc.cmdline": "xmrig --url stratum+tcp://pool"}, True),
    ({"proc.cmdline": "minerd"}, True),
    ({"proc.cmdline": "/opt/miner/run.sh"}, True),
    ({"proc.cmdline": "run.bin"}, True),
    ({"proc.cmdline": "ls -l"}, False),
    ({}, False),
])
def test_or_of_checks_on_one_field_is_merged_without_changing_results(values: dict[str, Any],
                                                                      expected: bool) -> None:
    cond = ("evt.type=execve and (proc.cmdline contains stratum or proc.cmdline = minerd or "
            "proc.cmdline startswith /opt/miner or proc.cmdline endswith .bin or proc.cmdline in (a, b))")
    rs = ruleset(rule("r", cond))
    assert bool(rs.evaluate(DictEvent({"evt.type": "execve", **values}))) is expected


def test_negated_membership_on_missing_values_is_true() -> None:
    rs = ruleset(rule("r", "evt.type=open and not proc.name in (cat, less) and not proc.pname = bash"))
    assert rs.evaluate(ev(evt__type="open"))
    assert rs.evaluate(ev(evt__type="open", proc__name="vi", proc__pname="zsh"))
    assert not rs.evaluate(ev(evt__type="open", proc__name="cat"))
    assert not rs.evaluate(ev(evt__type="open", proc__pname="bash"))
