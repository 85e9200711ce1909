"""Runtime defaults set before torch loads (ecma/runtime_env.py): what is set, that the user's values win,
that torch's OpenMP runtime really reads them, and the CPUs a cgroup quota allows.

That every job of the workflow gets them is tested in tests/test_workflow.py (the stub `ecma` records its
environment) and on SLURM in tests/test_slurm_demo.py (the training log).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ecma.runtime_env import SPIN_COUNT, apply_runtime_defaults, cgroup_cpu_quota, usable_cpus

REPO = Path(__file__).resolve().parent.parent
AFFINITY = len(os.sched_getaffinity(0))
RUNTIME_VARS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS", "OMP_DISPLAY_ENV")


def clean_env(**extra: str) -> dict:
    """This process's environment without the variables under test (pytest's process imported ecma, so
    its own os.environ has the defaults), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in RUNTIME_VARS}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    env.update(extra)
    return env


def libgomp_settings(code: str, **extra: str) -> dict[str, str]:
    """The settings torch's OpenMP runtime (libgomp) reports at start-up (OMP_DISPLAY_ENV=VERBOSE) in a fresh
    Python running ``code``."""
    p = subprocess.run([sys.executable, "-c", code], env=clean_env(OMP_DISPLAY_ENV="VERBOSE", **extra),
                       capture_output=True, text=True, check=True)
    settings = {}
    for line in (p.stdout + p.stderr).splitlines():
        key, sep, value = line.strip().partition(" = ")
        if sep:
            settings[key] = value.strip("'")
    if "GOMP_SPINCOUNT" not in settings:
        pytest.skip("this torch's OpenMP runtime is not GNU OpenMP (no GOMP_SPINCOUNT in OMP_DISPLAY_ENV)")
    return settings


# ---------------------------------------------------------------------------------------------------
# What is set, and what is kept


def test_an_empty_environment_gets_the_spin_count_and_nothing_else_without_a_quota(tmp_path):
    env: dict[str, str] = {}
    added = apply_runtime_defaults(env, cgroup_root=tmp_path, proc_cgroup=tmp_path / "none")
    assert added == {"GOMP_SPINCOUNT": "1000"} == env


@pytest.mark.parametrize("user", [{"GOMP_SPINCOUNT": "300000"}, {"OMP_WAIT_POLICY": "ACTIVE"},
                                  {"OMP_WAIT_POLICY": "passive"}, {"GOMP_SPINCOUNT": ""}])
def test_a_wait_setting_of_the_user_is_kept_and_none_is_added(user, tmp_path):
    env = dict(user)
    assert apply_runtime_defaults(env, cgroup_root=tmp_path, proc_cgroup=tmp_path / "none") == {}
    assert env == user


def test_torchs_openmp_runtime_reads_the_default_when_ecma_is_imported_first():
    assert libgomp_settings("import ecma, torch")["GOMP_SPINCOUNT"] == SPIN_COUNT == "1000"


def test_processes_started_by_an_ecma_process_inherit_it():
    # as decode workers, and the jobs of a Snakemake whose Snakefile imports ecma, do
    code = "import ecma, subprocess, sys; subprocess.run([sys.executable, '-c', 'import torch'], check=True)"
    assert libgomp_settings(code)["GOMP_SPINCOUNT"] == "1000"


def test_the_users_values_reach_torchs_runtime_unchanged():
    assert libgomp_settings("import ecma, torch", GOMP_SPINCOUNT="300000")["GOMP_SPINCOUNT"] == "300000"
    active = libgomp_settings("import ecma, torch", OMP_WAIT_POLICY="ACTIVE")
    assert active["OMP_WAIT_POLICY"] == "ACTIVE" and active["GOMP_SPINCOUNT"] == "30000000000"  # libgomp's ACTIVE
    assert libgomp_settings("import ecma, torch", OMP_WAIT_POLICY="PASSIVE")["GOMP_SPINCOUNT"] == "0"


def test_torch_imported_before_ecma_keeps_the_runtimes_own_default():
    # documented: the runtime reads its settings once, when torch loads it (libgomp's default 300,000 turns)
    assert libgomp_settings("import torch, ecma")["GOMP_SPINCOUNT"] == "300000"


# ---------------------------------------------------------------------------------------------------
# CPUs: the affinity mask, capped by a cgroup quota


def cgroup_v2(tmp_path: Path, limits: dict[str, str], path: str = "/user.slice/job") -> tuple[Path, Path]:
    """A cgroup v2 tree: ``limits`` maps a folder below the root ('' for the root) to its cpu.max."""
    root = tmp_path / "cgroup"
    (root / path.strip("/")).mkdir(parents=True)
    for folder, text in limits.items():
        (root / folder / "cpu.max").write_text(text + "\n")
    proc = tmp_path / "proc-cgroup"
    proc.write_text(f"0::{path}\n")
    return root, proc


def test_v2_quota_is_the_tightest_of_the_cgroup_and_its_ancestors(tmp_path):
    root, proc = cgroup_v2(tmp_path, {"": "max 100000", "user.slice": "250000 100000", "user.slice/job": "150000 100000"})
    assert cgroup_cpu_quota(root, proc) == pytest.approx(1.5)
    root, proc = cgroup_v2(tmp_path / "b", {"user.slice": "50000 100000", "user.slice/job": "max 100000"})
    assert cgroup_cpu_quota(root, proc) == pytest.approx(0.5)


