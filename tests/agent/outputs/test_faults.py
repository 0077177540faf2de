"""Failing sinks: the failure is counted for that sink; detection and the other sinks go on."""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
import time
import urllib.request

import pytest
from falcopy.agent.control.config import load_config
from falcopy.agent.control.metrics import AgentMetrics
from falcopy.agent.control.web import Readiness, WebServer, create_app
from falcopy.agent.outputs.dispatch import build_dispatcher
from falcopy.agent.outputs.sinks.base import SinkError

from tests.agent.outputs.helpers import config, make_alert
from tests.agent.outputs.servers import HttpReceiver, free_port
from tests.waiting import wait_until


def _with_file(tmp_path, *opts):
    path = tmp_path / "events.txt"
    return path, config("file_output.enabled=true", f"file_output.filename={path}", *opts)


def _lines(path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_http_down_other_sinks_unaffected(tmp_path) -> None:
    url = f"http://127.0.0.1:{free_port()}/"
    path, cfg = _with_file(
        tmp_path, "http_output.enabled=true", f"http_output.url={url}", "http_output.retries=1"
    )
    d = build_dispatcher(cfg)
    d.start()
    for i in range(10):
        d.submit(make_alert(i))
    assert wait_until(lambda: _lines(path) == 10)
    assert wait_until(lambda: d.stats("http").failed == 10)
    d.close()
    assert d.stats("http").delivered == 0 and d.stats("file").delivered == 10


def test_http_down_pauses_keeps_queue_and_delivers_when_back(tmp_path) -> None:
    port = free_port()
    path, cfg = _with_file(
        tmp_path,
        "http_output.enabled=true",
        f"http_output.url=http://127.0.0.1:{port}/",
        "http_output.retries=0",
        "http_output.max_consecutive_timeouts=2",
        "http_output.concurrency=1",
    )
    d = build_dispatcher(cfg)
    d.start()
    for i in range(10):
        d.submit(make_alert(i))
    assert wait_until(lambda: d.stats("http").failed == 2)
    time.sleep(0.3)
    # the endpoint is considered down: no more attempts, the rest waits in the queue
    assert d.stats("http").failed == 2 and len(d._channels["http"].queue) >= 7
    srv = HttpReceiver(port=port).start()
    try:
        assert len(srv.wait_for(8, timeout=10)) == 8
        d.close()
    finally:
        srv.stop()
    assert d.stats("http").delivered == 8 and _lines(path) == 10
    assert sorted(json.loads(r.body)["output_fields"]["n"] for r in srv.requests) == list(range(2, 10))


def test_http_slow_times_out_and_recovers(tmp_path) -> None:
    srv = HttpReceiver(delay=1.0).start()
    try:
        path, cfg = _with_file(
            tmp_path,
            "http_output.enabled=true",
            f"http_output.url={srv.url}",
            "http_output.retries=0",
            "output_timeout=200",
        )
        d = build_dispatcher(cfg)
        d.start()
        for i in range(4):
            d.submit(make_alert(i))
        assert wait_until(lambda: _lines(path) == 4)
        assert wait_until(lambda: d.stats("http").failed == 4)
        srv.delay = 0.0
        d.submit(make_alert(99))
        assert wait_until(lambda: d.stats("http").delivered == 1)
        d.close()
    finally:
        srv.stop()
    assert 99 in [json.loads(r.body)["output_fields"]["n"] for r in srv.requests]


def test_http_500_retried_then_counted(receiver, tmp_path) -> None:
    receiver.status = 500
    path, cfg = _with_file(
        tmp_path, "http_output.enabled=true", f"http_output.url={receiver.url}", "http_output.retries=2"
    )
    d = build_dispatcher(cfg)
    d.start()
    d.submit(make_alert(0))
    assert wait_until(lambda: d.stats("http").failed == 1)
    assert receiver.attempts == 3  # first try + 2 retries with backoff
    receiver.status = 400
    d.submit(make_alert(1))
    assert wait_until(lambda: d.stats("http").failed == 2)
    assert receiver.attempts == 4  # a 4xx is final
    d.close()
    assert _lines(path) == 2


def test_program_that_exits_is_restarted(tmp_path) -> None:
    out = tmp_path / "prog.out"
    path, cfg = _with_file(
        tmp_path,
        "program_output.enabled=true",
        "program_output.keep_alive=true",
        f"program_output.program=sh -c 'head -n 1 >> {out}'",
    )
    d = build_dispatcher(cfg)
    d.start()
    sink = d._workers[0].sink if d._workers[0].sink.name == "program" else d._workers[1].sink
    for i in range(6):
        d.submit(make_alert(i))
        # let the child read its line and exit: a line written while it is exiting is lost in the
        # pipe, as with any reader that quits (Falco's program output has the same property)
        assert wait_until(
            lambda i=i: (
                d.stats("program").delivered == i + 1
                and sink._proc is not None
                and sink._proc.poll() is not None
            ),
            10,
        )
    d.close()
    s = d.stats("program")
    assert s.delivered == 6 and s.failed == 0
    # each alert found a live program: the exited one was noticed and restarted
    assert [json.loads(x)["output_fields"]["n"] for x in out.read_text().splitlines()] == list(range(6))
    assert _lines(path) == 6


def test_program_missing_binary_fails_at_start(tmp_path) -> None:
    cfg = config(
        "program_output.enabled=true",
        "program_output.keep_alive=true",
        "program_output.program=/nonexistent/falcopy-sink",
    )
    with pytest.raises(SinkError, match="cannot start /nonexistent/falcopy-sink"):
        build_dispatcher(cfg).start()


def test_disk_full_counted_other_sinks_deliver(receiver) -> None:
    # /dev/full answers every write with ENOSPC, as a full disk does
    cfg = config(
        "file_output.enabled=true",
        "file_output.filename=/dev/full",
        "file_output.keep_alive=true",
        "http_output.enabled=true",
        f"http_output.url={receiver.url}",
    )
    m = AgentMetrics()
    d = build_dispatcher(cfg, m)
    d.start()
    for i in range(5):
        d.submit(make_alert(i))
    assert wait_until(lambda: d.stats("file").failed == 5)
    assert len(receiver.wait_for(5)) == 5
    d.close()
    assert m.registry.get_sample_value("falcopy_output_failed_total", {"sink": "file"}) == 5


@pytest.fixture
def ro_mount(tmp_path, require_root):
    mnt = tmp_path / "ro"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], check=True)
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_read_only_target_refused_at_start(ro_mount) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(ro_mount)], check=True)
    cfg = config("file_output.enabled=true", f"file_output.filename={ro_mount}/events.txt")
    with pytest.raises(SinkError, match="Read-only file system"):
        build_dispatcher(cfg).start()


