"""What the sandbox's real node costs the host: memory and CPU of its processes, read from /proc.

The node's processes are those started with one of its directories on their
command line (sandbox/node-common.sh, sandbox/docker-common.sh): the kubelet,
kube-proxy, cri-dockerd, the sandbox's dockerd and containerd, and the runc
shims of its containers. The pods' own processes (nginx) are not counted.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

#: The kernel's clock ticks per second, the unit of /proc/<pid>/stat's CPU times.
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Usage:
    """Resident memory (MiB, summed), CPU (% of one core, averaged over the window) and process count;
    ``by_name``: resident MiB and count per process name (kubelet, containerd-shim, ...)."""

    rss_mib: float
    cpu_percent: float
    processes: int
    by_name: dict[str, tuple[float, int]]

    def breakdown(self) -> str:
        """``kubelet 90 MiB, containerd-shim 20 x 13 MiB, ...``, largest first."""
        parts = []
        for name, (mib, count) in sorted(self.by_name.items(), key=lambda item: -item[1][0]):
            parts.append(f"{name} {mib:.0f} MiB" if count == 1 else f"{name} {count} x {mib / count:.0f} MiB")
        return ", ".join(parts)


def node_processes(directories: list[Path]) -> list[int]:
    """PIDs whose command line names a path under one of ``directories``."""
    marks = [f"{d}/".encode() for d in directories]
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if any(mark in cmdline for mark in marks):
            found.append(int(entry.name))
    return found


def _cpu_ticks(pid: int) -> int:
    # Fields 14 and 15 (utime, stime) after the ")" that ends the command name.
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8").rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def measure(directories: list[Path], seconds: float = 20.0) -> Usage:
    """The node's processes over ``seconds`` (default 20 s) of whatever the cluster is doing."""
    pids = node_processes(directories)
    before = {}
    for pid in pids:
        try:
            before[pid] = _cpu_ticks(pid)
        except OSError:
            continue
    time.sleep(seconds)
    ticks, rss = 0, 0
    by_name: dict[str, tuple[float, int]] = {}
    for pid, start in before.items():
        try:
            ticks += _cpu_ticks(pid) - start
            kib = _rss_kib(pid)
            name = Path(f"/proc/{pid}/comm").read_text(encoding="utf-8").strip()
        except OSError:
            continue
        rss += kib
        mib, count = by_name.get(name, (0.0, 0))
        by_name[name] = (mib + kib / 1024, count + 1)
    return Usage(rss / 1024, 100 * ticks / CLOCK_TICKS / seconds, len(before), by_name)
