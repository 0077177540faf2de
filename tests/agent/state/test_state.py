"""Process table and fd table: bootstrap from the real /proc, then updates from records."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import textwrap

import pytest
from falcopy.agent.fields.event import SyscallEvent
from falcopy.agent.fields.syscall import AgentSyscallSource, covered_fields
from falcopy.agent.state import HostPaths, ProcessTable

from falcopy.engine.fields.syscall import SYSCALL_FIELDS
from tests.waiting import wait_until

from .helpers import rec


def field(table: ProcessTable, record, name: str, arg: str | None = None):
    thread, fd = table.apply(record)
    ev = SyscallEvent(record, thread, fd, table)
    src = AgentSyscallSource()
    return src.accessor(SYSCALL_FIELDS[name], arg)(ev)


def event(table: ProcessTable, record) -> tuple[SyscallEvent, AgentSyscallSource]:
    thread, fd = table.apply(record)
    return SyscallEvent(record, thread, fd, table), AgentSyscallSource()


def get(ev: SyscallEvent, name: str, arg: str | None = None):
    return AgentSyscallSource().accessor(SYSCALL_FIELDS[name], arg)(ev)


@pytest.fixture
def sleeper():
    with tempfile.TemporaryDirectory() as cwd:
        proc = subprocess.Popen(["sleep", "30"], cwd=cwd)
        assert wait_until(lambda: os.path.basename(os.readlink(f"/proc/{proc.pid}/exe")) == "sleep")
        yield proc, os.path.realpath(cwd)
        proc.kill()
        proc.wait()


def test_bootstrap_reads_real_processes(sleeper) -> None:
    proc, cwd = sleeper
    table = ProcessTable()
    assert table.bootstrap() > 1
    info = table.get(proc.pid)
    assert info is not None
    assert info.comm == "sleep"
    assert info.exe == "sleep"
    assert info.args == ["30"]
    assert info.cwd == cwd
    assert info.exepath == os.path.realpath(subprocess.check_output(["which", "sleep"], text=True).strip())
    assert info.ptid == os.getpid()
    assert info.uid == os.geteuid()
    assert info.container_id == "host"
    chain = [a.pid for a in table.ancestors(info)]
    assert chain[0] == os.getpid()


def test_bootstrap_fds_and_socket_inventory() -> None:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    cli = socket.create_connection(srv.getsockname())
    conn, _ = srv.accept()
    with tempfile.NamedTemporaryFile() as tmp:
        table = ProcessTable()
        table.bootstrap()
        mine = table.get(os.getpid())
        assert mine is not None
        fds = mine.fds
        assert fds[tmp.fileno()].name == tmp.name and fds[tmp.fileno()].type == "file"
        sport = srv.getsockname()[1]
        cport = cli.getsockname()[1]
        assert fds[srv.fileno()].listening and fds[srv.fileno()].name == f"127.0.0.1:{sport}"
        c = fds[cli.fileno()]
        assert c.type == "ipv4" and c.l4proto == "tcp"
        assert c.name == f"127.0.0.1:{cport}->127.0.0.1:{sport}"
        s = fds[conn.fileno()]
        assert s.name == f"127.0.0.1:{cport}->127.0.0.1:{sport}" and not s.is_client
    for sk in (cli, conn, srv):
        sk.close()


def test_clone_exec_open_close_exit_lifecycle(tmp_path) -> None:
    table = ProcessTable()
    table.bootstrap(with_fds=False)
    parent = os.getpid()
    child = 4_000_000 - 7  # beyond pid_max: never a real process
    table.apply(rec("clone", child, ppid=parent, res=0, comm="python", flags=0x11))
    info = table.get(child)
    assert info is not None and info.ptid == parent
    assert info.exe == table.get(parent).exe  # inherited
    ev, _ = event(table, rec("execve", child, ppid=parent, comm="cat", exe="cat",
                              args=["/etc/hostname"], trusted_exepath="/usr/bin/cat",
                              cwd=str(tmp_path), env=["A=1", "HOME=/root"], tty=34817,
                              cap_permitted=1 << 21, cap_effective=0, cap_inheritable=0))
    assert get(ev, "proc.name") == "cat"
    assert get(ev, "proc.cmdline") == "cat /etc/hostname"
    assert get(ev, "proc.exepath") == "/usr/bin/cat"
    assert get(ev, "proc.pname") == table.get(parent).comm
    assert get(ev, "proc.cwd") == str(tmp_path) + "/"
    assert get(ev, "proc.env", "HOME") == "/root"
    assert get(ev, "thread.cap_permitted") == "CAP_SYS_ADMIN"
    assert get(ev, "proc.tty") == 34817
    assert get(ev, "proc.aname", "0") == "cat"
    assert get(ev, "proc.aname", "1") == table.get(parent).comm
    assert get(ev, "user.name") == "root"
    # relative open, resolved by the kernel's dirpath
    ev, _ = event(table, rec("openat", child, res=3, comm="cat", dirfd=-100, name="../x/./f.txt",
                              flags=os.O_RDONLY, dirpath=str(tmp_path / "sub")))
    assert get(ev, "fd.name") == str(tmp_path / "x" / "f.txt")
    assert get(ev, "fd.directory") == str(tmp_path / "x")
    assert get(ev, "fd.filename") == "f.txt"
    assert get(ev, "fd.typechar") == "f"
    assert get(ev, "evt.is_open_read") is True and get(ev, "evt.is_open_write") is False
    assert get(ev, "evt.arg", "flags") == "O_RDONLY"
    # without dirpath: relative to the cwd
    ev, _ = event(table, rec("openat", child, res=-2, comm="cat", dirfd=-100, name="missing",
                              flags=os.O_WRONLY | os.O_CREAT))
    assert get(ev, "fd.name") == str(tmp_path / "missing")
    assert get(ev, "fd.num") == -1
    assert get(ev, "evt.res") == "ENOENT" and get(ev, "evt.rawres") == -2
    assert get(ev, "evt.arg", "flags") == "O_CREAT|O_WRONLY"
    # a later read on fd 3 sees the name; close is evaluated with the fd, then it is gone
    ev, _ = event(table, rec("read", child, res=10, comm="cat", fd=3))
    assert get(ev, "fd.name") == str(tmp_path / "x" / "f.txt")
    ev, _ = event(table, rec("close", child, comm="cat", fd=3))
    assert get(ev, "fd.name") == str(tmp_path / "x" / "f.txt")
    table.after()
    assert 3 not in table.get(child).fds
    ev, _ = event(table, rec("procexit", child, comm="cat", status=0))
    assert get(ev, "proc.name") == "cat"
    table.after()
    assert table.get(child) is None


def test_sockets_connect_accept_dup(tmp_path) -> None:
    table = ProcessTable()
    pid = 4_000_000 - 11
    table.apply(rec("clone", pid, ppid=os.getpid(), comm="nc"))
    table.apply(rec("socket", pid, res=5, comm="nc", domain=socket.AF_INET, type=socket.SOCK_STREAM, proto=0))
    ev, _ = event(table, rec("connect", pid, res=0, comm="nc", fd=5,
                              addr={"family": "inet", "ip": "127.0.0.1", "port": 8080},
                              tuple={"family": "inet", "l4proto": "tcp", "sip": "127.0.0.1",
                                     "sport": 40000, "dip": "127.0.0.1", "dport": 8080}))
    assert get(ev, "fd.name") == "127.0.0.1:40000->127.0.0.1:8080"
    assert get(ev, "fd.sip") == "127.0.0.1" and get(ev, "fd.sport") == 8080
    assert get(ev, "fd.cport") == 40000 and get(ev, "fd.lport") == 40000 and get(ev, "fd.rport") == 8080
    assert get(ev, "fd.l4proto") == "tcp" and get(ev, "fd.sockfamily") == "ip"
    assert get(ev, "fd.typechar") == "4" and get(ev, "fd.connected") is True
    ev, _ = event(table, rec("dup2", pid, res=1, comm="nc", oldfd=5, newfd=1))
    ev, _ = event(table, rec("write", pid, res=3, comm="nc", fd=1))
    assert get(ev, "fd.name") == "127.0.0.1:40000->127.0.0.1:8080"
    # server side
    table.apply(rec("socket", pid, res=6, comm="nc", domain=socket.AF_INET, type=1, proto=6))
    table.apply(rec("bind", pid, res=0, comm="nc", fd=6, addr={"family": "inet", "ip": "0.0.0.0",
                                                               "port": 9000}))
    table.apply(rec("listen", pid, res=0, comm="nc", fd=6, backlog=5))
    ev, _ = event(table, rec("accept4", pid, res=7, comm="nc", fd=6, flags=0,
                              tuple={"family": "inet", "l4proto": "tcp", "sip": "10.0.0.9", "sport": 5555,
                                     "dip": "10.0.0.1", "dport": 9000}))
    assert get(ev, "fd.name") == "10.0.0.9:5555->10.0.0.1:9000"
    assert get(ev, "fd.cip") == "10.0.0.9" and get(ev, "fd.is_server") is True
    assert get(ev, "fd.lport") == 9000 and get(ev, "fd.rip") == "10.0.0.9"


def test_odd_input_never_crashes(tmp_path) -> None:
    table = ProcessTable()
    dead = 4_000_000 - 13  # a process we never saw and /proc does not have
    long_name = "/" + "a" * 5000
    bad = "caf\udce9/\udcff"  # surrogate-escaped non-UTF-8 bytes, as the decoder gives them
    ev, _ = event(table, rec("openat", dead, res=3, comm="x", dirfd=-100, name=long_name, flags=0))
    assert get(ev, "fd.name") == long_name and get(ev, "proc.name") == "x"
    ev, _ = event(table, rec("openat", dead, res=4, comm="x", dirfd=-100, name=bad, flags=0,
                              dirpath="/tmp"))
    assert get(ev, "fd.name") == "/tmp/" + bad
    huge = ["a" * 100] * 5000
    ev, _ = event(table, rec("execve", dead, comm="x", exe="x", args=huge, trusted_exepath="/x"))
    assert get(ev, "proc.cmdnargs") == 5000
    assert len(get(ev, "proc.cmdline")) > 500_000
    # records lacking their arguments (unreadable in the kernel) still give events
    for etype in ("connect", "accept", "bind", "dup2", "close", "fchdir", "capset", "setuid", "execve",
                  "clone", "pipe", "openat", "memfd_create", "socket", "symlinkat", "procexit"):
        ev, _ = event(table, rec(etype, dead, res=-9, comm="x"))
        for fdef in SYSCALL_FIELDS.values():
            AgentSyscallSource().accessor(fdef, None)(ev)
    table.after()


def test_every_field_has_an_accessor_and_runs() -> None:
    ok, missing = covered_fields()
    assert missing == []
    assert len(ok) == len(SYSCALL_FIELDS)
    table = ProcessTable()
    table.bootstrap(with_fds=False)
    ev, src = event(table, rec("openat", os.getpid(), res=-2, comm="python", dirfd=-100, name="/nope",
                               flags=0))
    values = {name: src.accessor(fdef, None)(ev) for name, fdef in SYSCALL_FIELDS.items()}
    assert values["proc.pid"] == os.getpid()
    assert values["container.id"] == "host"
    assert values["evt.type"] == "openat"
    assert values["user.uid"] == 0


def test_host_paths_prefix(tmp_path) -> None:
    # the agent in a container sees the host's /proc elsewhere: a copy of the layout works
    paths = HostPaths(proc="/proc", root=str(tmp_path))
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text("alice:x:0:0:Alice:/home/alice:/bin/zsh\n")
    table = ProcessTable(paths)
    table.bootstrap(with_fds=False)
    ev, _ = event(table, rec("openat", os.getpid(), res=-2, comm="python", dirfd=-100, name="/x", flags=0))
    assert get(ev, "user.name") == "alice" and get(ev, "user.shell") == "/bin/zsh"


def test_container_users_from_proc_root(tmp_path) -> None:
    table = ProcessTable()
    table.bootstrap(with_fds=False)
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "passwd").write_text("app:x:1000:1000::/app:/bin/sh\n")
    (etc / "group").write_text("appgrp:x:1000:\n")
    user = table.users.user(1000, "abcdef123456", str(tmp_path))
    assert user is not None and user.name == "app" and user.homedir == "/app"
    group = table.users.group(1000, "abcdef123456", str(tmp_path))
    assert group is not None and group.name == "appgrp"
    assert sys.platform == "linux"


def test_threads_pid_reuse_creds_and_cwd(tmp_path) -> None:
    table = ProcessTable()
    parent = os.getpid()
    pid = 4_000_000 - 40
    table.apply(rec("clone", pid, ppid=parent, comm="svc", flags=0))
    old = table.get(pid)
    # a thread of the process shares its state
    table.apply(rec("clone", pid, tid=pid + 1, ppid=parent, comm="svc", flags=0x00010000 | 0x400))
    assert table.get(pid + 1) is old
    table.apply(rec("openat", pid, tid=pid + 1, res=9, comm="svc", dirfd=-100, name="/etc/hosts", flags=0))
    assert old.fds[9].name == "/etc/hosts"
    # credentials, session, capabilities, cwd
    table.apply(rec("setuid", pid, res=0, uid=1000, comm="svc"))
    assert old.uid == 1000  # the record's euid (sampled at exit) is authoritative
    table.apply(rec("setsid", pid, res=pid, comm="svc"))
    assert old.sid == pid and old.pgid == pid
    table.apply(rec("capset", pid, res=0, comm="svc", cap_inheritable=0, cap_permitted=1 << 12,
                    cap_effective=1 << 12))
    ev, _ = event(table, rec("openat", pid, res=-13, comm="svc", dirfd=-100, name="/x", flags=0))
    assert get(ev, "thread.cap_effective") == "CAP_NET_ADMIN"
    table.apply(rec("chdir", pid, res=0, comm="svc", path="sub", cwd=str(tmp_path / "sub")))
    assert old.cwd == str(tmp_path / "sub")
    table.apply(rec("openat", pid, res=10, comm="svc", dirfd=-100, name=str(tmp_path), flags=os.O_DIRECTORY))
    ev, _ = event(table, rec("fchdir", pid, res=0, comm="svc", fd=10))
    assert old.cwd == str(tmp_path) and get(ev, "fd.typechar") == "d"
    # exit of a thread keeps the process; the pid is then reused by a new process
    table.apply(rec("procexit", pid, tid=pid + 1, comm="svc"))
    table.after()
    assert table.get(pid + 1) is None and table.get(pid) is old
    table.apply(rec("clone", pid, ppid=parent, comm="other"))
    fresh = table.get(pid)
    assert fresh is not None and fresh is not old
    assert fresh.start_ts > old.start_ts and fresh.comm == "other"


def test_memfd_exec_keeps_deleted_mark() -> None:
    """proc.exepath of a memfd executable is the kernel's d_path, as Falco shows it."""
    table = ProcessTable()
    pid = 4_000_000 - 50
    table.apply(rec("clone", pid, ppid=os.getpid(), comm="python"))
    table.apply(rec("memfd_create", pid, res=3, comm="python", name="payload", flags=0))
    ev, _ = event(table, rec("execve", pid, comm="3", exe="x", args=[],
                              trusted_exepath="/memfd:payload (deleted)", exe_from_memfd=True))
    assert get(ev, "proc.exepath") == "/memfd:payload (deleted)"
    assert get(ev, "proc.is_exe_from_memfd") is True
    # a child inherits it until its own exec
    child = 4_000_000 - 49
    ev, _ = event(table, rec("clone", child, ppid=pid, comm="3"))
    assert get(ev, "proc.exepath") == "/memfd:payload (deleted)"


