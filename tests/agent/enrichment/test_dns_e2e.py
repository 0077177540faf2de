"""fd.*ip.name live: the real agent, the real kernel, real containers, the node's resolver.

The agent runs in its own mount namespace (``unshare --mount``) with a private
``/etc/hosts`` (and ``/etc/resolv.conf``) bind-mounted over the machine's: the test
decides what ``kubernetes.default.svc.cluster.local`` resolves to for the agent, and
changes it while the agent runs, without touching the files every other process on
this shared machine reads.  Falco's stable rules are loaded unmodified from the
compat directory."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.agent.reload.agentproc import AgentProcess
from tests.images import Container, busybox_image, docker, require_docker
from tests.waiting import wait_for

K8S_RULE = "Contact K8S API Server From Container"
K8S_NAME = "kubernetes.default.svc.cluster.local"
#: mounts the private files over the node's, then runs the agent (private mount namespace)
MOUNTS = 'mount --bind "$1" /etc/hosts && mount --bind "$2" /etc/resolv.conf && shift 2 && exec "$@"'


def in_own_mount_ns(hosts: Path, resolv: Path) -> list[str]:
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", MOUNTS, "sh",
            str(hosts), str(resolv)]


def write_in_place(path: Path, text: str) -> None:
    # the bind mount pins the inode: rewrite it, never replace the file
    with path.open("r+") as f:
        f.seek(0)
        f.write(text)
        f.truncate()


def alerts_of(agent: AgentProcess, rule: str, needle: str) -> list[dict[str, Any]]:
    return [a for a in agent.alerts() if a.get("rule") == rule and needle in a.get("output", "")]


def full_log(agent: AgentProcess) -> str:
    return agent.log_path.read_text(errors="replace")


def metric(agent: AgentProcess, name: str) -> float:
    return agent.metrics().get(name, 0.0)


# --------------------------------------------------------------------- stable rules, containers
@pytest.fixture(scope="module")
def bridge() -> tuple[str, str]:
    """(docker bridge gateway: the host's address containers reach, busybox image)."""
    require_docker()
    gw = docker("network", "inspect", "bridge", "--format",
                "{{(index .IPAM.Config 0).Gateway}}").stdout.strip()
    assert gw, "docker bridge without a gateway address"
    return gw, busybox_image()


@pytest.fixture
def k8s_agent(tmp_path: Path, compat_dir: Path, bridge: tuple[str, str], require_root: None
              ) -> Iterator[tuple[AgentProcess, Path]]:
    gw, _ = bridge
    hosts = tmp_path / "hosts"
    hosts.write_text(f"127.0.0.1 localhost\n{gw} {K8S_NAME}\n")
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("# no DNS server: names come from the private hosts file\n")
    agent = AgentProcess(tmp_path, [compat_dir / "falco_rules.yaml"], prefix=in_own_mount_ns(hosts, resolv),
                         falcopy_config="  dns:\n    refresh_interval_s: 1\n")
    agent.start()
    try:
        yield agent, hosts
    finally:
        agent.stop()


def connect_from(c: Container, addr: str, port: int) -> None:
    # the connect system call is what the rule reads: refused or not does not matter
    c.exec("nc", "-w", "1", addr, str(port), check=False)


def test_contact_k8s_api_server_from_container(k8s_agent: tuple[AgentProcess, Path],
                                               bridge: tuple[str, str]) -> None:
    agent, hosts = k8s_agent
    gw, image = bridge
    port = 40000 + uuid.uuid4().int % 20000
    with Container(image, "sh", interactive=True) as c:
        own_ip = docker("inspect", "--format", "{{.NetworkSettings.IPAddress}}", c.full_id).stdout.strip()
        assert own_ip
        # another address first, then the API server's: events are handled in order, so once
        # the second alert is in, the first connect had its chance to raise one
        connect_from(c, own_ip, port)
        connect_from(c, gw, port)
        hit = wait_for(lambda: alerts_of(agent, K8S_RULE, f"->{gw}:{port}"), what="the K8S API alert",
                       describe=agent.log)[0]
        fields = hit["output_fields"]
        assert fields["fd.name"].endswith(f"->{gw}:{port}") and fields["evt.type"] == "connect"
        assert not alerts_of(agent, K8S_RULE, f"->{own_ip}:{port}")

        # the name moves to the container's own address: picked up at the next refresh
        write_in_place(hosts, f"127.0.0.1 localhost\n{own_ip} {K8S_NAME}\n")
        port2 = port + 1

        def moved() -> list[dict[str, Any]]:
            connect_from(c, own_ip, port2)
            return alerts_of(agent, K8S_RULE, f"->{own_ip}:{port2}")
        wait_for(moved, what="the alert for the name's new address", describe=agent.log, interval=0.5)
        port3 = port + 2
        connect_from(c, gw, port3)
        connect_from(c, own_ip, port3)
        wait_for(lambda: alerts_of(agent, K8S_RULE, f"->{own_ip}:{port3}"), what="the marker alert")
        assert not alerts_of(agent, K8S_RULE, f"->{gw}:{port3}"), "the old address still matched"


# --------------------------------------------------------------------- localhost, silent DNS
LOCALHOST_RULES = """\
- rule: connect to localhost
  desc: fd.sip.name compared with a name from the hosts file
  condition: evt.type = connect and fd.sip.name = localhost and proc.name = {comm}
  output: "to localhost (connection=%fd.name name=%fd.sip.name)"
  priority: WARNING
- rule: connect to a silent name
  desc: a name the (silent) DNS server never answers for
  condition: evt.type = connect and fd.sip.name in ({silent}) and proc.name = {comm}
  output: "to the silent name (connection=%fd.name)"
  priority: WARNING
"""


class SilentDns:
    """A UDP socket on a loopback address, port 53, that never answers."""

    def __init__(self) -> None:
        octets = uuid.uuid4().bytes[:3]
        self.addr = "127." + ".".join(str(1 + b % 250) for b in octets)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((self.addr, 53))

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def silent_agent(tmp_path: Path, require_root: None) -> Iterator[tuple[AgentProcess, str, str]]:
    comm = "fpdns" + uuid.uuid4().hex[:8]      # 13 characters: within the kernel's comm
    bash = shutil.which("bash")
    assert bash
    shutil.copy2(bash, tmp_path / comm)
    silent_name = f"silent-{uuid.uuid4().hex[:8]}.falcopy.test"
    dns = SilentDns()
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n")
    resolv = tmp_path / "resolv.conf"
    # the longest wait glibc allows (5 x 30 s): the lookup hangs for the whole test
    resolv.write_text(f"nameserver {dns.addr}\noptions timeout:30 attempts:5\n")
    rules = tmp_path / "rules.yaml"
    rules.write_text(LOCALHOST_RULES.format(comm=comm, silent=silent_name))
    agent = AgentProcess(tmp_path, [rules], prefix=in_own_mount_ns(hosts, resolv),
                         falcopy_config="  dns:\n    reload_wait_s: 20\n")
    agent.start()
    try:
        yield agent, str(tmp_path / comm), silent_name
    finally:
        agent.stop()
        dns.close()


def bash_connect(exe: str, addr: str, port: int) -> None:
    # bash's /dev/tcp: one connect() from a process named after the copied binary
    subprocess.run([exe, "-c", f"exec 3<>/dev/tcp/{addr}/{port}"], capture_output=True, timeout=30)


def test_localhost_name_and_a_silent_dns_server(silent_agent: tuple[AgentProcess, str, str]) -> None:
    """The DNS server never answers the silent name: its lookup hangs in a resolver thread
    for the whole test while every connect is processed and the localhost rule fires."""
    agent, exe, silent_name = silent_agent
    failures = f'falcopy_dns_failures_total{{name="{silent_name}"}}'
    connects = 'falcopy_events_total{source="syscall",type="connect"}'
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        before = metric(agent, connects)
        n = 20
        for i in range(n):
            bash_connect(exe, "127.0.0.2", port + 1 + i)     # another address: no alert
            bash_connect(exe, "127.0.0.1", port)

        def localhost_hits() -> list[dict[str, Any]]:
            got = alerts_of(agent, "connect to localhost", f"->127.0.0.1:{port}")
            return got if len(got) >= n else []
        hits = wait_for(localhost_hits, what=f"{n} localhost alerts", describe=agent.log)
        assert len(hits) == n
        assert all("name=localhost" in h["output"] for h in hits)
        # the per-type counters are published once a second
        wait_for(lambda: metric(agent, connects) - before >= 2 * n, what="the connects counted")
        assert not [a for a in agent.alerts() if "127.0.0.2" in a["output"]]
        assert not alerts_of(agent, "connect to a silent name", "")
        # ...and all of it while the silent name's lookup was still hanging
        m = agent.metrics()
        assert m[failures] == 0 and m[f'falcopy_dns_addresses{{name="{silent_name}"}}'] == 0
        assert f"cannot resolve {silent_name}" not in full_log(agent)


def test_reload_waits_for_new_names_while_the_running_rules_detect(
        silent_agent: tuple[AgentProcess, str, str]) -> None:
    """A reload whose rules add a name the DNS never answers: the swap waits (bounded by
    reload_wait_s) while the running rules keep raising alerts, then goes live anyway."""
    agent, exe, silent_name = silent_agent
    rules = agent.rules[0]
    new_name = "second-" + silent_name
    new_rules = LOCALHOST_RULES.replace("to localhost (", "to localhost v2 (")
    comm = Path(exe).name
    rules.write_text(new_rules.format(comm=comm, silent=f"{silent_name}, {new_name}"))
    assert agent.proc is not None
    agent.proc.send_signal(signal.SIGHUP)
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]

        def old_rules_alert() -> list[dict[str, Any]]:
            bash_connect(exe, "127.0.0.1", port)
            return alerts_of(agent, "connect to localhost", "to localhost (connection=127.0.0.1:")
        # the reload is waiting for the new name: the running rules answer these connects
        wait_for(lambda: [a for a in old_rules_alert() if f"->127.0.0.1:{port}" in a["output"]],
                 what="an alert of the running rules during the reload", describe=agent.log)
        assert "rules reloaded" not in full_log(agent)
        wait_for(lambda: "rules reloaded" in full_log(agent), what="the reload", timeout=90,
                 describe=agent.log)
        assert f"no DNS answer yet for {new_name}" in full_log(agent)

        def new_rules_alert() -> list[dict[str, Any]]:
            # the swap happens on the event thread after the log line: connect until it has
            bash_connect(exe, "127.0.0.1", port)
            return alerts_of(agent, "connect to localhost", "to localhost v2 (connection=")
        wait_for(new_rules_alert, what="an alert of the new rules", describe=agent.log, interval=0.2)
