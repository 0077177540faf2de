"""syscall_event_drops: threshold, token bucket and actions, as Falco's."""

from __future__ import annotations

from falcopy.agent.control.config import load_config
from falcopy.agent.control.drops import DropMonitor, TokenBucket


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _monitor(*overrides: str):
    clock, alerts, exits = Clock(), [], []
    cfg = load_config(None, list(overrides)).syscall_event_drops
    mon = DropMonitor(cfg, lambda m, f: alerts.append((m, f)), exits.append, clock)
    return mon, clock, alerts, exits


def test_token_bucket_rate_and_burst() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=0.5, max_burst=2, clock=clock)
    assert bucket.claim() and bucket.claim() and not bucket.claim()
    clock.t += 1.0
    assert not bucket.claim()
    clock.t += 1.0
    assert bucket.claim()


def test_alert_when_over_threshold_rate_limited() -> None:
    mon, clock, alerts, exits = _monitor()
    evts = drops = 0
    for _ in range(40):  # 40 seconds of 50 % drops
        clock.t += 1.0
        evts += 1000
        drops += 1000
        mon.check(evts, drops)
    # max_burst 1, then one token per 30 s (rate .03333)
    assert len(alerts) == 2 and not exits
    message, fields = alerts[0]
    assert message == "Falco internal: syscall event drop. 1000 system calls dropped in last second."
    assert fields["n_drops"] == 1000 and fields["n_evts"] == 1000 and fields["n_drops_pct"] == 50.0


def test_below_threshold_and_no_drops_are_quiet() -> None:
    mon, clock, alerts, _ = _monitor()
    clock.t += 1.0
    assert mon.check(1000, 0) is None
    clock.t += 1.0
    report = mon.check(100_000, 50)  # 0.05 % < 10 %
    assert report is None and not alerts
    clock.t += 0.5
    assert mon.check(200_000, 100_000) is None  # checked at most once per second


def test_exit_and_ignore_actions() -> None:
    mon, clock, alerts, exits = _monitor("syscall_event_drops.actions=[log, exit]")
    clock.t += 1.0
    mon.check(10, 90)
    assert exits and not alerts
    mon, clock, alerts, exits = _monitor("syscall_event_drops.actions=[ignore]")
    clock.t += 1.0
    assert mon.check(10, 90) is not None and not alerts and not exits
