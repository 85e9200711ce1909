"""How torch's CPU threads wait and how many there are: environment defaults set before torch loads.

torch's wheels run their CPU kernels on GNU OpenMP (``libgomp``, shipped with torch). Between two parallel
regions its idle threads spin, by default 300,000 turns of a pause loop (~8 ms on the 2-core AMD EPYC VM
of docs/benchmarks.md), before they sleep. On a machine where other work runs, a thread that spins holds a
CPU that the thread it waits for needs: the demo's training beside one busy process took 28x its time
alone, burning 21x the CPU time (bench/bench_contention.py). ``GOMP_SPINCOUNT=1000`` (~28 us there) still
spans the short gaps between the parallel regions of a step (~90% of them in an LLP-sized epoch), so the
idle speed is kept, while a thread that waits longer sleeps. ``OMP_WAIT_POLICY=PASSIVE`` (never spin) costs
every region a wake-up (~45 us there): ~5% of an LLP epoch and twice the demo's step time on an idle machine.

Where a cgroup CPU quota (``docker --cpus``, Kubernetes limits) allows fewer CPUs than the affinity mask
shows, ``OMP_NUM_THREADS`` is set to the quota's CPUs (rounded up): OpenMP counts the affinity mask only,
and threads beyond the quota are throttled by the kernel. SLURM's and ``taskset``'s CPU sets are the
affinity mask, which OpenMP already follows; Snakemake sets ``OMP_NUM_THREADS`` to each job's ``threads``.

:func:`apply_runtime_defaults` runs when ``ecma`` is imported (``ecma/__init__.py``), so before any ecma
module imports torch, in every ``ecma`` command and in Snakemake's own process (the Snakefile imports
ecma). Processes started from there inherit the environment: decode workers, and every job Snakemake
starts, locally or through sbatch (``--export=ALL``). A variable already set is kept, so a user overrides
a default by setting it: ``OMP_WAIT_POLICY=ACTIVE`` or ``GOMP_SPINCOUNT=300000`` (libgomp's own default) to
spin on a machine of one's own, ``OMP_WAIT_POLICY=PASSIVE`` never to spin, ``OMP_NUM_THREADS=N``. Code that
imports torch before ecma gets libgomp's defaults: the runtime reads them once, when torch loads it.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import MutableMapping, Optional

# GNU OpenMP's spin turns before an idle thread sleeps (its default: 300,000); why 1,000: the module's text.
SPIN_COUNT = "1000"
# Any of these set by the user is a choice of how threads wait: none of ours is added then.
WAIT_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
CGROUP_ROOT, PROC_CGROUP = Path("/sys/fs/cgroup"), Path("/proc/self/cgroup")


def apply_runtime_defaults(environ: MutableMapping[str, str] = os.environ, cgroup_root: Path = CGROUP_ROOT,
                           proc_cgroup: Path = PROC_CGROUP) -> dict[str, str]:
    """Set the defaults that ``environ`` lacks; returns those set."""
    added = {}
    if not any(name in environ for name in WAIT_VARIABLES):
        added["GOMP_SPINCOUNT"] = SPIN_COUNT
    if "OMP_NUM_THREADS" not in environ:
        allowed = usable_cpus(cgroup_root, proc_cgroup)
        if allowed < _affinity_cpus():
            added["OMP_NUM_THREADS"] = str(allowed)
    environ.update(added)
    return added


def describe(environ: MutableMapping[str, str] = os.environ) -> str:
    """The settings in force, for a job's log: 'GOMP_SPINCOUNT=1000 OMP_NUM_THREADS=2'."""
    shown = [f"{name}={environ[name]}" for name in (*WAIT_VARIABLES, "OMP_NUM_THREADS") if name in environ]
    return " ".join(shown) or "OpenMP defaults"


def usable_cpus(cgroup_root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> int:
    """The CPUs this process may use: its affinity mask (taskset, SLURM's CPU set), and no more than a cgroup
    CPU quota allows (rounded up; at least 1)."""
    cpus = _affinity_cpus()
    quota = cgroup_cpu_quota(cgroup_root, proc_cgroup)
    if quota is not None:
        cpus = min(cpus, max(1, math.ceil(quota)))
    return cpus


def _affinity_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def cgroup_cpu_quota(cgroup_root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> Optional[float]:
    """CPUs' worth of time per period that this process's cgroup and its ancestors allow (the tightest), or
    None where there is no quota or it cannot be read. cgroup v2 (``cpu.max``) and v1 (``cpu.cfs_quota_us``)."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    limits = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":  # v2: "0::/path"
            for folder in _cgroup_folders(cgroup_root, path):
                limits.append(_v2_limit(folder / "cpu.max"))
        elif "cpu" in controllers.split(","):  # v1: "N:cpu,cpuacct:/path"
            mount = next((cgroup_root / name for name in (controllers, "cpu", "cpu,cpuacct")
                          if (cgroup_root / name).is_dir()), None)
            if mount is not None:
                for folder in _cgroup_folders(mount, path):
                    limits.append(_v1_limit(folder))
    limits = [x for x in limits if x is not None]
    return min(limits) if limits else None


def _cgroup_folders(mount: Path, path: str) -> list[Path]:
    """The process's cgroup folder under ``mount`` and its ancestors up to the mount. Inside a container the
    path may name a cgroup of the host, absent here: the mount itself is then the container's own."""
    folder = mount / path.strip("/")
    if not folder.is_dir():
        return [mount]
    folders = [folder]
    while folder != mount and folder.parent != folder:
        folder = folder.parent
        folders.append(folder)
    return folders


def _v2_limit(path: Path) -> Optional[float]:
    try:
        quota, period = path.read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        return None


def _v1_limit(folder: Path) -> Optional[float]:
    try:
        quota = int((folder / "cpu.cfs_quota_us").read_text())
        period = int((folder / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None
