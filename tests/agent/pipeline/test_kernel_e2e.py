"""End to end on the real kernel: actions really performed -> probe -> state ->
rules (project defaults and upstream stable, unmodified) -> alerts with exact fields."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .agentrun import Agent, Hit, start_agent

pytestmark = pytest.mark.kernel

REPO = Path(__file__).resolve().parents[3]


def _comm(pid: int) -> str:
    return Path(f"/proc/{pid}/comm").read_text().strip()


CUSTOM_RULES = """
- rule: send on a connection older than the agent
  desc: fd state of sockets that existed before start-up (the /proc/self/net inventory)
  condition: evt.type in (sendto, sendmsg) and proc.name = fpsender
  output: sent on %fd.name
  priority: NOTICE
"""


class Preexisting:
    """A process holding a loopback TCP connection made before the agent started."""

    def __init__(self) -> None:
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(1)
        self.port = self.srv.getsockname()[1]
        code = textwrap.dedent(f"""
            import ctypes, socket, sys
            ctypes.CDLL(None).prctl(15, b"fpsender", 0, 0, 0)
            c = socket.create_connection(("127.0.0.1", {self.port}))
            print(c.getsockname()[1], flush=True)
            sys.stdin.readline()
            c.send(b"hello")
        """)
        self.proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.cport = int(self.proc.stdout.readline())
        self.conn, _ = self.srv.accept()

    def send(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        self.proc.wait(timeout=10)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self.conn.close()
        self.srv.close()


@pytest.fixture(scope="module")
def preexisting() -> Iterator[Preexisting]:
    p = Preexisting()
    yield p
    p.close()


@pytest.fixture(scope="module")
def agent(compat_dir: Path, preexisting: Preexisting,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Agent]:
    assert os.geteuid() == 0, "kernel tests need root (CI runs as root)"
    custom = tmp_path_factory.mktemp("rules") / "custom.yaml"
    custom.write_text(CUSTOM_RULES)
    a = start_agent({"project": [REPO / "rules" / "falcopy_rules.yaml"],
                     "upstream": [compat_dir / "falco_rules.yaml"],
                     "custom": [custom]})
    LAST[:] = [a]
    yield a
    a.probe.close()


def test_connection_made_before_start(agent: Agent, preexisting: Preexisting) -> None:
    hits = agent.run(preexisting.send, attempts=1)
    h = one(hits, "custom:send on a connection older than the agent")
    assert h.fields["fd.name"] == f"127.0.0.1:{preexisting.cport}->127.0.0.1:{preexisting.port}"
    assert h.fields["proc.name"] == "fpsender"
    assert h.fields["evt.res"] == "SUCCESS"


@pytest.fixture(scope="module")
def bins(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Copies of system binaries under names nothing else on the machine uses."""
    d = tmp_path_factory.mktemp("bins")
    for src, name in (("cat", "fpcat"), ("touch", "fptouch"), ("chmod", "fpchmod"), ("ln", "fpln"),
                      ("bash", "nginx"), ("ls", "fpls")):
        path = shutil.which(src)
        assert path, src
        shutil.copy2(path, d / name)
    return d


def hits_for(hits: list[Hit], rule: str) -> list[Hit]:
    return [h for h in hits if h.rule == rule]


def one(hits: list[Hit], rule: str) -> Hit:
    found = hits_for(hits, rule)
    assert found, f"{rule} did not fire; got {[h.rule for h in hits]}; window: {LAST[0].window()}"
    return found[0]


LAST: list[Agent] = []


def test_read_etc_shadow(agent: Agent, bins: Path) -> None:
    hits = agent.run(lambda: subprocess.run([bins / "fpcat", "/etc/shadow"], capture_output=True, check=True))
    parent = _comm(os.getpid())
    for rule in ("project:Sensitive File Read by Untrusted Program",
                 "upstream:Read sensitive file untrusted"):
        h = one(hits, rule)
        assert h.fields["proc.name"] == "fpcat"
        assert h.fields["proc.pname"] == parent
        assert h.fields["proc.cmdline"] == "fpcat /etc/shadow"
        assert h.fields["fd.name"] == "/etc/shadow"
        assert h.fields["user.name"] == "root"
        assert h.fields["evt.type"] == "openat"
        assert h.fields["evt.res"] == "SUCCESS"
        assert h.fields["proc.exepath"] == str(bins / "fpcat")