def test_no_quota_anywhere_is_none(tmp_path):
    root, proc = cgroup_v2(tmp_path, {"": "max 100000", "user.slice/job": "max 100000"})
    assert cgroup_cpu_quota(root, proc) is None
    assert cgroup_cpu_quota(root, tmp_path / "missing") is None
    assert usable_cpus(root, proc) == AFFINITY


def test_a_container_sees_its_own_cgroup_at_the_mount(tmp_path):
    # /proc/self/cgroup names the host's path, which the container's mount does not have
    root = tmp_path / "cgroup"
    root.mkdir()
    (root / "cpu.max").write_text("200000 100000\n")
    proc = tmp_path / "proc-cgroup"
    proc.write_text("0::/kubepods/burstable/pod1234/abcd\n")
    assert cgroup_cpu_quota(root, proc) == pytest.approx(2.0)


def test_v1_quota_of_the_cpu_controller(tmp_path):
    root = tmp_path / "cgroup"
    job = root / "cpu,cpuacct" / "slurm" / "job_7"
    job.mkdir(parents=True)
    (job / "cpu.cfs_quota_us").write_text("300000\n")
    (job / "cpu.cfs_period_us").write_text("100000\n")
    (job.parent / "cpu.cfs_quota_us").write_text("-1\n")  # unlimited
    (job.parent / "cpu.cfs_period_us").write_text("100000\n")
    proc = tmp_path / "proc-cgroup"
    proc.write_text("12:memory:/slurm/job_7\n4:cpu,cpuacct:/slurm/job_7\n1:name=systemd:/\n")
    assert cgroup_cpu_quota(root, proc) == pytest.approx(3.0)
    (job / "cpu.cfs_quota_us").write_text("-1\n")
    assert cgroup_cpu_quota(root, proc) is None


def test_unreadable_or_malformed_files_are_no_quota(tmp_path):
    root, proc = cgroup_v2(tmp_path, {"user.slice/job": "lots 100000"})
    assert cgroup_cpu_quota(root, proc) is None
    root, proc = cgroup_v2(tmp_path / "b", {"user.slice/job": ""})
    assert cgroup_cpu_quota(root, proc) is None
    proc.write_text("garbage without colons\n")
    assert cgroup_cpu_quota(root, proc) is None


@pytest.mark.parametrize("cpu_max, expected", [("50000 100000", 1), ("100000 100000", 1), ("150000 100000", 2),
                                               ("1000000 100000", 10)])
def test_usable_cpus_round_the_quota_up_and_never_exceed_the_affinity_mask(cpu_max, expected, tmp_path):
    root, proc = cgroup_v2(tmp_path, {"user.slice/job": cpu_max})
    assert usable_cpus(root, proc) == min(AFFINITY, expected)


def test_a_quota_below_the_affinity_mask_sets_omp_num_threads_unless_the_user_did(tmp_path):
    root, proc = cgroup_v2(tmp_path, {"user.slice/job": "50000 100000"})  # half a CPU: 1 thread
    env: dict[str, str] = {}
    added = apply_runtime_defaults(env, cgroup_root=root, proc_cgroup=proc)
    if AFFINITY > 1:
        assert added == {"GOMP_SPINCOUNT": "1000", "OMP_NUM_THREADS": "1"}
    else:  # one CPU: OpenMP uses one thread anyway
        assert added == {"GOMP_SPINCOUNT": "1000"}
    env = {"OMP_NUM_THREADS": "8"}
    apply_runtime_defaults(env, cgroup_root=root, proc_cgroup=proc)
    assert env["OMP_NUM_THREADS"] == "8"


def test_a_quota_of_at_least_the_affinity_mask_sets_no_thread_count(tmp_path):
    root, proc = cgroup_v2(tmp_path, {"user.slice/job": f"{100000 * AFFINITY} 100000"})
    env: dict[str, str] = {}
    assert "OMP_NUM_THREADS" not in apply_runtime_defaults(env, cgroup_root=root, proc_cgroup=proc)
    assert math.isclose(cgroup_cpu_quota(root, proc), AFFINITY)


# ---------------------------------------------------------------------------------------------------
# torch's threads in training: train.threads, never more than the usable CPUs


@pytest.fixture
def torch_threads():
    import torch

    before = torch.get_num_threads()
    yield torch
    torch.set_num_threads(before)


@pytest.mark.parametrize("requested, usable, torch_default, expected", [
    (2, 4, 3, 2),      # train.threads as asked
    (8, 3, 3, 3),      # more than the CPUs: capped
    (None, 4, 3, 3),   # left to torch (OMP_NUM_THREADS / the affinity mask)
    (None, 1, 3, 1),   # ... capped too (OMP_NUM_THREADS above the job's CPUs)
])
def test_training_threads_follow_the_setting_and_the_cpus(requested, usable, torch_default, expected, torch_threads,
                                                          monkeypatch):
    import ecma.device

    monkeypatch.setattr(ecma.device, "usable_cpus", lambda: usable)
    torch_threads.set_num_threads(torch_default)
    assert ecma.device.set_cpu_threads(requested) == expected == torch_threads.get_num_threads()


def test_describe_names_the_settings_in_force():
    from ecma.runtime_env import describe

    assert describe({"GOMP_SPINCOUNT": "1000", "OMP_NUM_THREADS": "2", "PATH": "/bin"}) == "GOMP_SPINCOUNT=1000 OMP_NUM_THREADS=2"
    assert describe({"OMP_WAIT_POLICY": "ACTIVE"}) == "OMP_WAIT_POLICY=ACTIVE"
    assert describe({}) == "OpenMP defaults"
