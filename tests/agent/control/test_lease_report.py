"""When the agent's status Lease is written (agent/control/lease.py), against the stand-in API
server: a new bundle version rides on the next renewal (one write per period, whatever the
rate of rules changes); the first version and an error are written early."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from falcopy.agent.control.lease import LeaseReporter

from falcopy.distribution.apiaccess import ApiAccess
from falcopy.distribution.lease import ERROR_ANNOTATION, VERSION_ANNOTATION
from tests.operator.fake_apiserver import FakeApiServer
from tests.waiting import wait_for, wait_until

NS = "falcopy"


@pytest.fixture
def server() -> Iterator[FakeApiServer]:
    s = FakeApiServer()
    s.start()
    yield s
    s.stop()


def start(server: FakeApiServer, node: str, period: float) -> LeaseReporter:
    reporter = LeaseReporter(node, NS, period=period, report_within=0.2,
                             access=ApiAccess(server.url, token="t"))
    reporter.start()
    return reporter


def test_first_version_and_errors_early_new_versions_on_the_renewal(server: FakeApiServer) -> None:
    period = 120.0  # far beyond every wait below: a write seen here was not a renewal
    reporter = start(server, "n1", period)

    def counted(n: int) -> None:
        # the server stores a write before its response reaches the reporter, which counts it
        # then: wait for the count, then it must be exactly n
        wait_for(lambda: reporter.writes >= n, what=f"{n} writes counted")
        assert reporter.writes == n

    try:
        lease = lambda: server.get("leases", NS, "falcopy-agent-n1") or {}  # noqa: E731
        notes = lambda: lease().get("metadata", {}).get("annotations", {})  # noqa: E731
        wait_for(lambda: lease(), what="the first renewal")
        counted(1)
        reporter.loaded("v1")  # the first version: early
        wait_for(lambda: notes().get(VERSION_ANNOTATION) == "v1", what="v1 written early")
        counted(2)
        reporter.failed("rules.yaml:3: bad condition")  # an error: early
        wait_for(lambda: notes().get(ERROR_ANNOTATION), what="the error written early")
        reporter.loaded("v2")  # clears the error: early, and carries v2
        wait_for(lambda: notes().get(ERROR_ANNOTATION) == "" and notes().get(VERSION_ANNOTATION) == "v2",
                 what="the error cleared early")
        counted(4)
        # new versions alone wait for the renewal (120 s away): nothing is written for them now,
        # where an early write would come within report_within (0.2 s); 10 times that is watched
        for v in ("v3", "v4", "v5"):
            reporter.loaded(v)
        assert not wait_until(lambda: notes().get(VERSION_ANNOTATION) == "v5", timeout=2.0)
        assert reporter.writes == 4, "the loads of v3..v5 wrote on their own"
        marker = "n1-probe"
        reporter.failed(marker)  # an error after them is written early, with the latest version
        wait_for(lambda: notes().get(ERROR_ANNOTATION) == marker, what="the probe error written")
        assert notes()[VERSION_ANNOTATION] == "v5"
        counted(5)
    finally:
        reporter.stop()


def test_a_new_version_is_written_at_the_renewal(server: FakeApiServer) -> None:
    reporter = start(server, "n2", period=1.0)
    try:
        notes = lambda: (server.get("leases", NS, "falcopy-agent-n2") or {}).get(  # noqa: E731
            "metadata", {}).get("annotations", {})
        reporter.loaded("v1")
        wait_for(lambda: notes().get(VERSION_ANNOTATION) == "v1", what="v1")
        reporter.loaded("v2")
        wait_for(lambda: notes().get(VERSION_ANNOTATION) == "v2", what="v2 at the renewal")
    finally:
        reporter.stop()
