"""The demo DAG and a 2-trial sweep through the user-facing SLURM profile on a real one-node SLURM cluster.

Every job must run as a SLURM job, and the metrics must equal a local run of the same config (same seeds,
same thread counts) to 1e-6; the sweep must choose the same trial.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from slurm_fixtures import profile_args, run_snakemake, scontrol_job, submitted_jobs

REPO = Path(__file__).resolve().parent.parent
SNAKEFILE = REPO / "Snakefile"

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

CONFIG = {
    "datasets": {
        "demo": {
            "demo": {"n_train": 8, "n_val": 4, "n_test": 4, "seed": 3},
            "n_shards": 2,
            "random_encoders": True,
            "overrides": {
                # the smallest open_clip ViT, random: the jobs' way through SLURM is under test, not the encoders
                "extract": {"visual_model": "ViT-S-32", "visual_pretrained": None, "audio_checkpoint": None,
                            "workers": 1, "batch_videos": 4},
                "model": {"audio_dim": 768, "visual_dim": 384, "d_model": 32, "num_layers": 1, "num_heads": 2, "d_ff": 64},
                # one thread in both runs: the SLURM jobs get one CPU each on this node
                "train": {"epochs": 2, "batch_size": 4, "threads": 1},
            },
        }
    },
    "variants": ["ecma"],
    "main_variant": "ecma",
    # two trials (a grid of two CMA weights), the chosen one trained again with one seed
    "sweeps": {"mini": {"dataset": "demo", "variant": "ecma", "settings": {"loss.w_cma": [0.1, 1.0]}, "seeds": [0]}},
}
TARGET = "results/demo/metrics.json"
SWEEP = "results/demo/sweeps/mini"


def _scores(path: Path) -> dict:
    m = json.loads(path.read_text())
    return {"segment": m["segment"], "event": m["event"], "num_videos": m["num_videos"]}


def _close(a, b, tol=1e-6):
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k], tol) for k in a)
    return abs(a - b) <= tol


def test_demo_dag_runs_as_slurm_jobs_and_matches_a_local_run(slurm_cluster, tmp_path, monkeypatch):
    # a user's own OpenMP spin count (ecma/runtime_env.py keeps it) must reach the jobs through sbatch
    monkeypatch.setenv("GOMP_SPINCOUNT", "2000")
    local, cluster = tmp_path / "local", tmp_path / "slurm"
    for d in (local, cluster):
        d.mkdir()
        (d / "config.yaml").write_text(yaml.safe_dump(CONFIG))

    targets = [TARGET, f"{SWEEP}/sweep.html"]
    # the local run beside the SLURM one, on one core: the SLURM run mostly waits (the plugin sleeps 5 s
    # before each sbatch and polls), and one after the other they took ~5 minutes of CI's time
    local_log = tmp_path / "local.log"  # a file, not a pipe that nobody reads while the SLURM run goes on
    with local_log.open("w") as log:
        local_run = subprocess.Popen([sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "-d", str(local),
                                      "--cores", "1", *targets], stdout=log, stderr=subprocess.STDOUT, env=slurm_cluster.env())
        try:
            p = run_snakemake(slurm_cluster, cluster, "-s", str(SNAKEFILE), "-d", str(cluster), *profile_args(), *targets)
            local_run.wait(timeout=900)
        finally:
            if local_run.poll() is None:
                local_run.kill()
                local_run.wait()
    assert local_run.returncode == 0, local_log.read_text()[-4000:]
    out = p.stdout
    assert p.returncode == 0, out[-6000:]
    jobs = submitted_jobs(out)
    # every job went through sbatch but the workflow's local rules (seconds-long summaries, run where
    # Snakemake runs): submissions plus local jobs are the jobs run
    done = re.findall(r"(\d+) of (\d+) steps \(100%\) done", out)
    local_jobs = re.findall(r"^localrule (\w+):", out, re.M)
    local_jobs += re.findall(r"^localcheckpoint (\w+):", out, re.M)
    assert sorted(local_jobs) == ["main_metrics", "summarize_seeds", "sweep_page", "sweep_select", "sweep_summarize"], local_jobs
    assert done and len(jobs) + len(local_jobs) == int(done[-1][1]), (len(jobs), local_jobs, done)
    assert {j.rule for j in jobs} == {"demo_dataset", "extract_shard", "train_variant", "predict_split",
                                      "evaluate_split", "sweep_trial", "sweep_final", "sweep_predict", "sweep_evaluate"}
    assert sorted(j.rule for j in jobs if j.rule.startswith("sweep_")) == [
        "sweep_evaluate", "sweep_final", "sweep_predict", "sweep_trial", "sweep_trial"]
    for job in jobs:
        record = scontrol_job(slurm_cluster, job.slurm_jobid)
        assert record["JobState"] == "COMPLETED", (job, record.get("JobState"))
        assert record["WorkDir"] == str(cluster)

    assert _close(_scores(local / TARGET), _scores(cluster / TARGET)), (_scores(local / TARGET), _scores(cluster / TARGET))
    for d in (local, cluster):  # the training job logs the OpenMP settings it ran with
        assert "1 CPU thread, GOMP_SPINCOUNT=2000" in (d / "results/demo/logs/train/ecma-seed0.log").read_text()
    # the sweep: the same trials' validation scores, the same choice, the same test scores of the final run
    local_best = yaml.safe_load((local / SWEEP / "best.yaml").read_text())
    cluster_best = yaml.safe_load((cluster / SWEEP / "best.yaml").read_text())
    assert local_best["settings"] == cluster_best["settings"] and local_best["trials"] == 2
    assert abs(local_best["val_select"] - cluster_best["val_select"]) <= 1e-6
    sweep_metrics = f"{SWEEP}/metrics.json"
    assert _close(_scores(local / sweep_metrics), _scores(cluster / sweep_metrics))
    assert (cluster / SWEEP / "sweep.html").stat().st_size > 0