def test_write_below_etc(agent: Agent, bins: Path) -> None:
    target = f"/etc/falcopy-test-{os.getpid()}.tmp"
    try:
        hits = agent.run(lambda: subprocess.run([bins / "fptouch", target], check=True))
    finally:
        Path(target).unlink(missing_ok=True)
    h = one(hits, "project:Write Below Etc Directory")
    assert h.fields["proc.name"] == "fptouch"
    assert h.fields["proc.cmdline"] == f"fptouch {target}"
    assert h.fields["fd.name"] == target
    assert h.fields["evt.type"] == "openat"
    assert h.fields["evt.res"] == "SUCCESS"
    assert h.fields["user.name"] == "root"


def test_chmod_sensitive_file(agent: Agent, bins: Path) -> None:
    mode = oct(stat.S_IMODE(os.stat("/etc/shadow").st_mode))[2:]
    hits = agent.run(lambda: subprocess.run([bins / "fpchmod", mode, "/etc/shadow"], check=True))
    h = one(hits, "project:Sensitive File Mode Changed")
    assert h.fields["proc.name"] == "fpchmod"
    assert h.fields["proc.cmdline"] == f"fpchmod {mode} /etc/shadow"
    assert h.fields["evt.type"] == "fchmodat"
    assert h.fields["evt.res"] == "SUCCESS"


def test_exec_from_dev_shm(agent: Agent) -> None:
    exe = Path(f"/dev/shm/fptrue-{os.getpid()}")
    shutil.copy2(shutil.which("true") or "/bin/true", exe)
    try:
        hits = agent.run(lambda: subprocess.run([str(exe), "x"], check=True))
    finally:
        exe.unlink()
    for rule in ("project:Execution from Shared Memory or memfd", "upstream:Execution from /dev/shm"):
        h = one(hits, rule)
        assert h.fields["proc.name"] == exe.name[:15]
        assert h.fields["proc.cmdline"] == f"{exe.name[:15]} x"
        assert h.fields["proc.exepath"] == str(exe)
        assert h.fields["evt.type"] == "execve"
        assert h.fields["evt.res"] == "SUCCESS"
        assert h.fields["proc.pname"] == _comm(os.getpid())


def test_connect_loopback_and_redirect_shell(agent: Agent) -> None:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    port = srv.getsockname()[1]
    script = f"exec 3<>/dev/tcp/127.0.0.1/{port}; exec 1>&3; echo hi"
    try:
        hits = agent.run(lambda: subprocess.run(["bash", "-c", script], check=True))
        conn, peer = srv.accept()
        conn.close()
    finally:
        srv.close()
    h = one(hits, "project:Shell Standard Streams Redirected to Network")
    assert h.fields["proc.name"] == "bash"
    assert h.fields["proc.cmdline"] == f"bash -c {script}"
    assert h.fields["fd.name"] == f"127.0.0.1:{peer[1]}->127.0.0.1:{port}"
    assert h.fields["evt.type"] == "dup2"


def test_ptrace_child(agent: Agent) -> None:
    code = textwrap.dedent("""
        import ctypes, os, signal, time
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(15, b"fptracer", 0, 0, 0)
        child = os.fork()
        if child == 0:
            time.sleep(5); os._exit(0)
        assert libc.ptrace(16, child, None, None) == 0, ctypes.get_errno()
        os.waitpid(child, 0)
        libc.ptrace(17, child, None, None)
        os.kill(child, signal.SIGKILL); os.waitpid(child, 0)
    """)
    hits = agent.run(lambda: subprocess.run([sys.executable, "-c", code], check=True))
    for rule in ("project:Process Attached with ptrace", "upstream:PTRACE attached to process"):
        h = one(hits, rule)
        assert h.fields["proc.name"] == "fptracer"
        assert h.fields["evt.type"] == "ptrace"
        assert h.fields["evt.res"] == "SUCCESS"
        assert h.fields["user.name"] == "root"


