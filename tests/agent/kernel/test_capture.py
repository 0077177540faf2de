"""Real actions on the real kernel produce records with exactly the right fields."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from falcopy.agent.events.record import SyscallRecord

from .conftest import Capture

pytestmark = pytest.mark.kernel

PY = sys.executable


def run_py(code: str, *args: str, cwd: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a child python; it prints its own pid first."""
    prog = "import os; print(os.getpid(), flush=True)\n" + textwrap.dedent(code)
    proc = subprocess.run([PY, "-c", prog, *args], capture_output=True, text=True, timeout=30, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return proc


def child_pid(proc: subprocess.CompletedProcess[str]) -> int:
    return int(proc.stdout.split()[0])


def only(records: list[SyscallRecord]) -> SyscallRecord:
    assert len(records) == 1, records
    return records[0]


OPEN_TYPES = {"open", "openat", "openat2"}


def decode_dev(dev: int) -> int:
    """Falco's dev encoding (the kernel's new_encode_dev) back to a st_dev."""
    return os.makedev((dev >> 8) & 0xFFF, (dev & 0xFF) | ((dev >> 12) & 0xFFF00))


def test_read_etc_shadow(capture: Capture) -> None:
    proc = subprocess.Popen(["cat", "/etc/shadow"], stdout=subprocess.DEVNULL)
    assert proc.wait(timeout=10) == 0
    st = os.stat("/etc/shadow")
    rec = only(capture.wait_for(lambda r: r.pid == proc.pid and r.type in OPEN_TYPES
                                and r.args.get("name") == "/etc/shadow"))
    assert rec.type == "openat"
    assert rec.comm == "cat"
    assert rec.tid == rec.pid == proc.pid
    assert rec.ppid == os.getpid()
    assert rec.res >= 0
    assert rec.args["flags"] & os.O_ACCMODE == os.O_RDONLY
    assert rec.args["dirfd"] == -100  # AT_FDCWD
    assert rec.args["ino"] == st.st_ino
    assert decode_dev(rec.args["dev"]) == st.st_dev
    assert "dirpath" not in rec.args  # absolute name: nothing to resolve
    assert rec.uid == rec.euid == 0
    assert not rec.truncated
    # the matching close of that fd follows
    close = capture.wait_for(lambda r: r.pid == proc.pid and r.type == "close" and r.args["fd"] == rec.res)
    assert close and close[0].res == 0


def test_write_below_etc(capture: Capture) -> None:
    name = f"/etc/falcopy-test-{os.getpid()}"
    try:
        proc = run_py("""
            import os, sys
            fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
            os.write(fd, b"x"); os.close(fd)
            os.chmod(sys.argv[1], 0o600)
            os.unlink(sys.argv[1])
        """, name)
        pid = child_pid(proc)
        rec = only(capture.wait_for(lambda r: r.pid == pid and r.type in OPEN_TYPES
                                    and r.args.get("name") == name))
        assert rec.res >= 0
        wanted = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        assert rec.args["flags"] & (os.O_ACCMODE | os.O_CREAT | os.O_TRUNC) == wanted
        assert rec.args["mode"] == 0o640
        assert rec.comm == "python" or PY.endswith(rec.comm) or rec.comm.startswith("python")
        ch = only(capture.wait_for(lambda r: r.pid == pid and r.type in {"chmod", "fchmodat"}))
        assert ch.args["filename"] == name
        assert ch.args["mode"] == 0o600
        assert ch.res == 0
        un = only(capture.wait_for(lambda r: r.pid == pid and r.type in {"unlink", "unlinkat"}))
        assert un.args.get("path", un.args.get("name")) == name
        assert un.res == 0
    finally:
        if os.path.exists(name):
            os.unlink(name)


def test_exec_from_dev_shm(capture: Capture, tmp_path: Path) -> None:
    exe = Path(f"/dev/shm/falcopy-true-{os.getpid()}")
    shutil.copy("/bin/true", exe)
    exe.chmod(0o755)
    try:
        proc = subprocess.Popen([str(exe), "alpha", "beta gamma"], cwd=tmp_path, env={"FALCOPY": "1"})
        assert proc.wait(timeout=10) == 0
        rec = only(capture.wait_for(lambda r: r.pid == proc.pid and r.type == "execve" and r.res == 0))
        a = rec.args
        assert a["trusted_exepath"] == str(exe)
        assert a["exe"] == str(exe)
        assert a["args"] == ["alpha", "beta gamma"]
        assert a["env"] == ["FALCOPY=1"]
        assert a["cwd"] == str(tmp_path)
        assert rec.comm == exe.name[:15]
        assert rec.ppid == os.getpid()
        assert a["exe_ino"] == exe.stat().st_ino
        assert a["exe_from_memfd"] is False
        assert a["exe_writable"] is True  # root may write it
        assert a["pgid"] == os.getpgid(0) or a["pgid"] > 0
        assert a["sid"] == os.getsid(0)
        assert a["cap_effective"] != 0
        assert "filename" not in a  # only on failure
        exit_rec = only(capture.wait_for(lambda r: r.pid == proc.pid and r.type == "procexit"))
        assert exit_rec.args["ret"] == 0 and exit_rec.args["sig"] == 0
    finally:
        exe.unlink()


def test_failed_exec_carries_filename(capture: Capture) -> None:
    missing = f"/nonexistent/falcopy-{os.getpid()}"
    proc = run_py("""
        import os, sys
        try:
            os.execv(sys.argv[1], [sys.argv[1]])
        except FileNotFoundError:
            pass
    """, missing)
    pid = child_pid(proc)
    rec = only(capture.wait_for(lambda r: r.pid == pid and r.type == "execve" and r.res < 0))
    assert rec.res == -2
    assert rec.args["filename"] == missing


def test_connect_to_loopback_listener(capture: Capture) -> None:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    try:
        proc = run_py("""
            import socket, sys
            s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
            print(s.getsockname()[1], flush=True)
            s.close()
        """, str(port))
        conn, _ = srv.accept()
        conn.close()
        pid = child_pid(proc)
        cport = int(proc.stdout.split()[1])
        rec = only(capture.wait_for(lambda r: r.pid == pid and r.type == "connect"))
        assert rec.res == 0
        assert rec.args["addr"] == {"family": "inet", "ip": "127.0.0.1", "port": port}
        assert rec.args["tuple"] == {"family": "inet", "l4proto": "tcp", "sip": "127.0.0.1", "sport": cport,
                                     "dip": "127.0.0.1", "dport": port}
        sock = only(capture.wait_for(lambda r: r.pid == pid and r.type == "socket"))
        assert (sock.args["domain"], sock.args["type"] & 0xF) == (socket.AF_INET, socket.SOCK_STREAM)
        assert sock.res == rec.args["fd"]
        # the accepting side (this test process) sees the same tuple, client first
        acc = capture.wait_for(lambda r: r.pid == os.getpid() and r.type in {"accept", "accept4"})
        assert acc and acc[0].args["tuple"] == rec.args["tuple"]
    finally:
        srv.close()


def test_ptrace_a_child(capture: Capture) -> None:
    proc = run_py("""
        import ctypes, os, signal, time
        libc = ctypes.CDLL(None, use_errno=True)
        libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
        child = os.fork()
        if child == 0:
            time.sleep(5); os._exit(0)
        print(child, flush=True)
        assert libc.ptrace(16, child, None, None) == 0  # PTRACE_ATTACH
        os.waitpid(child, 0)
        libc.ptrace(17, child, None, None)  # PTRACE_DETACH
        os.kill(child, signal.SIGKILL); os.waitpid(child, 0)
    """)
    pid = child_pid(proc)
    target = int(proc.stdout.split()[1])
    rec = only(capture.wait_for(lambda r: r.pid == pid and r.type == "ptrace" and r.args["request"] == 16))
    assert rec.args["pid"] == target
    assert rec.res == 0
    # the forked child's side of the clone: res 0, its own pid, the tracer as parent
    fork = capture.wait_for(lambda r: r.pid == target and r.type in {"clone", "clone3", "fork"})
    assert fork and fork[0].res == 0 and fork[0].ppid == pid and fork[0].tid == target
    killed = only(capture.wait_for(lambda r: r.pid == target and r.type == "procexit"))
    assert killed.args["sig"] == 9


def test_unconnected_udp_sendmsg_recvmsg_tuples(capture: Capture) -> None:
    """Datagrams on unconnected sockets: the peer comes from msg_name / the sockaddr
    argument, so the tuple is complete (Falco builds it from the user sockaddr)."""
    proc = run_py("""
        import socket
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rx.bind(("127.0.0.1", 0))
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        dst = rx.getsockname()
        tx.sendmsg([b"ping"], [], 0, dst)
        data, _anc, _flags, src = rx.recvmsg(64)
        tx.sendto(b"pong", dst)
        data2, src2 = rx.recvfrom(64)
        print(dst[1], src[1], tx.fileno(), rx.fileno(), flush=True)
    """)
    pid = child_pid(proc)
    dport, sport, txfd, rxfd = (int(x) for x in proc.stdout.split()[1:5])
    dst = {"family": "inet", "ip": "127.0.0.1", "port": dport}
    src = {"family": "inet", "ip": "127.0.0.1", "port": sport}
    sent = only(capture.wait_for(lambda r: r.pid == pid and r.type == "sendmsg"))
    assert sent.res == 4 and sent.args["fd"] == txfd
    assert sent.args["addr"] == dst
    # the sender is bound to no address: Falco shows 0.0.0.0 as its end
    assert sent.args["tuple"] == {"family": "inet", "l4proto": "udp", "sip": "0.0.0.0", "sport": sport,
                                  "dip": "127.0.0.1", "dport": dport}
    got = only(capture.wait_for(lambda r: r.pid == pid and r.type == "recvmsg"))
    assert got.res == 4 and got.args["fd"] == rxfd
    assert got.args["addr"] == src
    # a receive is inbound: the peer is the source
    assert got.args["tuple"] == {"family": "inet", "l4proto": "udp", "sip": "127.0.0.1", "sport": sport,
                                 "dip": "127.0.0.1", "dport": dport}
    to = only(capture.wait_for(lambda r: r.pid == pid and r.type == "sendto"))
    assert to.args["addr"] == dst and to.args["tuple"]["dport"] == dport
    frm = only(capture.wait_for(lambda r: r.pid == pid and r.type == "recvfrom"))
    assert frm.args["addr"] == src
    assert (frm.args["tuple"]["sip"], frm.args["tuple"]["sport"]) == ("127.0.0.1", sport)
    # through the process table: Falco's fd.name of each datagram socket
    from falcopy.agent.fields.event import SyscallEvent
    from falcopy.agent.fields.syscall import AgentSyscallSource
    from falcopy.agent.state import ProcessTable

    from falcopy.engine.fields.syscall import SYSCALL_FIELDS
    table = ProcessTable()
    names = {}
    for r in [r for r in capture.seen if r.pid == pid]:
        thread, fd = table.apply(r)
        if r.type in ("sendmsg", "recvmsg"):
            ev = SyscallEvent(r, thread, fd, table)
            names[r.type] = AgentSyscallSource().accessor(SYSCALL_FIELDS["fd.name"], None)(ev)
    assert names == {"sendmsg": f"0.0.0.0:{sport}->127.0.0.1:{dport}",
                     "recvmsg": f"127.0.0.1:{sport}->127.0.0.1:{dport}"}


def test_memfd_exec(capture: Capture) -> None:
    proc = subprocess.Popen([PY, "-c", textwrap.dedent("""
        import os
        fd = os.memfd_create("falcopy_payload", 0)
        with open("/bin/true", "rb") as f:
            os.write(fd, f.read())
        os.execv(f"/proc/self/fd/{fd}", ["payload", "--x"])
    """)])
    assert proc.wait(timeout=10) == 0
    mf = only(capture.wait_for(lambda r: r.pid == proc.pid and r.type == "memfd_create"))
    assert mf.args["name"] == "falcopy_payload"
    assert mf.res >= 0
    execs = capture.wait_for(lambda r: r.pid == proc.pid and r.type == "execve" and r.res == 0, count=2)
    python_exec, rec = execs  # the interpreter first, then the payload
    assert python_exec.args["exe_from_memfd"] is False
    assert rec.args["exe_from_memfd"] is True
    assert rec.args["trusted_exepath"] == "/memfd:falcopy_payload (deleted)"
    assert rec.args["exe"] == "payload"
    assert rec.args["args"] == ["--x"]


def test_symlink_rename_mkdir_relative(capture: Capture, tmp_path: Path) -> None:
    proc = run_py("""
        import os
        os.symlink("/etc/shadow", "shadow-link")
        os.mkdir("d1", 0o750)
        os.rename("shadow-link", "d1/moved")
        os.unlink("d1/moved")
        os.rmdir("d1")
    """, cwd=str(tmp_path))
    pid = child_pid(proc)
    sym = only(capture.wait_for(lambda r: r.pid == pid and r.type in {"symlink", "symlinkat"}))
    assert sym.args["target"] == "/etc/shadow"
    assert sym.args["linkpath"] == "shadow-link"
    assert sym.args["linkdirpath"] == str(tmp_path)
    assert sym.res == 0
    mk = only(capture.wait_for(lambda r: r.pid == pid and r.type in {"mkdir", "mkdirat"}))
    assert mk.args["path"] == "d1" and mk.args["dirpath"] == str(tmp_path) and mk.args["mode"] == 0o750
    rn = only(capture.wait_for(lambda r: r.pid == pid and r.type in {"rename", "renameat", "renameat2"}))
    assert (rn.args["oldpath"], rn.args["newpath"]) == ("shadow-link", "d1/moved")
    assert rn.args["olddirpath"] == rn.args["newdirpath"] == str(tmp_path)
    un = only(capture.wait_for(lambda r: r.pid == pid and r.type in {"unlink", "unlinkat"}))
    assert un.args.get("path", un.args.get("name")) == "d1/moved"
    rd = capture.wait_for(lambda r: r.pid == pid and (r.type == "rmdir" or (
        r.type == "unlinkat" and r.args.get("name") == "d1")))
    assert rd and rd[0].res == 0


def test_setuid_and_capset(capture: Capture) -> None:
    proc = run_py("""
        import os
        os.setresgid(65534, 65534, 65534)
        os.setresuid(65534, 65534, 65534)
    """)
    pid = child_pid(proc)
    su = only(capture.wait_for(lambda r: r.pid == pid and r.type == "setresuid"))
    assert (su.args["ruid"], su.args["euid"], su.args["suid"]) == (65534, 65534, 65534)
    assert su.res == 0
    # the process's identity in later records follows the change
    ex = capture.wait_for(lambda r: r.pid == pid and r.type == "procexit")
    assert ex and ex[0].uid == 65534 and ex[0].euid == 65534


def test_long_path_non_utf8_and_huge_argv(capture: Capture, tmp_path: Path) -> None:
    long_name = "/tmp/" + "a" * 5000
    raw_name = os.fsencode(str(tmp_path)) + b"/caf\xe9-\xff"
    proc = subprocess.Popen([PY, "-c", textwrap.dedent("""
        import os, sys
        for p in (sys.argv[1], os.fsencode(sys.argv[2])):
            try:
                os.close(os.open(p, os.O_RDONLY | os.O_CREAT, 0o600))
            except OSError:
                pass
    """), long_name, os.fsdecode(raw_name)])
    assert proc.wait(timeout=10) == 0
    recs = capture.wait_for(lambda r: r.pid == proc.pid and r.type in OPEN_TYPES
                            and r.args.get("name", "").startswith(("/tmp/aaaa", str(tmp_path))), count=2)
    by_kind = {r.args["name"].startswith("/tmp/aaaa"): r for r in recs}
    long_rec = by_kind[True]
    assert long_rec.truncated
    assert long_rec.res == -36  # ENAMETOOLONG
    assert long_rec.args["name"] == long_name[:4095]
    odd = by_kind[False]
    assert not odd.truncated
    assert os.fsencode(odd.args["name"]) == raw_name  # surrogateescape round-trips
    assert odd.res >= 0

    argv = [f"arg{i:04d}-" + "x" * 90 for i in range(2000)]
    proc = subprocess.Popen(["/bin/true", *argv])
    assert proc.wait(timeout=10) == 0
    rec = only(capture.wait_for(lambda r: r.pid == proc.pid and r.type == "execve" and r.res == 0))
    assert rec.truncated
    assert rec.args["exe"] == "/bin/true"
    got = rec.args["args"]
    assert 10 < len(got) < len(argv)
    assert got[:-1] == argv[:len(got) - 1]
    assert argv[len(got) - 1].startswith(got[-1])


def test_dev_ino_match_for_created_file(capture: Capture, tmp_path: Path) -> None:
    target = tmp_path / "f"
    proc = run_py("""
        import os, sys
        os.close(os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o600))
    """, str(target))
    pid = child_pid(proc)
    rec = only(capture.wait_for(lambda r: r.pid == pid and r.type in OPEN_TYPES
                                and r.args.get("name") == str(target)))
    assert rec.args["ino"] == target.stat().st_ino
    assert stat.S_ISREG(target.stat().st_mode)


def test_non_root_identity(capture: Capture) -> None:
    nobody = 65534
    proc = subprocess.Popen(["cat", "/etc/hostname"], user=nobody, group=nobody, stdout=subprocess.DEVNULL)
    assert proc.wait(timeout=10) == 0
    rec = only(capture.wait_for(lambda r: r.pid == proc.pid and r.type == "execve" and r.res == 0))
    assert (rec.uid, rec.gid, rec.euid, rec.egid) == (nobody, nobody, nobody, nobody)
    assert rec.args["cap_effective"] == 0
    assert rec.args["exe_writable"] is False  # /usr/bin/cat is root's, 0755


def test_loginuid_is_read(capture: Capture) -> None:
    with open("/proc/self/loginuid") as f:
        own = int(f.read())
    proc = subprocess.Popen(["true"])
    proc.wait(timeout=10)
    rec = only(capture.wait_for(lambda r: r.pid == proc.pid and r.type == "execve" and r.res == 0))
    assert rec.loginuid == own


def test_vpid_in_new_pid_namespace(capture: Capture) -> None:
    if shutil.which("unshare") is None:
        pytest.fail("util-linux unshare is required")
    script = "echo $$; cat /proc/self/stat"
    proc = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "sh", "-c", script],
                          capture_output=True, text=True, timeout=10)
    assert proc.returncode == 0, proc.stderr
    recs = capture.wait_for(lambda r: r.type == "execve" and r.res == 0 and r.comm == "sh"
                            and r.args.get("args") == ["-c", script])
    rec = only(recs)
    assert rec.vpid == 1 and rec.pid != 1
    assert rec.vtid == 1


