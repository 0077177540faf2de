"""`falcopy replay`: recorded events through upstream rules, firing and not."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from falcopy.cli import main

SHELL_IN_CONTAINER = {
    "evt.type": "execve", "evt.time": 1781085600123456789, "container.id": "0123456789ab",
    "proc.name": "bash", "proc.tty": 34816, "proc.pname": "runc:[1:CHILD]", "proc.cmdline": "bash -i",
    "user.name": "root", "user.uid": 0, "proc.exepath": "/bin/bash",
}


def replay(tmp_path: Path, rules: list[Path], events: list[dict[str, Any]],
           *args: str) -> tuple[int, list[Any]]:
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    argv = ["replay", str(path), "--json", *args]
    for r in rules:
        argv += ["-r", str(r)]
    res = CliRunner().invoke(main, argv)
    alerts = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    return res.exit_code, alerts


@pytest.fixture
def stable(compat_dir: Path) -> list[Path]:
    return [compat_dir / "falco_rules.yaml"]


def test_terminal_shell_in_container_fires(tmp_path: Path, stable: list[Path]) -> None:
    code, alerts = replay(tmp_path, stable, [SHELL_IN_CONTAINER])
    assert code == 0
    assert [a["rule"] for a in alerts] == ["Terminal shell in container"]
    a = alerts[0]
    assert a["priority"] == "Notice" and a["source"] == "syscall"
    assert a["time"] == "2026-06-10T10:00:00.123456789Z"
    assert a["output"].startswith(
        "2026-06-10T10:00:00.123456789+0000: Notice A shell was spawned in a container")
    assert a["output_fields"]["proc.name"] == "bash"
    assert a["output_fields"]["user.uid"] == 0                 # typed
    assert a["output_fields"]["user.loginuid"] is None         # missing -> null, "<NA>" in text
    assert "user_loginuid=<NA>" in a["output"]
    assert a["tags"] == sorted(a["tags"]) and "container" in a["tags"]


@pytest.mark.parametrize("change", [
    {"proc.tty": 0},                         # no terminal
    {"container.id": "host"},                # not in a container
    {"proc.name": "python3"},                # not a shell
    {"proc.pname": "bash"},                  # not the container entrypoint
    {"evt.type": "openat"},                  # not a spawned process
])
def test_terminal_shell_in_container_does_not_fire(tmp_path: Path, stable: list[Path],
                                                   change: dict[str, Any]) -> None:
    code, alerts = replay(tmp_path, stable, [{**SHELL_IN_CONTAINER, **change}])
    assert code == 0
    assert "Terminal shell in container" not in [a["rule"] for a in alerts]


def test_symlink_over_sensitive_files(tmp_path: Path, stable: list[Path]) -> None:
    base = {"evt.type": "symlinkat", "evt.arg.linkpath": "/tmp/x", "proc.name": "ln"}
    code, alerts = replay(tmp_path, stable, [
        {**base, "evt.arg.target": "/etc/shadow"},
        {**base, "evt.arg.target": "/etc"},
        {**base, "evt.arg.target": "/tmp/notes"},
    ])
    assert code == 0
    assert [a["rule"] for a in alerts] == ["Create Symlink Over Sensitive Files"] * 2
    assert alerts[0]["output_fields"]["evt.arg.target"] == "/etc/shadow"


def test_fileless_execution(tmp_path: Path, stable: list[Path]) -> None:
    ev = {"evt.type": "execve", "proc.is_exe_from_memfd": True, "proc.name": "3", "proc.pname": "python3",
          "container.id": "host", "proc.aname[2]": "sshd"}
    code, alerts = replay(tmp_path, stable, [ev, {**ev, "proc.is_exe_from_memfd": False}])
    assert code == 0
    assert [a["rule"] for a in alerts] == ["Fileless execution via memfd_create"]
    assert alerts[0]["priority"] == "Critical"
    assert "gparent=sshd" in alerts[0]["output"]


def test_rule_matching_all_and_selection(tmp_path: Path, compat_dir: Path, stable: list[Path]) -> None:
    rules = [*stable, compat_dir / "falco-incubating_rules.yaml", compat_dir / "falco-sandbox_rules.yaml"]
    _, first = replay(tmp_path, rules, [SHELL_IN_CONTAINER])
    _, every = replay(tmp_path, rules, [SHELL_IN_CONTAINER], "--rule-matching", "all")
    assert len(first) == 1 and len(every) >= len(first)
    assert first[0]["rule"] == every[0]["rule"]
    _, none = replay(tmp_path, rules, [SHELL_IN_CONTAINER], "--disable-rule", "*")
    assert none == []


def test_k8s_audit_event_replays(tmp_path: Path, compat_dir: Path) -> None:
    audit = {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse",
        "stage": "ResponseComplete",
        "requestURI": "/api/v1/namespaces/default/pods", "verb": "create",
        "user": {"username": "alice", "groups": ["system:authenticated"]},
        "objectRef": {"resource": "pods", "namespace": "default", "name": "evil", "apiVersion": "v1"},
        "responseStatus": {"code": 201},
        "requestObject": {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "evil"}, "spec": {
            "containers": [{"name": "c", "image": "docker.io/library/busybox:latest",
                            "securityContext": {"privileged": True}}]}},
        "responseObject": {"kind": "Pod", "metadata": {"name": "evil", "namespace": "default"}},
        "requestReceivedTimestamp": "2026-06-10T10:00:00.000000Z",
        "stageTimestamp": "2026-06-10T10:00:00.100000Z",
    }
    unprivileged = json.loads(json.dumps(audit))
    unprivileged["requestObject"]["spec"]["containers"][0]["securityContext"]["privileged"] = False
    code, alerts = replay(tmp_path, [compat_dir / "k8s_audit_rules.yaml"], [audit, unprivileged],
                          "--rule-matching", "all")
    assert code == 0
    names = [a["rule"] for a in alerts]
    assert names.count("Create Privileged Pod") == 1
    priv = next(a for a in alerts if a["rule"] == "Create Privileged Pod")
    assert priv["source"] == "k8s_audit"
    assert "user=alice" in priv["output"] and "pod=evil" in priv["output"]


def test_example_rules_from_the_issue(tmp_path: Path) -> None:
    rules = tmp_path / "example.yaml"
    rules.write_text("""
