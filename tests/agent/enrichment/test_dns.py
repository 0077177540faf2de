"""The resolver cache behind fd.*ip.name: refresh, expiry, failure counting, one log line
per name, a silent resolver holding up nothing but its own name.  Real threads; the
lookups are a test's function (answers under the test's control) and time is a test clock
where expiry is checked."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest
from falcopy.agent.enrichment.dns import DnsConfig, DnsNames, ResolveFailure, resolve_name

from tests.waiting import wait_until


class Answers:
    """A resolver whose answers the test sets; ``block`` makes a name hang until released."""

    def __init__(self) -> None:
        self.answers: dict[str, frozenset[str] | ResolveFailure] = {}
        self.calls: dict[str, int] = {}
        self.blocked: dict[str, threading.Event] = {}
        self.lock = threading.Lock()

    def __call__(self, name: str) -> frozenset[str]:
        with self.lock:
            self.calls[name] = self.calls.get(name, 0) + 1
            gate = self.blocked.get(name)
        if gate is not None:
            gate.wait(60)
        answer = self.answers.get(name, ResolveFailure("no such name", no_address=True))
        if isinstance(answer, ResolveFailure):
            raise answer
        return answer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def answers() -> Answers:
    return Answers()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def names(answers: Answers, clock: Clock) -> Iterator[DnsNames]:
    dns = DnsNames(DnsConfig(refresh_interval_s=10, expiry_s=100), resolve=answers, clock=clock)
    dns.start()
    yield dns
    for gate in answers.blocked.values():
        gate.set()
    dns.stop()


def test_first_resolution_and_reverse_names(names: DnsNames, answers: Answers) -> None:
    answers.answers["api.example"] = frozenset({"10.0.0.1", "fd00::1"})
    answers.answers["web.example"] = frozenset({"10.0.0.2", "10.0.0.1"})
    names.watch({"api.example", "web.example"})
    assert names.wait_resolved({"api.example", "web.example"}, 30) == []
    assert names.contains("api.example", "10.0.0.1") and names.contains("api.example", "fd00::1")
    assert not names.contains("api.example", "10.0.0.2")
    assert names.contains("web.example", "10.0.0.2")
    assert not names.contains("unknown.example", "10.0.0.1")
    # a shared address is named by the first name in alphabetical order
    assert names.name_of("10.0.0.1") == "api.example"
    assert names.name_of("10.0.0.2") == "web.example"
    assert names.name_of("10.9.9.9") is None
    assert names.resolutions == 2


def test_refresh_picks_up_a_changed_address(names: DnsNames, answers: Answers, clock: Clock) -> None:
    answers.answers["api.example"] = frozenset({"10.0.0.1"})
    names.watch({"api.example"})
    names.wait_resolved({"api.example"}, 30)
    answers.answers["api.example"] = frozenset({"10.0.0.7"})
    clock.now += 5          # within the refresh interval: not asked again
    assert not wait_until(lambda: answers.calls["api.example"] > 1, timeout=1.5)
    assert names.contains("api.example", "10.0.0.1")
    clock.now += 5          # refresh interval reached
    assert wait_until(lambda: names.contains("api.example", "10.0.0.7"))
    assert not names.contains("api.example", "10.0.0.1")
    assert names.name_of("10.0.0.7") == "api.example" and names.name_of("10.0.0.1") is None


def test_transient_failures_keep_addresses_until_expiry(names: DnsNames, answers: Answers, clock: Clock,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="falcopy.agent.enrichment.dns")
    answers.answers["api.example"] = frozenset({"10.0.0.1"})
    names.watch({"api.example"})
    names.wait_resolved({"api.example"}, 30)
    answers.answers["api.example"] = ResolveFailure("Temporary failure in name resolution", no_address=False)
    for n in range(1, 4):
        clock.now += 10
        assert wait_until(lambda n=n: names.stats()["api.example"]["failures"] == n)
    # a server failure is not an answer: the last addresses still count
    assert names.contains("api.example", "10.0.0.1")
    logged = [r for r in caplog.records if "cannot resolve api.example" in r.getMessage()]
    assert len(logged) == 1, "a failing name is logged once, not at every refresh"
    clock.now += 100        # expiry after the last success
    assert wait_until(lambda: not names.contains("api.example", "10.0.0.1"))
    assert names.stats()["api.example"]["addresses"] == 0


def test_no_such_name_empties_at_once(names: DnsNames, answers: Answers, clock: Clock) -> None:
    answers.answers["gone.example"] = frozenset({"10.0.0.3"})
    names.watch({"gone.example"})
    names.wait_resolved({"gone.example"}, 30)
    assert names.contains("gone.example", "10.0.0.3")
    answers.answers["gone.example"] = ResolveFailure("Name or service not known", no_address=True)
    clock.now += 10
    assert wait_until(lambda: not names.contains("gone.example", "10.0.0.3"))
    assert names.stats()["gone.example"]["failures"] == 1


def test_a_hanging_lookup_holds_up_only_its_name(names: DnsNames, answers: Answers) -> None:
    answers.blocked["silent.example"] = threading.Event()
    answers.answers["api.example"] = frozenset({"10.0.0.1"})
    names.watch({"silent.example", "api.example"})
    # bounded wait: the silent name is reported, the other one resolved
    assert names.wait_resolved({"silent.example", "api.example"}, 1.0) == ["silent.example"]
    assert names.contains("api.example", "10.0.0.1")
    assert not names.contains("silent.example", "10.0.0.1")
    answers.blocked["silent.example"].set()
    assert wait_until(lambda: names.stats()["silent.example"]["failures"] == 1)


def test_retired_names_answer_until_their_refresh(names: DnsNames, answers: Answers, clock: Clock) -> None:
    answers.answers["old.example"] = frozenset({"10.0.0.4"})
    answers.answers["new.example"] = frozenset({"10.0.0.5"})
    names.watch({"old.example"})
    names.wait_resolved({"old.example"}, 30)
    names.watch({"new.example"})
    names.wait_resolved({"new.example"}, 30)
    # the running rules may still use the old name until the swap
    assert names.contains("old.example", "10.0.0.4")
    clock.now += 10
    assert wait_until(lambda: not names.contains("old.example", "10.0.0.4"))
    assert set(names.stats()) == {"new.example"}
    assert names.contains("new.example", "10.0.0.5")


def test_real_resolver_reads_hosts_file() -> None:
    # localhost is in every hosts file; a name under .invalid never exists (RFC 6761)
    assert "127.0.0.1" in resolve_name("localhost")
    with pytest.raises(ResolveFailure):
        resolve_name("no-such-host.falcopy.invalid")