def test_tempfile_cleanup_is_not_a_leak() -> None:
    # guard against the tests above leaving files behind below /etc or /dev/shm
    leftovers = [p for p in os.listdir("/etc") if p.startswith("falcopy-test-")]
    leftovers += [p for p in os.listdir("/dev/shm") if p.startswith("falcopy-true-")]
    assert leftovers == []


def test_overlay_upper_and_lower_layer(capture: Capture, tmp_path: Path) -> None:
    lower, upper, work, merged = (tmp_path / n for n in ("lower", "upper", "work", "merged"))
    for d in (lower, upper, work, merged):
        d.mkdir()
    shutil.copy("/bin/true", lower / "from-lower")
    shutil.copy("/bin/true", upper / "from-upper")
    opts = f"lowerdir={lower},upperdir={upper},workdir={work}"
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, str(merged)], check=True)
    try:
        pids = {}
        for name in ("from-lower", "from-upper"):
            proc = subprocess.Popen([str(merged / name)])
            assert proc.wait(timeout=10) == 0
            pids[name] = proc.pid
        low, up = (only(capture.wait_for(lambda r, p=pids[n]: r.pid == p and r.type == "execve"
                                         and r.res == 0)) for n in ("from-lower", "from-upper"))
        assert (low.args["exe_lower_layer"], low.args["exe_upper_layer"]) == (True, False)
        assert (up.args["exe_lower_layer"], up.args["exe_upper_layer"]) == (False, True)
        assert up.args["trusted_exepath"] == str(merged / "from-upper")
    finally:
        subprocess.run(["umount", str(merged)], check=True)


