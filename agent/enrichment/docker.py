"""Container metadata from the Docker Engine API (and podman's compatible API).

One ``GET /containers/{id}/json`` per new container over the runtime's unix
socket, plus ``GET /images/{id}/json`` once per image for the digest and the
tag when the container was started from a bare image id.
"""

from __future__ import annotations

import json
import re
import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
import orjson
from falcopy.agent.enrichment.images import split_image, strip_image_id
from falcopy.agent.enrichment.model import ContainerInfo, Mount

from falcopy.common.errors import FalcopyError

_ID_RE = re.compile(r"[0-9a-f]{1,64}")
_TS_RE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")


class SourceFault(FalcopyError):
    """A metadata source could not answer (the condition is logged once)."""

    def __init__(self, condition: str, detail: str = "") -> None:
        super().__init__(f"{condition}: {detail}" if detail else condition)
        self.condition = condition
        self.detail = detail


def connect_fault(exc: Exception) -> SourceFault:
    """A connect failure of an HTTPS source, told apart: a certificate that does not verify
    is a configuration error to name, not an outage."""
    if isinstance(exc.__cause__, ssl.SSLError) or "CERTIFICATE" in str(exc).upper():
        return SourceFault("TLS verification failed", str(exc))
    return SourceFault("unreachable", str(exc))


def parse_rfc3339_ns(text: str | None) -> int | None:
    """Docker's ``2026-11-28T00:17:20.557084106Z`` -> ns since the epoch (None if unset)."""
    if not text:
        return None
    m = _TS_RE.match(text)
    if m is None:
        return None
    base, frac, tz = m.groups()
    tzinfo = UTC if tz == "Z" else datetime.strptime(tz.replace(":", ""), "%z").tzinfo
    dt = datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=tzinfo)
    if dt.year <= 1:
        return None  # Go's zero time: never started
    ns = (frac or "0")[:9].ljust(9, "0")
    return int(dt.timestamp()) * 1_000_000_000 + int(ns)


def _first_ip(inspect: dict[str, Any]) -> str | None:
    net = inspect.get("NetworkSettings") or {}
    ip = net.get("IPAddress")
    if ip:
        return str(ip)
    for endpoint in (net.get("Networks") or {}).values():
        if isinstance(endpoint, dict) and endpoint.get("IPAddress"):
            return str(endpoint["IPAddress"])
    return None


def _int_or_none(value: Any) -> int | None:
    # the engine reports Pid 0 for a container that does not run
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def parse_container_inspect(inspect: dict[str, Any], runtime: str = "docker") -> ContainerInfo:
    """ContainerInfo from a ``/containers/{id}/json`` answer (Docker or podman)."""
    full_id = str(inspect.get("Id") or "").lower()
    config = inspect.get("Config") or {}
    host = inspect.get("HostConfig") or {}
    state = inspect.get("State") or {}
    image = config.get("Image") or None
    image_id = strip_image_id(str(inspect.get("Image") or "")) or None
    repo = tag = digest = None
    if image:
        repo, tag, digest = split_image(str(image))
        if image.startswith("sha256:") or (image_id and image_id.startswith(image)):
            repo = tag = None  # started by image id: the image lookup names it
    labels = {str(k): str(v) for k, v in (config.get("Labels") or {}).items()}
    mounts = [
        Mount(
            source=str(m.get("Source") or ""),
            dest=str(m.get("Destination") or ""),
            mode=str(m.get("Mode") or ""),
            rw=bool(m.get("RW", True)),
            propagation=str(m.get("Propagation") or ""),
        )
        for m in inspect.get("Mounts") or []
        if isinstance(m, dict)
    ]
    info = ContainerInfo(
        id=full_id[:12],
        full_id=full_id,
        type=runtime,
        name=str(inspect.get("Name") or "").lstrip("/") or None,
        image=image,
        image_repository=repo,
        image_tag=tag,
        image_id=image_id,
        image_digest=digest,
        privileged=bool(host.get("Privileged", False)),
        host_pid=host.get("PidMode") == "host",
        host_network=host.get("NetworkMode") == "host",
        host_ipc=host.get("IpcMode") == "host",
        ip=_first_ip(inspect),
        start_ts=parse_rfc3339_ns(state.get("StartedAt")),
        pid=_int_or_none(state.get("Pid")),
        mounts=mounts,
        labels=labels,
        k8s_ns_name=labels.get("io.kubernetes.pod.namespace"),
        k8s_pod_name=labels.get("io.kubernetes.pod.name"),
        k8s_pod_uid=labels.get("io.kubernetes.pod.uid"),
    )
    return info