def test_fuzzed_records_never_crash() -> None:
    """Every event type of the probe's table, with arguments of every odd shape."""
    import random

    from falcopy.agent.events.record import EVENT_ARGS
    from falcopy.agent.pipeline import Pipeline

    rnd = random.Random(1234)
    odd_values = [None, "", "rel/path", "/" + "x" * 5000, "caf\udce9", b"\xff\x00bytes", -1, 0, 2**63 - 1,
                  -(2**63), 3.5, True, [], ["a", None, b"\xfe"], {}, {"family": "inet"},
                  {"family": "unix", "path": None}, {"family": 99, "ip": None, "port": "x"},
                  {"sip": "1.2.3.4", "sport": 70000, "dip": "::1", "dport": -1}, ("a",), object()]
    table = ProcessTable()
    src = AgentSyscallSource()
    accessors = []
    for name, fdef in SYSCALL_FIELDS.items():
        arg = "1" if fdef.arg.value in ("index?", "key?") else ("HOME" if fdef.arg.value == "key" else None)
        accessors.append((name, src.accessor(fdef, arg)))
        accessors.append((name, src.accessor(fdef, None)))
    pipe = Pipeline(None, table)
    base = 4_000_000 - 200
    for _ in range(400):
        etype = rnd.choice(sorted(EVENT_ARGS))
        args = {key: rnd.choice(odd_values) for key in EVENT_ARGS[etype] if rnd.random() < 0.8}
        pid = base + rnd.randrange(5)
        record = rec(etype, pid, tid=pid + rnd.choice((0, 0, 7)), ppid=rnd.choice((1, base, pid)),
                     res=rnd.choice((-2, 0, 3, 2**31)), comm=rnd.choice(("x", "", "a" * 40)))
        record.args = args
        pipe.process([record])
        thread, fd = table.apply(record)
        ev = SyscallEvent(record, thread, fd, table)
        for _name, acc in accessors:
            acc(ev)
        table.after()
    assert pipe.errors == 0


