"""Start-up failures a user meets first: one line naming the cause and the fix, exit code 1.

(The missing BPF object is tested in tests/agent/control/test_cli.py.)"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.kernel

FALCOPY = Path(sys.executable).with_name("falcopy")


def _run(argv_prefix: list[str], repo_root: Path, *opts: str) -> subprocess.CompletedProcess[str]:
    args = [*argv_prefix, str(FALCOPY), "agent", "-c", str(repo_root / "config" / "falcopy.yaml"),
            "-o", "watch_config_files=false", "-o", "falcopy.enrichment.enabled=false"]
    for o in opts:
        args += ["-o", o]
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


def _one_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if "Error:" in line]
    assert len(errors) == 1, proc.stderr[-3000:]
    return errors[0]


@pytest.fixture
def busy_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    yield s.getsockname()[1]
    s.close()


def test_web_port_in_use(busy_port: int, repo_root: Path, require_root) -> None:
    line = _one_error(_run([], repo_root, "webserver.listen_address=127.0.0.1",
                           f"webserver.listen_port={busy_port}"))
    assert f"127.0.0.1:{busy_port}" in line and "already in use" in line
    assert "-o webserver.listen_port=PORT" in line


def test_audit_port_in_use(busy_port: int, repo_root: Path, require_root) -> None:
    line = _one_error(_run([], repo_root, "webserver.enabled=false", "falcopy.k8s_audit.enabled=true",
                           "falcopy.k8s_audit.listen_address=127.0.0.1",
                           f"falcopy.k8s_audit.listen_port={busy_port}"))
    assert "audit webhook" in line and "already in use" in line
    assert "-o falcopy.k8s_audit.listen_port=PORT" in line


def test_missing_capabilities(repo_root: Path, require_root) -> None:
    # root, but with the capabilities that load BPF removed from the bounding set
    drop = ["setpriv", "--bounding-set", "-sys_admin,-bpf,-perfmon", "--inh-caps", "-all", "--"]
    line = _one_error(_run(drop, repo_root, "webserver.enabled=false"))
    assert "CAP_SYS_ADMIN" in line and "run `falcopy agent` as root" in line
    assert "tracefs" not in line


def test_missing_btf(repo_root: Path, require_root) -> None:
    # a private mount namespace where /sys/kernel/btf is an empty directory
    hide = ["unshare", "-m", "--", "sh", "-c", 'mount -t tmpfs none /sys/kernel/btf && exec "$@"', "sh"]
    line = _one_error(_run(hide, repo_root, "webserver.enabled=false"))
    assert "/sys/kernel/btf/vmlinux" in line and "CONFIG_DEBUG_INFO_BTF" in line