def test_memfd_exec(agent: Agent) -> None:
    code = textwrap.dedent(f"""
        import os
        fd = os.memfd_create("fpmemfd", 0)
        os.write(fd, open({shutil.which("true")!r}, "rb").read())
        os.execve(f"/proc/self/fd/{{fd}}", ["fpmemfd-run", "arg1"], {{}})
    """)
    hits = agent.run(lambda: subprocess.run([sys.executable, "-c", code], check=True))
    for rule in ("project:Execution from Shared Memory or memfd",
                 "upstream:Fileless execution via memfd_create"):
        h = one(hits, rule)
        assert h.fields["proc.is_exe_from_memfd"] is True
        assert h.fields["proc.exepath"] == "/memfd:fpmemfd (deleted)"  # d_path, as Falco
        assert h.fields["proc.cmdline"].endswith(" arg1")
        assert h.fields["evt.type"] == "execve"
        assert h.fields["proc.pname"] == _comm(os.getpid())


def test_symlink_to_sensitive_file(agent: Agent, bins: Path, tmp_path: Path) -> None:
    link = tmp_path / "shadow-link"
    hits = agent.run(lambda: subprocess.run([bins / "fpln", "-s", "/etc/shadow", str(link)], check=True))
    for rule in ("project:Link to Sensitive File Created", "upstream:Create Symlink Over Sensitive Files"):
        h = one(hits, rule)
        assert h.fields["proc.name"] == "fpln"
        assert h.fields["proc.cmdline"] == f"fpln -s /etc/shadow {link}"
        assert h.fields["evt.type"] == "symlinkat"
        assert h.fields["evt.arg.target"] == "/etc/shadow"
        assert h.fields["evt.res"] == "SUCCESS"


def _web_server_shell(agent: Agent, bins: Path) -> list[Hit]:
    return agent.run(lambda: subprocess.run([bins / "nginx", "-c", "/bin/sh -c 'exit 0'; true"], check=True))


def _check_web_shell(h: Hit) -> None:
    assert h.fields["proc.name"] == "sh"
    assert h.fields["proc.pname"] == "nginx"
    assert h.fields["proc.cmdline"] == "sh -c exit 0"
    assert h.fields["evt.type"] == "execve"
    assert h.fields["user.name"] == "root"


def test_web_server_spawns_shell(agent: Agent, bins: Path) -> None:
    _check_web_shell(one(_web_server_shell(agent, bins), "project:Web Server Spawned a Shell"))


def test_web_server_spawns_shell_upstream_rule(agent: Agent, bins: Path) -> None:
    # "Run shell untrusted" needs `proc.aname in (...)` to match when ANY ancestor is in
    # the list, as libsinsp's compare_full_aname does
    _check_web_shell(one(_web_server_shell(agent, bins), "upstream:Run shell untrusted"))


def test_benign_actions_raise_nothing(agent: Agent, bins: Path, tmp_path: Path) -> None:
    def benign() -> None:
        subprocess.run([bins / "fpcat", "/etc/hostname"], capture_output=True, check=True)
        subprocess.run([bins / "fpls", "-la", str(tmp_path)], capture_output=True, check=True)
        (tmp_path / "f").write_text("x")
        subprocess.run([bins / "fptouch", str(tmp_path / "g")], check=True)
        subprocess.run([bins / "fpchmod", "600", str(tmp_path / "g")], check=True)
    hits = agent.run(benign)
    assert hits == []


def test_odd_input_from_the_kernel(agent: Agent, tmp_path: Path) -> None:
    # a 4096+ byte path, non-UTF-8 names, a huge argv, and processes gone before we look
    deep = tmp_path
    name = "d" * 200
    while len(str(deep)) < 4300:
        deep = deep / name
    code = textwrap.dedent(f"""
        import os
        p = {str(deep)!r}
        try: os.open(p, os.O_RDONLY)
        except OSError: pass
        try: os.open(os.fsencode({str(tmp_path)!r}) + b"/caf\\xe9\\xff", os.O_RDONLY)
        except OSError: pass
    """)
    huge = ["x" * 1000] * 2000

    def odd() -> None:
        subprocess.run([sys.executable, "-c", code], check=True)
        subprocess.run(["/bin/true", *huge], check=True)
        for _ in range(20):
            subprocess.Popen(["/bin/true"]).wait()
    before = {k: p.errors for k, p in agent.pipelines.items()}
    agent.run(odd)
    assert {k: p.errors for k, p in agent.pipelines.items()} == before
    assert all(p.events > 0 for p in agent.pipelines.values())


