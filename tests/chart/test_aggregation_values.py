"""The chart turns alert aggregation on (60 s window), the agent's own default is off."""

from __future__ import annotations

from falcopy.agent.control.config import load_config

from tests.chart.render import render


def test_chart_aggregates_with_a_60s_window_agent_does_not() -> None:
    cfg = render({}).agent_config()
    assert cfg.falcopy.aggregation.enabled is True
    assert cfg.falcopy.aggregation.window_seconds() == 60.0
    assert cfg.falcopy.host.proc == "/host/proc"  # merged over what the chart computes, not instead
    assert load_config(None, []).falcopy.aggregation.enabled is False


def test_chart_users_can_turn_it_off_or_tune_it() -> None:
    cfg = render({"config": {"falcopy": {"aggregation": {"enabled": False}}}}).agent_config()
    assert cfg.falcopy.aggregation.enabled is False
    cfg = render({"config": {"falcopy": {"aggregation": {"window": "5m", "max_keys": 500}}}}).agent_config()
    assert (cfg.falcopy.aggregation.enabled, cfg.falcopy.aggregation.window_seconds(),
            cfg.falcopy.aggregation.max_keys) == (True, 300.0, 500)
