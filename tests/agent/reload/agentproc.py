"""The real agent (`python -m falcopy agent`) as a child process, observed from outside:
alerts from its JSON file output, counters from its /metrics endpoint."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.waiting import wait_until

REPO = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class AgentProcess:
    def __init__(self, workdir: Path, rules: list[Path], *, env: dict[str, str] | None = None,
                 falcopy_config: str = "", top_config: str = "", cwd: Path = REPO,
                 prefix: list[str] | None = None) -> None:
        self.workdir = workdir
        self.rules = rules
        self.port = free_port()
        self.alerts_path = workdir / "alerts.json"
        self.log_path = workdir / "agent.log"
        self.config = workdir / "falcopy.yaml"
        self.env = env or {}
        #: more keys of the falcopy: section, as YAML indented by two spaces
        self.falcopy_config = falcopy_config
        #: more top-level keys, as YAML
        self.top_config = top_config
        self.cwd = cwd  # `python -m falcopy` imports the falcopy package found there first
        #: a command the agent runs under (``unshare ...``): it must exec the rest of its arguments
        self.prefix = list(prefix or [])
        self.proc: subprocess.Popen[bytes] | None = None
        self._offset = 0
        self._alerts: list[dict[str, Any]] = []

    def start(self, timeout: float = 90.0) -> AgentProcess:
        self.launch()
        if wait_until(self._healthy, timeout, interval=0.2):
            return self
        raise AssertionError(f"agent not ready in {timeout}s: {self.log()}")

    def healthy(self) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def launch(self) -> subprocess.Popen[bytes]:
        """Start the process without waiting for it to be ready."""
        self.config.write_text(
            "json_output: true\n"
            "json_include_output_property: true\n"
            "json_include_tags_property: true\n"
            "stdout_output:\n  enabled: false\n"
            "syslog_output:\n  enabled: false\n"
            f"file_output:\n  enabled: true\n  keep_alive: true\n  filename: {self.alerts_path}\n"
            "webserver:\n  enabled: true\n  listen_address: 127.0.0.1\n"
            f"  listen_port: {self.port}\n  prometheus_metrics_enabled: true\n"
            "watch_config_files: true\n"
            + self.top_config
            + "falcopy:\n  enrichment:\n    enabled: false\n" + self.falcopy_config
        )
        args = [*self.prefix, sys.executable, "-m", "falcopy", "agent", "-c", str(self.config)]
        for r in self.rules:
            args += ["-r", str(r)]
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, cwd=self.cwd, env={**os.environ, **self.env}
        )
        return self.proc

    def _healthy(self) -> bool:
        assert self.proc is not None and self.proc.poll() is None, f"agent exited: {self.log()}"
        return self.healthy()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def metrics(self) -> dict[str, float]:
        text = httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=5).text
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
        return out

    def alerts(self) -> list[dict[str, Any]]:
        if self.alerts_path.exists():
            with self.alerts_path.open() as f:
                f.seek(self._offset)
                chunk = f.read()
            complete, _, _ = chunk.rpartition("\n")
            if complete:
                self._offset += len(complete.encode()) + 1
                self._alerts.extend(json.loads(line) for line in complete.splitlines() if line.strip())
        return list(self._alerts)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
