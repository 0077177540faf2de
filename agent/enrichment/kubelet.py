"""Pods of this node from the kubelet's ``/pods`` endpoint, indexed by container id.

The kubelet lists every pod it runs with ``status.containerStatuses[].containerID``
(``containerd://<64 hex>``, ``cri-o://...``, ``docker://...``): joining that
id with the one read from a process's cgroup gives the pod, namespace and
labels without a runtime socket and without watching the API server.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from falcopy.agent.enrichment.config import DEFAULT_CA_FILE, DEFAULT_TOKEN_FILE
from falcopy.agent.enrichment.docker import SourceFault, connect_fault
from falcopy.agent.enrichment.images import split_image, strip_image_id

#: containerID scheme -> Falco's container.type
_RUNTIME_OF_SCHEME = {"docker": "docker", "containerd": "containerd", "cri-o": "cri-o", "crio": "cri-o"}

_STATUS_KEYS = (
    ("containerStatuses", "containers"),
    ("initContainerStatuses", "initContainers"),
    ("ephemeralContainerStatuses", "ephemeralContainers"),
)


@dataclass(slots=True)
class PodContainer:
    """One container of one pod, as the kubelet reports it."""

    full_id: str
    runtime: str
    container_name: str | None
    image: str | None
    image_id: str | None
    image_digest: str | None
    ns: str | None
    pod_name: str | None
    pod_uid: str | None
    pod_ip: str | None
    pod_labels: dict[str, str] = field(default_factory=dict)

    @property
    def image_repository(self) -> str | None:
        return split_image(self.image)[0] if self.image else None

    @property
    def image_tag(self) -> str | None:
        return split_image(self.image)[1] if self.image else None


def split_container_id(raw: str) -> tuple[str, str] | None:
    """``containerd://<hex>`` -> (hex, "containerd"); None for an empty/unknown id."""
    scheme, sep, cid = raw.partition("://")
    if not sep or not cid:
        return None
    return cid.lower(), _RUNTIME_OF_SCHEME.get(scheme, scheme)


def split_image_ref(image_ref: str) -> tuple[str | None, str | None]:
    """A status ``imageID`` -> (image id, registry digest).

    containerd and CRI-O report the repo digest (``docker.io/library/nginx@sha256:..``),
    docker-shim nodes ``docker-pullable://nginx@sha256:..`` or the bare ``sha256:<id>``."""
    _, sep, rest = image_ref.partition("://")
    ref = rest if sep else image_ref
    if "@" in ref:
        return None, ref.partition("@")[2] or None
    return strip_image_id(ref) or None, None


@dataclass(slots=True)
class PodIndex:
    """The node's pods: by 12-char container id, and by pod UID for containers the
    kubelet has not reported yet (a container's first seconds)."""

    containers: dict[str, PodContainer] = field(default_factory=dict)
    #: pod-level facts only (container_name/image None), keyed by pod UID
    pods: dict[str, PodContainer] = field(default_factory=dict)

    def lookup(self, container_id: str, pod_uid: str | None = None) -> PodContainer | None:
        found = self.containers.get(container_id)
        if found is None and pod_uid:
            found = self.pods.get(pod_uid)
        return found


