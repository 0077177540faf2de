"""The ``k8s_audit`` event source: Kubernetes API server audit events.

Field names and value semantics follow Falco's k8saudit plugin (``ka.*``)
and json plugin (``jevt.*`` / ``json.*``):

* every value is a string (numbers and booleans rendered as JSON text,
  objects as compact JSON), except ``jevt.rawtime``;
* list fields (``ka.user.groups``, ``ka.req.pod.containers.privileged``...)
  are Python lists; an integer argument (``[0]``) keeps one element;
* a value absent from the event is ``None`` (``<NA>``), and so is a list
  field whose JSON array is absent.

Size (~640 lines): the plugins' field table, one accessor per field next to its
definition, so each field reads as one line of the table.
"""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from falcopy.common import timefmt
from falcopy.engine.fields.base import Accessor, ArgMode, FieldDef, FieldSource, FieldType

#: returned by json_pointer when the pointer does not resolve
MISSING = object()


# --------------------------------------------------------------------------- event


def parse_k8s_time(text: str) -> int:
    """RFC 3339 timestamp (``2019-03-05T19:15:27.846155Z``) to ns since the epoch.

    Parsed by hand because the API server writes up to 9 fractional digits,
    which ``datetime`` cannot hold.
    """
    text = text.strip()
    frac_ns = 0
    head, dot, rest = text.partition(".")
    if dot:
        digits = ""
        i = 0
        while i < len(rest) and rest[i].isdigit():
            i += 1
        digits, tz = rest[:i], rest[i:]
        frac_ns = int((digits + "000000000")[:9]) if digits else 0
        text = head + tz
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    when = _dt.datetime.fromisoformat(text)
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.UTC)
    return int(when.timestamp()) * 1_000_000_000 + frac_ns


class AuditEvent:
    """One ``audit.k8s.io`` Event (already decoded JSON object).

    Satisfies :class:`falcopy.engine.event.Event`: source ``k8s_audit``, no
    event type (audit rules live in the "all types" bucket), ``ts`` from
    ``stageTimestamp`` (falling back to ``requestReceivedTimestamp``, then to
    the receive time).
    """

    __slots__ = ("_raw", "cluster_name", "data", "source", "ts", "type")

    def __init__(self, data: dict[str, Any], *, raw: bytes | None = None,
                 received_ns: int | None = None, cluster_name: str | None = None) -> None:
        if not isinstance(data, dict):
            raise TypeError("an audit event must be a JSON object")
        self.data = data
        self.source = "k8s_audit"
        self.type: str | None = None
        self._raw = raw
        #: from the webhook configuration (ka.cluster.name)
        self.cluster_name = cluster_name
        self.ts = self._timestamp(data, received_ns)

    @staticmethod
    def _timestamp(data: dict[str, Any], received_ns: int | None) -> int:
        for key in ("stageTimestamp", "requestReceivedTimestamp"):
            value = data.get(key)
            if isinstance(value, str) and value:
                try:
                    return parse_k8s_time(value)
                except ValueError:
                    continue
        if received_ns is not None:
            return received_ns
        return time.time_ns()

    @classmethod
    def from_json(cls, text: bytes | str, *, received_ns: int | None = None,
                  cluster_name: str | None = None) -> AuditEvent:
        """Decode one JSON audit event; raises ValueError on bad JSON or a non-object."""
        raw = text.encode() if isinstance(text, str) else text
        data = orjson.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("an audit event must be a JSON object")
        return cls(data, raw=raw, received_ns=received_ns, cluster_name=cluster_name)

    def json(self) -> str:
        """The whole event as compact JSON (``jevt.obj``)."""
        return orjson.dumps(self.data).decode()

    def __repr__(self) -> str:
        return f"AuditEvent(auditID={self.data.get('auditID')!r}, verb={self.data.get('verb')!r})"


# --------------------------------------------------------------------------- JSON helpers


