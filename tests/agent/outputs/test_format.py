"""Alert text and JSON against Falco's own output (compat fixture)."""

from __future__ import annotations

import json
import time

from falcopy.agent.outputs.alert import Alert
from falcopy.agent.outputs.format import AlertFormatter, FormatOptions, rfc3339, time_prefix

from tests.agent.outputs.helpers import check_falcosidekick_payload, make_alert


def _fixture_lines(falco_fixtures_dir) -> list[dict]:
    path = falco_fixtures_dir / "output_files" / "single_rule_with_cat_write.json"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_json_identical_to_falco_fixture(falco_fixtures_dir) -> None:
    fmt = AlertFormatter(FormatOptions(json_output=True, iso8601=True))
    lines = _fixture_lines(falco_fixtures_dir)
    assert len(lines) >= 5
    for expected in lines:
        ts = expected["output_fields"]["evt.time.iso8601"]
        prefix = f"{expected['time'][:-1]}+0000: {expected['priority']} "
        assert expected["output"].startswith(prefix)
        alert = Alert(
            ts=ts,
            rule=expected["rule"],
            priority=expected["priority"],
            message=expected["output"][len(prefix) :],
            output_fields=expected["output_fields"],
            tags=list(reversed(expected["tags"])),
            source=expected["source"],
            hostname=expected["hostname"],
        )
        out = fmt.json(alert)
        assert json.loads(out) == expected
        # nlohmann::json object keys are serialised in sorted order, compact
        keys = list(json.loads(out))
        assert keys == sorted(keys)
        assert b": " not in out.split(b'"output":')[0] and b", " not in out[:20]


def test_json_optional_properties() -> None:
    alert = make_alert()
    full = json.loads(AlertFormatter(FormatOptions(json_output=True, include_message=True)).json(alert))
    assert full["message"] == alert.message
    assert list(full["output_fields"]) == sorted(full["output_fields"])
    bare = json.loads(
        AlertFormatter(
            FormatOptions(
                json_output=True, include_output=False, include_output_fields=False, include_tags=False
            )
        ).json(alert)
    )
    assert set(bare) == {"hostname", "priority", "rule", "source", "time"}


def test_falcosidekick_contract() -> None:
    alert = make_alert()
    check_falcosidekick_payload(AlertFormatter(FormatOptions(json_output=True)).json(alert), alert)


def test_time_formats() -> None:
    ts = 1_470_327_477_881_781_397
    assert rfc3339(ts) == "2016-08-04T16:17:57.881781397Z"
    assert time_prefix(ts, True) == "2016-08-04T16:17:57.881781397+0000"
    local = time.strftime("%H:%M:%S", time.localtime(ts // 10**9))
    assert time_prefix(ts, False) == f"{local}.881781397"
    assert rfc3339(5) == "1970-01-01T00:00:00.000000005Z"


def test_text_line() -> None:
    alert = make_alert()
    line = AlertFormatter(FormatOptions(iso8601=True)).line(alert).decode()
    assert line == f"2026-06-10T10:00:00.123456789+0000: Warning {alert.message}"


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    raw = b"/tmp/\xff\xfe-name".decode("utf-8", "surrogateescape")
    alert = make_alert()
    alert.output_fields["fd.name"] = raw
    alert.message = f"opened {raw}"
    fmt = AlertFormatter(FormatOptions(json_output=True))
    doc = json.loads(fmt.json(alert))
    assert doc["output_fields"]["fd.name"] == "/tmp/\ufffd\ufffd-name"
    assert "\ufffd" in AlertFormatter(FormatOptions()).line(alert).decode()


def test_typed_output_fields() -> None:
    alert = make_alert()
    alert.output_fields.update(
        {
            "evt.res": -2,
            "proc.is_exe_from_memfd": True,
            "proc.aname": ["bash", None],
            "evt.rawarg.data": b"\x00ab",
        }
    )
    doc = json.loads(AlertFormatter(FormatOptions(json_output=True)).json(alert))
    assert doc["output_fields"]["evt.res"] == -2
    assert doc["output_fields"]["proc.is_exe_from_memfd"] is True
    assert doc["output_fields"]["k8s.pod.name"] is None
    assert doc["output_fields"]["proc.aname"] == ["bash", None]
    assert doc["output_fields"]["evt.rawarg.data"] == "\x00ab"
