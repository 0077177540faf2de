"""How the agent reaches the Kubernetes API: httpx, the pod's service-account token
and the cluster CA (TLS verified), or a kubeconfig's server and token outside a pod.

Not the ``kubernetes`` client package: importing it costs the agent's start-up
about a quarter of a second, and the agent makes four kinds of request (Lease
create/update, ConfigMap list/watch/get).  The operator keeps the full client
(:mod:`falcopy.distribution.kube`).
"""

from __future__ import annotations

import base64
import os
import ssl
import time
from collections.abc import AsyncIterator, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from falcopy.common.errors import FalcopyError

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
#: bound service-account tokens rotate (kubelet rewrites the file): read again this often
TOKEN_REREAD_S = 60.0
#: idle connections are kept this long, beyond the Lease renewal period (30 s): httpx's default
#: (5 s) would open a new TCP (and TLS) connection for every renewal of every node
KEEPALIVE_S = 120.0


class ApiAccessError(FalcopyError):
    """No usable API server address or credentials."""


class _TokenFile(httpx.Auth):
    """``Authorization: Bearer`` from a file kubelet keeps fresh."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._token = ""
        self._read_at = -TOKEN_REREAD_S

    def token(self) -> str:
        now = time.monotonic()
        if now - self._read_at >= TOKEN_REREAD_S:
            self._token = self.path.read_text().strip()
            self._read_at = now
        return self._token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.token()}"
        yield request


@dataclass(frozen=True)
class ApiAccess:
    server: str
    token: str = ""
    token_file: Path | None = None
    #: PEM of the CA that signs the API server's certificate; None: the system's CAs
    ca_pem: str | None = None
    #: kubeconfig ``insecure-skip-tls-verify`` only; never the in-cluster default
    verify: bool = True
    user_agent: str = "falcopy-agent"
    #: seconds per request (connect, read); the watch sets its own read timeout
    timeout: float = 10.0
    _ssl: list[ssl.SSLContext] = field(default_factory=list, compare=False, repr=False)

    @classmethod
    def discover(cls, user_agent: str = "falcopy-agent") -> ApiAccess:
        """In a pod: $KUBERNETES_SERVICE_HOST/PORT with the mounted token and CA;
        else the current context of $KUBECONFIG (or ~/.kube/config)."""
        host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT")
        if host and port:
            ca = SERVICE_ACCOUNT / "ca.crt"
            try:
                ca_pem = ca.read_text()
            except OSError as exc:
                raise ApiAccessError(f"{ca}: {exc.strerror or exc} (the service account's CA)") from exc
            host = f"[{host}]" if ":" in host else host
            return cls(f"https://{host}:{port}", token_file=SERVICE_ACCOUNT / "token", ca_pem=ca_pem,
                       user_agent=user_agent)
        return cls.from_kubeconfig(Path(os.environ.get("KUBECONFIG") or Path.home() / ".kube" / "config"),
                                   user_agent)

    @classmethod
    def from_kubeconfig(cls, path: Path, user_agent: str = "falcopy-agent") -> ApiAccess:
        from ruamel.yaml import YAML, YAMLError

        try:
            doc = YAML(typ="safe").load(path.read_text()) or {}
        except (OSError, YAMLError) as exc:
            raise ApiAccessError(f"{path}: not in a pod and no readable kubeconfig: {exc}") from exc

        def named(section: str, name: str) -> dict[str, object]:
            for item in doc.get(section) or []:
                if item.get("name") == name:
                    return dict(item.get(section[:-1]) or {})
            raise ApiAccessError(f"{path}: no {section[:-1]} named {name!r}")

        try:
            context = named("contexts", str(doc["current-context"]))
            cluster = named("clusters", str(context["cluster"]))
            user = named("users", str(context["user"]))
            server = str(cluster["server"])
        except (KeyError, TypeError) as exc:
            raise ApiAccessError(f"{path}: incomplete kubeconfig: missing {exc}") from exc
        ca_pem = None
        if cluster.get("certificate-authority-data"):
            ca_pem = base64.b64decode(str(cluster["certificate-authority-data"])).decode()
        elif cluster.get("certificate-authority"):
            ca_pem = (path.parent / str(cluster["certificate-authority"])).read_text()
        if not user.get("token") and not user.get("tokenFile"):
            raise ApiAccessError(f"{path}: user {context['user']!r} has no token (the agent authenticates "
                                 "with a bearer token only)")
        return cls(server, token=str(user.get("token") or ""),
                   token_file=Path(str(user["tokenFile"])) if user.get("tokenFile") else None,
                   ca_pem=ca_pem, verify=not cluster.get("insecure-skip-tls-verify"), user_agent=user_agent)

    def ssl_context(self) -> ssl.SSLContext | bool:
        if not self.verify:
            return False
        if not self._ssl:  # built once: thousands of clients in the scale simulation share it
            self._ssl.append(ssl.create_default_context(cadata=self.ca_pem) if self.ca_pem
                             else ssl.create_default_context())
        return self._ssl[0]

    def client(self) -> httpx.AsyncClient:
        auth: httpx.Auth | None = None
        headers = {"User-Agent": self.user_agent, "Accept": "application/json"}
        if self.token_file is not None:
            auth = _TokenFile(self.token_file)
        elif self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return httpx.AsyncClient(base_url=self.server, headers=headers, auth=auth,
                                 verify=self.ssl_context(), timeout=self.timeout, trust_env=False,
                                 limits=httpx.Limits(max_connections=100, max_keepalive_connections=20,
                                                     keepalive_expiry=KEEPALIVE_S))


async def watch_events(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """The events of a watch stream, one JSON object a line.  Split from the bytes and
    parsed by orjson: httpx's ``aiter_lines`` decodes to text and splits in two more
    generator layers, and every node parses every event of a rules change."""
    pending = b""
    async for chunk in response.aiter_bytes():
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()
        for line in lines:
            if line.strip():
                yield orjson.loads(line)
    if pending.strip():
        yield orjson.loads(pending)
