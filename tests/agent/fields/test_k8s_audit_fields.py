"""k8s_audit field values computed from audit event JSON (k8saudit plugin semantics)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from falcopy.engine.event import DictEvent, Event
from falcopy.engine.fields import AuditEvent, K8sAuditFieldSource, default_sources
from falcopy.engine.fields.k8s_audit import MISSING, json_pointer, parse_k8s_time


def _trace(fixtures: Path, name: str) -> AuditEvent:
    line = (fixtures / "trace_files" / "k8s_audit" / name).read_text().splitlines()[0]
    return AuditEvent.from_json(line)


def value(event: Any, field: str) -> Any:
    """Read ``field`` (with an optional ``[arg]``) the way the engine does."""
    source = default_sources()["k8s_audit"]
    name, _, rest = field.partition("[")
    arg = rest[:-1] if rest else None
    resolved = source.lookup(name)
    assert resolved is not None, field
    fdef, dotted = resolved
    return source.accessor(fdef, arg if arg is not None else dotted)(event)


def _pod(spec: dict[str, Any], **extra: Any) -> AuditEvent:
    data = {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse",
        "auditID": "a1", "stage": "ResponseComplete", "verb": "create",
        "requestURI": "/api/v1/namespaces/default/pods",
        "user": {"username": "alice", "groups": ["dev", "system:authenticated"]},
        "objectRef": {"resource": "pods", "namespace": "default", "name": "p1", "apiVersion": "v1"},
        "responseStatus": {"code": 201},
        "requestObject": {"kind": "Pod", "spec": spec},
        "requestReceivedTimestamp": "2024-05-01T10:00:00.123456Z",
        "stageTimestamp": "2024-05-01T10:00:00.223456789Z",
    }
    data.update(extra)
    return AuditEvent(data)


def test_audit_event_is_an_event() -> None:
    event = _pod({"containers": []})
    assert isinstance(event, Event)
    assert event.source == "k8s_audit" and event.type is None
    assert event.ts == parse_k8s_time("2024-05-01T10:00:00.223456789Z")
    assert event.ts % 1_000_000_000 == 223456789


def test_timestamp_fallbacks() -> None:
    data = {"kind": "Event", "requestReceivedTimestamp": "2018-10-26T13:42:46.764713Z"}
    assert AuditEvent(data).ts == 1540561366_764713000
    assert AuditEvent({"kind": "Event"}, received_ns=42).ts == 42
    assert AuditEvent({"kind": "Event", "stageTimestamp": "garbage"}, received_ns=7).ts == 7
    assert parse_k8s_time("2018-10-26T13:42:46Z") == 1540561366 * 10**9
    assert parse_k8s_time("2018-10-26T15:42:46.5+02:00") == 1540561366_500000000


def test_scalar_fields_from_a_trace_file(falco_fixtures_dir: Path) -> None:
    event = _trace(falco_fixtures_dir, "attach_pod.json")
    assert value(event, "ka.verb") == "create"
    assert value(event, "ka.target.resource") == "pods"
    assert value(event, "ka.target.subresource") == "attach"
    assert value(event, "ka.target.namespace") == "default"
    assert value(event, "ka.target.name") == "nginx-deployment-7998647bdf-phvq7"
    assert value(event, "ka.user.name") == "minikube-user"
    assert value(event, "ka.user.groups") == ["system:masters", "system:authenticated"]
    assert value(event, "ka.auth.decision") == "allow"
    assert value(event, "ka.auth.reason") == ""
    # numbers come out as their JSON text, so `startswith 2` works on codes
    assert value(event, "ka.response.code") == "101"
    assert value(event, "ka.uri.param[container]") == "nginx1"
    assert value(event, "ka.uri.param[command]") is None
    assert value(event, "ka.sourceips") == ["192.168.99.1"]
    assert value(event, "ka.stage") == "ResponseStarted"
    # missing values are None (<NA>), never empty strings
    assert value(event, "ka.resp.name") is None
    assert value(event, "ka.req.pod.containers.image") is None
    assert value(event, "ka.impuser.name") is None


def test_pod_fields_from_a_trace_file(falco_fixtures_dir: Path) -> None:
    event = _trace(falco_fixtures_dir, "create_nginx_pod_privileged.json")
    assert value(event, "ka.req.pod.containers.privileged") == ["true"]
    assert value(event, "ka.req.pod.containers.image") == ["nginx"]
    assert value(event, "ka.req.pod.containers.image.repository") == ["nginx"]
    assert value(event, "ka.resp.name") == "nginx-deployment-5cdcc99dbf-rgw6z"
    assert value(event, "ka.req.pod.initContainers.privileged") is None


def test_privileged_lists_skip_unset_containers() -> None:
    event = _pod({"containers": [
        {"name": "a", "image": "docker.io/library/nginx:1.25"},
        {"name": "b", "image": "quay.io/x/y@sha256:abc", "securityContext": {"privileged": True}},
        {"name": "c", "image": "busybox", "securityContext": {"privileged": False}},
    ]})
    assert value(event, "ka.req.pod.containers.privileged") == ["true", "false"]
    assert value(event, "ka.req.pod.containers.privileged[1]") == ["true"]
    assert value(event, "ka.req.pod.containers.privileged[0]") == []
    assert value(event, "ka.req.pod.containers.privileged[9]") is None
    assert value(event, "ka.req.container.privileged") == "true"
    assert value(event, "ka.req.pod.containers.image.repository") == [
        "docker.io/library/nginx", "quay.io/x/y", "busybox"]
    assert value(event, "ka.req.container.image") == "docker.io/library/nginx:1.25"
    assert value(event, "ka.req.pod.containers.name") == ["a", "b", "c"]
    # a flag one container leaves unset makes the whole list unavailable
    assert value(event, "ka.req.pod.containers.allow_privilege_escalation") is None


def test_security_context_and_host_namespaces() -> None:
    event = _pod({
        "hostNetwork": True, "hostPID": False,
        "securityContext": {"runAsUser": 1000, "fsGroup": 2000, "supplementalGroups": [1, 2]},
        "containers": [
            {"name": "a", "image": "a", "securityContext": {
                "runAsUser": 0, "allowPrivilegeEscalation": True, "readOnlyRootFilesystem": False,
                "capabilities": {"add": ["NET_ADMIN", "SYS_ADMIN"]}, "procMount": "Unmasked"},
             "ports": [{"containerPort": 80, "hostPort": 8080}, {"containerPort": 443}],
             "command": ["/bin/sh", "-c"], "args": ["sleep 1"]},
            {"name": "b", "image": "b", "securityContext": {
                "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                "procMount": "Default"}},
        ],
        "initContainers": [{"name": "i", "image": "alpine:3", "securityContext": {"privileged": True}}],
        "ephemeralContainers": [{"name": "e", "image": "busybox:1"}],
        "volumes": [{"name": "v1", "hostPath": {"path": "/var/run/docker.sock"}},
                    {"name": "v2", "secret": {"secretName": "s"}},
                    {"name": "v3", "flexVolume": {"driver": "x/y"}}],
    })
    assert value(event, "ka.req.pod.host_network") == "true"
    assert value(event, "ka.req.pod.host_pid") == "false"
    assert value(event, "ka.req.pod.host_ipc") is None
    assert value(event, "ka.req.pod.run_as_user") == "1000"
    assert value(event, "ka.req.pod.containers.eff_run_as_user") == ["0", "1000"]
    assert value(event, "ka.req.pod.containers.eff_run_as_group") == ["0", "0"]
    assert value(event, "ka.req.pod.containers.allow_privilege_escalation") == ["true", "false"]
    assert value(event, "ka.req.pod.containers.read_only_fs") == ["false", "true"]
    assert value(event, "ka.req.pod.containers.add_capabilities") == ["NET_ADMIN", "SYS_ADMIN"]
    assert value(event, "ka.req.pod.containers.proc_mount") == ["Unmasked", "Default"]
    assert value(event, "ka.req.pod.containers.host_port") == ["8080", "443"]
    assert value(event, "ka.req.pod.containers.command") == ["/bin/sh", "-c"]
    assert value(event, "ka.req.pod.containers.args") == ["sleep 1"]
    assert value(event, "ka.req.pod.fs_group") == "2000"
    assert value(event, "ka.req.pod.supplemental_groups") == ["1", "2"]
    assert value(event, "ka.req.pod.initContainers.privileged") == ["true"]
    assert value(event, "ka.req.pod.initContainers.image.repository") == ["alpine"]
    assert value(event, "ka.req.pod.ephemeralContainers.image") == ["busybox:1"]
    assert value(event, "ka.req.pod.ephemeralContainers.privileged") == []
    assert value(event, "ka.req.pod.volumes.hostpath") == ["/var/run/docker.sock"]
    assert value(event, "ka.req.pod.volumes.flexvolume_driver") == ["x/y"]
    assert value(event, "ka.req.pod.volumes.volume_type") == ["hostPath", "secret", "flexVolume"]
    assert value(event, "ka.req.volume.hostpath[/var/run/docker.sock]") == "true"
    assert value(event, "ka.req.volume.hostpath[/var/run*]") == "true"
    assert value(event, "ka.req.volume.hostpath[/etc]") == "false"


def test_binding_and_role_fields(falco_fixtures_dir: Path) -> None:
    event = _trace(falco_fixtures_dir, "attach_cluster_admin_role.json")
    assert value(event, "ka.req.binding.role") == "cluster-admin"
    subjects = value(event, "ka.req.binding.subjects")
    assert [json.loads(s)["name"] for s in subjects] == ["minikube"]
    assert value(event, "ka.req.binding.subjects.user_names") == ["minikube"]
    assert value(event, "ka.req.binding.subjects.group_names") == []

    role = AuditEvent({"kind": "Event", "requestObject": {"rules": [
        {"apiGroups": [""], "resources": ["pods", "pods/exec"], "verbs": ["get", "create"]},
        {"nonResourceURLs": ["/healthz"], "verbs": ["*"]},
    ]}})
    assert value(role, "ka.req.role.rules.resources") == ["pods", "pods/exec"]
    assert value(role, "ka.req.role.rules.verbs") == ["get", "create", "*"]
    assert value(role, "ka.req.role.rules.verbs[1]") == ["*"]
    assert value(role, "ka.req.role.rules.apiGroups") == [""]
    assert value(role, "ka.req.role.rules.nonResourceURLs") == ["/healthz"]
    assert len(value(role, "ka.req.role.rules")) == 2


def test_configmap_and_service_fields(falco_fixtures_dir: Path) -> None:
    event = _trace(falco_fixtures_dir, "create_configmap_sensitive_values.json")
    obj = value(event, "ka.req.configmap.obj")
    assert isinstance(obj, str) and json.loads(obj)
    assert value(event, "ka.req.configmap.name") == value(event, "ka.target.name")
    svc = _trace(falco_fixtures_dir, "create_nginx_service_nodeport.json")
    assert value(svc, "ka.req.service.type") == "NodePort"
    ports = value(svc, "ka.req.service.ports")
    assert ports and all("port" in json.loads(p) for p in ports)


def test_json_pointer_fields(falco_fixtures_dir: Path) -> None:
    event = _trace(falco_fixtures_dir, "create_nginx_pod_unprivileged.json")
    assert value(event, "jevt.value[/annotations/authorization.k8s.io~1decision]") == "allow"
    assert value(event, "jevt.value[/a~1~0b]") is None
    assert value(event, "jevt.value[/stage]") == "ResponseComplete"
    assert value(event, "jevt.value[/requestObject/spec/containers/0/image]") == "nginx"
    assert value(event, "jevt.value[/requestObject/spec/containers/9/image]") is None
    spec = json.loads(value(event, "jevt.value[/requestObject/spec]"))
    assert spec["containers"][0]["name"]
    assert json.loads(value(event, "jevt.obj")) == event.data
    assert value(event, "jevt.rawtime") == event.ts
    assert value(event, "json.value[/verb]") == "create"
    assert value(event, "jevt.time.iso8601").endswith("Z")
    assert json_pointer({"a/b": {"~": [1, 2]}}, "/a~1b/~0/1") == 2
    assert json_pointer([1], "/01") is MISSING and json_pointer([1], "/0") == 1
    assert json_pointer({"a": 1}, "a") is MISSING and json_pointer({"a": 1}, "/a/b") is MISSING


def test_dict_events_replay_through_the_audit_source() -> None:
    source = K8sAuditFieldSource()
    fdef, _ = source.lookup("ka.verb") or (None, None)
    assert fdef is not None
    event = DictEvent({"ka.verb": "delete"}, source="k8s_audit")
    assert source.accessor(fdef, None)(event) == "delete"


@pytest.mark.parametrize("name", sorted(default_sources()["k8s_audit"].fields))
def test_every_audit_field_is_safe_on_an_empty_event(name: str) -> None:
    """No field may raise on an event lacking everything: it is None (or a fixed value)."""
    source = default_sources()["k8s_audit"]
    fdef = source.fields[name]
    arg = "x" if fdef.arg.value == "key" else None
    result = source.accessor(fdef, arg)(AuditEvent({"kind": "Event"}, received_ns=1))
    assert result is None or name in {
        "ka.req.binding.subject.has_name", "jevt.obj", "json.obj", "jevt.rawtime", "json.rawtime",
        "jevt.time", "json.time", "jevt.time.iso8601", "json.time.iso8601"}


@pytest.mark.parametrize("text", [b"not json", b"[1, 2]", b'"Event"', b"", b"{"])
def test_from_json_rejects_non_objects(text: bytes) -> None:
    with pytest.raises(ValueError):
        AuditEvent.from_json(text)


def test_constructor_rejects_non_objects() -> None:
    with pytest.raises(TypeError):
        AuditEvent([{"kind": "Event"}])  # type: ignore[arg-type]
