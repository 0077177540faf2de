"""Falco's Prometheus names and ``static_fields``, scraped from a live agent after a real alert
and a forced kernel drop (the agent is stopped with SIGSTOP while a flood fills its ring)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from falcopy.engine.versions import FALCO_COMPAT_VERSION
from tests.agent.outputs.servers import free_port
from tests.agent.outputs.test_agent_e2e import AgentProcess, _get
from tests.waiting import wait_until

pytestmark = pytest.mark.kernel

RULES = """
- rule: falco metrics shadow read
  desc: a copied cat reads /etc/shadow on a cluster named by static_fields
  condition: evt.type in (open, openat, openat2) and fd.name = /etc/shadow and proc.name = {comm}
             and static.cluster = prod-eu
  output: shadow read (command=%proc.cmdline)
  priority: WARNING
  tags: [e2e, T1555, filesystem]

- rule: falco metrics flood
  desc: every open of the flood directory (so the kernel keeps them all)
  condition: evt.type in (open, openat, openat2) and fd.name startswith {flood}
  output: flood open (file=%fd.name)
  priority: DEBUG
"""

FLOOD = """
import os, sys
d = sys.argv[1]
path = os.path.join(d, "f")
open(path, "w").close()
for _ in range(int(sys.argv[2])):
    os.close(os.open(path, os.O_RDONLY))
"""


def _samples(port: int) -> list[tuple[str, dict[str, str], float]]:
    _, body = _get(f"http://127.0.0.1:{port}/metrics")
    out = []
    for fam in text_string_to_metric_families(body.decode()):
        for s in fam.samples:
            out.append((s.name, dict(s.labels), s.value))
    return out


def _value(samples, name: str, **labels: str) -> float | None:
    for n, lab, v in samples:
        if n == name and all(lab.get(k) == x for k, x in labels.items()):
            return v
    return None


def test_falco_metric_names_and_static_fields(tmp_path: Path, repo_root: Path, require_root) -> None:
    comm = f"fm{os.getpid() % 100000}"
    mycat = tmp_path / comm
    mycat.write_bytes(Path("/bin/cat").read_bytes())
    mycat.chmod(0o755)
    flood = tmp_path / "flood"
    flood.mkdir()
    rules = tmp_path / "metrics_rules.yaml"
    rules.write_text(RULES.format(comm=comm, flood=flood))
    config = repo_root / "config" / "falcopy.yaml"
    port = free_port()
    args = ["-c", str(config), "-r", str(rules)]
    for opt in (
        "json_output=true",
        f"webserver.listen_port={port}",
        "webserver.listen_address=127.0.0.1",
        "webserver.prometheus_metrics_enabled=true",
        "metrics.enabled=true",
        "watch_config_files=false",
        "priority=debug",
        "stdout_output.enabled=false",
        "file_output.enabled=true",
        f"file_output.filename={tmp_path / 'events.json'}",
        "static_fields.cluster=prod-eu",
        "engine.modern_ebpf.buf_size_preset=1",  # a 1 MiB ring: easy to overflow while stopped
    ):
        args += ["-o", opt]
    agent = AgentProcess(args, tmp_path / "agent.err")
    events = tmp_path / "events.json"
    try:
        assert wait_until(lambda: _get(f"http://127.0.0.1:{port}/healthz")[0] == 200, 90), agent.stderr()

        def shadow_alerted() -> bool:
            return events.exists() and "falco metrics shadow read" in events.read_text()

        for _ in range(6):
            subprocess.run([str(mycat), "/etc/shadow"], stdout=subprocess.DEVNULL, check=True)
            if wait_until(shadow_alerted, 5):
                break
        assert shadow_alerted(), agent.stderr()[-2000:]
        alert_line = next(x for x in events.read_text().splitlines() if "falco metrics shadow read" in x)
        # static fields are suggested output: appended to the text and present in output_fields
        assert "static_cluster=prod-eu" in alert_line
        assert '"static.cluster":"prod-eu"' in alert_line.replace(" ", "")

        # forced drop: nobody consumes while the flood runs, so the ring overflows
        os.kill(agent.proc.pid, signal.SIGSTOP)
        try:
            subprocess.run([sys.executable, "-c", FLOOD, str(flood), "60000"], check=True)
        finally:
            os.kill(agent.proc.pid, signal.SIGCONT)

        def dropped() -> bool:
            return (_value(_samples(port), "falcosecurity_scap_n_drops_total") or 0) > 0

        assert wait_until(dropped, 30), agent.stderr()[-2000:]
        s = _samples(port)
        from falcopy import __version__

        assert _value(s, "falcosecurity_falco_version_info", version=__version__) == 1
        digest = hashlib.sha256(rules.read_bytes()).hexdigest()
        assert _value(s, "falcosecurity_falco_sha256_rules_files_info",
                      file_name=rules.name, sha256=digest) == 1
        cdigest = hashlib.sha256(config.read_bytes()).hexdigest()
        assert _value(s, "falcosecurity_falco_sha256_config_files_info",
                      file_name=config.name, sha256=cdigest) == 1
        matches = _value(s, "falcosecurity_falco_rules_matches_total", rule_name="falco metrics shadow read",
                         priority="4", source="syscall", tag_T1555="true", tag_e2e="true",
                         tag_filesystem="true")
        assert matches is not None and matches >= 1
        drops = _value(s, "falcosecurity_scap_n_drops_total")
        per_cpu = [v for n, lab, v in s if n == "falcosecurity_scap_n_drops_cpu_total"]
        assert drops and per_cpu and sum(per_cpu) == drops
        assert (_value(s, "falcosecurity_scap_n_evts_total") or 0) > 0
        assert _value(s, "falcosecurity_falco_outputs_queue_num_drops_total") == 0
        assert _value(s, "falcosecurity_scap_engine_name_info",
                      engine_name="modern_bpf", evt_source="syscall") == 1
        assert (_value(s, "falcosecurity_falco_memory_rss_bytes") or 0) > 1 << 20
        assert _value(s, "falcosecurity_falco_kernel_release_info", kernel_release=os.uname().release) == 1
        assert (_value(s, "falcosecurity_scap_n_threads_total") or 0) > 0
        versions = json.loads(_get(f"http://127.0.0.1:{port}/versions")[1])
        assert versions["falcopy_version"] == __version__ and __version__ != "0+unknown"
        assert versions["falco_version"] == FALCO_COMPAT_VERSION
        # falcopy's own names stay
        assert _value(s, "falcopy_kernel_drops_total") is not None
    finally:
        code = agent.stop()
    assert code == 0, agent.stderr()[-3000:]
