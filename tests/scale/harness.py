"""The scale simulation: the stand-in API server, the real operator and N simulated
agents, each in its own process(es), driven by a script of FalcoRule changes.

Measures, per change, the time from the create request to every agent holding a
bundle that contains it; the operator's CPU and memory (from /proc); the API
requests served, by verb and resource (the stand-in counts them), and the bytes
of ConfigMap writes.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]
NS = "falcopy"
PREFIX = "falcopy-rules"
SHARDS = 4
CONFIGMAPS = [f"{PREFIX}-{i}" for i in range(SHARDS)]
CLK_TCK = os.sysconf("SC_CLK_TCK")


def falcorule(i: int, namespaces: int = 200) -> dict[str, Any]:
    """A tenant's rule: change ``i`` of the script, in one of ``namespaces`` namespaces."""
    return {
        "apiVersion": "falcopy.io/v1alpha1",
        "kind": "FalcoRule",
        "metadata": {"name": f"scale-{i}", "namespace": f"team-{i % namespaces}"},
        "spec": {
            "rules": [{
                "rule": f"Scale marker {i}",
                "desc": "a process named after this change started",
                "condition": f"fp_spawned_process and proc.name = scale-marker-{i}",
                "output": f"scale marker {i} (command=%proc.cmdline)",
                "priority": "WARNING",
            }],
        },
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


@dataclass
class Change:
    index: int
    serial: int
    #: seconds from the create request to each agent holding the change
    latencies: list[float]
    #: seconds from the create request to the operator's shard-0 write being visible
    published: float
    #: CPU seconds from the create request until every agent held it: per process kind, and
    #: "machine" for all the machine's cores (anything else running included)
    cpu: dict[str, float] = field(default_factory=dict)
    wall: float = 0.0

    def busy_cores(self) -> float:
        """The machine's busy cores on average over the change (2.0: both saturated)."""
        return self.cpu.get("machine", 0.0) / self.wall if self.wall else 0.0

    def summary(self) -> dict[str, float]:
        return {"p50": statistics.median(self.latencies), "p99": percentile(self.latencies, 99),
                "max": max(self.latencies), "published": self.published}


@dataclass
class Proc:
    popen: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.popen.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def memory(self) -> dict[str, int]:
        out = {}
        for line in Path(f"/proc/{self.popen.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) * 1024
        return out


class ShardWatch(threading.Thread):
    """The harness's own watch on shard 0: when each manifest was published and what it
    lists.  One more watch stream at the stand-in, instead of polling shard 0 (a full
    ConfigMap read every few milliseconds, served by the same loop as the agents' watches)."""

    def __init__(self, url: str) -> None:
        super().__init__(name="shard-watch", daemon=True)
        self._client = httpx.Client(base_url=url, timeout=httpx.Timeout(30, read=None))
        self._lock = threading.Lock()
        #: (unix time seen, serial, {(namespace, object)}) per shard-0 version, in order
        self.published: list[tuple[float, int, set[tuple[str, str]]]] = []

    def run(self) -> None:
        params = {"watch": "1", "fieldSelector": f"metadata.name={CONFIGMAPS[0]}", "timeoutSeconds": "86400"}
        try:
            with self._client.stream("GET", f"/api/v1/namespaces/{NS}/configmaps", params=params) as r:
                for line in r.iter_lines():
                    if not line.strip():
                        continue
                    raw = ((json.loads(line).get("object") or {}).get("data") or {}).get(
                        "falcopy-manifest.json")
                    if raw:
                        m = json.loads(raw)
                        objects = {(f.get("namespace") or "", f["object"])
                                   for f in m["files"] if "object" in f}
                        with self._lock:
                            self.published.append((time.time(), int(m["serial"]), objects))
        except httpx.HTTPError:
            pass  # closed by stop()

    def first(self, namespace: str, name: str, after: float) -> tuple[float, int] | None:
        """(time, serial) of the first manifest seen after ``after`` listing the object."""
        with self._lock:
            return next(((t, serial) for t, serial, objects in self.published
                         if t >= after and (namespace, name) in objects), None)

    def stop(self) -> None:
        self._client.close()


@dataclass
class Simulation:
    n: int
    workdir: Path
    #: simulated-agent processes (the agents' HTTP parsing shares the machine's cores)
    processes: int = 1
    lease_period: float = 30.0
    resync: float = 10.0
    url: str = ""
    apiserver: Proc | None = None
    operator: Proc | None = None
    agents: list[Proc] = field(default_factory=list)
    #: agent -> [(serial, unix time)] in delivery order
    held: dict[int, list[tuple[int, float]]] = field(default_factory=lambda: defaultdict(list))
    _offsets: dict[Path, int] = field(default_factory=dict)
    _client: httpx.Client | None = None
    _shard_watch: ShardWatch | None = None
    #: the harness's own reads (verb, resource), left out of the API server's counts
    _own: Counter[tuple[str, str]] = field(default_factory=Counter)

    # ------------------------------------------------------------------ lifecycle
    def _spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> Proc:
        log = self.workdir / f"{name}.log"
        environ = {**os.environ, **(env or {})}
        environ.pop("KUBERNETES_SERVICE_HOST", None)  # never a pod here: the kubeconfig decides
        popen = subprocess.Popen([sys.executable, *args], cwd=REPO, env=environ,
                                 stdout=log.open("wb"), stderr=subprocess.STDOUT)
        return Proc(popen, log)

    def __enter__(self) -> Simulation:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        url_file = self.workdir / "apiserver.url"
        self.apiserver = self._spawn("apiserver", ["-m", "tests.operator.fake_apiserver", str(url_file)])
        self.url = wait_for(lambda: url_file.exists() and url_file.read_text(), timeout=60,
                            what="stand-in up")
        self._client = httpx.Client(base_url=self.url, timeout=30)
        self._shard_watch = ShardWatch(self.url)
        self._own[("watch", "configmaps")] += 1
        self._shard_watch.start()
        kubeconfig = self.workdir / "kubeconfig"
        kubeconfig.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "sim",
            "clusters": [{"name": "sim", "cluster": {"server": self.url}}],
            "users": [{"name": "sim", "user": {"token": "operator"}}],
            "contexts": [{"name": "sim", "context": {"cluster": "sim", "user": "sim"}}],
        }))
        env = {"KUBECONFIG": str(kubeconfig), "FALCOPY_OPERATOR_NAMESPACE": NS,
               "FALCOPY_OPERATOR_CONFIGMAP_PREFIX": PREFIX, "FALCOPY_OPERATOR_SHARDS": str(SHARDS),
               "FALCOPY_OPERATOR_RESYNC": str(self.resync)}
        self.operator = self._spawn("operator", ["-m", "falcopy", "operator"], env)
        per = -(-self.n // self.processes)
        for p in range(self.processes):
            first, count = p * per, min(per, self.n - p * per)
            if count <= 0:
                break
            out = self.workdir / f"agents-{p}.jsonl"
            out.touch()
            self._offsets[out] = 0
            self.agents.append(self._spawn(f"agents-{p}", [
                "-m", "tests.scale.sim_agents", self.url, NS, ",".join(CONFIGMAPS), str(first), str(count),
                str(out), str(self.lease_period)]))
        wait_for(lambda: self.stats()["watching"].get("configmaps", 0) >= self.n,
                 timeout=300 + self.n / 2, what=f"{self.n} agents watching",
                 describe=lambda: f"{self.stats()['watching']}; {self._dead()}")

    def _dead(self) -> str:
        procs = [p for p in [self.apiserver, self.operator, *self.agents] if p is not None]
        return "; ".join(f"{p.log.name} exited {p.popen.returncode}: {p.log.read_text()[-1500:]}"
                         for p in procs if p.popen.poll() is not None)

    def stop(self) -> None:
        for p in [*self.agents, self.operator, self.apiserver]:
            if p is not None:
                p.stop()
        if self._shard_watch is not None:
            self._shard_watch.stop()
        if self._client is not None:
            self._client.close()

    # ------------------------------------------------------------------ observations
    def cpu(self) -> dict[str, float]:
        """CPU seconds used so far: the stand-in, the operator, all agent processes, and the
        machine's busy time over all cores (user, nice, system, irq, softirq, steal)."""
        assert self.apiserver is not None and self.operator is not None
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        idle = int(fields[3]) + int(fields[4])
        return {"apiserver": self.apiserver.cpu_s(), "operator": self.operator.cpu_s(),
                "agents": sum(a.cpu_s() for a in self.agents),
                "machine": (sum(int(x) for x in fields[:8]) - idle) / CLK_TCK}

    def stats(self) -> dict[str, Any]:
        assert self._client is not None
        return self._client.get("/_test/stats").json()

    def requests(self) -> dict[tuple[str, str], tuple[int, int]]:
        """Requests served by (verb, resource): (count, request bytes), the harness's own reads
        (polling for the published manifest) left out."""
        return {(r["verb"], r["resource"]): (r["count"] - self._own[(r["verb"], r["resource"])], r["bytes"])
                for r in self.stats()["requests"]}

    def status(self, obj: dict[str, Any]) -> dict[str, Any]:
        assert self._client is not None
        meta = obj["metadata"]
        ns, name = meta["namespace"], meta["name"]
        self._own[("get", "falcorules")] += 1
        r = self._client.get(f"/apis/falcopy.io/v1alpha1/namespaces/{ns}/falcorules/{name}")
        return dict(r.json().get("status") or {})

    def _read_deliveries(self) -> None:
        for path, offset in self._offsets.items():
            with path.open() as fh:
                fh.seek(offset)
                chunk = fh.read()
            end = chunk.rfind("\n") + 1  # a line still being written is read next time
            for line in chunk[:end].splitlines():
                d = json.loads(line)
                self.held[d["a"]].append((d["s"], d["t"]))
            self._offsets[path] = offset + len(chunk[:end].encode())

    def regressions(self) -> int:
        """Deliveries whose serial is not above the agent's previous one (must stay 0)."""
        self._read_deliveries()
        return sum(1 for h in self.held.values() for a, b in itertools.pairwise(h) if b[0] <= a[0])

    # ------------------------------------------------------------------ the script
    def create(self, obj: dict[str, Any]) -> float:
        assert self._client is not None
        ns = obj["metadata"]["namespace"]
        t0 = time.time()
        r = self._client.post(f"/apis/falcopy.io/v1alpha1/namespaces/{ns}/falcorules", json=obj)
        assert r.status_code == 201, r.text
        return t0

    def apply(self, index: int, timeout: float = 120.0) -> Change:
        """Create FalcoRule ``index``; wait until every agent holds a bundle with it."""
        obj = falcorule(index)
        cpu0, w0 = self.cpu(), time.monotonic()
        t0 = self.create(obj)
        name, ns = obj["metadata"]["name"], obj["metadata"]["namespace"]

        assert self._shard_watch is not None
        watch = self._shard_watch
        t_seen, serial = wait_for(lambda: watch.first(ns, name, t0), timeout=timeout, interval=0.01,
                                  what=f"{name} published", describe=self._dead)
        t_published = t_seen - t0

        def all_hold() -> bool:
            self._read_deliveries()
            return sum(1 for h in self.held.values() if h and h[-1][0] >= serial) >= self.n

        wait_for(all_hold, timeout=timeout, interval=0.05, what=f"{self.n} agents on serial {serial}",
                 describe=lambda: f"{sum(1 for h in self.held.values() if h and h[-1][0] >= serial)} "
                 f"hold it; {self._dead()}")
        cpu1, wall = self.cpu(), time.monotonic() - w0
        latencies = [next(t for s, t in self.held[a] if s >= serial) - t0 for a in range(self.n)]
        return Change(index, serial, latencies, t_published, {k: cpu1[k] - cpu0[k] for k in cpu0}, wall)
