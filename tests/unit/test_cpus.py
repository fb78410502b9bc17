"""The CPUs a command may use: affinity, capped by a cgroup v1 or v2 CPU quota, read from real files."""

from __future__ import annotations

import os
from pathlib import Path

from costrouter.report.cpus import usable_cpus

AFFINITY = len(os.sched_getaffinity(0))


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_this_machine_reports_a_count_it_can_use() -> None:
    assert 1 <= usable_cpus() <= (os.cpu_count() or 1)


def test_a_cgroup_v2_quota_caps_the_count_rounded_up(tmp_path: Path) -> None:
    write(tmp_path / "proc", "0::/app/worker\n")
    write(tmp_path / "fs/app/worker/cpu.max", "50000 100000\n")  # half a CPU
    assert usable_cpus(proc_cgroup=tmp_path / "proc", cgroup_root=tmp_path / "fs") == 1
    write(tmp_path / "fs/app/worker/cpu.max", "max 100000\n")
    assert usable_cpus(proc_cgroup=tmp_path / "proc", cgroup_root=tmp_path / "fs") == AFFINITY
    write(tmp_path / "fs/app/cpu.max", "100000 100000\n")  # a parent's quota counts too
    assert usable_cpus(proc_cgroup=tmp_path / "proc", cgroup_root=tmp_path / "fs") == 1


def test_a_cgroup_v1_quota_caps_the_count(tmp_path: Path) -> None:
    write(tmp_path / "proc", "4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n0::/\n")
    write(tmp_path / "fs/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "30000\n")
    write(tmp_path / "fs/cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n")
    assert usable_cpus(proc_cgroup=tmp_path / "proc", cgroup_root=tmp_path / "fs") == 1
    write(tmp_path / "fs/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "-1\n")  # no quota
    assert usable_cpus(proc_cgroup=tmp_path / "proc", cgroup_root=tmp_path / "fs") == AFFINITY


def test_missing_or_unreadable_cgroup_files_leave_the_affinity(tmp_path: Path) -> None:
    assert usable_cpus(proc_cgroup=tmp_path / "absent", cgroup_root=tmp_path) == AFFINITY
    write(tmp_path / "proc", "garbage\n0::/x\n")
    write(tmp_path / "fs/x/cpu.max", "lots of cpus\n")
    assert usable_cpus(proc_cgroup=tmp_path / "proc", cgroup_root=tmp_path / "fs") == AFFINITY
    write(tmp_path / "fs/x/cpu.max", "100000 0\n")
    assert usable_cpus(proc_cgroup=tmp_path / "proc", cgroup_root=tmp_path / "fs") == AFFINITY
