"""Which TCP ports a process tree listens on, read from /proc (Linux; no psutil needed)."""
from __future__ import annotations

import os
import socket
from pathlib import Path


def _address(hex_address: str) -> tuple[str, int]:
    """/proc/net/tcp{,6}'s ``HEXIP:HEXPORT`` (little-endian 32-bit words) -> (ip, port)."""
    ip, port = hex_address.split(":")
    raw = bytes.fromhex(ip)
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    family = socket.AF_INET if len(raw) == 4 else socket.AF_INET6
    return socket.inet_ntop(family, words), int(port, 16)


def listening() -> dict[str, tuple[str, int]]:
    """Socket inode -> (ip, port) of every listening TCP socket on the machine."""
    found = {}
    for name in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/net/{name}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A":  # TCP_LISTEN
                found[fields[9]] = _address(fields[1])
    return found


def ray_processes(root: int | None = None) -> list[int]:
    """`root` (default: this process) and all its descendants: a local Ray cluster's GCS,
    raylet, agents and workers are children of the process that started it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    seen, stack = [], [root or os.getpid()]
    while stack:
        pid = stack.pop()
        seen.append(pid)
        stack.extend(children.get(pid, []))
    return seen


def listening_of(pids: list[int]) -> list[tuple[int, str, tuple[str, int]]]:
    """(pid, command name, (ip, port)) of each listening socket the processes hold."""
    sockets, out = listening(), []
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            name = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            inode = link[8:-1] if link.startswith("socket:[") else None
            if inode in sockets:
                out.append((pid, name, sockets[inode]))
    return out