@pytest.fixture(scope="module")
def ctr() -> Iterator[Any]:
    from tests.images import Container, busybox_image, require_docker

    require_docker()
    with Container(busybox_image(), interactive=True) as c:
        yield c


@pytest.mark.docker
def test_drop_and_execute_in_container(agent: Agent, ctr: Any) -> None:
    # the shell outlives its child a little: the agent reads its container from /proc
    # while it runs (the probe sends no cgroup data), and the child inherits it
    script = "cp /bin/busybox /tmp/echo && /tmp/echo dropped; sleep 0.5"
    hits = agent.run(lambda: ctr.exec("sh", "-c", script), container_id=ctr.id)
    for rule in ("project:Drifted Executable Run in Container",
                 "upstream:Drop and execute new binary in container"):
        h = one(hits, rule)
        assert h.fields["container.id"] == ctr.id
        assert h.fields["proc.name"] == "echo"
        assert h.fields["proc.cmdline"] == "echo dropped"
        assert h.fields["proc.pname"] == "sh"
        assert h.fields["proc.exepath"] == "/tmp/echo"
        assert h.fields["proc.is_exe_upper_layer"] is True
        assert h.fields["user.name"] == "root"
        assert h.fields["evt.type"] == "execve"


@pytest.mark.docker
def test_terminal_shell_in_container(agent: Agent, ctr: Any) -> None:
    hits = agent.run(lambda: ctr.exec("sh", "-c", "sleep 0.5", tty=True), container_id=ctr.id)
    for rule in ("project:Terminal Shell Started in Container", "upstream:Terminal shell in container"):
        h = one(hits, rule)
        assert h.fields["proc.name"] == "sh"
        # runc execs the shell and exits: whether the shim (subreaper) has adopted it by
        # then is a race, in Falco as here; both are container entrypoints
        assert h.fields["proc.pname"] in ("runc", "containerd-shim")
        assert h.fields["proc.cmdline"] == "sh -c sleep 0.5"
        assert h.fields["user.name"] == "root"
        assert h.fields["evt.type"] == "execve"


@pytest.mark.docker
def test_packet_socket_in_container(agent: Agent, ctr: Any) -> None:
    hits = agent.run(lambda: ctr.exec("arping", "-c", "1", "-w", "1", "-I", "eth0", "10.255.255.1",
                                      check=False), container_id=ctr.id)
    h = one(hits, "upstream:Packet socket created in container")
    assert h.fields["proc.name"] == "arping"
    assert h.fields["proc.cmdline"] == "arping -c 1 -w 1 -I eth0 10.255.255.1"
    assert h.fields["evt.type"] == "socket" and h.fields["evt.res"] == "SUCCESS"
    assert h.fields["user.name"] == "root" and h.fields["container.id"] == ctr.id


def test_directory_traversal_read(agent: Agent, bins: Path) -> None:
    raw = "/tmp/../etc/../etc/passwd"
    hits = agent.run(lambda: subprocess.run([bins / "fpcat", raw], capture_output=True, check=True))
    h = one(hits, "upstream:Directory traversal monitored file read")
    assert h.fields["fd.name"] == "/etc/passwd"
    assert h.fields["proc.cmdline"] == f"fpcat {raw}"
    assert h.fields["evt.type"] == "openat" and h.fields["evt.res"] == "SUCCESS"


def test_hardlink_over_sensitive_file(agent: Agent, bins: Path, tmp_path: Path) -> None:
    link = tmp_path / "hl"
    try:
        hits = agent.run(lambda: subprocess.run([bins / "fpln", "/etc/shadow", str(link)],
                                                capture_output=True, check=False))
    finally:
        link.unlink(missing_ok=True)
    h = one(hits, "upstream:Create Hardlink Over Sensitive Files")
    assert h.fields["proc.name"] == "fpln"
    assert h.fields["evt.type"] == "linkat"
    assert h.fields["proc.cmdline"] == f"fpln /etc/shadow {link}"