def test_target_turning_read_only_at_run_time(ro_mount, receiver) -> None:
    target = ro_mount / "events.txt"
    cfg = config(
        "file_output.enabled=true",
        f"file_output.filename={target}",
        "http_output.enabled=true",
        f"http_output.url={receiver.url}",
    )
    d = build_dispatcher(cfg)
    d.start()
    d.submit(make_alert(0))
    assert wait_until(lambda: d.stats("file").delivered == 1)
    subprocess.run(["mount", "-o", "remount,ro", str(ro_mount)], check=True)
    for i in range(1, 4):
        d.submit(make_alert(i))
    assert wait_until(lambda: d.stats("file").failed == 3)
    assert len(receiver.wait_for(4)) == 4
    d.close()
    assert len(target.read_text().splitlines()) == 1


def _serve_web(metrics: AgentMetrics):
    loop = asyncio.new_event_loop()
    cfg = load_config(
        None,
        [
            "webserver.listen_port=0",
            "webserver.listen_address=127.0.0.1",
            "webserver.prometheus_metrics_enabled=true",
        ],
    ).webserver
    readiness = Readiness()
    server = WebServer(create_app(cfg, readiness, metrics), cfg)
    loop.run_until_complete(server.start())
    t = threading.Thread(target=loop.run_forever, daemon=True)
    t.start()

    def stop() -> None:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        t.join(5)

    return server.port, readiness, stop


def _scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def test_dead_sink_overflow_drops_counted_in_metrics(tmp_path) -> None:
    srv = HttpReceiver(hold=True).start()  # accepts and never answers while held
    m = AgentMetrics()
    port, _, stop_web = _serve_web(m)
    try:
        path, cfg = _with_file(
            tmp_path,
            "http_output.enabled=true",
            f"http_output.url={srv.url}",
            "outputs_queue.capacity=50",
            "http_output.concurrency=2",
            "output_timeout=60000",
            "http_output.retries=0",
        )
        d = build_dispatcher(cfg, m)
        d.start()

        def bursts() -> None:
            for batch in range(20):  # bursts the healthy file sink keeps up with
                for i in range(25):
                    d.submit(make_alert(batch * 25 + i))
                assert wait_until(lambda b=batch: d.stats("file").delivered == (b + 1) * 25)

        # every submit returned and the file sink delivered all 500 while the dead
        # endpoint had not answered a single request: nothing waited for it
        producer = threading.Thread(target=bursts, daemon=True)
        producer.start()
        producer.join(120)
        assert not producer.is_alive(), "submit() blocked on the dead sink"
        assert _lines(path) == 500
        assert wait_until(lambda: srv.held == 2)
        assert srv.requests == []
        s = d.stats("http")
        # 2 in flight and at most 50 queued: the rest dropped without waiting
        assert s.failed == 0 and s.delivered == 0 and 500 - 50 - 2 <= s.dropped <= 500 - 50
        scraped = _scrape(port)
        assert scraped['falcopy_output_dropped_total{sink="http"}'] == s.dropped
        assert scraped['falcopy_output_dropped_total{sink="file"}'] == 0
        assert scraped['falcopy_output_delivered_total{sink="file"}'] == 500
        assert scraped['falcopy_output_queue_depth{sink="http"}'] == 500 - 2 - s.dropped
        # shutdown gives the dead sink its drain timeout, then drops what is left; it
        # returns while the endpoint still holds both requests
        closer = threading.Thread(target=d.close, kwargs={"timeout": 1.0}, daemon=True)
        closer.start()
        closer.join(60)
        assert not closer.is_alive(), "a dead sink held shutdown"
        assert srv.requests == []
        scraped = _scrape(port)
        assert (
            scraped['falcopy_output_dropped_total{sink="http"}']
            + scraped.get('falcopy_output_delivered_total{sink="http"}', 0)
            + scraped.get('falcopy_output_failed_total{sink="http"}', 0)
            == 500
        )
    finally:
        srv.hold = False
        stop_web()
        srv.stop()
