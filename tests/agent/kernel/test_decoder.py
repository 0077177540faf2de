"""Decoder and layout contract checks that need no kernel: synthetic records."""

from __future__ import annotations

import random
import re
import struct
from pathlib import Path

from falcopy.agent.events.record import EVENT_ARGS, SyscallRecord
from falcopy.agent.kernel import layout
from falcopy.agent.kernel.decoder import HDR, Decoder, decode_sockaddr, decode_tuple

REPO = Path(__file__).resolve().parents[3]


def header(ev: str, size: int, res: int = 0, flags: int = 0, comm: bytes = b"sh") -> bytes:
    return HDR.pack(1_000, 7, res, size, layout.EVENT_IDS[ev], flags, 11, 10, 1, 11, 10, 0, 0, 0, 0,
                    0xFFFFFFFF, 0, 0, comm)


def var(data: bytes | None) -> bytes:
    if data is None:
        return struct.pack("<H", layout.ABSENT)
    return struct.pack("<H", len(data)) + data


def record(ev: str, scalars: list[int], variables: list[bytes | None], **kw: int) -> bytes:
    body = b"".join(struct.pack("<q", v) for v in scalars) + b"".join(var(v) for v in variables)
    return header(ev, layout.HDR_SIZE + len(body), **kw) + body


def test_enum_matches_layout() -> None:
    text = (REPO / "agent" / "bpf" / "events.h").read_text()
    body = text[text.index("EV_NONE = 0,") + len("EV_NONE = 0,"):text.index("EV_MAX")]
    body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
    names = [n.strip()[3:].lower() for n in body.replace("\n", " ").split(",") if n.strip()]
    # EV_GENERIC's records are named after their syscall: its layout entry is "syscall"
    assert names == [("generic" if name == layout.GENERIC else name) for name, _, _ in layout.EVENTS]


def test_event_args_contract_matches_layout() -> None:
    assert set(EVENT_ARGS) == set(layout.EVENT_IDS)
    for name, scalars, variables in layout.EVENTS:
        keys = {k for k, _ in scalars} | {k for k, _ in variables}
        if name in ("execve", "execveat"):
            keys = (keys - {"exe_args"}) | {"exe", "args", "exe_writable", "exe_upper_layer",
                                               "exe_lower_layer", "exe_from_memfd"}
        if name == "procexit":
            keys |= {"ret", "sig", "core"}
        if name == layout.GENERIC:
            keys = {"ID", "nativeID"}  # the raw registers get the kernel's argument names
        assert set(EVENT_ARGS[name]) == keys, name


def test_every_program_exists_in_the_sources() -> None:
    sources = "".join(p.read_text() for p in (REPO / "agent" / "bpf").glob("*.bpf.c"))
    for name in layout.EVENT_IDS:
        if name == "procexit":
            assert "on_procexit" in sources
        elif name == layout.GENERIC:
            assert 'SEC("raw_tp/sys_exit")' in sources
        else:
            assert re.search(rf"EXIT_PROG(_TP)?\({name}[,)]", sources), name


def test_openat_decodes() -> None:
    raw = record("openat", [-100, 0o100101, 0o644, 0xFE00, 42], [b"rel/\xffname\0", b"/tmp"], res=3)
    rec = Decoder().decode(raw, 0, len(raw), 5)
    assert isinstance(rec, SyscallRecord)
    assert rec.type == "openat" and rec.res == 3 and rec.ts == 1_005 and rec.comm == "sh"
    assert rec.args == {"dirfd": -100, "flags": 0o100101, "mode": 0o644, "dev": 0xFE00, "ino": 42,
                        "name": "rel/\udcffname", "dirpath": "/tmp"}
    assert rec.loginuid == 0xFFFFFFFF
    assert not rec.truncated


def test_absent_and_cut_fields() -> None:
    raw = record("rename", [], [None, b"b\0"])  # newpath present, dirpaths missing entirely
    rec = Decoder().decode(raw, 0, len(raw), 0)
    assert rec is not None and rec.args == {"newpath": "b"}
    # a length that runs past the end of the record: flagged, no exception
    bad = bytearray(record("unlink", [], [b"/x\0"]))
    struct.pack_into("<H", bad, layout.HDR_SIZE, 5000)
    rec = Decoder().decode(bytes(bad), 0, len(bad), 0)
    assert rec is not None and rec.truncated and "path" not in rec.args


