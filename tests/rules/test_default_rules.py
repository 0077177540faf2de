"""falcopy's default rules (rules/) on hand-written event records.

Each rule gets events that must fire it and near misses that must not; the
events are DictEvent records, the same form `falcopy replay` reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from falcopy.engine import Priority, load_rules_files
from falcopy.engine.event import DictEvent


@pytest.fixture(scope="module")
def ruleset(repo_root: Path) -> Any:
    result = load_rules_files([repo_root / "rules" / "falcopy_rules.yaml"])
    assert result.ok, [str(m) for m in result.errors]
    assert result.warnings == [], [str(m) for m in result.warnings]
    return result.ruleset


@pytest.fixture(scope="module")
def examples(repo_root: Path) -> Any:
    result = load_rules_files([repo_root / "rules" / "examples"])
    assert result.ok, [str(m) for m in result.errors]
    return result.ruleset


HOST_PROC = {
    "user.name": "root", "user.uid": 0, "user.loginuid": 1000, "proc.name": "python3",
    "proc.exepath": "/usr/bin/python3", "proc.exe": "python3", "proc.pname": "bash",
    "proc.cmdline": "python3 x.py", "proc.tty": 34816, "container.id": "host",
    "proc.pid": 4242, "proc.vpid": 4242, "evt.res": "SUCCESS", "evt.rawres": 0,
}
CONTAINER = {"container.id": "0123456789ab", "container.name": "web",
             "container.image.repository": "docker.io/library/nginx", "container.image.tag": "1.25",
             "container.image": "nginx:1.25", "k8s.ns.name": "prod", "k8s.pod.name": "web-0",
             "container.privileged": False, "proc.tty": 0}


def ev(**values: Any) -> DictEvent:
    data = dict(HOST_PROC)
    for key, value in values.items():
        data[key.replace("__", ".")] = value
    return DictEvent(data)


def open_write(path: str, **extra: Any) -> DictEvent:
    directory, _, name = path.rpartition("/")
    return ev(**{"evt.type": "openat", "evt.is_open_write": True, "evt.is_open_read": False,
                 "fd.typechar": "f", "fd.num": 3, "fd.name": path, "fd.directory": directory or "/",
                 "fd.filename": name, **extra})


def open_read(path: str, **extra: Any) -> DictEvent:
    directory, _, name = path.rpartition("/")
    return ev(**{"evt.type": "openat", "evt.is_open_write": False, "evt.is_open_read": True,
                 "fd.typechar": "f", "fd.num": 3, "fd.name": path, "fd.directory": directory or "/",
                 "fd.filename": name, **extra})


def execve(name: str, parent: str, **extra: Any) -> DictEvent:
    return ev(**{"evt.type": "execve", "proc.name": name, "proc.exe": name, "proc.pname": parent,
                 "proc.exepath": f"/usr/bin/{name}", "proc.cmdline": name, **extra})


def fired(ruleset: Any, event: DictEvent) -> list[str]:
    return [rule.name for rule in ruleset.evaluate(event)]


CASES: list[tuple[str, DictEvent, str | None]] = [
    # writes below /etc
    ("etc write by a script", open_write("/etc/crontab"), "Write Below Etc Directory"),
    ("etc write in a container", open_write("/etc/ld.so.preload", **CONTAINER), "Write Below Etc Directory"),
    ("etc write by dpkg", open_write("/etc/ssl/certs/ca.pem", **{"proc.name": "dpkg"}), None),
    ("etc write by a child of apt", open_write("/etc/apt/x", **{"proc.pname": "apt-get"}), None),
    ("etc read", open_read("/etc/hosts"), None),
    ("etcd is not etc", open_write("/etcd/data"), None),
    # writes below /root
    ("root ssh key", open_write("/root/.ssh/authorized_keys"), "Write Below Root Home Directory"),
    ("root bashrc", open_write("/root/.bashrc"), "Write Below Root Home Directory"),
    ("root history", open_write("/root/.bash_history"), None),
    ("root cache", open_write("/root/.cache/pip/x"), None),
    # binary directories
    ("planted binary", open_write("/usr/bin/sshd2"), "Write Below Binary Directory"),
    ("sbin", open_write("/sbin/init2", **CONTAINER), "Write Below Binary Directory"),
    ("package manager", open_write("/usr/bin/curl", **{"proc.name": "rpm"}), None),
    ("below bin subdir", open_write("/usr/bin/x/y"), None),
    ("no write", open_read("/usr/bin/ls"), None),
    # ownership and mode
    ("chown shadow", ev(**{"evt.type": "chown", "evt.arg.path": "/etc/shadow", "evt.arg.uid": 1000}),
     "Sensitive File Ownership Changed"),
    ("fchownat sudoers.d", ev(**{"evt.type": "fchownat", "evt.arg.pathname": "/etc/sudoers.d/x"}),
     "Sensitive File Ownership Changed"),
    ("fchown fd on sudoers", ev(**{"evt.type": "fchown", "fd.name": "/etc/sudoers"}),
     "Sensitive File Ownership Changed"),
    ("chown tmp file", ev(**{"evt.type": "chown", "evt.arg.path": "/tmp/x"}), None),
    ("failed chown", ev(**{"evt.type": "chown", "evt.arg.path": "/etc/shadow", "evt.res": "EPERM"}),
     None),
    ("chmod passwd", ev(**{"evt.type": "chmod", "evt.arg.filename": "/etc/passwd", "evt.arg.mode": "0777"}),
     "Sensitive File Mode Changed"),
    ("fchmodat shadow", ev(**{"evt.type": "fchmodat", "evt.arg.filename": "/etc/shadow"}),
     "Sensitive File Mode Changed"),
    ("chmod by package manager",
     ev(**{"evt.type": "chmod", "evt.arg.filename": "/etc/shadow", "proc.name": "dpkg"}), None),
    ("chmod other", ev(**{"evt.type": "chmod", "evt.arg.filename": "/etc/motd"}), None),
    # sensitive reads
    ("shadow read by python", open_read("/etc/shadow"), "Sensitive File Read by Untrusted Program"),
    ("ssh key read in container", open_read("/root/.ssh/id_rsa", **CONTAINER),
     "Sensitive File Read by Untrusted Program"),
    ("shadow read by sshd", open_read("/etc/shadow", **{"proc.name": "sshd"}), None),
    ("passwd read by anyone", open_read("/etc/passwd"), None),
    # links
    ("symlink to shadow", ev(**{"evt.type": "symlinkat", "evt.arg.target": "/etc/shadow",
                                "evt.arg.linkpath": "/tmp/s"}), "Link to Sensitive File Created"),
    ("hardlink to sudoers", ev(**{"evt.type": "linkat", "evt.arg.oldpath": "/etc/sudoers",
                                  "evt.arg.newpath": "/tmp/s"}), "Link to Sensitive File Created"),
    ("symlink elsewhere", ev(**{"evt.type": "symlink", "evt.arg.target": "/var/log/x"}), None),
    # shared memory / memfd
    ("exec from /dev/shm", execve("x", "bash", **{"proc.exepath": "/dev/shm/x", "proc.exe": "/dev/shm/x"}),
     "Execution from Shared Memory or memfd"),
    ("exec memfd", execve("3", "python3", **{"proc.exepath": "memfd:x", "proc.is_exe_from_memfd": True}),
     "Execution from Shared Memory or memfd"),
    ("relative exec in shm", execve("x", "bash", **{"proc.cwd": "/dev/shm/", "proc.exe": "./x",
                                                     "proc.exepath": "/dev/shm/x"}),
     "Execution from Shared Memory or memfd"),
    ("normal exec", execve("ls", "bash", **{"proc.is_exe_from_memfd": False, "proc.cwd": "/tmp/"}), None),
    # web server -> shell (host or container)
    ("nginx spawns sh", execve("sh", "nginx"), "Web Server Spawned a Shell"),
    ("php-fpm spawns bash in container", execve("bash", "php-fpm", **CONTAINER),
     "Web Server Spawned a Shell"),
    ("nginx spawns nginx", execve("nginx", "nginx"), None),
    # privileged container
    ("privileged pid 1", execve("pause", "containerd-shim", **{**CONTAINER, "container.privileged": True,
                                                             "proc.vpid": 1}),
     "Privileged Container Started"),
    ("container event", ev(**{**CONTAINER, "evt.type": "container", "container.privileged": True}),
     "Privileged Container Started"),
    ("unprivileged pid 1", execve("pause", "containerd-shim", **{**CONTAINER, "proc.vpid": 1}), None),
    ("privileged later exec", execve("ls", "sleep", **{**CONTAINER, "container.privileged": True,
                                                     "proc.vpid": 12}), None),
    # drift
    ("drifted binary", execve("xmrig", "sh", **{**CONTAINER, "proc.is_exe_upper_layer": True}),
     "Drifted Executable Run in Container"),
    ("image binary", execve("ls", "runc", **{**CONTAINER, "proc.is_exe_upper_layer": False}), None),
    # shells in containers
    ("kubectl exec -it", execve("bash", "runc", **{**CONTAINER, "proc.tty": 34816}),
     "Terminal Shell Started in Container"),
    ("app spawns shell", execve("sh", "java2", **CONTAINER), "Shell Spawned by Application in Container"),
    ("entrypoint shell", execve("sh", "containerd-shim", **CONTAINER), None),
    ("shell from shell", execve("sh", "bash", **CONTAINER), None),
    ("shell on host", execve("bash", "sshd"), None),
    # ptrace
    ("ptrace attach", ev(**{"evt.type": "ptrace", "evt.arg.request": "PTRACE_ATTACH", "evt.arg.pid": 1}),
     "Process Attached with ptrace"),
    ("ptrace poke", ev(**{"evt.type": "ptrace", "evt.arg.request": "PTRACE_POKETEXT"}),
     "Process Attached with ptrace"),
    ("ptrace traceme", ev(**{"evt.type": "ptrace", "evt.arg.request": "PTRACE_TRACEME"}), None),
    ("failed ptrace", ev(**{"evt.type": "ptrace", "evt.arg.request": "PTRACE_ATTACH", "evt.res": "EPERM"}),
     None),
    # reverse shell
    ("dup2 socket to stdin", ev(**{"evt.type": "dup2", "proc.name": "bash", "fd.type": "ipv4", "fd.num": 3,
                                   "evt.rawres": 0, "fd.name": "10.0.0.5:4444->1.2.3.4:443"}),
     "Shell Standard Streams Redirected to Network"),
    ("dup2 file to stdout", ev(**{"evt.type": "dup2", "proc.name": "bash", "fd.type": "file", "fd.num": 3,
                                  "evt.rawres": 1}), None),
    ("dup socket to fd 7", ev(**{"evt.type": "dup", "proc.name": "bash", "fd.type": "ipv4", "fd.num": 3,
                                 "evt.rawres": 7}), None),
]


@pytest.mark.parametrize(("label", "event", "expected"), CASES, ids=[c[0] for c in CASES])
def test_default_rules(ruleset: Any, label: str, event: DictEvent, expected: str | None) -> None:
    assert fired(ruleset, event) == ([expected] if expected else [])


def test_every_default_rule_is_exercised(ruleset: Any) -> None:
    covered = {expected for _, _, expected in CASES if expected}
    assert covered == {rule.name for rule in ruleset.rules}


def test_outputs_are_falco_style(ruleset: Any) -> None:
    for rule in ruleset.rules:
        assert rule.tags and rule.desc
        text, fields = ruleset.format(rule, open_write("/etc/x"))
        for key in ("evt.type", "user.name", "user.uid", "user.loginuid", "proc.name", "proc.exepath",
                    "proc.pname", "proc.cmdline", "proc.tty"):
            assert key in fields, (rule.name, key)
        assert "evt_type=openat" in text and "user=root" in text
    etc = next(r for r in ruleset.rules if r.name == "Write Below Etc Directory")
    assert etc.priority is Priority.ERROR
    text, fields = ruleset.format(etc, open_write("/etc/crontab"))
    assert text.startswith("File below /etc opened for writing | file=/etc/crontab ")
    assert fields["fd.name"] == "/etc/crontab" and fields["container.id"] == "host"


def test_example_rules(examples: Any) -> None:
    sudo = execve("sudo", "bash", **CONTAINER)
    assert fired(examples, sudo) == ['The program "sudo" is run in a container']
    assert fired(examples, execve("sudo", "bash")) == []
    curl = execve("curl", "sh", **{**CONTAINER, "container.image": "nginx:1.25"})
    assert fired(examples, curl) == ["Unauthorized process on nginx containers"]
    assert fired(examples, execve("nginx", "nginx", **{**CONTAINER, "container.image": "nginx:1.25"})) == []
    assert fired(examples, execve("curl", "sh", **{**CONTAINER, "container.image": "redis:7"})) == []
    rules = {r.name: r for r in examples.rules}
    assert rules['The program "sudo" is run in a container'].priority is Priority.ERROR
    assert rules['The program "sudo" is run in a container'].tags == ["users", "container"]
    nginx = rules["Unauthorized process on nginx containers"]
    assert nginx.priority is Priority.WARNING
    _, fields = examples.format(nginx, curl)
    assert {"container.name", "container.id", "container.image", "proc.name", "proc.pname",
            "proc.cmdline", "proc.tty"} <= set(fields)


def test_default_rules_load_beside_upstream(repo_root: Path, compat_dir: Path) -> None:
    files = [compat_dir / "falco_rules.yaml", compat_dir / "falco-incubating_rules.yaml",
             repo_root / "rules" / "falcopy_rules.yaml", repo_root / "rules" / "examples"]
    result = load_rules_files(files)
    assert result.ok, [str(m) for m in result.errors]
    names = [r.name for r in result.ruleset.rules]
    assert len(names) == len(set(names))
    assert "Write Below Etc Directory" in names and "Read sensitive file untrusted" in names