def index_pod_list(body: Any) -> PodIndex:
    """Container and pod index of a kubelet ``PodList``.

    Raises ValueError when the document is not a PodList."""
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        raise ValueError("not a PodList: no 'items' list")
    index = PodIndex()
    for pod in body["items"]:
        if not isinstance(pod, dict):
            continue
        meta = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        status = pod.get("status") or {}
        labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
        if meta.get("uid"):
            index.pods[str(meta["uid"])] = PodContainer(
                full_id="", runtime="", container_name=None, image=None, image_id=None,
                image_digest=None, ns=meta.get("namespace"), pod_name=meta.get("name"),
                pod_uid=meta.get("uid"), pod_ip=status.get("podIP"), pod_labels=labels)
        for status_key, spec_key in _STATUS_KEYS:
            spec_images = {
                c.get("name"): c.get("image") for c in spec.get(spec_key) or [] if isinstance(c, dict)
            }
            for cs in status.get(status_key) or []:
                if not isinstance(cs, dict):
                    continue
                parsed = split_container_id(str(cs.get("containerID") or ""))
                if parsed is None:
                    continue  # not started yet
                full_id, runtime = parsed
                name = cs.get("name")
                # the spec says what the user asked for ("nginx:1.25"); the status may
                # show a resolved "docker.io/library/nginx:1.25"
                image = spec_images.get(name) or cs.get("image")
                image_id, digest = split_image_ref(str(cs.get("imageID") or ""))
                index.containers[full_id[:12]] = PodContainer(
                    full_id=full_id,
                    runtime=runtime,
                    container_name=name,
                    image=image,
                    image_id=image_id,
                    image_digest=digest,
                    ns=meta.get("namespace"),
                    pod_name=meta.get("name"),
                    pod_uid=meta.get("uid"),
                    pod_ip=status.get("podIP"),
                    pod_labels=labels,
                )
    return index


def default_kubelet_url(env: dict[str, str] | None = None) -> str | None:
    """``https://<node>:10250/pods`` from the downward API (NODE_IP, then NODE_NAME)."""
    env = dict(os.environ) if env is None else env
    node = env.get("NODE_IP") or env.get("NODE_NAME")
    if not node:
        return None
    host = f"[{node}]" if ":" in node else node
    return f"https://{host}:10250/pods"


class KubeletClient:
    """Async client of the kubelet's read-only pod list (authenticated, TLS-verified)."""

    source = "kubelet"

    def __init__(self, url: str, token_file: str | None = DEFAULT_TOKEN_FILE,
                 ca_file: str | None = DEFAULT_CA_FILE, insecure: bool = False,
                 timeout_s: float = 5.0) -> None:
        self.url = url
        self.token_file = token_file
        self.ca_file = ca_file
        self.insecure = insecure
        self._timeout = timeout_s
        self._client: httpx.AsyncClient | None = None
        self.source = f"kubelet ({url})"

    def _ssl_context(self) -> ssl.SSLContext | bool:
        if self.insecure:
            return False
        if self.ca_file and os.path.exists(self.ca_file):
            return ssl.create_default_context(cafile=self.ca_file)
        # no CA given: the system trust store, still verifying
        return ssl.create_default_context()

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            transport = httpx.AsyncHTTPTransport(verify=self._ssl_context(), retries=0)
            self._client = httpx.AsyncClient(transport=transport, timeout=self._timeout)
        return self._client

    def _headers(self) -> dict[str, str]:
        # re-read on each call: projected service-account tokens rotate
        if not self.token_file:
            return {}
        try:
            with open(self.token_file, encoding="utf-8") as fh:
                token = fh.read().strip()
        except OSError as exc:
            raise SourceFault("token file unreadable", f"{self.token_file}: {exc.strerror}") from exc
        return {"Authorization": f"Bearer {token}"} if token else {}

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def pods(self) -> PodIndex:
        """Fresh container index; SourceFault when the kubelet cannot answer."""
        headers = self._headers()
        try:
            resp = await self._http().get(self.url, headers=headers)
        except httpx.TimeoutException as exc:
            raise SourceFault("timed out", f"no answer within {self._timeout}s") from exc
        except httpx.ConnectError as exc:
            raise connect_fault(exc) from exc
        except (httpx.TransportError, OSError) as exc:
            raise SourceFault("unreachable", f"{type(exc).__name__}: {exc}") from exc
        if resp.status_code in (401, 403):
            raise SourceFault(f"refused the service account token (HTTP {resp.status_code})",
                              "check the token and the nodes/proxy RBAC permission")
        if resp.status_code != 200:
            raise SourceFault(f"answered HTTP {resp.status_code}", resp.text[:200].strip())
        try:
            return index_pod_list(orjson.loads(resp.content))
        except (orjson.JSONDecodeError, ValueError) as exc:
            raise SourceFault("answered invalid JSON", str(exc)[:200]) from exc