- macro: spawned_process
  condition: (evt.type in (execve, execveat))
- macro: container
  condition: (container.id != host)
- rule: The program "sudo" is run in a container
  desc: An event will trigger every time you run sudo in a container
  condition: evt.type = execve and evt.dir=< and container.id != host and proc.name = sudo
  output: "Sudo run in container (user=%user.name %container.info parent=%proc.pname cmdline=%proc.cmdline)"
  priority: ERROR
  tags: [users, container]
- rule: Unauthorized process on nginx containers
  desc: There shouldn't be any other processes running other than nginx
  condition: spawned_process and container and container.image startswith nginx and not proc.name in (nginx)
  output: >
    Unauthorized process (%container.info image=%container.image proc=%proc.name parent=%proc.pname
    cmdline=%proc.cmdline terminal=%proc.tty)
  priority: WARNING
""")
    sudo = {"evt.type": "execve", "container.id": "abc", "container.name": "web", "proc.name": "sudo",
            "user.name": "bob", "proc.pname": "bash", "proc.cmdline": "sudo -i"}
    shell = {"evt.type": "execve", "container.id": "abc", "container.name": "web",
             "container.image": "nginx:1.27",
             "proc.name": "sh", "proc.pname": "nginx", "proc.cmdline": "sh -c id", "proc.tty": 0}
    code, alerts = replay(tmp_path, [rules], [sudo, {**sudo, "container.id": "host"}, shell,
                                              {**shell, "proc.name": "nginx"}])
    assert code == 0
    assert [a["rule"] for a in alerts] == ['The program "sudo" is run in a container',
                                           "Unauthorized process on nginx containers"]
    assert alerts[0]["output"].endswith(
        "Sudo run in container (user=bob web (id=abc) parent=bash cmdline=sudo -i)")
    assert alerts[1]["priority"] == "Warning"


def test_replay_rejects_bad_lines_and_bad_rules(tmp_path: Path, stable: list[Path]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"evt.type": "open"}\nnot json\n')
    res = CliRunner().invoke(main, ["replay", str(bad), "-r", str(stable[0])])
    assert res.exit_code == 2 and f"{bad}:2:1: error: invalid JSON" in res.output
    broken = tmp_path / "broken.yaml"
    broken.write_text("- rule: x\n  desc: d\n")
    res = CliRunner().invoke(main, ["replay", str(bad), "-r", str(broken)])
    assert res.exit_code == 1 and "LOAD_ERR_YAML_VALIDATE" in res.output
