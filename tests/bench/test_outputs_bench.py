"""Outputs benchmark: alerts/s through the formatters and each sink; a dead HTTP sink vs. event processing.

Run with ``make bench`` (or ``pytest -m bench -o addopts='' -s tests/bench/test_outputs_bench.py``).
Numbers are printed, not asserted (beyond accounting: every alert delivered, failed or dropped).
"""

from __future__ import annotations

import time

import pytest
from falcopy.agent.control.config import load_config
from falcopy.agent.outputs.builder import AlertBuilder
from falcopy.agent.outputs.dispatch import OutputDispatcher, build_dispatcher
from falcopy.agent.outputs.format import AlertFormatter, FormatOptions
from falcopy.agent.outputs.sinks.stdout import StdoutSink

from falcopy.engine import RulesInput, default_sources, load_rules
from falcopy.engine.event import DictEvent
from tests.agent.outputs.helpers import make_alert
from tests.agent.outputs.servers import HttpReceiver, SyslogReceiver, free_port
from tests.waiting import wait_until

pytestmark = pytest.mark.bench


def _rate(n: int, seconds: float) -> str:
    return f"{n / seconds:,.0f}/s"


def test_bench_formatters() -> None:
    alerts = [make_alert(i) for i in range(20_000)]
    for name, opts in (("json", FormatOptions(json_output=True)), ("text", FormatOptions())):
        fmt = AlertFormatter(opts)
        t0 = time.perf_counter()
        for a in alerts:
            fmt.line(a)
        dt = time.perf_counter() - t0
        print(
            f"\n[outputs bench] {name} formatter: {_rate(len(alerts), dt)} "
            f"({dt / len(alerts) * 1e6:.1f} us/alert)"
        )


def _through(d: OutputDispatcher, sink: str, n: int) -> float:
    d.start()
    t0 = time.perf_counter()
    for i in range(n):
        d.submit(make_alert(i))
    assert wait_until(
        lambda: d.stats(sink).delivered + d.stats(sink).failed + d.stats(sink).dropped >= n, 120
    )
    dt = time.perf_counter() - t0
    d.close()
    s = d.stats(sink)
    assert s.delivered + s.failed + s.dropped == n
    print(
        f"\n[outputs bench] sink {sink}: {_rate(s.delivered, dt)} delivered={s.delivered} "
        f"failed={s.failed} dropped={s.dropped}"
    )
    return dt


BASE = [
    "stdout_output.enabled=false",
    "syslog_output.enabled=false",
    "json_output=true",
    "outputs_queue.capacity=100000",
]


def test_bench_sinks(tmp_path) -> None:
    n = 5000
    with open("/dev/null", "wb") as devnull:
        d = OutputDispatcher(AlertFormatter(FormatOptions(json_output=True)), capacity=100_000)
        d.add_sink(StdoutSink(stream=devnull))
        _through(d, "stdout", n)
    for keep in ("true", "false"):
        cfg = load_config(
            None,
            [
                *BASE,
                "file_output.enabled=true",
                f"file_output.keep_alive={keep}",
                f"file_output.filename={tmp_path}/events-{keep}.txt",
            ],
        )
        print(f"\n[outputs bench] file keep_alive={keep}", end="")
        _through(build_dispatcher(cfg), "file", n)
    rx = SyslogReceiver(str(tmp_path / "log.sock"))
    rx.sock.setsockopt(__import__("socket").SOL_SOCKET, __import__("socket").SO_RCVBUF, 8 << 20)
    import threading

    stop = threading.Event()

    def drain() -> None:
        rx.sock.settimeout(0.2)
        while not stop.is_set():
            try:
                rx.recv()
            except OSError:
                pass

    t = threading.Thread(target=drain, daemon=True)
    t.start()
    _through(
        build_dispatcher(
            load_config(None, [*BASE, "syslog_output.enabled=true", f"falcopy.syslog_socket={rx.path}"])
        ),
        "syslog",
        n,
    )
    stop.set()
    t.join()
    rx.close()
    _through(
        build_dispatcher(
            load_config(
                None,
                [
                    *BASE,
                    "program_output.enabled=true",
                    "program_output.keep_alive=true",
                    "program_output.program=cat",
                ],
            )
        ),
        "program",
        n,
    )
    srv = HttpReceiver().start()
    try:
        _through(
            build_dispatcher(
                load_config(
                    None,
                    [
                        *BASE,
                        "http_output.enabled=true",
                        f"http_output.url={srv.url}",
                        "http_output.keep_alive=true",
                    ],
                )
            ),
            "http",
            2000,
        )
    finally:
        srv.stop()