def _get(obj: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(obj, dict):
            return MISSING
        obj = obj.get(key, MISSING)
        if obj is MISSING:
            return MISSING
    return obj


def as_text(value: Any) -> str:
    """A JSON value as Falco renders it: strings raw, everything else compact JSON."""
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def json_pointer(doc: Any, pointer: str) -> Any:
    """Resolve an RFC 6901 pointer; returns MISSING when it does not resolve."""
    if pointer == "":
        return doc
    if not pointer.startswith("/"):
        return MISSING
    node = doc
    for token in pointer[1:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict):
            node = node.get(token, MISSING)
        elif isinstance(node, list):
            if not token.isdigit() or (len(token) > 1 and token[0] == "0"):
                return MISSING
            index = int(token)
            node = node[index] if index < len(node) else MISSING
        else:
            return MISSING
        if node is MISSING:
            return MISSING
    return node


def _index(arg: str | None) -> int | None:
    """Integer index argument, None when absent or not a number (= all elements)."""
    if arg is None:
        return None
    try:
        return int(arg)
    except ValueError:
        return None


def _array(data: dict[str, Any], index: int | None, *keys: str) -> list[Any] | None:
    arr = _get(data, *keys)
    if not isinstance(arr, list):
        return None
    if index is None:
        return arr
    if 0 <= index < len(arr):
        return [arr[index]]
    return None


def _image_repository(image: str) -> str:
    return image.split(":", 1)[0].split("@", 1)[0]


# --------------------------------------------------------------------------- extractors
# Each extractor: (event JSON, argument) -> value or None.

Extractor = Callable[[dict[str, Any], str | None], Any]


def _scalar(*keys: str) -> Extractor:
    def extract(data: dict[str, Any], _arg: str | None) -> Any:
        value = _get(data, *keys)
        if value is MISSING or value is None:
            return None
        return as_text(value)
    return extract


def _string_list(*keys: str) -> Extractor:
    def extract(data: dict[str, Any], _arg: str | None) -> Any:
        value = _get(data, *keys)
        if not isinstance(value, list):
            return None
        return [as_text(v) for v in value if v is not None]
    return extract


def _per_container(kind: str, *keys: str, skip_missing: bool = False) -> Extractor:
    """One value per container of ``spec.<kind>``.

    The plugin drops containers without the value for ``privileged`` (so
    ``intersects (true)`` means "any container privileged") and gives up on
    the whole field for the other flags when one container lacks it.
    """
    def extract(data: dict[str, Any], arg: str | None) -> Any:
        arr = _array(data, _index(arg), "requestObject", "spec", kind)
        if arr is None:
            return None
        out: list[str] = []
        for container in arr:
            value = _get(container, *keys)
            if value is MISSING or value is None:
                if skip_missing:
                    continue
                return None
            out.append(as_text(value))
        return out
    return extract


def _per_container_flat(kind: str, *path: str) -> Extractor:
    """Array-valued container attributes (command, args, added capabilities) flattened
    over containers."""
    def extract(data: dict[str, Any], arg: str | None) -> Any:
        arr = _array(data, _index(arg), "requestObject", "spec", kind)
        if arr is None:
            return None
        out: list[str] = []
        for container in arr:
            value = _get(container, *path)
            if isinstance(value, list):
                out.extend(as_text(v) for v in value if v is not None)
        return out
    return extract


def _capabilities(kind: str) -> Extractor:
    return _per_container_flat(kind, "securityContext", "capabilities", "add")


def _images(kind: str, repository: bool) -> Extractor:
    def extract(data: dict[str, Any], arg: str | None) -> Any:
        arr = _array(data, _index(arg), "requestObject", "spec", kind)
        if arr is None:
            return None
        out: list[str] = []
        for container in arr:
            image = _get(container, "image")
            if image is MISSING or image is None:
                return None
            text = as_text(image)
            out.append(_image_repository(text) if repository else text)
        return out
    return extract


def _host_ports(kind: str) -> Extractor:
    def extract(data: dict[str, Any], arg: str | None) -> Any:
        arr = _array(data, _index(arg), "requestObject", "spec", kind)
        if arr is None:
            return None
        out: list[str] = []
        for container in arr:
            ports = _get(container, "ports")
            if ports is MISSING or ports is None:
                continue
            if not isinstance(ports, list):
                return None
            for port in ports:
                # with hostNetwork the containerPort is the host port
                value = _get(port, "hostPort")
                if value is MISSING:
                    value = _get(port, "containerPort")
                if value is not MISSING and value is not None:
                    out.append(as_text(value))
        return out
    return extract


def _effective(kind: str, key: str) -> Extractor:
    """Container securityContext value, else the pod's, else "0" (root)."""
    def extract(data: dict[str, Any], arg: str | None) -> Any:
        pod_value = _get(data, "requestObject", "spec", "securityContext", key)
        default = "0" if pod_value is MISSING or pod_value is None else as_text(pod_value)
        arr = _array(data, _index(arg), "requestObject", "spec", kind)
        if arr is None:
            return None
        out: list[str] = []
        for container in arr:
            value = _get(container, "securityContext", key)
            out.append(default if value is MISSING or value is None else as_text(value))
        return out
    return extract


def _any_privileged(data: dict[str, Any], _arg: str | None) -> Any:
    arr = _array(data, None, "requestObject", "spec", "containers")
    if arr is None:
        return None
    return "true" if any(_get(c, "securityContext", "privileged") is True for c in arr) else "false"


def _first(extractor: Extractor) -> Extractor:
    def extract(data: dict[str, Any], _arg: str | None) -> Any:
        values = extractor(data, "0")
        return values[0] if values else None
    return extract


def _uri_param(data: dict[str, Any], arg: str | None) -> Any:
    uri = data.get("requestURI")
    if not isinstance(uri, str) or not arg:
        return None
    values = parse_qs(urlsplit(uri).query, keep_blank_values=True).get(arg)
    return values[0] if values else None


def _rules_field(key: str) -> Extractor:
    def extract(data: dict[str, Any], arg: str | None) -> Any:
        arr = _array(data, _index(arg), "requestObject", "rules")
        if arr is None:
            return None
        out: list[str] = []
        for rule in arr:
            values = _get(rule, key)
            if isinstance(values, list):
                out.extend(as_text(v) for v in values if v is not None)
        return out
    return extract


def _volumes(*keys: str) -> Extractor:
    def extract(data: dict[str, Any], arg: str | None) -> Any:
        arr = _array(data, _index(arg), "requestObject", "spec", "volumes")
        if arr is None:
            return None
        out: list[str] = []
        for volume in arr:
            value = _get(volume, *keys)
            if value is not MISSING and value is not None:
                out.append(as_text(value))
        return out
    return extract


def _volume_types(data: dict[str, Any], arg: str | None) -> Any:
    arr = _array(data, _index(arg), "requestObject", "spec", "volumes")
    if arr is None:
        return None
    return [key for volume in arr if isinstance(volume, dict) for key in volume if key != "name"]


def _volume_hostpath_prefix(data: dict[str, Any], arg: str | None) -> Any:
    paths = _volumes("hostPath", "path")(data, None)
    if paths is None or not arg:
        return None
    if arg.endswith("*"):
        prefix = arg[:-1]
        return "true" if any(p.startswith(prefix) for p in paths) else "false"
    return "true" if arg in paths else "false"


def _subjects_of(kind: str, namespaced: bool = False) -> Extractor:
    def extract(data: dict[str, Any], _arg: str | None) -> Any:
        subjects = _get(data, "requestObject", "subjects")
        if not isinstance(subjects, list):
            return None
        out: list[str] = []
        for subject in subjects:
            if not isinstance(subject, dict) or subject.get("kind") != kind:
                continue
            name = subject.get("name")
            if not isinstance(name, str):
                continue
            if namespaced:
                out.append(f"{subject.get('namespace', '')}:{name}")
            else:
                out.append(name)
        return out
    return extract


def _always_true(_data: dict[str, Any], _arg: str | None) -> Any:
    # The plugin answers "true" for this deprecated field whatever the event.
    return "true"


def _json_value(data: dict[str, Any], arg: str | None) -> Any:
    value = json_pointer(data, arg or "")
    if value is MISSING or value is None:
        return None
    return as_text(value)


def _json_obj(data: dict[str, Any], _arg: str | None) -> Any:
    return orjson.dumps(data).decode()


# Time fields need the event, not only its JSON: marked by these sentinels.
def _time_rawtime(event: Any) -> int:
    return int(event.ts)


def _time_text(event: Any) -> str:
    return timefmt.clock(event.ts, utc=True)


def _time_iso(event: Any) -> str:
    return timefmt.iso8601(event.ts)


# --------------------------------------------------------------------------- field table

S = FieldType.STRING
N = ArgMode.NONE
IDX = ArgMode.INDEX_OPTIONAL
KEY = ArgMode.KEY_REQUIRED

_FIELDS: list[tuple[FieldDef, Extractor | None, Callable[[Any], Any] | None]] = []


def _add(name: str, desc: str, extractor: Extractor | None = None, *, arg: ArgMode = N,
         is_list: bool = False, deprecated: bool = False, ftype: FieldType = S,
         from_event: Callable[[Any], Any] | None = None) -> None:
    _FIELDS.append((FieldDef(name=name, type=ftype, desc=desc, arg=arg, is_list=is_list,
                             deprecated=deprecated), extractor, from_event))


_add("ka.auditid", "unique id of the audit event", _scalar("auditID"))
_add("ka.stage", "stage of the request (RequestReceived, ResponseComplete...)", _scalar("stage"))
_add("ka.auth.decision", "authorization decision (allow/forbid)",
     _scalar("annotations", "authorization.k8s.io/decision"))
_add("ka.auth.reason", "why the request was authorized",
     _scalar("annotations", "authorization.k8s.io/reason"))
_add("ka.auth.openshift.decision", "OpenShift authorization decision",
     _scalar("annotations", "authorization.openshift.io/decision"))
_add("ka.auth.openshift.username", "OpenShift user name",
     _scalar("annotations", "authorization.openshift.io/username"))
_add("ka.user.name", "user performing the request", _scalar("user", "username"))
_add("ka.user.groups", "groups of the user performing the request",
     _string_list("user", "groups"), is_list=True)
_add("ka.impuser.name", "impersonated user name", _scalar("impersonatedUser", "username"))
_add("ka.verb", "action of the request (get, create, delete...)", _scalar("verb"))
_add("ka.uri", "request URI as sent by the client", _scalar("requestURI"))
_add("ka.uri.param", "one query parameter of the URI: ka.uri.param[command]", _uri_param,
     arg=KEY)
_add("ka.target.name", "name of the target object", _scalar("objectRef", "name"))
_add("ka.target.namespace", "namespace of the target object", _scalar("objectRef", "namespace"))
_add("ka.target.resource", "resource of the target object (pods, secrets...)",
     _scalar("objectRef", "resource"))
_add("ka.target.subresource", "subresource of the target object (exec, attach...)",
     _scalar("objectRef", "subresource"))
_add("ka.target.pod.name", "pod name when the target is a pod subresource",
     _scalar("objectRef", "name"))
_add("ka.req.binding.subjects", "subjects (JSON) linked by a (cluster) role binding",
     _string_list("requestObject", "subjects"), is_list=True)
_add("ka.req.binding.subjects.user_names", "user names linked by a role binding",
     _subjects_of("User"), is_list=True)
_add("ka.req.binding.subjects.serviceaccount_names", "service accounts linked by a role binding",
     _subjects_of("ServiceAccount"), is_list=True)
_add("ka.req.binding.subjects.serviceaccount_ns_names",
     "namespace:name of service accounts linked by a role binding",
     _subjects_of("ServiceAccount", namespaced=True), is_list=True)
_add("ka.req.binding.subjects.group_names", "groups linked by a role binding",
     _subjects_of("Group"), is_list=True)
_add("ka.req.binding.role", "role referenced by a (cluster) role binding",
     _scalar("requestObject", "roleRef", "name"))
_add("ka.req.binding.subject.has_name", "deprecated; kept for old rules", _always_true,
     arg=KEY, deprecated=True)
_add("ka.req.configmap.name", "name of the configmap in the request",
     _scalar("objectRef", "name"))
_add("ka.req.configmap.obj", "data of the configmap in the request (JSON)",
     _scalar("requestObject", "data"))
_add("ka.req.container.image", "image of the first container (deprecated)",
     _first(_images("containers", False)), deprecated=True)
_add("ka.req.container.image.repository", "image repository of the first container (deprecated)",
     _first(_images("containers", True)), deprecated=True)
_add("ka.req.container.host_network", "alias of ka.req.pod.host_network (deprecated)",
     _scalar("requestObject", "spec", "hostNetwork"), deprecated=True)
_add("ka.req.container.privileged", "true when any container is privileged (deprecated)",
     _any_privileged, deprecated=True)
_add("ka.req.pod.host_ipc", "hostIPC flag of the pod", _scalar("requestObject", "spec", "hostIPC"))
_add("ka.req.pod.host_network", "hostNetwork flag of the pod",
     _scalar("requestObject", "spec", "hostNetwork"))
_add("ka.req.pod.host_pid", "hostPID flag of the pod", _scalar("requestObject", "spec", "hostPID"))
_add("ka.req.pod.run_as_user", "pod-level runAsUser",
     _scalar("requestObject", "spec", "securityContext", "runAsUser"))
_add("ka.req.pod.run_as_group", "pod-level runAsGroup",
     _scalar("requestObject", "spec", "securityContext", "runAsGroup"))
_add("ka.req.pod.fs_group", "pod-level fsGroup",
     _scalar("requestObject", "spec", "securityContext", "fsGroup"))
_add("ka.req.pod.supplemental_groups", "pod-level supplementalGroups",
     _string_list("requestObject", "spec", "securityContext", "supplementalGroups"), is_list=True)

_KIND_TEXT = {"containers": "containers", "initContainers": "init containers",
              "ephemeralContainers": "ephemeral containers"}
for _kind, _what in _KIND_TEXT.items():
    _p = f"ka.req.pod.{_kind}"
    _add(f"{_p}.name", f"names of the pod's {_what}", _per_container(_kind, "name"),
         arg=IDX, is_list=True)
    _add(f"{_p}.image", f"images of the pod's {_what}", _images(_kind, False),
         arg=IDX, is_list=True)
    _add(f"{_p}.image.repository", f"image repositories of the pod's {_what}",
         _images(_kind, True), arg=IDX, is_list=True)
    _add(f"{_p}.command", f"commands of the pod's {_what}", _per_container_flat(_kind, "command"),
         arg=IDX, is_list=True)
    _add(f"{_p}.args", f"arguments of the pod's {_what}", _per_container_flat(_kind, "args"),
         arg=IDX, is_list=True)
    _add(f"{_p}.host_port", f"host ports of the pod's {_what}", _host_ports(_kind),
         arg=IDX, is_list=True)
    _add(f"{_p}.privileged", f"privileged flags of the pod's {_what} (unset ones left out)",
         _per_container(_kind, "securityContext", "privileged", skip_missing=True),
         arg=IDX, is_list=True)
    _add(f"{_p}.allow_privilege_escalation", f"allowPrivilegeEscalation of the pod's {_what}",
         _per_container(_kind, "securityContext", "allowPrivilegeEscalation"),
         arg=IDX, is_list=True)
    _add(f"{_p}.read_only_fs", f"readOnlyRootFilesystem of the pod's {_what}",
         _per_container(_kind, "securityContext", "readOnlyRootFilesystem"),
         arg=IDX, is_list=True)
    _add(f"{_p}.run_as_user", f"runAsUser of the pod's {_what}",
         _per_container(_kind, "securityContext", "runAsUser"), arg=IDX, is_list=True)
    _add(f"{_p}.eff_run_as_user", f"uid the pod's {_what} start with (container, pod, or 0)",
         _effective(_kind, "runAsUser"), arg=IDX, is_list=True)
    _add(f"{_p}.run_as_group", f"runAsGroup of the pod's {_what}",
         _per_container(_kind, "securityContext", "runAsGroup"), arg=IDX, is_list=True)
    _add(f"{_p}.eff_run_as_group", f"gid the pod's {_what} start with (container, pod, or 0)",
         _effective(_kind, "runAsGroup"), arg=IDX, is_list=True)
    _add(f"{_p}.proc_mount", f"procMount of the pod's {_what}",
         _per_container(_kind, "securityContext", "procMount"), arg=IDX, is_list=True)
    _add(f"{_p}.add_capabilities", f"capabilities added to the pod's {_what}",
         _capabilities(_kind), arg=IDX, is_list=True)

_add("ka.req.role.rules", "rules (JSON) of a role or cluster role",
     _string_list("requestObject", "rules"), is_list=True)
_add("ka.req.role.rules.apiGroups", "API groups named by a role's rules",
     _rules_field("apiGroups"), arg=IDX, is_list=True)
_add("ka.req.role.rules.nonResourceURLs", "non-resource URLs named by a role's rules",
     _rules_field("nonResourceURLs"), arg=IDX, is_list=True)
_add("ka.req.role.rules.verbs", "verbs named by a role's rules", _rules_field("verbs"),
     arg=IDX, is_list=True)
_add("ka.req.role.rules.resources", "resources named by a role's rules",
     _rules_field("resources"), arg=IDX, is_list=True)
_add("ka.req.service.type", "type of the service in the request",
     _scalar("requestObject", "spec", "type"))
_add("ka.req.service.ports", "ports (JSON) of the service in the request",
     lambda data, arg: _json_list(_array(data, _index(arg), "requestObject", "spec", "ports")),
     arg=IDX, is_list=True)
_add("ka.req.pod.volumes.hostpath", "hostPath paths of the pod's volumes",
     _volumes("hostPath", "path"), arg=IDX, is_list=True)
_add("ka.req.volume.hostpath", "true when a volume uses the host path (prefix with *; deprecated)",
     _volume_hostpath_prefix, arg=KEY, deprecated=True)
_add("ka.req.pod.volumes.flexvolume_driver", "flexVolume drivers of the pod's volumes",
     _volumes("flexVolume", "driver"), arg=IDX, is_list=True)
_add("ka.req.pod.volumes.volume_type", "volume types (hostPath, secret...) of the pod's volumes",
     _volume_types, arg=IDX, is_list=True)
_add("ka.resp.name", "name of the response object", _scalar("responseObject", "metadata", "name"))
_add("ka.response.code", "HTTP status code of the response", _scalar("responseStatus", "code"))
_add("ka.response.reason", "reason of the response (mostly for failures)",
     _scalar("responseStatus", "reason"))
_add("ka.useragent", "user agent of the client", _scalar("userAgent"))
_add("ka.sourceips", "IP addresses of the client", _string_list("sourceIPs"), arg=IDX,
     is_list=True)
_add("ka.cluster.name", "name of the cluster (from the webhook configuration)",
     from_event=lambda event: getattr(event, "cluster_name", None))

for _prefix in ("jevt", "json"):
    _add(f"{_prefix}.value", "value at a JSON pointer: jevt.value[/objectRef/resource]",
         _json_value, arg=KEY)
    _add(f"{_prefix}.obj", "the whole event as JSON", _json_obj)
    _add(f"{_prefix}.rawtime", "event time in nanoseconds since the epoch",
         ftype=FieldType.UINT, from_event=_time_rawtime)
    _add(f"{_prefix}.time", "event time as a clock string with nanoseconds",
         from_event=_time_text)
    _add(f"{_prefix}.time.iso8601", "event time in ISO 8601 (UTC)", from_event=_time_iso)


def _json_list(values: list[Any] | None) -> list[str] | None:
    if values is None:
        return None
    return [as_text(v) for v in values if v is not None]


K8S_AUDIT_FIELDS: dict[str, FieldDef] = {fdef.name: fdef for fdef, _, _ in _FIELDS}
_EXTRACTORS: dict[str, Extractor] = {f.name: e for f, e, _ in _FIELDS if e is not None}
_EVENT_FIELDS: dict[str, Callable[[Any], Any]] = {f.name: t for f, _, t in _FIELDS if t is not None}


def extract(event: AuditEvent, name: str, arg: str | None = None) -> Any:
    """Value of field ``name`` (with ``arg``) for ``event``: for tests and tools."""
    by_event = _EVENT_FIELDS.get(name)
    if by_event is not None:
        return by_event(event)
    return _EXTRACTORS[name](event.data, arg)


class K8sAuditFieldSource(FieldSource):
    """Field source of ``k8s_audit`` events.

    Accessors read :class:`AuditEvent` JSON; a ``DictEvent`` (replay files
    giving field values directly) is read by key, so recorded audit alerts
    replay too.
    """

    def __init__(self) -> None:
        super().__init__("k8s_audit", dict(K8S_AUDIT_FIELDS))

    def accessor(self, fdef: FieldDef, arg: str | None) -> Accessor:
        key = fdef.name if arg is None else f"{fdef.name}[{arg}]"
        by_event = _EVENT_FIELDS.get(fdef.name)
        if by_event is not None:
            def from_event(event: Any) -> Any:
                values = getattr(event, "values", None)
                if values is not None and key in values:
                    return values[key]
                return by_event(event)
            return from_event

        extractor = _EXTRACTORS[fdef.name]

        def from_json(event: Any) -> Any:
            try:
                data = event.data
            except AttributeError:
                return event.values.get(key)
            return extractor(data, arg)

        return from_json
