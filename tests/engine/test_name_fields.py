"""fd.*ip.name in the engine: comparisons with names go through the source's
``name_matcher`` hook (address membership, as libsinsp's compare_domain), the optimiser
never folds them into text comparisons, the names a ruleset needs are found through
macros and lists, and rules reading fields that never have a value get one warning."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from falcopy.engine import LoadCode, load_rules_files
from falcopy.engine.event import DictEvent
from falcopy.engine.fieldrefs import compared_names, unavailable_reads
from falcopy.engine.fields import default_sources
from falcopy.engine.fields.base import FieldDef, FieldSource
from tests.engine.helpers import load, ruleset

NAMES = {"api.example": {"10.0.0.1", "fd00::1"}, "db.example": {"10.0.0.2"}}


class NamedSource(FieldSource):
    """Dict events whose fd.sip / fd.cip are addresses; names from NAMES."""

    def __init__(self) -> None:
        base = default_sources()["syscall"]
        super().__init__("syscall", base.fields)
        self.asked: list[str] = []

    def name_matcher(self, fdef: FieldDef, arg: str | None) -> Any:
        role = {"fd.sip.name": "fd.sip", "fd.cip.name": "fd.cip"}.get(fdef.name)
        if role is None:
            return None

        def match(ev: Any, name: str) -> bool | None:
            self.asked.append(name)
            addr = ev.values.get(role)
            return None if addr is None else addr in NAMES.get(name, ())
        return match


def _rules(condition: str, *, optimize_or: bool = False) -> Any:
    return ruleset(f"""
- macro: api_server
  condition: fd.sip.name = api.example
- list: dbs
  items: [db.example, other.example]
- rule: r
  desc: d
  condition: evt.type = connect and ({condition})
  output: "%fd.sip.name"
  priority: WARNING
""", sources={"syscall": NamedSource()})


def _fires(condition: str, **values: Any) -> bool:
    rs = _rules(condition)
    return bool(rs.evaluate(DictEvent({"evt.type": "connect", **values})))


def test_equals_is_address_membership() -> None:
    assert _fires("api_server", **{"fd.sip": "10.0.0.1"})
    assert _fires("api_server", **{"fd.sip": "fd00::1"})
    assert not _fires("api_server", **{"fd.sip": "10.0.0.2"})
    # no address (not an IP socket): neither = nor != holds, as in libsinsp
    assert not _fires("api_server")
    assert not _fires("fd.sip.name != api.example")
    assert _fires("fd.sip.name != api.example", **{"fd.sip": "10.0.0.2"})
    assert not _fires("fd.sip.name != api.example", **{"fd.sip": "10.0.0.1"})


def test_in_and_lists() -> None:
    assert _fires("fd.sip.name in (dbs)", **{"fd.sip": "10.0.0.2"})
    assert not _fires("fd.sip.name in (dbs)", **{"fd.sip": "10.0.0.1"})
    assert _fires("fd.cip.name in (api.example, db.example)", **{"fd.cip": "10.0.0.2"})


def test_or_and_not_are_not_folded_into_text_checks() -> None:
    # an `or` of = checks on one field is merged into a set lookup for text fields: not here
    cond = "fd.sip.name = api.example or fd.sip.name = db.example or fd.sip.name in (x.example)"
    assert _fires(cond, **{"fd.sip": "10.0.0.2"})
    assert not _fires(cond, **{"fd.sip": "10.0.0.9"})
    assert _fires("not fd.sip.name = api.example", **{"fd.sip": "10.0.0.9"})
    assert not _fires("not fd.sip.name in (api.example)", **{"fd.sip": "10.0.0.1"})


def test_other_operators_compare_the_text() -> None:
    # startswith and co. read the field's value (a name or <NA>), as Falco's extraction
    rs = _rules("fd.sip.name startswith api")
    assert not rs.evaluate(DictEvent({"evt.type": "connect", "fd.sip": "10.0.0.1"}))
    assert rs.evaluate(DictEvent({"evt.type": "connect", "fd.sip.name": "api.example"}))


def test_compared_names_through_macros_lists_and_exceptions() -> None:
    rs = ruleset("""
- list: miners
  items: [pool.example, "mine.example"]
- macro: k8s_api
  condition: (fd.sip.name="kubernetes.default.svc.cluster.local")
- rule: a
  desc: d
  condition: evt.type = connect and k8s_api and not fd.cip.name in (miners)
  output: o
  priority: WARNING
  exceptions:
    - name: peers
      fields: [fd.rip.name]
      values: [[peer.example]]
- rule: b
  desc: d
  condition: evt.type = connect and fd.lip.name != local.example and fd.sip.name startswith x
  output: o
  priority: WARNING
- rule: off
  desc: a disabled rule's names are not needed
  condition: evt.type = connect and fd.sip.name = disabled.example
  output: o
  priority: WARNING
  enabled: false
""")
    assert compared_names(rs) == {"kubernetes.default.svc.cluster.local", "pool.example", "mine.example",
                                  "peer.example", "local.example"}


def test_stable_rules_need_the_api_server_name(compat_dir: Path) -> None:
    result = load_rules_files([compat_dir / "falco_rules.yaml"])
    assert result.ruleset is not None
    assert compared_names(result.ruleset) == {"kubernetes.default.svc.cluster.local"}


def test_unavailable_field_warning_once_per_rule() -> None:
    text = """
- rule: reads buffer
  desc: d
  condition: evt.type = write and evt.buffer bcontains cafe and evt.asynctype exists
  output: "%evt.buffer %evt.asynctype %k8smeta.deployment.name"
  priority: WARNING
- rule: fine
  desc: d
  condition: evt.type = write and proc.name = x
  output: "%proc.name"
  priority: WARNING
"""
    unavailable = {"evt.buffer": "no payloads", "evt.asynctype": "no async events",
                   "k8smeta.deployment.*": "collector disabled"}
    res = load(text, unavailable_fields=unavailable)
    assert res.ok
    warned = [w for w in res.warnings if w.code is LoadCode.UNAVAILABLE_FIELD]
    assert len(warned) == 1
    w = warned[0]
    assert (w.item_type, w.item_name, w.line) == ("rule", "reads buffer", 2)
    assert w.message == ("Rule reads field(s) that never have a value here, they read as <NA>: "
                         "evt.asynctype (no async events); evt.buffer (no payloads); "
                         "k8smeta.deployment.name (collector disabled)")
    assert not [w for w in load(text).warnings if w.code is LoadCode.UNAVAILABLE_FIELD]


def test_unavailable_reads_prefixes() -> None:
    assert unavailable_reads({"k8smeta.rs.name", "proc.name"}, {"k8smeta.rs.*": "off"}) == [
        ("k8smeta.rs.name", "off")]
    assert unavailable_reads({"k8smeta.rsx"}, {"k8smeta.rs.*": "off"}) == []
