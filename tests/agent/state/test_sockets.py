"""The start-up socket inventory (``/proc/PID/net`` tables): what it reads from each table,
that a node's tens of thousands of TIME-WAIT rows neither cut the table short nor sit in
memory at once, and that it reads the real tables of this host."""

from __future__ import annotations

import os
import socket
import tracemalloc
from pathlib import Path

from falcopy.agent.state.sockets import SockEntry, inventory, proc_net_inventory

TCP_HEAD = ("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout"
            " inode\n")
UNIX_HEAD = "Num       RefCount Protocol Flags    Type St Inode Path\n"


def _tcp_row(i: int, local: str, remote: str, state: str, inode: int) -> str:
    return (f"{i:4d}: {local} {remote} {state} 00000000:00000000 00:00000000 00000000     0        0"
            f" {inode} 1 00000000ef86442f 100 0 0 10 0\n")


def _time_wait_rows(n: int) -> str:
    # no process owns a TIME-WAIT socket: inode 0
    return "".join(_tcp_row(i, f"0100007F:{1024 + i % 60000:04X}", "0100007F:9C40", "06", 0)
                   for i in range(n))


def _proc(tmp_path: Path, tcp: str = "", tcp6: str = "", udp: str = "", unix: str = "") -> str:
    net = tmp_path / "net"
    net.mkdir()
    for name, rows in (("tcp", tcp), ("tcp6", tcp6), ("udp", udp)):
        (net / name).write_text(TCP_HEAD + rows)
    (net / "unix").write_text(UNIX_HEAD + unix)
    return str(tmp_path)


def test_entries_of_each_table(tmp_path: Path) -> None:
    pid_dir = _proc(
        tmp_path,
        tcp=_time_wait_rows(3) + _tcp_row(3, "00000000:07E8", "00000000:0000", "0A", 1207)
        + _tcp_row(4, "0100007F:AE7D", "0200A8C0:01BB", "01", 1300),
        tcp6=_tcp_row(0, "00000000000000000000000001000000:0016", "00000000000000000000000000000000:0000",
                      "0A", 1400),
        udp=_tcp_row(0, "3500007F:0035", "00000000:0000", "07", 1500),
        unix="0000000090c4e990: 00000002 00000000 00010000 0001 01 6539794 /run/a b.sock\n"
             "00000000f69f66a3: 00000003 00000000 00000000 0001 03 6539795\n"
             "000000008c3703b3: 00000002 00000000 00010000 0005 01 6539796 @abstract\n"
             "0000000000000000: 00000002 00000000 00000000 0001 03 0\n")
    assert proc_net_inventory(pid_dir) == {
        1207: SockEntry(socket.AF_INET, "tcp", "0.0.0.0", 2024, "0.0.0.0", 0, True),
        1300: SockEntry(socket.AF_INET, "tcp", "127.0.0.1", 44669, "192.168.0.2", 443, False),
        1400: SockEntry(socket.AF_INET6, "tcp", "::1", 22, "::", 0, True),
        1500: SockEntry(socket.AF_INET, "udp", "127.0.0.53", 53, "0.0.0.0", 0, False),
        6539794: SockEntry(socket.AF_UNIX, "", "", 0, "", 0, True, "/run/a b.sock"),
        6539795: SockEntry(socket.AF_UNIX, "", "", 0, "", 0, False, ""),
        6539796: SockEntry(socket.AF_UNIX, "", "", 0, "", 0, True, "@abstract"),
    }


def test_a_table_of_many_time_wait_rows_is_read_to_its_end(tmp_path: Path) -> None:
    # ~10 MiB of rows before the socket a process owns (the reader used to stop at 8 MiB)
    rows = _time_wait_rows(80_000)
    assert len(rows) > 9 << 20
    pid_dir = _proc(tmp_path, tcp=rows + _tcp_row(0, "0100007F:1F90", "0100007F:D431", "01", 4242))
    assert proc_net_inventory(pid_dir) == {
        4242: SockEntry(socket.AF_INET, "tcp", "127.0.0.1", 8080, "127.0.0.1", 54321, False)}


def test_rows_are_not_held_in_memory_at_once(tmp_path: Path) -> None:
    # 30,000 TIME-WAIT rows (~4.5 MiB of text): read whole they held 10+ MiB at the peak
    pid_dir = _proc(tmp_path, tcp=_time_wait_rows(30_000), tcp6=_time_wait_rows(30_000))
    tracemalloc.start()
    try:
        inv = proc_net_inventory(pid_dir)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert inv == {}
    assert peak < 256 << 10, f"{peak} bytes at the peak"


def test_this_hosts_own_listener_is_in_the_inventory() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        # a socket's inode, as /proc/PID/fd and the net tables name it
        entry = inventory()[os.fstat(s.fileno()).st_ino]
        assert entry == SockEntry(socket.AF_INET, "tcp", "127.0.0.1", s.getsockname()[1], "0.0.0.0", 0, True)
