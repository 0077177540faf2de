"""The detection cases of Falco's falco_tests.yaml whose trace is simple enough
to write down by hand, replayed through our engine.

``cat_write.scap`` is ``cat`` opening ``/dev/null``; ``open-multiple-files.scap``
opens ``/tmp/file-1`` .. ``/tmp/file-13`` for reading.  For each case the
rules files are loaded with the case's options mapped onto falcopy's
(``disabled_rules`` = 0.35's ``-D`` substring, ``disable_tags`` = ``-T``,
``run_tags`` = ``-t``, ``priority`` = minimum priority) and the manifest's
verdicts are checked: detect, detect_level, detect_counts, and the text of
``stdout_contains`` when it is about the rule output.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from ruamel.yaml import YAML

from falcopy.engine import Priority, load_rules_files
from falcopy.engine.event import DictEvent
from tests.conftest import FIXTURES_DIR

_CAT = {"proc.name": "cat", "proc.cmdline": "cat /dev/null", "proc.pname": "bash", "fd.typechar": "f",
        "fd.num": 3}
#: cat's execve, its open of /dev/null and a later write to it (the trace has more events of these
#: kinds: Falco's counts for cat_write are compared as "some" / "none")
CAT_WRITE = [{**_CAT, "evt.type": "execve"},
             {**_CAT, "evt.type": "open", "fd.name": "/dev/null", "evt.is_open_read": True},
             {**_CAT, "evt.type": "write", "fd.name": "/dev/null"}]
OPEN_MULTIPLE = [{"evt.type": "open", "proc.name": "cat", "fd.name": f"/tmp/file-{i}", "fd.typechar": "f",
                  "evt.is_open_read": True, "fd.num": 3} for i in range(1, 14)]
TRACES = {"trace_files/cat_write.scap": CAT_WRITE, "trace_files/open-multiple-files.scap": OPEN_MULTIPLE}


def _cases() -> list[tuple[str, dict[str, Any]]]:
    data = YAML(typ="rt").load((FIXTURES_DIR / "falco_tests.yaml").read_text())
    out = []
    for name, case in data["trace_files"].items():
        if "rules_file" not in case or "validate_rules_file" in case or case.get("trace_file") not in TRACES:
            continue
        if case.get("exit_status", 0) != 0:
            continue          # configuration errors of Falco's command line, not rules
        out.append((str(name), dict(case)))
    return out


CASES = _cases()


def _selection(case: dict[str, Any]) -> list[dict[str, dict[str, str]]]:
    sel = [{"disable": {"rule": f"*{p}*"}} for p in case.get("disabled_rules") or []]
    sel += [{"disable": {"tag": str(t)}} for t in case.get("disable_tags") or []]
    if case.get("run_tags"):
        sel = [{"disable": {"rule": "*"}}] + [{"enable": {"tag": str(t)}} for t in case["run_tags"]]
    return sel


def test_cases_were_found() -> None:
    assert len(CASES) >= 50


@pytest.mark.parametrize(("name", "case"), CASES, ids=[c[0] for c in CASES])
def test_detection_case(name: str, case: dict[str, Any]) -> None:
    files = case["rules_file"] if not isinstance(case["rules_file"], str) else [case["rules_file"]]
    kwargs: dict[str, Any] = {"selection": _selection(case)}
    if "priority" in case:
        kwargs["min_priority"] = Priority.parse(str(case["priority"]))
    result = load_rules_files([FIXTURES_DIR / f for f in files], **kwargs)
    assert result.ok and result.ruleset is not None, [str(e) for e in result.errors]
    fired = []
    for values in TRACES[case["trace_file"]]:
        event = DictEvent(dict(values))
        for rule in result.ruleset.evaluate(event):
            fired.append((rule, event))
    assert bool(fired) is bool(case.get("detect", False))
    levels = case.get("detect_level")
    if levels and fired:
        allowed = {Priority.parse(x) for x in ([levels] if isinstance(levels, str) else levels)}
        assert {r.priority for r, _ in fired} <= allowed
    exact = case["trace_file"] == "trace_files/open-multiple-files.scap"
    for entry in case.get("detect_counts") or []:
        for rule_name, count in entry.items():
            got = sum(1 for r, _ in fired if r.name == rule_name)
            assert (got == count) if exact else (bool(got) is bool(count)), rule_name
    pattern = case.get("stdout_contains")
    if pattern and fired and "json_output" not in case and "time_iso_8601" not in case:
        rule, event = fired[0]
        text, _ = result.ruleset.format(rule, event)
        assert re.search(pattern, f"{rule.priority.falco_name} {text}")
