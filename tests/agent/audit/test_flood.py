"""An audit flood against a real `falcopy agent` process (real kernel, loopback HTTP).

16 and then 64 clients post large EventLists in bounded loops while the test
probes /healthz, samples the agent's RSS and performs syscall actions the
agent must detect. What must hold: every health probe is answered, RSS stays
bounded by the intake's byte budget and returns near its baseline, every
syscall action is detected (counted), overflow is answered 429 and counted,
and the audit source still works afterwards.
"""

from __future__ import annotations

import asyncio
import subprocess
import threading
import urllib.request
import uuid
from pathlib import Path

import aiohttp
import orjson
import pytest
import yaml

from tests.agent.audit.events import container, pod
from tests.agent.outputs.servers import free_port
from tests.agent.outputs.test_agent_e2e import AgentProcess
from tests.waiting import wait_until

pytestmark = pytest.mark.kernel

MiB = 1 << 20
#: the intake's byte budget for this run (the default); RSS may grow by it plus decoding room
PENDING_BYTES = 64 * MiB
#: decoding, aiohttp buffers and the allocator's slack on top of the byte budget
HEADROOM = 96 * MiB
#: "near baseline" after the flood
SETTLED = 40 * MiB
ACTIONS = 20
#: posts per client (bounded loops)
POSTS = 2

RULES = """
- rule: flood marker opened
  desc: the test's own file, opened while the audit endpoint is flooded
  condition: evt.type in (open, openat, openat2) and fd.name startswith {marker_dir}/
  output: marker opened (file=%fd.name)
  priority: WARNING
- rule: flood audit marker
  desc: the one audit event of the test meant to alert
  condition: ka.verb = create and ka.target.resource = configmaps and ka.target.name = {marker}
  output: audit marker (name=%ka.target.name)
  priority: NOTICE
  source: k8s_audit
"""


def _liveness_timeout(repo_root: Path) -> float:
    """What kubelet allows /healthz in the chart: answering later restarts the agent."""
    values = yaml.safe_load((repo_root / "charts" / "falcopy" / "values.yaml").read_text())
    return float(values["agent"]["livenessProbe"]["timeoutSeconds"])


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def _event_list(target_bytes: int) -> bytes:
    event = pod("flood", containers=[container("app", "nginx:1.25")])
    one = len(orjson.dumps(event))
    return orjson.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1",
                         "items": [event] * (target_bytes // (one + 1))})


def _metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


class Watch:
    """Samples RSS and probes /healthz on threads of their own until stopped."""

    def __init__(self, pid: int, health_url: str, probe_timeout: float) -> None:
        self.pid = pid
        self.health_url = health_url
        self.probe_timeout = probe_timeout
        self.peak = 0
        self.probes: list[int | str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._sample, daemon=True),
                         threading.Thread(target=self._probe, daemon=True)]

    def __enter__(self) -> Watch:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(30)

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, _rss(self.pid))

    def _probe(self) -> None:
        while not self._stop.wait(0.5):
            try:
                with urllib.request.urlopen(self.health_url, timeout=self.probe_timeout) as resp:
                    self.probes.append(resp.status)
            except Exception as exc:  # a timeout is exactly what must not happen
                self.probes.append(f"{type(exc).__name__}: {exc}")


async def _flood(url: str, body: bytes, clients: int, posts_each: int) -> dict[int | str, int]:
    answers: dict[int | str, int] = {}
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(timeout=timeout,
                                     connector=aiohttp.TCPConnector(limit=clients)) as session:
        async def client() -> None:
            for _ in range(posts_each):
                try:
                    async with session.post(url, data=body,
                                            headers={"Content-Type": "application/json"}) as resp:
                        await resp.read()
                        answers[resp.status] = answers.get(resp.status, 0) + 1
                except aiohttp.ClientError as exc:
                    key = type(exc).__name__
                    answers[key] = answers.get(key, 0) + 1

        await asyncio.gather(*(client() for _ in range(clients)))
    return answers


def _act(marker_dir: Path, stop: threading.Event, done: list[str]) -> None:
    """ACTIONS file opens by a child process, spread over the flood."""
    for i in range(ACTIONS):
        path = marker_dir / f"f{i}"
        path.write_text("x")
        subprocess.run(["cat", str(path)], stdout=subprocess.DEVNULL, check=True)
        done.append(str(path))
        stop.wait(0.3)


