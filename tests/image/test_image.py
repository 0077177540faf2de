"""The real image, built from the local base, run as the chart's DaemonSet runs it:
host PID namespace, host /proc at the chart's path, the chart's falcopy.yaml and rules
ConfigMaps mounted as directories.  An action on the host must show up as a Falco JSON
alert on the container's stdout, which is what `kubectl logs daemonset/falcopy` shows."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.chart.render import Rendered, render
from tests.images import docker, require_docker

from .build import BASE_IMAGE, IMAGE, build_base, build_image, image_size
from .daemonset import docker_run_args, mapped_port, write_configmap_dir

pytestmark = pytest.mark.docker

NODE = "falcopy-test-node"
MARKER_PREFIX = "/tmp/falcopy-image-test-"
CUSTOM_RULES = {
    "image-test.yaml": f"""\
- rule: Image test marker opened
  desc: a file named like the image test's marker was created (proves customRules reach the agent)
  condition: evt.type in (open, openat, openat2) and evt.dir = < and fd.name startswith {MARKER_PREFIX}
  output: image test marker opened (file=%fd.name command=%proc.cmdline)
  priority: NOTICE
  tags: [test]
""",
}


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    require_docker()
    base_s = build_base()
    image_s = build_image()
    size = image_size()
    print(f"\nbase image {BASE_IMAGE}: {base_s:.1f}s; image {IMAGE}: {image_s:.1f}s, "
          f"{size / 1e6:.0f} MB ({image_size(BASE_IMAGE) / 1e6:.0f} MB base)")
    yield IMAGE


def test_image_entrypoint(image: str) -> None:
    out = docker("run", "--rm", image, "--help").stdout
    assert "agent" in out and "validate" in out
    cfg = docker("image", "inspect", "--format", "{{json .Config}}", image).stdout
    config = json.loads(cfg)
    assert config["Entrypoint"] == ["falcopy"] and config["Cmd"] == ["agent"]
    # the same image runs the operator (the chart's Deployment passes `operator`)
    op = docker("run", "--rm", image, "operator", "--help").stdout
    assert "FalcoRule" in op and "--webhook-cert" in op
    # the shipped rules and configuration load in the image as they are
    dry = docker("run", "--rm", image, "agent", "--dry-run", timeout=120)
    assert "configuration and rules are valid" in dry.stderr + dry.stdout
    # the compiled fast loop ships built, with no compiler or Cython in the image
    code = ("import importlib, importlib.util, shutil, falcopy.agent.accel as a\n"
            "print(all(a.is_compiled(importlib.import_module(m)) for m in a.ACCELERATED),\n"
            "      importlib.util.find_spec('Cython') is None, shutil.which('gcc') is None)")
    accel = docker("run", "--rm", "--entrypoint", "python3", image, "-c", code).stdout.split()
    assert accel == ["True", "True", "True"], accel


def _wait_ready(name: str, port: int, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        state = docker("inspect", "--format", "{{.State.Running}}", name, check=False).stdout.strip()
        if state != "true":
            break
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError as exc:
            last = str(exc)
        time.sleep(0.5)
    logs = docker("logs", name, check=False)
    raise AssertionError(f"agent not ready on /healthz ({last}):\n{logs.stdout[-3000:]}{logs.stderr[-6000:]}")


def _alerts(name: str) -> list[dict[str, Any]]:
    out = docker("logs", name, check=False).stdout  # alerts: stdout; operational logs: stderr
    alerts = []
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("{"):
            alerts.append(json.loads(line))
    return alerts


def _wait_alert(name: str, match: Any, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for a in _alerts(name):
            if match(a):
                return a
        time.sleep(0.3)
    logs = docker("logs", name, check=False)
    raise AssertionError(f"no matching alert; stdout:\n{logs.stdout[-4000:]}\nstderr:\n{logs.stderr[-4000:]}")


@pytest.fixture(scope="module")
def agent(image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Rendered, Path]]:
    # `--privileged` cannot start on these machines: the chart's least-privilege mode
    # (capabilities, unconfined seccomp) is what runs here, with every mount of the default mode.
    r = render({"agent": {"privileged": False, "leastPrivileged": {"enabled": True}},
                "customRules": CUSTOM_RULES,
                "image": {"repository": image.split(":")[0], "tag": image.split(":")[1]}})
    name = f"falcopy-agent-{uuid.uuid4().hex[:8]}"
    pod_dir = tmp_path_factory.mktemp("pod")
    args = docker_run_args(r, image, pod_dir, NODE, "127.0.0.1", name)
    try:
        docker(*args, timeout=120)
        _wait_ready(name, mapped_port(name, r.agent_config().webserver.listen_port))
        yield name, r, pod_dir
    finally:
        docker("rm", "-f", name, check=False)


def test_host_action_alert_in_docker_logs(agent: tuple[str, Rendered, Path]) -> None:
    name, _, _ = agent
    token = uuid.uuid4().hex
    # a host process reads /etc/shadow; the second (missing) file only tags the command line
    subprocess.run(["cat", "/etc/shadow", f"/nonexistent-{token}"], capture_output=True, timeout=10)
    alert = _wait_alert(name, lambda a: token in str(a.get("output_fields", {}).get("proc.cmdline")))
    assert alert["rule"] == "Sensitive File Read by Untrusted Program"
    assert alert["priority"] == "Warning" and alert["source"] == "syscall"
    assert alert["hostname"] == NODE  # FALCO_HOSTNAME from the downward API (spec.nodeName)
    fields = alert["output_fields"]
    assert fields["fd.name"] == "/etc/shadow" and fields["proc.name"] == "cat"
    assert fields["container.id"] == "host"
    assert alert["time"].endswith("Z") and "Sensitive file opened for reading" in alert["output"]
    assert set(alert) >= {"hostname", "output", "output_fields", "priority", "rule", "source", "tags", "time"}


def test_metrics_and_versions_on_service_port(agent: tuple[str, Rendered, Path]) -> None:
    """What the chart's Service (targetPort http) and the probes reach."""
    name, r, _ = agent
    svc = r.one("Service", r.daemonset["metadata"]["name"])
    port_name = svc["spec"]["ports"][0]["targetPort"]
    container_port = {p["name"]: p["containerPort"] for p in r.agent_container["ports"]}[port_name]
    port = mapped_port(name, container_port)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        metrics = resp.read().decode()
    assert "falcopy_rules_loaded" in metrics and "falcopy_ready 1.0" in metrics
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/versions", timeout=5) as resp:
        versions = json.loads(resp.read())
    assert versions["falcopy_version"]