def test_exec_post_processing() -> None:
    flags = layout.EXE_FROM_MEMFD | layout.EXE_DELETED | layout.EXE_WRITABLE
    raw = record("execve", [1, 1, 1, 0x8801, 1024, 0, 0, 0, 9, 0, 0, flags],
                 [None, b"payload\0-x\0", b"A=1\0", b"/", b"/memfd:p"], comm=b"payload")
    rec = Decoder().decode(raw, 0, len(raw), 0)
    assert rec is not None
    a = rec.args
    assert a["exe"] == "payload" and a["args"] == ["-x"] and a["env"] == ["A=1"]
    assert a["trusted_exepath"] == "/memfd:p (deleted)"
    assert a["exe_from_memfd"] and a["exe_writable"] and not a["exe_upper_layer"]
    assert a["exe_flags"] == layout.EXE_FROM_MEMFD | layout.EXE_WRITABLE
    assert a["tty"] == 0x8801


def test_sockaddrs_and_tuples() -> None:
    sin = struct.pack("<H", 2) + (8080).to_bytes(2, "big") + bytes([10, 0, 0, 1]) + bytes(8)
    assert decode_sockaddr(sin) == {"family": "inet", "ip": "10.0.0.1", "port": 8080}
    sin6 = struct.pack("<H", 10) + (443).to_bytes(2, "big") + bytes(4) + bytes(15) + b"\x01" + bytes(4)
    assert decode_sockaddr(sin6) == {"family": "inet6", "ip": "::1", "port": 443}
    assert decode_sockaddr(struct.pack("<H", 1) + b"\0abstract\0") == {"family": "unix", "path": "@abstract"}
    assert decode_sockaddr(b"\x01") == {"family": 0}
    blob = struct.pack("<HHHH16s16s", 2, 6, 40000, 80, bytes([127, 0, 0, 1]), bytes([10, 1, 2, 3]))
    assert decode_tuple(blob, server_side=False) == {"family": "inet", "l4proto": "tcp", "sip": "127.0.0.1",
                                                     "sport": 40000, "dip": "10.1.2.3", "dport": 80}
    assert decode_tuple(blob, server_side=True)["sip"] == "10.1.2.3"
    unix = struct.pack("<HHHH16s16s", 1, 0, 0, 0, b"", b"") + struct.pack("<H", 1) + b"/run/x.sock\0"
    assert decode_tuple(unix, server_side=False) == {"family": "unix", "path": "/run/x.sock"}


def test_random_garbage_never_raises() -> None:
    rnd = random.Random(1234)
    dec = Decoder()
    good = [record("openat", [-100, 0, 0, 0, 1], [b"/etc/passwd\0", None]),
            record("connect", [3], [b"\x02\x00\x00\x50\x7f\x00\x00\x01", b"\x00" * 40]),
            record("execve", [0] * 12, [None, b"a\0b\0", b"", b"/", b"/bin/a"])]
    for i in range(3000):
        raw = bytearray(rnd.choice(good))
        for _ in range(rnd.randint(1, 8)):
            raw[rnd.randrange(len(raw))] = rnd.randrange(256)
        if i % 3 == 0:
            raw = raw[:rnd.randrange(len(raw))]
        rec = dec.decode(bytes(raw), 0, len(raw), 0)
        assert rec is None or isinstance(rec, SyscallRecord)


def test_generic_records_are_named_after_their_syscall(tmp_path: Path) -> None:
    from falcopy.agent.kernel.syscalls import SyscallTable

    fmt = tmp_path / "events" / "syscalls" / "sys_enter_kill" / "format"
    fmt.parent.mkdir(parents=True)
    fmt.write_text("name: sys_enter_kill\nformat:\n"
                   "\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n"
                   "\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;\n"
                   "\tfield:pid_t pid;\toffset:16;\tsize:8;\tsigned:0;\n"
                   "\tfield:int sig;\toffset:24;\tsize:8;\tsigned:0;\n")
    table = SyscallTable.build({"kill"}, abi={62: "kill", 175: "init_module", 17: "pread64"})
    assert table.nr("pread") == 17 and table.nr("pread64") is None  # Falco's name
    assert table.implemented(62) is True and table.implemented(175) is False
    dec = Decoder()
    dec.set_syscalls(table, tmp_path)
    minus_one = (1 << 64) - 1
    raw = record(layout.GENERIC, [62, 0xFFFFFFFF, 9, 0, 0, 0, 0], [], res=-3)
    rec = dec.decode(raw, 0, len(raw), 0)
    assert rec is not None and rec.type == "kill" and rec.res == -3
    assert rec.args == {"ID": "kill", "nativeID": 62, "pid": -1, "sig": 9}
    raw = record(layout.GENERIC, [175, -1, 64, 0, 0, 0, 0], [], res=-38)
    rec = dec.decode(raw, 0, len(raw), 0)
    assert rec is not None and rec.type == "init_module"
    assert rec.args == {"ID": "init_module", "nativeID": 175, "a0": minus_one, "a1": 64, "a2": 0, "a3": 0,
                        "a4": 0, "a5": 0}
    # before the probe knows the table, a generic record cannot be named: skipped, counted
    fresh = Decoder()
    assert fresh.decode(raw, 0, len(raw), 0) is None and fresh.unknown == 1