def apply_image_inspect(info: ContainerInfo, image: dict[str, Any]) -> None:
    """Fill repository/tag (when started by id) and digest from ``/images/{id}/json``."""
    tags = [t for t in image.get("RepoTags") or [] if t and t != "<none>:<none>"]
    if info.image_repository is None and tags:
        info.image_repository, info.image_tag, _ = split_image(tags[0])
        if info.image is None or info.image.startswith("sha256:"):
            info.image = tags[0]
    if info.image_digest is None:
        for ref in image.get("RepoDigests") or []:
            repo, _, digest = str(ref).partition("@")
            if digest and (info.image_repository is None or repo == info.image_repository):
                info.image_digest = digest
                break


class DockerClient:
    """Async client of one Docker-compatible engine socket."""

    def __init__(self, socket_path: str, runtime: str = "docker", timeout_s: float = 5.0) -> None:
        self.socket_path = socket_path
        self.runtime = runtime
        self.source = f"{runtime} ({socket_path})"
        self._timeout = timeout_s
        self._client: httpx.AsyncClient | None = None
        self._image_cache: dict[str, dict[str, Any]] = {}
        self._ip_cache: dict[str, str | None] = {}

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            transport = httpx.AsyncHTTPTransport(uds=self.socket_path, retries=0)
            self._client = httpx.AsyncClient(transport=transport, base_url="http://docker",
                                             timeout=self._timeout)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _get(self, path: str) -> Any:
        """Decoded JSON at ``path``; None on 404; SourceFault otherwise."""
        try:
            resp = await self._http().get(path)
        except httpx.TimeoutException as exc:
            raise SourceFault("timed out", f"{path} after {self._timeout}s") from exc
        except (httpx.TransportError, OSError) as exc:
            raise SourceFault("unreachable", f"{type(exc).__name__}: {exc}") from exc
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise SourceFault(f"answered HTTP {resp.status_code}", resp.text[:200].strip())
        try:
            return orjson.loads(resp.content)
        except orjson.JSONDecodeError as exc:
            raise SourceFault("answered invalid JSON", str(exc)) from exc

    async def _get_json(self, path: str) -> dict[str, Any] | None:
        """JSON object at ``path``; None on 404; SourceFault otherwise."""
        body = await self._get(path)
        if body is not None and not isinstance(body, dict):
            raise SourceFault("answered invalid JSON", f"expected an object, got {type(body).__name__}")
        return body

    async def inspect(self, container_id: str) -> ContainerInfo | None:
        """Metadata of a container (12-char or full id); None when the engine does not know it."""
        if not _ID_RE.fullmatch(container_id):
            return None  # ids come from cgroup paths: anything else is not a container id
        body = await self._get_json(f"/containers/{container_id}/json")
        if body is None:
            return None
        info = parse_container_inspect(body, self.runtime)
        if info.image_id:
            image = self._image_cache.get(info.image_id)
            if image is None:
                image = await self._get_json(f"/images/sha256:{info.image_id}/json") or {}
                self._image_cache[info.image_id] = image
            apply_image_inspect(info, image)
        host = body.get("HostConfig") or {}
        net_mode = str(host.get("NetworkMode") or "")
        if info.ip is None and net_mode.startswith("container:"):
            # pods share the sandbox's network namespace: its IP is theirs
            info.ip = await self._ip_of(net_mode.partition(":")[2])
        return info

    async def _ip_of(self, other_id: str) -> str | None:
        if other_id not in self._ip_cache:
            body = await self._get_json(f"/containers/{quote(other_id, safe='')}/json")
            self._ip_cache[other_id] = _first_ip(body) if body else None
        return self._ip_cache[other_id]

    async def running_ids(self) -> list[str]:
        """Full ids of the running containers (``GET /containers/json``)."""
        body = await self._get("/containers/json")
        if body is None:
            raise SourceFault("answered HTTP 404", "/containers/json")
        return [str(c["Id"]).lower() for c in body if isinstance(c, dict) and c.get("Id")] \
            if isinstance(body, list) else []

    async def events(self) -> AsyncIterator[tuple[str, str]]:
        """(action, full id) for container start/destroy events until the stream ends."""
        filters = json.dumps({"type": ["container"], "event": ["start", "destroy"]})
        timeout = httpx.Timeout(self._timeout, read=None)  # the stream is idle between events
        try:
            async with self._http().stream("GET", "/events", params={"filters": filters},
                                           timeout=timeout) as resp:
                if resp.status_code != 200:
                    raise SourceFault(f"answered HTTP {resp.status_code} to /events")
                async for line in resp.aiter_lines():
                    if not line.strip():
                        continue
                    try:
                        ev = orjson.loads(line)
                    except orjson.JSONDecodeError as exc:
                        raise SourceFault("sent an invalid event", line[:200]) from exc
                    action = str(ev.get("Action") or ev.get("status") or "")
                    cid = str(ev.get("id") or (ev.get("Actor") or {}).get("ID") or "").lower()
                    if cid:
                        yield action, cid
        except httpx.TimeoutException as exc:
            raise SourceFault("timed out", "/events") from exc
        except (httpx.TransportError, OSError) as exc:
            raise SourceFault("unreachable", f"{type(exc).__name__}: {exc}") from exc