def test_search_for_keys_and_credentials(agent: Agent) -> None:
    def search() -> None:
        subprocess.run(["find", "/nonexistent-fp", "-name", "id_rsa"], capture_output=True, check=False)
        subprocess.run(["find", "/nonexistent-fp", "-path", "*/.aws/credentials"], capture_output=True,
                       check=False)
    hits = agent.run(search)
    h = one(hits, "upstream:Search Private Keys or Passwords")
    assert h.fields["proc.cmdline"] == "find /nonexistent-fp -name id_rsa"
    h = one(hits, "upstream:Find AWS Credentials")
    assert h.fields["proc.cmdline"] == "find /nonexistent-fp -path */.aws/credentials"
    assert h.fields["proc.pname"] == _comm(os.getpid())


def test_ptrace_traceme(agent: Agent) -> None:
    code = textwrap.dedent("""
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(15, b"fpantidebug", 0, 0, 0)
        assert libc.ptrace(0, 0, None, None) == 0, ctypes.get_errno()
    """)
    hits = agent.run(lambda: subprocess.run([sys.executable, "-c", code], check=True))
    h = one(hits, "upstream:PTRACE anti-debug attempt")
    assert h.fields["proc.name"] == "fpantidebug"
    assert h.fields["evt.type"] == "ptrace" and h.fields["evt.res"] == "SUCCESS"


def test_clear_log_file(agent: Agent) -> None:
    log = Path(f"/var/log/falcopy-test-{os.getpid()}.log")
    log.write_text("old entries\n")
    code = f"open({str(log)!r}, 'w').close()"
    try:
        hits = agent.run(lambda: subprocess.run([sys.executable, "-c", code], check=True))
    finally:
        log.unlink(missing_ok=True)
    h = one(hits, "upstream:Clear Log Activities")
    assert h.fields["fd.name"] == str(log)
    assert h.fields["evt.type"] == "openat" and h.fields["evt.res"] == "SUCCESS"


def test_relative_path_resolved_as_fd_name(agent: Agent, bins: Path) -> None:
    hits = agent.run(lambda: subprocess.run([bins / "fpcat", "../etc/./shadow"], cwd="/usr",
                                            capture_output=True, check=True))
    h = one(hits, "upstream:Read sensitive file untrusted")
    assert h.fields["fd.name"] == "/etc/shadow"
    assert h.fields["proc.cmdline"] == "fpcat ../etc/./shadow"


def test_non_utf8_path_in_alert(agent: Agent) -> None:
    raw = b"/etc/falcopy-caf\xe9-%d.tmp" % os.getpid()
    code = f"import os; os.close(os.open({raw!r}, os.O_WRONLY | os.O_CREAT, 0o600))"
    try:
        hits = agent.run(lambda: subprocess.run([sys.executable, "-c", code], check=True))
    finally:
        if os.path.exists(raw):
            os.unlink(raw)
    h = one(hits, "project:Write Below Etc Directory")
    # the bytes survive as surrogate escapes: os.fsencode gives the kernel's bytes back
    assert os.fsencode(h.fields["fd.name"]) == raw


@pytest.mark.docker
def test_module_injection_from_container(agent: Agent) -> None:
    """Upstream's "Linux Kernel Module Injection Detected", unmodified, from a container: on
    this kernel (no CONFIG_MODULES, no module tracepoints) both calls fail with ENOSYS and
    are captured by the generic hook; elsewhere by their dedicated programs."""
    import errno

    from tests.images import Container, modload_image, require_docker

    require_docker()
    with Container(modload_image(), interactive=True, extra=["--cap-add", "SYS_MODULE"]) as c:
        out: list[str] = []
        hits = agent.run(lambda: out.append(c.exec("sh", "-c", "modload; sleep 0.5").stdout),
                         container_id=c.id)
    results = dict(line.split() for line in out[-1].splitlines())
    rule = "upstream:Linux Kernel Module Injection Detected"
    got = {h.fields["evt.type"]: h for h in hits if h.rule == rule}
    assert set(got) == {"init_module", "finit_module"}, [h.rule for h in hits]
    for name, h in got.items():
        res = int(results[name])
        assert res < 0  # never a module loaded
        assert h.fields["evt.res"] == errno.errorcode[-res]
        assert h.fields["proc.name"] == "modload" and h.fields["container.id"] == c.id
        assert h.fields["user.name"] == "root"