@pytest.mark.parametrize("clients", [16, 64])
def test_audit_flood(tmp_path: Path, repo_root: Path, require_root: None, clients: int) -> None:
    marker_dir = tmp_path / f"flood-{uuid.uuid4().hex[:12]}"
    marker_dir.mkdir()
    marker = f"flood-{uuid.uuid4().hex[:12]}"
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES.format(marker_dir=marker_dir, marker=marker))
    port, audit_port = free_port(), free_port()
    options = ["json_output=true", "stdout_output.enabled=true", f"webserver.listen_port={port}",
               "webserver.listen_address=127.0.0.1", "watch_config_files=false",
               "falcopy.k8s_audit.enabled=true", "falcopy.k8s_audit.listen_address=127.0.0.1",
               f"falcopy.k8s_audit.listen_port={audit_port}",
               f"falcopy.k8s_audit.max_pending_bytes={PENDING_BYTES}",
               # this test's own clients stall for seconds when other suites load the shared
               # machine: a read timeout must not answer every one of them before any is read
               "falcopy.k8s_audit.read_timeout_s=120"]
    args = ["-c", str(repo_root / "config" / "falcopy.yaml"), "-r", str(rules)]
    for opt in options:
        args += ["-o", opt]
    health = f"http://127.0.0.1:{port}/healthz"
    audit_url = f"http://127.0.0.1:{audit_port}/k8s-audit"
    body = _event_list(15 * MiB)
    agent = AgentProcess(args, tmp_path / "agent.err")
    try:
        # generous: loading the probe takes minutes when other suites load the shared machine
        def up() -> bool:
            assert agent.proc.poll() is None, f"agent exited: {agent.stderr()[-3000:]}"
            return _health(health) == 200

        assert wait_until(up, 300), agent.stderr()[-3000:]
        # warm up every path a request takes, then take the baseline
        small = orjson.dumps({"kind": "EventList", "items": [pod("w", containers=[container("a", "nginx")])]})
        assert asyncio.run(_flood(audit_url, small, 1, 2)) == {200: 2}
        baseline = _rss(agent.proc.pid)

        stop = threading.Event()
        done: list[str] = []
        actor = threading.Thread(target=_act, args=(marker_dir, stop, done), daemon=True)
        with Watch(agent.proc.pid, health, _liveness_timeout(repo_root)) as watch:
            actor.start()
            answers = asyncio.run(_flood(audit_url, body, clients, POSTS))
            actor.join(120)
        assert len(done) == ACTIONS

        # /healthz answered every probe within kubelet's timeout
        assert watch.probes and all(p == 200 for p in watch.probes), watch.probes
        # bounded: the byte budget plus decoding room, far below the chart's 1 GiB limit
        assert watch.peak - baseline < PENDING_BYTES + HEADROOM, (baseline, watch.peak)
        # posts are evaluated (200) or refused and counted: overflow is answered 429, which the
        # API server retries; a client that falls silent for read_timeout_s (this test's own
        # clients do when other suites load the machine) gets 408 or, before its headers are
        # complete, a closed connection; a client still sending when the server hangs up after
        # its answer sees a reset (the API server retries connection errors too)
        assert set(answers) <= {200, 429, 408, "ClientOSError", "ServerDisconnectedError"}, answers
        assert answers.get(200, 0) >= 1 and answers.get(429, 0) >= 1, (answers, agent.stderr()[-2000:])
        rejected = 'falcopy_k8s_audit_rejected_requests_total{reason="%s"}'
        overflow = _metric(port, rejected % "too_many_requests") + _metric(port, rejected % "queue_full")
        timeouts = _metric(port, rejected % "read_timeout")
        assert overflow >= answers.get(429, 0) and timeouts >= answers.get(408, 0), (overflow, answers)
        # every syscall action detected while the endpoint was flooded
        wanted = set(done)
        assert wait_until(lambda: wanted <= _opened(agent), 60), (
            sorted(wanted - _opened(agent)), agent.stderr()[-2000:])
        # memory goes back near the baseline once the flood is over
        assert wait_until(lambda: _rss(agent.proc.pid) - baseline < SETTLED, 60), (
            baseline, _rss(agent.proc.pid))
        # and the audit source still evaluates
        event = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
                 "auditID": str(uuid.uuid4()), "stage": "ResponseComplete",
                 "requestURI": "/api/v1/namespaces/default/configmaps", "verb": "create",
                 "user": {"username": "alice"},
                 "objectRef": {"resource": "configmaps", "namespace": "default", "name": marker}}
        assert asyncio.run(_flood(audit_url, orjson.dumps(event), 1, 1)) == {200: 1}
        agent.wait_alert(lambda a: a["rule"] == "flood audit marker", timeout=60)
        print(f"\n[audit flood] {clients} clients: answers {answers}, RSS baseline "
              f"{baseline / MiB:.0f} MiB, peak {watch.peak / MiB:.0f} MiB, after "
              f"{_rss(agent.proc.pid) / MiB:.0f} MiB, {len(watch.probes)} health probes")
    finally:
        code = agent.stop()
    assert code == 0, agent.stderr()[-3000:]


def _health(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status
    except Exception:
        return 0


def _opened(agent: AgentProcess) -> set[str]:
    return {a["output_fields"]["fd.name"] for a in agent.alerts() if a["rule"] == "flood marker opened"}