def test_custom_rules_from_values_fire(agent: tuple[str, Rendered, Path]) -> None:
    name, _, _ = agent
    marker = Path(f"{MARKER_PREFIX}{uuid.uuid4().hex}")
    try:
        marker.write_text("x")
        alert = _wait_alert(name, lambda a: a.get("rule") == "Image test marker opened"
                            and a.get("output_fields", {}).get("fd.name") == str(marker))
        assert alert["priority"] == "Notice" and alert["tags"] == ["test"]
    finally:
        marker.unlink(missing_ok=True)


def test_custom_rules_update_reaches_running_agent(agent: tuple[str, Rendered, Path]) -> None:
    """kubelet updates a ConfigMap volume with an atomic ..data swap; a directory mount (not
    subPath) sees it, and the agent reloads its rules without a restart."""
    name, _, pod_dir = agent
    started = docker("inspect", "--format", "{{.State.StartedAt}}", name).stdout.strip()
    updated = CUSTOM_RULES["image-test.yaml"].replace("Image test marker opened", "Image test marker v2") \
        .replace("priority: NOTICE", "priority: ERROR")
    write_configmap_dir(pod_dir / "custom-rules", {"image-test.yaml": updated})
    deadline = time.monotonic() + 60
    seen: dict[str, Any] | None = None
    while seen is None and time.monotonic() < deadline:
        # a new marker each second until the reloaded rule reports one
        marker = Path(f"{MARKER_PREFIX}{uuid.uuid4().hex}")
        marker.write_text("x")
        marker.unlink()
        time.sleep(1)
        seen = next((a for a in _alerts(name) if a.get("rule") == "Image test marker v2"), None)
    logs = docker("logs", name, check=False)
    assert seen is not None, f"reloaded rule never fired:\n{logs.stderr[-4000:]}"
    assert seen["priority"] == "Error"
    assert docker("inspect", "--format", "{{.State.StartedAt}}", name).stdout.strip() == started
    assert docker("inspect", "--format", "{{.State.Running}}", name).stdout.strip() == "true"