def test_controlling_tty(capture: Capture) -> None:
    import fcntl
    import pty
    import struct

    pid, master = pty.fork()
    if pid == 0:  # child: a new session whose controlling terminal is the pty
        os.execv("/bin/true", ["/bin/true"])
    try:
        # TIOCGPTN: the number of the pty slave behind this master
        ptn = struct.unpack("I", fcntl.ioctl(master, 0x80045430, b"\0" * 4))[0]
        rec = only(capture.wait_for(lambda r: r.pid == pid and r.type == "execve" and r.res == 0))
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        tty = rec.args["tty"]
        assert ((tty >> 8) & 0xFFF, (tty & 0xFF) | ((tty >> 12) & 0xFFF00)) == (136, ptn)  # /dev/pts/<ptn>
        assert rec.args["sid"] == pid  # pty.fork made the child a session leader
    finally:
        os.close(master)


def _pids_hierarchy() -> tuple[Path, str]:
    """Where the pids controller is mounted, and the mount's root inside the hierarchy."""
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        sep = fields.index("-")
        fstype, opts = fields[sep + 1], fields[sep + 3]
        if fstype == "cgroup" and "pids" in opts.split(","):
            return Path(fields[4]), fields[3]
        if fstype == "cgroup2" and "pids" in Path(fields[4], "cgroup.controllers").read_text().split():
            return Path(fields[4]), fields[3]
    pytest.fail("no cgroup hierarchy with the pids controller is mounted")


