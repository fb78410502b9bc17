"""How many CPUs this process may use: its CPU affinity, and a cgroup CPU quota when one is set.

``os.cpu_count()`` counts the host's CPUs. In a container started with ``--cpus 2`` on a
64-core host it says 64, and a command that starts a worker per CPU would start 64 processes
to share two CPUs' worth of time. The quota is read from cgroup v2 (``cpu.max``) or v1
(``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``) for the process's own cgroup and each parent;
the smallest one counts, rounded up.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Final

__all__ = ["usable_cpus"]

_PROC_CGROUP: Final = Path("/proc/self/cgroup")
_CGROUP_ROOT: Final = Path("/sys/fs/cgroup")
_V1_CPU_DIRECTORIES: Final = ("cpu", "cpu,cpuacct", "cpuacct,cpu")


def usable_cpus(*, proc_cgroup: Path = _PROC_CGROUP, cgroup_root: Path = _CGROUP_ROOT) -> int:
    """The CPUs this process may run on, capped by its cgroup's CPU quota; at least 1."""
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        count = os.cpu_count() or 1
    quota = _quota(proc_cgroup, cgroup_root)
    if quota is not None:
        count = min(count, math.ceil(quota))
    return max(1, count)


def _quota(proc_cgroup: Path, cgroup_root: Path) -> float | None:
    """The smallest CPU quota (in CPUs) over the process's cgroups and their parents; ``None`` when none is set."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    limits: list[float] = []
    for line in lines:
        _hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        relative = path.strip().lstrip("/")
        if controllers == "":  # cgroup v2: one hierarchy, every controller
            for directory in _upwards(cgroup_root, relative):
                limits.extend(_v2_limit(directory))
        elif "cpu" in controllers.split(","):
            for name in _V1_CPU_DIRECTORIES:
                for directory in _upwards(cgroup_root / name, relative):
                    limits.extend(_v1_limit(directory))
    return min(limits, default=None)


def _upwards(root: Path, relative: str) -> list[Path]:
    """``root/relative`` and each parent up to ``root``."""
    directory = root / relative if relative else root
    directories = [directory]
    while directory != root and root in directory.parents:
        directory = directory.parent
        directories.append(directory)
    return directories


def _v2_limit(directory: Path) -> list[float]:
    try:
        quota, period = (directory / "cpu.max").read_text().split()[:2]
        return [] if quota == "max" else [int(quota) / int(period)]
    except (OSError, ValueError, ZeroDivisionError):
        return []


def _v1_limit(directory: Path) -> list[float]:
    try:
        quota = int((directory / "cpu.cfs_quota_us").read_text())
        period = int((directory / "cpu.cfs_period_us").read_text())
        return [] if quota <= 0 else [quota / period]
    except (OSError, ValueError, ZeroDivisionError):
        return []