def test_sockets_of_another_network_namespace(require_root, tmp_path) -> None:
    """A connection made in another netns (a container's) before start-up gets its tuple
    from /proc/PID/net of a process of that namespace (the agent's own /proc/self/net does not
    show it)."""
    code = textwrap.dedent("""
        import socket, subprocess, sys, time
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        srv = socket.socket(); srv.bind(("127.0.0.1", 4555)); srv.listen(1)
        cli = socket.create_connection(("127.0.0.1", 4555))
        conn, _ = srv.accept()
        print(cli.fileno(), cli.getsockname()[1], conn.fileno(), flush=True)
        time.sleep(20)
    """)
    # unshare execs the interpreter in place: the socket owner is proc.pid
    proc = subprocess.Popen(["unshare", "--net", sys.executable, "-c", code], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        cfd, cport, sfd = (int(x) for x in proc.stdout.readline().split())
        table = ProcessTable()
        table.bootstrap()
        info = table.get(proc.pid)
        assert info is not None
        assert info.fds[cfd].name == f"127.0.0.1:{cport}->127.0.0.1:4555"
        assert info.fds[cfd].is_client is True
        assert info.fds[sfd].name == f"127.0.0.1:{cport}->127.0.0.1:4555"
        assert info.fds[sfd].is_client is False
    finally:
        proc.kill()
        proc.wait()


def test_session_and_group_leaders(tmp_path) -> None:
    table = ProcessTable()
    shell = 4_000_000 - 60
    child = shell + 1
    table.apply(rec("clone", shell, ppid=os.getpid(), comm="bash"))
    table.apply(rec("setsid", shell, res=shell, comm="bash"))
    table.apply(rec("clone", child, ppid=shell, comm="bash"))
    setpgid = rec("setpgid", child, res=0, comm="bash")
    setpgid.args = {"pid": 0, "pgid": 0}  # the probe's argument names clash with rec()'s
    table.apply(setpgid)
    ev, _ = event(table, rec("execve", child, ppid=shell, comm="vim", exe="vim", args=["x"],
                              trusted_exepath="/usr/bin/vim"))
    assert get(ev, "proc.sid") == shell and get(ev, "proc.sname") == "bash"
    assert get(ev, "proc.vpgid") == child and get(ev, "proc.is_vpgid_leader") is True
    assert get(ev, "proc.is_sid_leader") is False
    assert get(ev, "proc.pgid.name") == "vim" and get(ev, "proc.sid.exe") == "bash"
    assert get(ev, "proc.loginshellid") == shell


def _with_args(record, **args):
    # probe argument names that clash with rec()'s own parameters
    record.args = args
    return record


def test_evt_arg_renderings(tmp_path) -> None:
    table = ProcessTable()
    table.bootstrap(with_fds=False)
    pid = 4_000_000 - 70
    table.apply(rec("clone", pid, ppid=os.getpid(), comm="t"))
    table.apply(rec("openat", pid, res=5, comm="t", dirfd=-100, name="/etc/hosts", flags=0))
    cases = [
        (rec("ptrace", pid, comm="t", request=16, addr=0, data=0), "request", "PTRACE_ATTACH"),
        (rec("socket", pid, res=6, comm="t", domain=17, type=3, proto=0), "domain", "AF_PACKET"),
        (_with_args(rec("setuid", pid, comm="t"), uid=0), "uid", "root"),
        (rec("fchmod", pid, comm="t", fd=5, mode=0o4755), "mode",
         "S_IXOTH|S_IROTH|S_IXGRP|S_IRGRP|S_IXUSR|S_IWUSR|S_IRUSR|S_ISUID"),
        (rec("fchmod", pid, comm="t", fd=5, mode=0o644), "fd", "5(<f>/etc/hosts)"),
        (rec("openat", pid, res=7, comm="t", dirfd=-100, name="/tmp/x", flags=os.O_CREAT | os.O_WRONLY,
             mode=0o640), "mode", "0640"),
        (rec("unshare", pid, comm="t", flags=0x10000000), "flags", "CLONE_NEWUSER"),
        (rec("bpf", pid, res=3, comm="t", cmd=5), "cmd", "BPF_PROG_LOAD"),
        (rec("kill", pid, comm="t", sig=9), "sig", "SIGKILL"),
        (rec("connect", pid, res=-111, comm="t", fd=6, addr={"family": "inet", "ip": "10.1.2.3", "port": 22}),
         "addr", "10.1.2.3:22"),
    ]
    for record, arg, expected in cases:
        ev, _ = event(table, record)
        assert get(ev, "evt.arg", arg) == expected, (record.type, arg)
    ev, _ = event(table, rec("connect", pid, res=-111, comm="t", fd=6,
                              addr={"family": "inet", "ip": "10.1.2.3", "port": 22}))
    assert get(ev, "evt.res") == "ECONNREFUSED" and get(ev, "evt.failed") is True
    assert get(ev, "evt.rawarg", "fd") == 6 and get(ev, "evt.arg", "res") == "ECONNREFUSED"


def test_container_id_from_record_cgroups_or_inherited() -> None:
    table = ProcessTable()
    full = "405104d72a8a9531cffce09b88dab09eb1bb8bd2608c9d3ced333b4809c770ba"
    shim = 4_000_000 - 80
    table.apply(rec("clone", shim, ppid=os.getpid(), comm="runc"))
    # the probe's cgroup data on execve names the container, even for a process already gone
    for cgroups in (f"9:pids:/docker/{full}\n8:cpu:/docker/{full}", f"docker-{full}.scope", full):
        ev, _ = event(table, rec("execve", shim, comm="sh", exe="sh", args=[], trusted_exepath="/bin/sh",
                                  cgroups=cgroups))
        assert get(ev, "container.id") == full[:12], cgroups
    # a child that exits before /proc is read keeps the container it inherited
    child = shim + 1
    table.apply(rec("clone", child, ppid=shim, comm="sh"))
    ev, _ = event(table, rec("execve", child, ppid=shim, comm="cat", exe="cat", args=["/etc/shadow"],
                              trusted_exepath="/bin/cat"))
    assert get(ev, "container.id") == full[:12]
    assert get(ev, "k8s.ns.name") is None