def test_exec_carries_its_cgroups(capture: Capture) -> None:
    root, inner = _pids_hierarchy()
    cid = os.urandom(32).hex()  # docker's cgroupfs layout: /<prefix>/<64 hex>
    group = root / f"falcopy-test-{os.getpid()}" / cid
    group.mkdir(parents=True)
    try:
        proc = subprocess.Popen(["sh", "-c", f"echo $$ > {group}/cgroup.procs && exec /bin/true"])
        assert proc.wait(timeout=10) == 0
        rec = only(capture.wait_for(lambda r: r.pid == proc.pid and r.type == "execve" and r.res == 0
                                    and r.args.get("exe") == "/bin/true"))
        # the kernel path is absolute in the hierarchy, whatever this mount shows as its root
        expected = os.path.join(inner, f"falcopy-test-{os.getpid()}", cid)
        assert f"pids={expected}" in rec.args["cgroups"]
        assert all("=/" in entry for entry in rec.args["cgroups"])
    finally:
        group.rmdir()
        group.parent.rmdir()


def test_mount_and_umount(capture: Capture, tmp_path: Path) -> None:
    target = tmp_path / "mnt"
    target.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "falcopy-tmpfs", str(target)], check=True)
    subprocess.run(["umount", str(target)], check=True)
    mnt = capture.wait_for(lambda r: r.type == "mount" and r.args.get("dir") == str(target))
    assert mnt and mnt[0].res == 0
    assert (mnt[0].args["dev"], mnt[0].args["type"]) == ("falcopy-tmpfs", "tmpfs")
    um = capture.wait_for(lambda r: r.type == "umount2" and r.args.get("name") == str(target))
    assert um and um[0].res == 0
