"""A real single-node SLURM cluster for tests, and helpers to prove jobs ran on it.

The session fixture `slurm_cluster` starts the cluster with
workflow/cluster/slurm-up.sh (munged, slurmctld, slurmd on 127.0.0.1) and stops
it afterwards if it started it. Tests that use it are skipped, with the reason,
where SLURM is not installed or the tests do not run as root.

To share the fixture, import it in tests/conftest.py:
    from slurm_fixtures import slurm_cluster  # noqa: F401
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CLUSTER_SCRIPTS = REPO / "workflow" / "cluster"
USER_PROFILE = REPO / "workflow" / "profiles" / "slurm"
TEST_PROFILE = REPO / "workflow" / "profiles" / "slurm-test"
# Daemons live in sbin, which a test runner's PATH may lack.
_SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
_SNAKEMAKE_TIMEOUT_S = 600


@dataclass(frozen=True)
class SlurmCluster:
    conf: Path  # slurm.conf the daemons, clients and jobs read
    state_dir: Path  # logs, spool, jobcomp.txt
    partition: str

    def env(self) -> dict[str, str]:
        """Environment for clients (and, through sbatch --export=ALL, jobs)."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}


@dataclass(frozen=True)
class SubmittedJob:
    rule: str
    slurm_jobid: str


def slurm_missing_reason() -> str | None:
    """Why a real cluster cannot be started here, or None if it can."""
    missing = [t for t in ("sbatch", "squeue", "scontrol", "slurmctld", "slurmd", "munged")
               if shutil.which(t, path=_SEARCH_PATH) is None]
    if missing:
        return f"SLURM not installed ({', '.join(missing)} not found; apt-get install slurm-wlm munge)"
    if os.geteuid() != 0:
        return "starting the SLURM daemons needs root"
    return None


def _node_responds(env: dict[str, str]) -> bool:
    try:
        out = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], env=env, capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and any(s in out.stdout for s in ("idle", "mixed", "allocated"))


def cancel_jobs_under(cluster: SlurmCluster, folder: Path, *, except_under: Path | None = None) -> list[str]:
    """Cancel the cluster's queued or running jobs whose working directory lies in `folder`.

    A test run that was killed, or a snakemake that timed out, leaves its SLURM
    jobs behind; on a 2-CPU node one of them holds a CPU for up to its time
    limit, and every later test's jobs wait behind it.
    """
    out = subprocess.run(["squeue", "-h", "-o", "%i %Z"], env=cluster.env(), capture_output=True,
                         text=True, timeout=30)
    stale = []
    for line in out.stdout.splitlines():
        jobid, _, workdir = line.partition(" ")
        where = Path(workdir)
        if where.is_relative_to(folder) and not (except_under and where.is_relative_to(except_under)):
            stale.append(jobid)
    if stale:
        subprocess.run(["scancel", *stale], env=cluster.env(), capture_output=True, timeout=30)
    return stale


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory) -> SlurmCluster:
    reason = slurm_missing_reason()
    if reason:
        pytest.skip(reason)
    cluster = SlurmCluster(
        conf=Path(os.environ.get("ECMA_SLURM_CONF", "/etc/slurm/slurm.conf")),
        state_dir=Path(os.environ.get("ECMA_SLURM_STATE", "/var/spool/ecma-slurm")),
        partition=os.environ.get("ECMA_SLURM_PARTITION", "debug"),
    )
    # A cluster a developer already runs is used and left running.
    was_running = cluster.conf.is_file() and _node_responds(cluster.env())
    up = subprocess.run([str(CLUSTER_SCRIPTS / "slurm-up.sh")], env=cluster.env(),
                        capture_output=True, text=True, timeout=180)
    if up.returncode != 0:
        pytest.fail(f"slurm-up.sh failed ({up.returncode}):\n{up.stdout}\n{up.stderr}")
    # Jobs of earlier, killed test sessions (their folders sit beside this session's) are cancelled.
    this_session = tmp_path_factory.getbasetemp().resolve()
    cancel_jobs_under(cluster, this_session.parent, except_under=this_session)
    yield cluster
    cancel_jobs_under(cluster, this_session)
    if not was_running:
        subprocess.run([str(CLUSTER_SCRIPTS / "slurm-down.sh")], env=cluster.env(),
                       capture_output=True, text=True, timeout=120)


def profile_args(with_user_profile: bool = True) -> list[str]:
    """--profile arguments: the user-facing slurm profile, then the test-only one.

    Snakemake applies repeated --profile options in order, the later one
    winning key by key; keys it does not name pass through from the earlier.
    """
    args = []
    if with_user_profile:
        args += ["--profile", str(USER_PROFILE)]
    return args + ["--profile", str(TEST_PROFILE)]


def snakemake_command() -> list[str]:
    exe = Path(sys.executable).with_name("snakemake")
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "snakemake"]


def run_snakemake(cluster: SlurmCluster, workdir: Path, *args: str) -> subprocess.CompletedProcess:
    """Run snakemake in `workdir`, output (stdout and stderr together) in .stdout.

    If it runs past the timeout, the jobs it submitted are cancelled before the error is raised.
    """
    try:
        return subprocess.run(snakemake_command() + list(args), cwd=workdir, env=cluster.env(),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=_SNAKEMAKE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        cancel_jobs_under(cluster, Path(workdir).resolve())
        raise


_SUBMITTED = re.compile(r"has been submitted with SLURM jobid (\d+) \(log: (\S+)\)\.")


def submitted_jobs(snakemake_output: str) -> list[SubmittedJob]:
    """The SLURM jobs the slurm executor reported submitting, in order.

    The rule (or group) comes from the job's log path, which the plugin lays
    out as <slurm logdir>/rule_<rule>/[<wildcards>/]<jobid>.log.
    """
    jobs = []
    for m in _SUBMITTED.finditer(snakemake_output):
        parts = Path(m.group(2)).parts
        owner = next((p for p in parts if p.startswith(("rule_", "group_"))), "?")
        jobs.append(SubmittedJob(rule=owner.removeprefix("rule_"), slurm_jobid=m.group(1)))
    return jobs


def scontrol_job(cluster: SlurmCluster, jobid: str) -> dict[str, str]:
    """The controller's record of a job (kept MinJobAge=3600 s after it ends)."""
    out = subprocess.run(["scontrol", "-o", "show", "job", jobid], env=cluster.env(),
                         capture_output=True, text=True, timeout=30, check=True).stdout
    return dict(re.findall(r"(?:^|\s)([A-Za-z/:]+)=(\S*)", out))


def sbatch_calls(snakemake_verbose_output: str) -> dict[str, str]:
    """rule -> the sbatch command line the plugin logged (needs --verbose)."""
    calls = {}
    for line in snakemake_verbose_output.splitlines():
        if line.startswith("sbatch call: "):
            m = re.search(r"--comment (\S+)", line)
            rule = m.group(1).strip("'\"").removeprefix("rule_") if m else "?"
            calls[rule] = line.split(" --wrap=")[0]
    return calls
