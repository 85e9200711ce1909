"""The slurm executor against a real single-node SLURM cluster (workflow/cluster/).

Select these alone with `pytest -m slurm`. They need the Debian packages
slurm-wlm and munge and root (the daemons run as root); elsewhere they skip.
"""

import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from slurm_fixtures import (
    CLUSTER_SCRIPTS,
    profile_args,
    run_snakemake,
    sbatch_calls,
    scontrol_job,
    slurm_cluster,  # noqa: F401  (session fixture)
    slurm_missing_reason,
    submitted_jobs,
)

pytestmark = pytest.mark.slurm

# Three jobs: two that can run side by side (one asking for a GPU), one after both.
# Each writes the SLURM job id it ran under, which only exists inside a SLURM job.
TRIVIAL_SNAKEFILE = textwrap.dedent("""\
    localrules: all

    rule all:
        input: "c.txt"

    rule a:
        output: "a.txt"
        threads: 1
        resources: mem_mb=200, runtime=5
        shell: "echo $SLURM_JOB_ID > {output}"

    rule g:
        output: "g.txt"
        threads: 1
        resources: mem_mb=300, runtime=5, gpu=1
        shell: "echo $SLURM_JOB_ID $CUDA_VISIBLE_DEVICES > {output}"

    rule c:
        input: "a.txt", "g.txt"
        output: "c.txt"
        threads: 2
        resources: mem_mb=100, runtime=2
        shell: "cat {input} > {output}; echo $SLURM_JOB_ID >> {output}"
    """)

# A rule that writes both its outputs partly, then fails; and a rule after it.
FAILING_SNAKEFILE = textwrap.dedent("""\
    rule after:
        input: "half.txt"
        output: "after.txt"
        resources: mem_mb=100, runtime=2
        shell: "cp {input} {output}"

    rule broken:
        output: "half.txt", "other.txt"
        resources: mem_mb=100, runtime=2
        shell: "echo partial > {output[0]}; echo partial > {output[1]}; exit 3"
    """)


def _needs_slurm():
    reason = slurm_missing_reason()
    if reason:
        pytest.skip(reason)


def _run_script(name: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([str(CLUSTER_SCRIPTS / name)], env=env, capture_output=True,
                          text=True, timeout=180)


def test_cluster_up_again_changes_nothing(slurm_cluster):
    pid_file = slurm_cluster.state_dir / "slurmctld.pid"
    pid_before = pid_file.read_text().strip()

    again = _run_script("slurm-up.sh", slurm_cluster.env())

    assert again.returncode == 0, again.stderr
    assert "starting slurmctld" not in again.stdout
    assert pid_file.read_text().strip() == pid_before
    out = subprocess.run(["sinfo", "-h", "-N", "-o", "%P %T %c %m"], env=slurm_cluster.env(),
                         capture_output=True, text=True, check=True).stdout.split()
    partition, state, cpus, mem_mb = out[:4]
    assert partition == slurm_cluster.partition + "*"  # the default partition
    assert state == "idle"
    assert int(cpus) == len(os.sched_getaffinity(0))
    mem_total_mb = int(Path("/proc/meminfo").read_text().split()[1]) // 1024
    assert 0 < int(mem_mb) < mem_total_mb


def test_cluster_up_refuses_a_foreign_slurm_conf(tmp_path):
    _needs_slurm()
    foreign = tmp_path / "slurm.conf"
    foreign.write_text("ClusterName=production\n")
    env = {**os.environ, "ECMA_SLURM_CONF": str(foreign), "ECMA_SLURM_STATE": str(tmp_path / "state")}

    refused = _run_script("slurm-up.sh", env)

    assert refused.returncode == 1
    assert str(foreign) in refused.stderr and "not written by this script" in refused.stderr
    assert foreign.read_text() == "ClusterName=production\n"


def test_cluster_up_rejects_a_bad_gpu_count(tmp_path):
    _needs_slurm()
    env = {**os.environ, "ECMA_SLURM_GPUS": "two", "ECMA_SLURM_CONF": str(tmp_path / "slurm.conf")}

    refused = _run_script("slurm-up.sh", env)

    assert refused.returncode == 1
    assert "ECMA_SLURM_GPUS" in refused.stderr and "'two'" in refused.stderr
    assert not (tmp_path / "slurm.conf").exists()


@pytest.mark.slow
def test_every_job_runs_as_a_slurm_job_with_its_resources(slurm_cluster, tmp_path):
    (tmp_path / "Snakefile").write_text(TRIVIAL_SNAKEFILE)

    run = run_snakemake(slurm_cluster, tmp_path, *profile_args(), "--verbose")

    assert run.returncode == 0, run.stdout[-4000:]
    jobs = {job.rule: job.slurm_jobid for job in submitted_jobs(run.stdout)}
    assert sorted(jobs) == ["a", "c", "g"], run.stdout[-4000:]
    assert len(set(jobs.values())) == 3
    # The controller ran each of them, here, for this rule, in one workflow run.
    records = {rule: scontrol_job(slurm_cluster, jobid) for rule, jobid in jobs.items()}
    for rule, rec in records.items():
        assert rec["JobState"] == "COMPLETED", (rule, rec)
        assert rec["Comment"] == f"rule_{rule}"
        assert Path(rec["WorkDir"]).resolve() == tmp_path.resolve()
        assert rec["Partition"] == slurm_cluster.partition
    assert len({rec["JobName"] for rec in records.values()}) == 1
    # Each output was written inside its SLURM job; the placeholder GPU is index 0.
    assert (tmp_path / "a.txt").read_text() == f"{jobs['a']}\n"
    assert (tmp_path / "g.txt").read_text() == f"{jobs['g']} 0\n"
    assert (tmp_path / "c.txt").read_text() == f"{jobs['a']}\n{jobs['g']} 0\n{jobs['c']}\n"
    # Resources map to sbatch arguments: gpu -> --gpus, mem_mb -> --mem, runtime -> -t (minutes).
    calls = sbatch_calls(run.stdout)
    assert "--gpus=1" in calls["g"].split() and "--ntasks-per-gpu=1" in calls["g"].split()
    assert "--gpus" not in calls["a"] and "--gres" not in calls["a"]
    assert records["g"]["TresPerJob"] == "gres:gpu:1"
    assert "TresPerJob" not in records["a"]
    assert records["g"]["MinMemoryNode"] == "300M" and records["a"]["MinMemoryNode"] == "200M"
    assert records["g"]["TimeLimit"] == "00:05:00" and records["c"]["TimeLimit"] == "00:02:00"
    assert records["c"]["NumCPUs"] == "2" and records["a"]["NumCPUs"] == "1"


@pytest.mark.slow
def test_a_failing_job_is_reported_and_leaves_no_outputs(slurm_cluster, tmp_path):
    (tmp_path / "Snakefile").write_text(FAILING_SNAKEFILE)

    run = run_snakemake(slurm_cluster, tmp_path, *profile_args())

    assert run.returncode != 0
    assert "Error in rule broken" in run.stdout
    assert not (tmp_path / "half.txt").exists()
    assert not (tmp_path / "other.txt").exists()
    assert not (tmp_path / "after.txt").exists()
    jobs = submitted_jobs(run.stdout)
    assert [job.rule for job in jobs] == ["broken"]
    record = scontrol_job(slurm_cluster, jobs[0].slurm_jobid)
    assert record["JobState"] == "FAILED"
    assert Path(record["WorkDir"]).resolve() == tmp_path.resolve()
