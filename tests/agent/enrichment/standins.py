"""Stand-in servers for the metadata sources: a kubelet (real HTTPS, CA made
here with the openssl CLI) and a misbehaving Docker socket.

Each server counts its hits and can be switched between behaviours at run
time (``ok``, ``401``, ``500``, ``garbage``, ``slow``) to drive the fault tests.
Reusable by the pipeline end-to-end tests.
"""

from __future__ import annotations

import json
import socketserver
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass
class TlsMaterial:
    ca_file: Path
    cert_file: Path
    key_file: Path


def make_tls_material(directory: Path, name: str = "kubelet") -> TlsMaterial:
    """A throw-away CA and a server certificate for 127.0.0.1/localhost signed by it."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_crt = directory / f"{name}-ca.key", directory / f"{name}-ca.crt"
    key, csr, crt = directory / f"{name}.key", directory / f"{name}.csr", directory / f"{name}.crt"
    ext = directory / f"{name}.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
                   "basicConstraints=critical,CA:FALSE\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    run("req", "-x509", *ec, "-keyout", str(ca_key), "-out", str(ca_crt), "-days", "2",
        "-subj", f"/CN=falcopy-test-{name}-ca", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", *ec, "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={name}")
    run("x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key), "-CAcreateserial",
        "-out", str(crt), "-days", "2", "-extfile", str(ext))
    return TlsMaterial(ca_crt, crt, key)


@dataclass
class PodContainerSpec:
    name: str
    image: str
    container_id: str  # full 64-hex id
    runtime: str = "containerd"  # containerID scheme


@dataclass
class PodSpec:
    name: str
    namespace: str
    uid: str
    labels: dict[str, str]
    ip: str
    containers: list[PodContainerSpec]
    init_containers: list[PodContainerSpec] = field(default_factory=list)
    ephemeral_containers: list[PodContainerSpec] = field(default_factory=list)


def _status(c: PodContainerSpec) -> dict[str, Any]:
    repo = c.image.partition(":")[0]
    return {
        "name": c.name,
        "state": {"running": {"startedAt": "2026-11-28T00:00:00Z"}},
        "lastState": {},
        "ready": True,
        "restartCount": 0,
        "image": f"docker.io/library/{c.image}",
        "imageID": f"docker.io/library/{repo}@sha256:{'e' * 64}",
        "containerID": f"{c.runtime}://{c.container_id}",
        "started": True,
    }


def _spec_container(c: PodContainerSpec) -> dict[str, Any]:
    return {"name": c.name, "image": c.image, "resources": {},
            "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
            "imagePullPolicy": "IfNotPresent"}


def pod_list(pods: list[PodSpec], node: str = "node-1") -> dict[str, Any]:
    """A ``PodList`` as the kubelet's /pods returns it (only the keys a kubelet always sets)."""
    items = []
    for p in pods:
        items.append({
            "metadata": {
                "name": p.name, "namespace": p.namespace, "uid": p.uid, "resourceVersion": "4711",
                "creationTimestamp": "2026-11-28T00:00:00Z", "labels": p.labels,
                "annotations": {"kubernetes.io/config.seen": "2026-11-28T00:00:00.000000000Z",
                                "kubernetes.io/config.source": "api"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"{p.name}-rs",
                                     "uid": "0" * 8 + "-0000-0000-0000-" + "0" * 12, "controller": True}],
            },
            "spec": {
                "volumes": [{"name": "kube-api-access", "projected": {"sources": []}}],
                "containers": [_spec_container(c) for c in p.containers],
                "initContainers": [_spec_container(c) for c in p.init_containers],
                "ephemeralContainers": [_spec_container(c) for c in p.ephemeral_containers],
                "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
                "serviceAccountName": "default", "nodeName": node, "securityContext": {},
                "schedulerName": "default-scheduler", "priority": 0, "enableServiceLinks": True,
                "preemptionPolicy": "PreemptLowerPriority",
            },
            "status": {
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "True", "lastProbeTime": None,
                                "lastTransitionTime": "2026-11-28T00:00:00Z"}],
                "hostIP": "10.0.0.5", "hostIPs": [{"ip": "10.0.0.5"}],
                "podIP": p.ip, "podIPs": [{"ip": p.ip}],
                "startTime": "2026-11-28T00:00:00Z",
                "containerStatuses": [_status(c) for c in p.containers],
                "initContainerStatuses": [_status(c) for c in p.init_containers],
                "ephemeralContainerStatuses": [_status(c) for c in p.ephemeral_containers],
                "qosClass": "BestEffort",
            },
        })
    return {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items}


class _Behaviour:
    """Shared, switchable behaviour of a stand-in server."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.slow_s = 10.0
        self.hits = 0
        self.lock = threading.Lock()

    def hit(self) -> str:
        with self.lock:
            self.hits += 1
            return self.mode


class KubeletStandin:
    """HTTPS ``GET /pods`` with bearer-token check, like the kubelet's authenticated port."""

    def __init__(self, tls: TlsMaterial, token: str, body: dict[str, Any] | None = None) -> None:
        self.tls = tls
        self.token = token
        self.body: dict[str, Any] = body or pod_list([])
        self.behaviour = _Behaviour()
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                mode = standin.behaviour.hit()
                if self.path != "/pods":
                    return self._send(404, b"404 page not found", "text/plain")
                if self.headers.get("Authorization") != f"Bearer {standin.token}" or mode == "401":
                    return self._send(401, b"Unauthorized", "text/plain")
                if mode == "500":
                    return self._send(500, b"internal error", "text/plain")
                if mode == "garbage":
                    return self._send(200, b'{"kind": "PodList", "items": [', "application/json")
                if mode == "slow":
                    time.sleep(standin.behaviour.slow_s)
                self._send(200, json.dumps(standin.body).encode(), "application/json")

            def _send(self, code: int, data: bytes, ctype: str) -> None:
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                    pass  # the client gave up (timeout test)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(tls.cert_file), str(tls.key_file))
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server.server_address[1]}/pods"

    def start(self) -> KubeletStandin:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _UnixHTTPServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True

    def get_request(self):  # type: ignore[no-untyped-def]
        request, _ = super().get_request()
        return request, ("local", 0)  # BaseHTTPRequestHandler wants a (host, port) address


class DockerSocketStandin:
    """A unix socket that speaks HTTP like dockerd but misbehaves on purpose.

    Mode ``ok`` answers from :attr:`routes` (request path -> JSON object; 404 otherwise)."""

    def __init__(self, path: Path, mode: str = "500") -> None:
        self.path = path
        self.behaviour = _Behaviour()
        self.behaviour.mode = mode
        self.routes: dict[str, dict[str, Any]] = {}
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                mode = standin.behaviour.hit()
                if mode == "slow":
                    time.sleep(standin.behaviour.slow_s)
                if mode == "ok":
                    body = standin.routes.get(self.path)
                    data = json.dumps(body if body is not None else {"message": "No such container"}).encode()
                    code = 200 if body is not None else 404
                elif mode == "garbage":
                    data, code = b"<html>not json</html>", 200
                elif mode == "404":
                    data, code = b'{"message":"No such container"}', 404
                else:
                    data, code = b'{"message":"server error"}', 500
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = _UnixHTTPServer(str(path), Handler)
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def start(self) -> DockerSocketStandin:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
