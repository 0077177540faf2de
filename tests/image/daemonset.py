"""Run a rendered DaemonSet pod spec with `docker run`: same image, args, env, mounts and
security settings, translated one by one (what kubelet would do on a node)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from functools import cache
from pathlib import Path

from tests.chart.render import Rendered

# docker < 23 does not know these capability names; CAP_SYS_ADMIN is a superset of both
# (the kernel accepts it for bpf() and perf_event_open()), so they map to it.
_CAP_FALLBACK = {"BPF": "SYS_ADMIN", "PERFMON": "SYS_ADMIN"}
_CAP_NUMBERS = {"SYS_PTRACE": 19, "SYS_ADMIN": 21, "SYS_RESOURCE": 24, "PERFMON": 38, "BPF": 39}


def host_bounding_set() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapBnd:"):
            return int(line.split()[1], 16)
    raise AssertionError("no CapBnd in /proc/self/status")


def missing_from_host(caps: list[str]) -> list[str]:
    """Capabilities the docker daemon here cannot grant (this sandbox's bounding set lacks them)."""
    bnd = host_bounding_set()
    return [c for c in caps if c in _CAP_NUMBERS and not bnd >> _CAP_NUMBERS[c] & 1]


@cache
def docker_knows_capability(cap: str, image: str) -> bool:
    proc = subprocess.run(["docker", "create", "--cap-add", cap, image, "true"],
                          capture_output=True, text=True, timeout=60)
    if proc.returncode == 0:
        subprocess.run(["docker", "rm", proc.stdout.strip()], capture_output=True, timeout=60)
        return True
    assert "unknown capability" in proc.stderr, proc.stderr
    return False


def _capabilities(caps: list[str], image: str) -> list[str]:
    out: list[str] = []
    unavailable = set(missing_from_host(caps))
    for cap in caps:
        if cap in unavailable:
            continue
        name = cap if docker_knows_capability(cap, image) else _CAP_FALLBACK[cap]
        if name not in out:
            out.append(name)
    return out


def write_configmap_dir(d: Path, data: dict[str, str]) -> None:
    """Lay out (or update) ``d`` the way kubelet's atomic writer does for a ConfigMap volume:
    files in a timestamped directory, ``..data`` pointing at it, each key a symlink through
    ``..data``; an update swaps ``..data`` with one rename."""
    d.mkdir(parents=True, exist_ok=True)
    version = d / f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.{time.monotonic_ns()}"
    version.mkdir()
    for key, text in data.items():
        (version / key).write_text(text)
    old = os.readlink(d / "..data") if (d / "..data").is_symlink() else None
    tmp = d / "..data_tmp"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(version.name)
    os.rename(tmp, d / "..data")
    for key in data:
        link = d / key
        if not link.is_symlink():
            link.symlink_to(f"..data/{key}")
    for entry in d.iterdir():
        if entry.is_symlink() and not entry.name.startswith("..") and entry.name not in data:
            entry.unlink()
    if old:
        shutil.rmtree(d / old)


def docker_run_args(r: Rendered, image: str, workdir: Path, node_name: str, node_ip: str,
                    name: str, namespace: str = "falcopy") -> list[str]:
    """`docker run` arguments for the agent pod of ``r``; ConfigMaps are written below ``workdir``."""
    spec = r.daemonset["spec"]["template"]["spec"]
    c = spec["containers"][0]
    volumes = {v["name"]: v for v in spec["volumes"]}
    args = ["run", "-d", "--name", name]
    if spec.get("hostPID"):
        args.append("--pid=host")

    for m in c["volumeMounts"]:
        vol = volumes[m["name"]]
        ro = ",readonly" if m.get("readOnly") else ""
        if "hostPath" in vol:
            src = vol["hostPath"]["path"]
            if not os.path.exists(src):
                # kubelet creates an empty directory here; the agent then sees no such runtime
                continue
            args += ["--mount", f"type=bind,src={src},dst={m['mountPath']}{ro}"]
        elif "configMap" in vol or "projected" in vol:
            # kubelet writes the ConfigMaps' keys as files of one directory
            sources = [vol] if "configMap" in vol else vol["projected"]["sources"]
            data: dict[str, str] = {}
            for src in sources:
                ref = src["configMap"]
                found = [o for o in r.all("ConfigMap") if o["metadata"]["name"] == ref["name"]]
                assert found or ref.get("optional"), f"ConfigMap {ref['name']} is not in the chart"
                data.update(found[0]["data"] if found else {})
            d = workdir / m["name"]
            write_configmap_dir(d, data)
            args += ["--mount", f"type=bind,src={d},dst={m['mountPath']}{ro}"]
        elif "emptyDir" in vol:
            args += ["--tmpfs", m["mountPath"]]
        else:
            raise AssertionError(f"volume {vol} has no docker translation")

    field_values = {"spec.nodeName": node_name, "status.hostIP": node_ip, "metadata.namespace": namespace}
    for e in c.get("env", []):
        if "value" in e:
            args += ["-e", f"{e['name']}={e['value']}"]
        else:
            args += ["-e", f"{e['name']}={field_values[e['valueFrom']['fieldRef']['fieldPath']]}"]

    sc = c.get("securityContext", {})
    if sc.get("privileged"):
        args.append("--privileged")
    else:
        for cap in sc.get("capabilities", {}).get("drop", []):
            args += ["--cap-drop", cap]
        for cap in _capabilities(sc.get("capabilities", {}).get("add", []), image):
            args += ["--cap-add", cap]
        if sc.get("allowPrivilegeEscalation") is False:
            args += ["--security-opt", "no-new-privileges"]
    if sc.get("seccompProfile", {}).get("type") == "Unconfined":
        args += ["--security-opt", "seccomp=unconfined"]
    if sc.get("readOnlyRootFilesystem"):
        args.append("--read-only")
    if "runAsUser" in sc:
        args += ["--user", str(sc["runAsUser"])]

    for p in c.get("ports", []):
        args += ["-p", f"127.0.0.1::{p['containerPort']}"]
    limits = c.get("resources", {}).get("limits", {})
    if "memory" in limits:
        args += ["--memory", limits["memory"].replace("Mi", "m").replace("Gi", "g")]
    return [*args, image, *c["args"]]


def mapped_port(name: str, container_port: int) -> int:
    out = subprocess.run(["docker", "port", name, f"{container_port}/tcp"], capture_output=True, text=True,
                         check=True, timeout=30).stdout
    return int(out.strip().splitlines()[0].rsplit(":", 1)[1])
