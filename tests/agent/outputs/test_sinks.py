"""Every sink against a real receiver: HTTP server, unix syslog socket, child process, files."""

from __future__ import annotations

import json
import os
import signal
import ssl

import pytest
from falcopy.agent.control.metrics import AgentMetrics
from falcopy.agent.outputs.dispatch import build_dispatcher

from tests.agent.outputs.helpers import check_falcosidekick_payload, config, make_alert
from tests.agent.outputs.servers import HttpReceiver, SyslogReceiver
from tests.waiting import wait_until


def test_http_delivers_falcosidekick_payload(receiver) -> None:
    d = build_dispatcher(config("http_output.enabled=true", f"http_output.url={receiver.url}"))
    d.start()
    alerts = [make_alert(i) for i in range(5)]
    for a in alerts:
        d.submit(a)
    got = receiver.wait_for(5)
    d.close()
    assert len(got) == 5
    by_n = {json.loads(r.body)["output_fields"]["n"]: r for r in got}
    for a in alerts:
        req = by_n[a.output_fields["n"]]
        check_falcosidekick_payload(req.body, a)
        assert req.headers["User-Agent"] == "falcosecurity/falco"
        assert req.headers["Content-Type"] == "application/json"
    assert d.stats("http").delivered == 5 and d.stats("http").failed == 0


def test_http_gzip_and_user_agent(receiver) -> None:
    d = build_dispatcher(
        config(
            "http_output.enabled=true",
            f"http_output.url={receiver.url}",
            "http_output.compress_uploads=true",
            "http_output.user_agent=falcopy-test/1",
        )
    )
    d.start()
    alert = make_alert()
    d.submit(alert)
    got = receiver.wait_for(1)
    d.close()
    assert got[0].headers["Content-Encoding"] == "gzip"
    assert got[0].headers["User-Agent"] == "falcopy-test/1"
    check_falcosidekick_payload(got[0].body, alert)


def test_http_text_when_json_output_off(receiver) -> None:
    d = build_dispatcher(
        config("json_output=false", "http_output.enabled=true", f"http_output.url={receiver.url}")
    )
    d.start()
    alert = make_alert()
    d.submit(alert)
    got = receiver.wait_for(1)
    d.close()
    assert got[0].headers["Content-Type"] == "text/plain"
    assert got[0].body.decode().endswith(f": Warning {alert.message}")


def test_https_verified_with_custom_ca_only(tls_files) -> None:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(tls_files["cert"], tls_files["key"])
    srv = HttpReceiver(ssl_context=ctx).start()
    try:
        # system trust store only: the self-signed CA is refused
        plain = build_dispatcher(
            config(
                "http_output.enabled=true",
                f"http_output.url={srv.url}",
                "http_output.retries=0",
                "http_output.ca_path=",
            )
        )
        plain.start()
        plain.submit(make_alert())
        assert wait_until(lambda: plain.stats("http").failed == 1)
        plain.close()
        assert srv.requests == []
        for opt in (f"http_output.ca_cert={tls_files['ca']}", "http_output.insecure=true"):
            d = build_dispatcher(config("http_output.enabled=true", f"http_output.url={srv.url}", opt))
            d.start()
            d.submit(make_alert())
            assert wait_until(lambda d=d: d.stats("http").delivered == 1), opt
            d.close()
        assert len(srv.requests) == 2
    finally:
        srv.stop()


def test_syslog_unix_datagram(tmp_path) -> None:
    rx = SyslogReceiver(str(tmp_path / "log.sock"))
    try:
        d = build_dispatcher(config("syslog_output.enabled=true", f"falcopy.syslog_socket={rx.path}"))
        d.start()
        alerts = [
            make_alert(0, priority="Critical"),
            make_alert(1, priority="Debug"),
            make_alert(2, priority="Informational"),
        ]
        for a in alerts:
            d.submit(a)
        frames = [rx.recv() for _ in alerts]
        d.close()
    finally:
        rx.close()
    # facility user (1) * 8 + severity
    for frame, a, pri in zip(frames, alerts, (10, 15, 14), strict=True):
        head, _, payload = frame.partition(b"]: ")
        assert head.startswith(f"<{pri}>".encode()) and b" falcopy[" in head
        assert json.loads(payload)["rule"] == a.rule
        assert json.loads(payload)["output_fields"]["n"] == a.output_fields["n"]


def test_syslog_daemon_restart_reconnects(tmp_path) -> None:
    path = str(tmp_path / "log.sock")
    rx = SyslogReceiver(path)
    d = build_dispatcher(config("syslog_output.enabled=true", f"falcopy.syslog_socket={path}"))
    d.start()
    d.submit(make_alert(0))
    assert rx.recv()
    rx.close()
    os.unlink(path)
    rx = SyslogReceiver(path)  # the daemon came back on the same path
    d.submit(make_alert(1))
    assert json.loads(rx.recv().partition(b"]: ")[2])["output_fields"]["n"] == 1
    d.close()
    rx.close()
    assert d.stats("syslog").delivered == 2


def test_program_keep_alive_one_process(tmp_path) -> None:
    out = tmp_path / "prog.out"
    d = build_dispatcher(
        config(
            "program_output.enabled=true",
            "program_output.keep_alive=true",
            f"program_output.program=tee -a {out}",
        )
    )
    d.start()
    for i in range(20):
        d.submit(make_alert(i))
    d.close()
    lines = out.read_text().splitlines()
    assert [json.loads(x)["output_fields"]["n"] for x in lines] == list(range(20))


