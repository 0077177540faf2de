"""The syscall field registry covers what Falco rules files use."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from falcopy.engine.fields import (
    SYSCALL_EVENT_TYPES,
    ArgMode,
    FieldType,
    default_sources,
    is_known_event_type,
    lookup_field,
)

_FIELD = re.compile(r"(?<![\w.%])%?\(?((?:evt|proc|thread|fd|fs|user|group|container|k8s|ka|jevt)"
                    r"\.[A-Za-z0-9_.]+)(\[[^\]]*\])?")
_QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'")


def _fields_used(path: Path) -> set[str]:
    docs = YAML(typ="safe").load(path.read_text())
    used: set[str] = set()
    for item in docs or []:
        if not isinstance(item, dict):
            continue
        texts = [item.get("condition"), item.get("output")]
        for exc in item.get("exceptions") or []:
            fields = exc.get("fields") if isinstance(exc, dict) else None
            texts.extend([fields] if isinstance(fields, str) else fields or [])
        for text in texts:
            if isinstance(text, str):
                for match in _FIELD.finditer(_QUOTED.sub(" ", text)):
                    used.add(match.group(1).rstrip("."))
    return used


@pytest.mark.parametrize("name", ["falco_rules.yaml", "falco-incubating_rules.yaml",
                                  "falco-sandbox_rules.yaml", "falco-deprecated_rules.yaml",
                                  "k8s_audit_rules.yaml"])
def test_every_field_of_upstream_rules_resolves(compat_dir: Path, name: str) -> None:
    sources = default_sources()
    used = _fields_used(compat_dir / name)
    assert used, "the scan found no fields: the scanner is broken"
    source = "k8s_audit" if name.startswith("k8s") else "syscall"
    missing = sorted(f for f in used if lookup_field(sources, source, f) is None)
    assert missing == []


def test_unknown_field_does_not_resolve() -> None:
    sources = default_sources()
    assert lookup_field(sources, "syscall", "proc.nobody") is None
    assert lookup_field(sources, "syscall", "fd.name.extra") is None
    assert lookup_field(sources, "nosuchsource", "proc.name") is None
    # the audit fields belong to their own source only
    assert lookup_field(sources, "syscall", "ka.verb") is None
    assert lookup_field(sources, "k8s_audit", "proc.name") is None


def test_dotted_argument_forms() -> None:
    sources = default_sources()
    fdef, arg = lookup_field(sources, "syscall", "evt.arg.flags") or (None, None)
    assert fdef is not None and fdef.name == "evt.arg" and arg == "flags"
    fdef, arg = lookup_field(sources, "syscall", "k8s.pod.label.app") or (None, None)
    assert fdef is not None and fdef.name == "k8s.pod.label" and arg == "app"
    # names with dots of their own are fields, not arguments
    fdef, arg = lookup_field(sources, "syscall", "fd.sip.name") or (None, None)
    assert fdef is not None and fdef.name == "fd.sip.name" and arg is None
    fdef, arg = lookup_field(sources, "syscall", "proc.exe_ino.ctime_duration_proc_start") or (None, None)
    assert fdef is not None and fdef.type is FieldType.RELTIME


def test_field_shapes_match_falco() -> None:
    fields = default_sources()["syscall"].fields
    # the engine makes an index-optional field a list when no index is given
    assert fields["proc.aname"].arg is ArgMode.INDEX_OPTIONAL and not fields["proc.aname"].is_list
    assert fields["proc.name"].arg is ArgMode.NONE and not fields["proc.name"].is_list
    assert fields["k8s.pod.label"].arg is ArgMode.KEY_REQUIRED
    assert fields["container.mount.dest"].arg is ArgMode.KEY_REQUIRED
    assert fields["fd.net"].type is FieldType.IPNET
    assert fields["fd.sport"].type is FieldType.PORT
    assert fields["fd.sip"].type is FieldType.IPADDR
    assert fields["evt.rawres"].type is FieldType.INT
    assert fields["evt.buffer"].type is FieldType.BYTEBUF
    assert fields["user.uid"].type is FieldType.UINT
    assert fields["container.privileged"].type is FieldType.BOOL
    assert fields["evt.dir"].deprecated and fields["k8s.rs.name"].deprecated
    assert not fields["k8s.pod.name"].deprecated
    for fdef in fields.values():
        assert fdef.desc, fdef.name


def test_event_types() -> None:
    for name in ("open", "openat", "openat2", "execve", "execveat", "clone3", "connect",
                 "procexit", "container", "ptrace", "memfd_create", "userfaultfd", "setresuid32",
                 "pread", "signaldeliver", "init_module", "finit_module", "bpf"):
        assert is_known_event_type(name), name
    for name in ("opn", "execv", "", "ka.verb", "OPEN"):
        assert not is_known_event_type(name), name
    assert len(SYSCALL_EVENT_TYPES) > 350


def test_syscall_source_reads_dict_events() -> None:
    from falcopy.engine.event import DictEvent

    source = default_sources()["syscall"]
    fdef, _ = source.lookup("proc.aname") or (None, None)
    assert fdef is not None
    read = source.accessor(fdef, "2")
    event = DictEvent({"evt.type": "execve", "proc.aname[2]": "bash"})
    assert read(event) == "bash"
    assert source.accessor(fdef, None)(event) is None
