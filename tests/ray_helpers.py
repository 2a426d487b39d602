"""Ray test helpers: the TCP ports this test process and its child processes (Ray's GCS, raylets, object
stores, workers) listen on, read from /proc (Linux)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

LOOPBACK_HOSTS = {"127.0.0.1", "::ffff:127.0.0.1", "::1"}


def _process_tree(root: int) -> set[int]:
    """``root`` and every process below it."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # the process exited meanwhile
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        found.add(pid)
        todo.extend(children.get(pid, []))
    return found


def _socket_inodes(pids: set[int]) -> set[str]:
    inodes = set()
    for pid in pids:
        try:
            names = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for name in names:
            try:
                link = os.readlink(f"/proc/{pid}/fd/{name}")
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[len("socket:["):-1])
    return inodes


def _host(hex_address: str) -> str:
    raw = bytes.fromhex(hex_address)
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    return socket.inet_ntop(socket.AF_INET6, b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))


def listening_sockets(root: int | None = None) -> set[tuple[str, int]]:
    """``(host, port)`` of every TCP socket in LISTEN state held by ``root`` (default: this process) or
    a process below it."""
    inodes = _socket_inodes(_process_tree(root or os.getpid()))
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                address, _, port = fields[1].partition(":")
                found.add((_host(address), int(port, 16)))
    return found


def assert_listens_on_loopback_only(gcs_address: str) -> None:
    """Every listening socket of this process tree is on a loopback address, the GCS's among them."""
    sockets = listening_sockets()
    host, _, port = gcs_address.rpartition(":")
    assert host == "127.0.0.1", gcs_address
    assert int(port) in {p for _, p in sockets}, (gcs_address, sockets)  # the scan sees Ray's processes
    assert {h for h, _ in sockets} <= LOOPBACK_HOSTS, sockets