def test_program_one_run_per_alert_shell_pipeline(tmp_path) -> None:
    out = tmp_path / "prog.out"
    pids = tmp_path / "pids"
    # the form of Falco's documented example (a pipeline); the alert travels on stdin only
    prog = f"sed s/Warning/WARNED/g | tee -a {out} > /dev/null; echo $$ >> {pids}"
    d = build_dispatcher(
        config("program_output.enabled=true", f"program_output.program={prog}", "output_timeout=10000")
    )
    d.start()
    alerts = [make_alert(i) for i in range(3)]
    for a in alerts:
        d.submit(a)
    d.close()
    docs = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(docs) == 3 and d.stats("program").delivered == 3
    assert docs[0]["priority"] == "WARNED" and docs[0]["rule"] == alerts[0].rule
    assert len(set(pids.read_text().split())) == 3  # one run per alert


def test_program_alert_text_never_reaches_a_shell(tmp_path) -> None:
    out = tmp_path / "prog.out"
    marker = tmp_path / "pwned"
    d = build_dispatcher(
        config("json_output=false", "program_output.enabled=true", f"program_output.program=tee -a {out}")
    )
    d.start()
    alert = make_alert()
    alert.message = f"$(touch {marker}); `touch {marker}` | touch {marker}"
    d.submit(alert)
    d.close()
    assert not marker.exists()
    assert out.read_text().strip().endswith(alert.message)


def test_file_survives_rename_and_sighup(tmp_path) -> None:
    path = tmp_path / "events.txt"
    d = build_dispatcher(
        config("file_output.enabled=true", "file_output.keep_alive=true", f"file_output.filename={path}")
    )
    d.start()
    old = signal.signal(signal.SIGHUP, lambda *_: d.reopen())
    try:
        for i in range(2):
            d.submit(make_alert(i))
        assert wait_until(lambda: d.stats("file").delivered == 2)
        os.rename(path, tmp_path / "events.txt.1")  # logrotate
        d.submit(make_alert(2))  # still the open descriptor: lands in the rotated file
        assert wait_until(lambda: d.stats("file").delivered == 3)
        os.kill(os.getpid(), signal.SIGHUP)
        assert wait_until(lambda: not d._workers[0].reopen_requested.is_set())
        for i in range(3, 5):
            d.submit(make_alert(i))
        d.close()
    finally:
        signal.signal(signal.SIGHUP, old)
    ns = lambda p: [json.loads(x)["output_fields"]["n"] for x in p.read_text().splitlines()]  # noqa: E731
    assert ns(tmp_path / "events.txt.1") == [0, 1, 2]
    assert ns(path) == [3, 4]


def test_alert_right_after_sighup_reaches_the_new_file(tmp_path) -> None:
    """The worker is idle in get() when SIGHUP comes and the next alert follows at once
    (the agent's reload made a new rule fire): it must land in the reopened file."""
    path = tmp_path / "events.txt"
    d = build_dispatcher(
        config("file_output.enabled=true", "file_output.keep_alive=true", f"file_output.filename={path}")
    )
    d.start()
    try:
        d.submit(make_alert(0))
        assert wait_until(lambda: d.stats("file").delivered == 1)
        queue = d._channels["file"].queue
        for n in range(1, 21):  # each round: rotate while the worker sleeps in get()
            assert wait_until(lambda: queue._thread_waiting)
            os.rename(path, tmp_path / f"events.txt.{n}")
            d.reopen()
            d.submit(make_alert(n))
            assert wait_until(lambda n=n: d.stats("file").delivered == n + 1)
            ns = [json.loads(x)["output_fields"]["n"] for x in path.read_text().splitlines()]
            assert ns == [n], (n, ns)
    finally:
        d.close()


def test_file_not_kept_alive_follows_rename(tmp_path) -> None:
    path = tmp_path / "events.txt"
    d = build_dispatcher(
        config("json_output=false", "file_output.enabled=true", f"file_output.filename={path}")
    )
    d.start()
    d.submit(make_alert(0))
    assert wait_until(lambda: d.stats("file").delivered == 1)
    os.rename(path, tmp_path / "old.txt")
    d.submit(make_alert(1))
    d.close()
    assert "n=1" in path.read_text() and "n=0" in (tmp_path / "old.txt").read_text()


def test_buffered_outputs_flushed_on_close(tmp_path) -> None:
    path = tmp_path / "events.txt"
    d = build_dispatcher(
        config(
            "buffered_outputs=true",
            "file_output.enabled=true",
            "file_output.keep_alive=true",
            f"file_output.filename={path}",
        )
    )
    d.start()
    for i in range(100):
        d.submit(make_alert(i))
    d.close()
    assert len(path.read_text().splitlines()) == 100


@pytest.mark.parametrize("stdout_json", [True, False])
def test_stdout_sink_writes_lines(capfd, stdout_json) -> None:
    d = build_dispatcher(config(f"json_output={str(stdout_json).lower()}", "stdout_output.enabled=true"))
    d.start()
    d.submit(make_alert(7))
    d.close()
    out = capfd.readouterr().out.strip()
    if stdout_json:
        assert json.loads(out)["output_fields"]["n"] == 7
    else:
        assert out.endswith(make_alert(7).message) and ": Warning " in out


def test_metrics_registry_counts_deliveries(receiver) -> None:
    m = AgentMetrics()
    d = build_dispatcher(config("http_output.enabled=true", f"http_output.url={receiver.url}"), m)
    d.start()
    for i in range(3):
        d.submit(make_alert(i))
    receiver.wait_for(3)
    d.close()
    assert m.registry.get_sample_value("falcopy_output_delivered_total", {"sink": "http"}) == 3
    assert (
        m.registry.get_sample_value(
            "falcopy_alerts_total",
            {"rule": "Read sensitive file", "priority": "Warning", "source": "syscall"},
        )
        == 3
    )
