"""The agent imports what its configuration uses, nothing more (issue "Event path": the
memory a module keeps resident is paid by every node), and nothing the first alert does not
need before it (issue "Real time": the main thread's CPU at start).  A real `build_agent` +
dry run (configuration, rules, outputs checked), or a real start up to the first alert, in a
fresh interpreter, then its sys.modules."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

_PROBE = """
import json, sys
from falcopy.agent.app import build_agent
agent = build_agent(sys.argv[1], [sys.argv[2]], [])
assert agent.dry_run() == 0
print(json.dumps(sorted(sys.modules)))
"""

#: never in the agent, whatever its configuration: the operator's side
OPERATOR_ONLY = ("kopf", "kubernetes", "falcopy.operator")


def _modules(tmp_path: Path, config: str, rules: Path = REPO / "rules") -> set[str]:
    cfg = tmp_path / "falcopy.yaml"
    cfg.write_text(config)
    out = subprocess.run([sys.executable, "-c", _PROBE, str(cfg), str(rules)], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def _has(modules: set[str], package: str) -> bool:
    return any(m == package or m.startswith(package + ".") for m in modules)


MINIMAL = """
stdout_output:
  enabled: false
file_output:
  enabled: true
  filename: {out}
webserver:
  enabled: false
falcopy:
  enrichment:
    enabled: false
"""


def test_minimal_config_imports_no_web_http_or_operator(tmp_path: Path) -> None:
    mods = _modules(tmp_path, MINIMAL.format(out=tmp_path / "alerts.json"))
    # re2: no rule of the repository's uses the regex operator
    for package in ("aiohttp", "httpx", "re2", "falcopy.agent.audit.webhook",
                    "falcopy.agent.enrichment.store", "falcopy.agent.outputs.sinks.http", *OPERATOR_ONLY):
        assert not _has(mods, package), package
    # what the configuration does use is there: the file sink and the engine
    assert "falcopy.agent.outputs.sinks.file" in mods and "falcopy.engine.compiler" in mods


def test_a_regex_condition_imports_re2(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "regex.yaml").write_text(
        "- rule: regex marker\n  desc: a regex condition\n"
        "  condition: evt.type = openat and fd.name regex '^/tmp/[a-z]+$'\n"
        "  output: '%fd.name'\n  priority: WARNING\n")
    mods = _modules(tmp_path, MINIMAL.format(out=tmp_path / "alerts.json"), rules)
    assert "re2" in mods


def test_what_the_configuration_enables_is_imported(tmp_path: Path) -> None:
    config = MINIMAL.format(out=tmp_path / "alerts.json") + (
        "http_output:\n  enabled: true\n  url: http://127.0.0.1:9/\n")
    mods = _modules(tmp_path, config)
    assert _has(mods, "httpx") and "falcopy.agent.outputs.sinks.http" in mods
    for package in OPERATOR_ONLY:
        assert not _has(mods, package), package


def test_the_web_server_is_served_without_aiohttp() -> None:
    code = ("import asyncio, sys\n"
            "from falcopy.agent.control.config import load_config\n"
            "from falcopy.agent.control.metrics import AgentMetrics\n"
            "from falcopy.agent.control.readiness import Readiness\n"
            "from falcopy.agent.control.web import WebServer, create_app\n"
            "cfg = load_config(None, ['webserver.listen_address=127.0.0.1', 'webserver.listen_port=0',"
            " 'webserver.prometheus_metrics_enabled=true']).webserver\n"
            "async def main():\n"
            "    s = WebServer(create_app(cfg, Readiness(), AgentMetrics()), cfg)\n"
            "    await s.start()\n"
            "    await s.stop()\n"
            "asyncio.run(main())\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'aiohttp'))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


#: the agent's start up to its first alert, in a fresh interpreter as root: capture (preflight,
#: probe, /proc, the event thread and its first batch: ``Agent._detect``), then an open the rule
#: matches by a uniquely named copied ``cat``, polled for in the alert file; then the modules
_FIRST_ALERT = """
import json, subprocess, sys, time
from pathlib import Path
from falcopy.agent.app import build_agent
cfg, rules, cat, marker, alerts = sys.argv[1:6]
agent = build_agent(cfg, [rules], [], preload_probe=True)
agent.dispatcher.start()
try:
    assert agent._detect(), agent._startup_error
    deadline = time.monotonic() + 90
    while not (Path(alerts).exists() and marker in Path(alerts).read_text()):
        assert time.monotonic() < deadline, "no alert"
        subprocess.run([cat, "/etc/shadow", marker], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.05)
    print(json.dumps(sorted(sys.modules)))
finally:
    agent._shutdown()
"""


def test_the_first_alert_needs_no_asyncio_nor_prometheus_client(tmp_path: Path, require_root: None) -> None:
    """asyncio serves the listeners, reloads and signals after the first batch (Agent.run),
    prometheus_client the /metrics scrape: neither is imported on the way to the first alert,
    which the capture raises and the file sink writes all the same."""
    cat = tmp_path / f"fplazy{os.getpid()}"
    shutil.copy("/bin/cat", cat)
    marker = f"lazy-first-{os.getpid()}"
    alerts = tmp_path / "alerts.json"
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "- rule: lazy imports shadow read\n  desc: the test's copied cat reads /etc/shadow\n"
        f"  condition: evt.type in (open, openat, openat2) and proc.name = {cat.name}"
        " and fd.name = /etc/shadow\n"
        "  output: shadow read %proc.cmdline\n  priority: WARNING\n")
    cfg = tmp_path / "falcopy.yaml"
    cfg.write_text(MINIMAL.format(out=alerts))
    out = subprocess.run([sys.executable, "-c", _FIRST_ALERT, str(cfg), str(rules), str(cat), marker,
                          str(alerts)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    mods = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert marker in alerts.read_text()
    for package in ("asyncio", "prometheus_client", "ssl", "logging.handlers", "aiohttp", *OPERATOR_ONLY):
        assert not _has(mods, package), package
    # the capture did run: the probe and the event loop are there
    assert "falcopy.agent.kernel.probe" in mods and "falcopy.agent.runtime.event_loop" in mods