RULES = """
- rule: bench match
  desc: one event in ten matches
  condition: evt.type = openat and fd.name startswith /etc/ and proc.name = cat
  output: opened (file=%fd.name command=%proc.cmdline user=%user.name)
  priority: WARNING
"""


def _events(n: int) -> list[DictEvent]:
    out = []
    for i in range(n):
        name = "/etc/shadow" if i % 10 == 0 else "/usr/lib/x.so"
        out.append(
            DictEvent(
                {
                    "evt.type": "openat",
                    "fd.name": name,
                    "proc.name": "cat",
                    "proc.cmdline": "cat /etc/shadow",
                    "user.name": "root",
                    "evt.time": i,
                },
                ts=i,
            )
        )
    return out


def _process(events, ruleset, builder, dispatcher) -> float:
    t0 = time.perf_counter()
    for ev in events:
        for rule in ruleset.evaluate(ev):
            alert = builder.build(rule, ev)
            if alert is not None:
                dispatcher.submit(alert)
    return time.perf_counter() - t0


def _best_of(n: int, make, events, ruleset, builder) -> tuple[float, list]:
    """Fastest of ``n`` runs (the machine is shared), each with a fresh dispatcher."""
    best, stats = float("inf"), []
    for _ in range(n):
        d, cleanup = make()
        d.start()
        dt = _process(events, ruleset, builder, d)
        d.close(timeout=1.0)
        cleanup()
        stats.append({name: d.stats(name) for name in d.sink_names})
        best = min(best, dt)
    return best, stats


def test_bench_dead_http_burst_does_not_slow_events(tmp_path) -> None:
    sources = default_sources()
    ruleset = load_rules([RulesInput("bench.yaml", RULES)], sources=sources).ruleset
    events = _events(100_000)  # 10,000 alerts
    common = [
        "stdout_output.enabled=false",
        "syslog_output.enabled=false",
        "json_output=true",
        "append_output=[]",
    ]
    builder = AlertBuilder(load_config(None, common), ruleset, sources, hostname="bench")

    def plain(extra: list[str], srv=None):
        def make():
            return build_dispatcher(load_config(None, [*common, *extra])), (srv.stop if srv else lambda: None)

        return make

    cases = {
        "no sink": plain([]),
        "healthy file sink": plain(
            [
                "file_output.enabled=true",
                "file_output.keep_alive=true",
                f"file_output.filename={tmp_path}/ev.txt",
            ]
        ),
        "dead http (connection refused)": plain(
            ["http_output.enabled=true", f"http_output.url=http://127.0.0.1:{free_port()}/"]
        ),
    }
    results = {}
    for label, make in cases.items():
        dt, stats = _best_of(3, make, events, ruleset, builder)
        results[label] = dt
        for run in stats:
            if "http" in run:
                s = run["http"]
                assert s.delivered + s.failed + s.dropped == 10_000
        extra = ""
        if "http" in stats[-1]:
            s = stats[-1]["http"]
            extra = f" (http: failed={s.failed} dropped={s.dropped}, queue capacity 10000)"
        print(f"\n[outputs bench] 100,000 events / 10,000 alerts, {label}: {_rate(100_000, dt)}{extra}")
    srv = HttpReceiver(delay=30.0).start()
    try:
        dt, stats = _best_of(
            3, plain(["http_output.enabled=true", f"http_output.url={srv.url}"]), events, ruleset, builder
        )
    finally:
        srv.stop()
    print(
        f"\n[outputs bench] 100,000 events / 10,000 alerts, dead http (accepts, never answers): "
        f"{_rate(100_000, dt)}"
    )
    ratio = results["dead http (connection refused)"] / results["healthy file sink"]
    print(f"\n[outputs bench] dead http vs healthy file sink: x{ratio:.2f} event processing time")
