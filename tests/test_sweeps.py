"""Sweeps: the sampler's trials, their checks, the choice on validation, the DAG's jobs, the page.

The sampler and the choice are checked against numbers computed here from their definitions; the DAG's
decisions (which jobs run, which are scored on the test split, what reruns when trials or seeds are added)
with the stub `ecma` of tests/test_workflow.py; a real sweep runs in tests/test_slurm_demo.py.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from ecma import config as C
from ecma.errors import EcmaError
from ecma.sweeps.selection import TIE_BREAK, TrialResult, choose, select_trials, trials_table
from ecma.sweeps.trials import (chosen_settings, final_seeds, sobol_points, sweep_metric, sweep_trials,
                                trial_config, trial_name)

from test_workflow import (REPO, assert_stopped_before_any_job, make_dataset, output_of, repo_config,
                           run_snakemake, run_with_config, small_dataset_config, stub_env, write_config)  # noqa: F401

DEMO = {"demo": {"demo": {"n_train": 4, "n_val": 2, "n_test": 2}, "random_encoders": True}}


def workflow(sweeps: dict, datasets: dict | None = None, **sections) -> C.WorkflowConfig:
    return C.workflow_config_from_dict({"datasets": datasets or DEMO, "sweeps": sweeps, **sections})


def one_sweep(**sweep) -> C.WorkflowConfig:
    return workflow({"s": {"dataset": "demo", **sweep}})


def error_of(**sweep) -> str:
    with pytest.raises(EcmaError) as e:
        wcfg = one_sweep(**sweep)
        sweep_trials(wcfg, "s")
    return str(e.value)


# ---------------------------------------------------------------------------------------------------
# The sampler


SOBOL = {"sampler": "sobol", "settings": {"loss.w_cma": {"low": 0.01, "high": 1.0, "scale": "log"},
                                          "loss.cma_tau_a": {"low": 0.3, "high": 0.8}, "pseudo.k": [1, 2, 3, 4]}}


def test_a_seed_gives_the_same_trials_and_more_trials_a_superset():
    first = sweep_trials(one_sweep(**SOBOL, trials=8, seed=3), "s")
    again = sweep_trials(one_sweep(**SOBOL, trials=8, seed=3), "s")
    assert first == again and len(first) == 8
    more = sweep_trials(one_sweep(**SOBOL, trials=13, seed=3), "s")
    assert more[:8] == first and len(more) == 13
    assert {t.name for t in more[8:]}.isdisjoint({t.name for t in first})
    other = sweep_trials(one_sweep(**SOBOL, trials=8, seed=4), "s")
    assert {t.name for t in other}.isdisjoint({t.name for t in first})


def test_sobol_trials_are_the_scrambled_sequence_mapped_onto_each_setting():
    from scipy.stats import qmc

    u = qmc.Sobol(3, scramble=True, rng=7).random(16)  # scipy's own draw of 16 points
    assert np.array_equal(sobol_points(5, 3, 7), u[:5])  # 5 points: drawn as 8, cut; a prefix of any longer draw
    trials = sweep_trials(one_sweep(**SOBOL, trials=5, seed=7), "s")
    for trial, row in zip(trials, u):
        w_cma = math.exp(math.log(0.01) + row[0] * (math.log(1.0) - math.log(0.01)))
        assert trial.settings["loss.w_cma"] == float(f"{w_cma:.4g}")
        assert trial.settings["loss.cma_tau_a"] == float(f"{0.3 + row[1] * 0.5:.4g}")
        assert trial.settings["pseudo.k"] == [1, 2, 3, 4][int(row[2] * 4)]


def test_a_log_range_stays_in_bounds_and_spreads_over_its_decades():
    trials = sweep_trials(one_sweep(sampler="sobol", trials=512, settings={
        "train.lr": {"low": 1e-5, "high": 1e-2, "scale": "log"}, "pseudo.k": {"low": 1, "high": 100, "scale": "log"}}), "s")
    lr = np.array([t.settings["train.lr"] for t in trials])
    k = np.array([t.settings["pseudo.k"] for t in trials])
    assert lr.min() >= 1e-5 and lr.max() <= 1e-2
    # evenly over log10: each of the three decades holds a third (a linear draw would put 90% in the last)
    decades = np.histogram(np.log10(lr), bins=[-5, -4, -3, -2])[0] / len(lr)
    assert np.allclose(decades, 1 / 3, atol=0.02), decades
    assert k.dtype.kind == "i" and k.min() >= 1 and k.max() <= 100  # an int setting draws whole numbers
    assert abs(np.mean(k < 10) - math.log(10) / math.log(101)) < 0.03  # 1..9 hold log(10)/log(101) of the mass


def test_a_grid_is_every_combination_in_order_and_a_range_gives_num_points():
    trials = sweep_trials(one_sweep(settings={"loss.w_cma": [0.1, 1.0], "pseudo.gamma": {
        "low": 0.5, "high": 2.0, "num": 3, "scale": "log"}}), "s")
    assert [t.settings for t in trials] == [
        {"loss.w_cma": w, "pseudo.gamma": g} for w in (0.1, 1.0) for g in (0.5, 1.0, 2.0)]
    assert [t.index for t in trials] == list(range(6))
    assert trials[1].name == "loss.w_cma=0.1,pseudo.gamma=1.0"
    ints = sweep_trials(one_sweep(settings={"pseudo.k": {"low": 1, "high": 3, "num": 5}}), "s")
    assert [t.settings["pseudo.k"] for t in ints] == [1, 2, 3]  # linspace 1, 1.5, 2, 2.5, 3 rounded, once each


def test_repeated_points_train_once_under_their_first_index():
    trials = sweep_trials(one_sweep(sampler="sobol", trials=16, settings={"pseudo.k": [1, 2], "loss.w_cma": [0.5, 1.0]}), "s")
    assert len(trials) == 4 and len({t.name for t in trials}) == 4
    u = sobol_points(16, 2, 0)
    firsts = {}
    for i, row in enumerate(u):
        firsts.setdefault(([1, 2][int(row[0] * 2)], [0.5, 1.0][int(row[1] * 2)]), i)
    assert [t.index for t in trials] == sorted(firsts.values())


def test_trial_names_are_readable_and_distinct():
    assert trial_name({"loss.w_cma": 0.1, "pseudo.rule": "topk", "pseudo.restrict_to_labels": False,
                       "pseudo.update_every_steps": None, "coleaf.noise_ratios": "data/r.json"}) == (
        "loss.w_cma=0.1,pseudo.rule=topk,pseudo.restrict_to_labels=false,pseudo.update_every_steps=null,"
        "coleaf.noise_ratios=data%2Fr.json")
    assert trial_name({"train.lr": 1e-05}) != trial_name({"train.lr": 1.00001e-05})


def test_a_trial_trains_with_its_settings_over_the_datasets_and_chooses_epochs_by_the_sweeps_metric():
    datasets = {"demo": {**DEMO["demo"], "overrides": {"loss": {"w_cma": 0.1, "w_pseudo": 0.3}, "train": {"seeds": [4, 5]}}}}
    wcfg = workflow({"s": {"dataset": "demo", "variant": "no_ema", "metric": "average",
                           "settings": {"loss.w_cma": [0.7], "coleaf.w_nce": [0.5]}}}, datasets)
    (trial,) = sweep_trials(wcfg, "s")
    cfg = trial_config(wcfg, "s", trial.settings)
    assert (cfg.loss.w_cma, cfg.loss.w_pseudo, cfg.coleaf.w_nce) == (0.7, 0.3, 0.5)
    assert (cfg.train.variant, cfg.model.backbone, cfg.train.select, cfg.train.seed) == ("no_ema", "coleaf", "average", 0)
    assert trial_config(wcfg, "s", trial.settings, seed=5).train.seed == 5
    assert final_seeds(wcfg, "s") == [4, 5] and sweep_metric(wcfg, "s") == "average"
    wcfg = workflow({"s": {"dataset": "demo", "seeds": [9], "settings": {"loss.w_cma": [0.7]}}}, datasets)
    assert final_seeds(wcfg, "s") == [9] and sweep_metric(wcfg, "s") == "type_av"


# ---------------------------------------------------------------------------------------------------
# Bad sweeps: one line naming the sweep, the setting and the value


@pytest.mark.parametrize("sweep,message", [
    ({"settings": {"loss.w_cmaa": [1.0]}}, "unknown key sweeps.s.settings.loss.w_cmaa"),
    ({"settings": {"w_cma": [1.0]}}, "sweeps.s.settings.w_cma: not a setting"),
    ({"settings": {"loss.w_cma": [0.5, -1.0]}}, "sweeps.s.settings.loss.w_cma must be >= 0, got -1.0"),
    ({"settings": {"pseudo.k": [2, 2.5]}}, "sweeps.s.settings.pseudo.k must be an integer, got 2.5"),
    ({"settings": {"pseudo.rule": ["adaptive", "top"]}}, "sweeps.s.settings.pseudo.rule must be one of"),
    # a range's end the sampler may approach with more trials, though 2 trials do not reach it
    ({"sampler": "sobol", "trials": 2, "settings": {"loss.cma_tau_a": {"low": 0.5, "high": 1.5}}},
     "sweeps.s.settings.loss.cma_tau_a must be <= 1, got 1.5"),
    ({"sampler": "sobol", "trials": 2, "settings": {"train.lr": {"low": 0, "high": 0.1, "scale": "log"}}},
     "sweeps.s.settings.train.lr: a log-scale range needs low > 0"),
    ({"sampler": "sobol", "trials": 2, "settings": {"train.lr": {"low": 0.1, "high": 0.01}}},
     "sweeps.s.settings.train.lr: low must be below high"),
    ({"settings": {"train.lr": {"low": 0.01, "high": 0.1}}}, "a range in a grid sweep needs num"),
    ({"sampler": "sobol", "settings": {"train.lr": [0.1]}}, "sweeps.s.trials: sampler sobol needs the number of trials"),
    ({"trials": 3, "settings": {"train.lr": [0.1]}}, "a grid sweep runs every combination"),
    ({"settings": {"extract.n_segments": [5, 10]}}, "cannot vary extraction settings"),
    ({"settings": {"train.threads": [1, 2]}}, "a runtime setting changes no number"),
    ({"settings": {"train.seed": [1, 2]}}, "sweeps.s.settings.train.seed: a sweep cannot vary it"),
    ({"settings": {"loss.w_cma": 0.5}}, "sweeps.s.settings.loss.w_cma must be a non-empty list of values or a range"),
    ({"settings": {"loss.w_cma": [1.0]}, "dataset": "llp"}, "sweeps.s.dataset 'llp' is not a configured dataset"),
    ({"settings": {"loss.w_cma": [1.0]}, "variant": "ecmaa"}, "sweeps.s.variant must be one of"),
    ({"settings": {"loss.w_cma": [1.0]}, "seeds": [1, 1]}, "sweeps.s.seeds must be distinct"),
    ({"settings": {"loss.w_cma": [1.0]}, "samplr": "grid"}, "unknown key sweeps.s.samplr"),
    # what only the merged settings show: 512 is not divisible by 3 heads, in trial 1 alone
    ({"settings": {"model.num_heads": [2, 3]}}, "sweeps.s: trial 1 (model.num_heads=3)"),
])
def test_a_bad_sweep_is_one_line_naming_it(sweep, message):
    text = error_of(**{"dataset": "demo", **sweep})
    assert message in text and "\n" not in text, text


def test_a_bad_setting_name_or_value_stops_the_workflow_before_any_job(tmp_path):
    cfg = repo_config()
    cfg["sweeps"]["demo_sweep"]["settings"]["loss.cma_tau_v"] = {"low": 0.3, "high": 1.2}
    p = run_with_config(tmp_path, cfg, "results/demo/sweeps/demo_sweep/sweep.html")
    assert_stopped_before_any_job(tmp_path, p, "config: sweeps.demo_sweep.settings.loss.cma_tau_v must be <= 1, got 1.2")
    cfg = repo_config()
    cfg["sweeps"]["demo_sweep"]["settings"]["loss.tau_v"] = [0.5]
    p = run_with_config(tmp_path, cfg, "results/demo/sweeps/demo_sweep/sweep.html")
    assert_stopped_before_any_job(tmp_path, p, "unknown key sweeps.demo_sweep.settings.loss.tau_v")
    # a sweep is checked whatever the target: a bad one stops the demo too, as a bad dataset does
    p = run_with_config(tmp_path, cfg, "results/demo/metrics.json")
    assert_stopped_before_any_job(tmp_path, p, "unknown key sweeps.demo_sweep.settings.loss.tau_v")


def test_the_shipped_sweeps_are_valid_and_the_demo_has_eight_trials():
    wcfg = C.load_workflow_config(REPO / "config.yaml")
    demo = sweep_trials(wcfg, "demo_sweep")
    assert len(demo) == 8 and list(demo[0].settings) == ["loss.w_cma", "loss.cma_tau_a", "loss.cma_tau_v"]
    assert final_seeds(wcfg, "demo_sweep") == [0, 1, 2] and sweep_metric(wcfg, "demo_sweep") == "type_av"
    assert [len(sweep_trials(wcfg, n)) for n in ("llp_valor_ecma", "llp_valor_no_cma", "llp_valor_no_ema")] == [32, 16, 16]


# ---------------------------------------------------------------------------------------------------
# The choice: the validation argmax, ties to the lowest trial index


def result(index: int, score: float) -> TrialResult:
    return TrialResult(index, f"trials/t{index}", {"loss.w_cma": 0.1 * (index + 1)}, "ecma", 3, {}, score)


def test_the_chosen_trial_is_the_validation_argmax_ties_to_the_lowest_index():
    assert choose([result(0, 40.0), result(1, 55.5), result(2, 55.4)]).index == 1
    # ties: the lowest index, whatever order the results come in
    tied = [result(4, 50.0), result(2, 61.25), result(7, 61.25), result(3, 61.25)]
    assert choose(tied).index == 2 and choose(tied[::-1]).index == 2
    assert "lowest trial index" in TIE_BREAK
    with pytest.raises(EcmaError):
        choose([])


def write_trial_model(folder: Path, cfg, val_metrics: dict, epoch: int = 2) -> None:
    from ecma.models.checkpoint import save_checkpoint

    folder.mkdir(parents=True, exist_ok=True)
    save_checkpoint(folder / "model.pt", {}, cfg, classes=["Speech"], fingerprint={}, epoch=epoch,
                    val_metrics=val_metrics, precision="float32")


def metrics_block(type_av: float, av: float = 30.0) -> dict:
    block = {"audio": 10.0, "visual": 20.0, "audio_visual": av, "type_av": type_av, "event_av": 5.0}
    return {"segment": dict(block), "event": {k: v / 2 for k, v in block.items()}, "protocol": "benchmark"}


def test_select_reads_each_trials_checkpoint_and_writes_the_table_and_the_choice(tmp_path):
    from ecma.sweeps.selection import write_best

    wcfg = one_sweep(settings={"loss.w_cma": [0.1, 0.2, 0.4], "pseudo.k": [1, 2]})
    trials = sweep_trials(wcfg, "s")
    type_av = [30.0, 44.0, 52.5, 52.5, 41.0, 52.5]  # trials 2, 3 and 5 tie for the best
    pairs = []
    for trial, score in zip(trials, type_av):
        folder = tmp_path / "trials" / trial.name
        write_trial_model(folder, trial_config(wcfg, "s", trial.settings), metrics_block(score), epoch=trial.index + 1)
        pairs.append((trial.index, str(folder)))
    space = wcfg.sweep("s").settings
    table, best = select_trials("s", "demo", "type_av", space, pairs[::-1])  # given in any order
    assert best["trial"] == 2 and best["settings"] == {"loss.w_cma": 0.2, "pseudo.k": 1}
    assert best["val_select"] == 52.5 and best["best_epoch"] == 3 and best["variant"] == "ecma"
    assert list(table["trial"]) == list(range(6)) and list(table["val_select"]) == type_av
    assert list(table["chosen"]) == [False, False, True, False, False, False]
    assert list(table["loss.w_cma"]) == [0.1, 0.1, 0.2, 0.2, 0.4, 0.4] and list(table["pseudo.k"]) == [1, 2] * 3
    assert list(table["val_event_type_av"]) == [v / 2 for v in type_av]
    # by another metric, another trial: segment AV F1
    av = [10.0, 70.0, 5.0, 5.0, 5.0, 5.0]
    for trial, score, a in zip(trials, type_av, av):
        write_trial_model(tmp_path / "av" / trial.name, trial_config(
            one_sweep(metric="audio_visual", settings=space), "s", trial.settings), metrics_block(score, a))
    _, best_av = select_trials("s", "demo", "audio_visual", space,
                               [(t.index, str(tmp_path / "av" / t.name)) for t in trials])
    assert best_av["trial"] == 1
    # best.yaml is what the final runs read
    write_best(tmp_path / "best.yaml", best)
    assert chosen_settings(wcfg, "s", tmp_path / "best.yaml") == {"loss.w_cma": 0.2, "pseudo.k": 1}
    assert "lowest trial index" in (tmp_path / "best.yaml").read_text().splitlines()[1]
    # a model whose epoch was chosen by another score is refused: its epoch is not the trial's best by ours
    with pytest.raises(EcmaError, match="chosen by validation type_av, not the sweep's metric audio_visual"):
        select_trials("s", "demo", "audio_visual", space, pairs)


def test_a_choice_of_other_settings_is_refused(tmp_path):
    wcfg = one_sweep(settings={"loss.w_cma": [0.1, 0.2]})
    (tmp_path / "best.yaml").write_text(yaml.safe_dump({"sweep": "s", "settings": {"loss.w_pseudo": 0.1}}))
    with pytest.raises(EcmaError, match="chose loss.w_pseudo, but sweep s varies loss.w_cma"):
        chosen_settings(wcfg, "s", tmp_path / "best.yaml")
    (tmp_path / "best.yaml").write_text(yaml.safe_dump({"sweep": "t", "settings": {"loss.w_cma": 0.1}}))
    with pytest.raises(EcmaError, match="not the choice of sweep s"):
        chosen_settings(wcfg, "s", tmp_path / "best.yaml")


# ---------------------------------------------------------------------------------------------------
# The DAG (stub ecma): what runs, what is scored on the test split, what reruns


SWEEP = {"dataset": "mine", "variant": "ecma", "sampler": "sobol", "trials": 4, "seeds": [0, 1],
         "settings": {"loss.w_cma": {"low": 0.01, "high": 1.0, "scale": "log"}, "loss.cma_tau_a": {"low": 0.3, "high": 0.8}}}
PAGE = "results/mine/sweeps/s/sweep.html"


def sweep_workdir(tmp_path: Path, **sweep) -> None:
    make_dataset(tmp_path / "data", {"train": ["a1", "a2"], "val": ["b1"], "test": ["c1"]})
    write_config(tmp_path, small_dataset_config(tmp_path, 2), sweeps={"s": {**SWEEP, **sweep}})


def jobs(calls) -> dict[str, list[list[str]]]:
    calls()
    out: dict[str, list[list[str]]] = {}
    for argv in calls.argvs:
        out.setdefault(argv[0], []).append(argv)
    return out


def flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_only_the_chosen_settings_are_trained_again_and_scored_on_the_test_split(tmp_path, stub_env):
    env, calls = stub_env
    sweep_workdir(tmp_path)
    p = run_snakemake(tmp_path, PAGE, env=env)
    assert p.returncode == 0, output_of(p)
    ran = jobs(calls)
    trials = sweep_trials(C.load_workflow_config(tmp_path / "config.yaml"), "s")
    trial_dirs = {f"results/mine/sweeps/s/trials/{t.name}" for t in trials}
    final_dirs = {"results/mine/sweeps/s/final/seed-0", "results/mine/sweeps/s/final/seed-1"}
    assert {flag(a, "--output-dir") for a in ran["train"]} == trial_dirs | final_dirs
    assert len(ran["train"]) == 6 and len(ran["sweep-select"]) == 1 and len(ran["sweep-page"]) == 1
    # the test split: predicted and scored for the final runs only, no trial's model ever predicted
    assert sorted(flag(a, "--checkpoint") for a in ran["predict"]) == sorted(f"{d}/model.pt" for d in final_dirs)
    assert all("test" in Path(flag(a, "--output")).name for a in ran["predict"] + ran["evaluate"])
    assert len(ran["evaluate"]) == 2
    # each job trained with its own settings: a trial's, or the chosen ones (the stub chose the first trial)
    settings = {flag(a, "--output-dir"): json.loads(flag(a, "--settings")) for a in ran["train"]}
    for t in trials:
        got = settings[f"results/mine/sweeps/s/trials/{t.name}"]
        assert (got["loss"]["w_cma"], got["loss"]["cma_tau_a"]) == (t.settings["loss.w_cma"], t.settings["loss.cma_tau_a"])
        assert got["train"]["select"] == "type_av" and got["train"]["seed"] == 0
    for seed in (0, 1):
        got = settings[f"results/mine/sweeps/s/final/seed-{seed}"]
        assert got["loss"]["w_cma"] == trials[0].settings["loss.w_cma"] and got["train"]["seed"] == seed
    select = ran["sweep-select"][0]
    assert [a.removeprefix("--trials=") for a in select if a.startswith("--trials=")] == [
        f"{t.index}=results/mine/sweeps/s/trials/{t.name}" for t in trials]
    p = run_snakemake(tmp_path, PAGE, env=env)
    assert p.returncode == 0 and calls() == [], output_of(p)


def test_an_added_trial_trains_one_job_and_an_added_seed_one_final_run(tmp_path, stub_env):
    env, calls = stub_env
    sweep_workdir(tmp_path)
    assert run_snakemake(tmp_path, PAGE, env=env).returncode == 0
    calls()
    write_config(tmp_path, small_dataset_config(tmp_path, 2), sweeps={"s": {**SWEEP, "trials": 5}})
    p = run_snakemake(tmp_path, PAGE, env=env)
    assert p.returncode == 0, output_of(p)
    ran = jobs(calls)
    fifth = sweep_trials(C.load_workflow_config(tmp_path / "config.yaml"), "s")[4]
    # the new trial alone; the choice (still the first trial) is made again, and nothing after it reruns
    assert [flag(a, "--output-dir") for a in ran["train"]] == [f"results/mine/sweeps/s/trials/{fifth.name}"]
    assert set(ran) == {"train", "sweep-select", "sweep-page"}, set(ran)
    write_config(tmp_path, small_dataset_config(tmp_path, 2), sweeps={"s": {**SWEEP, "trials": 5, "seeds": [0, 1, 2]}})
    p = run_snakemake(tmp_path, PAGE, env=env)
    assert p.returncode == 0, output_of(p)
    ran = jobs(calls)
    assert [flag(a, "--output-dir") for a in ran["train"]] == ["results/mine/sweeps/s/final/seed-2"]
    assert len(ran["predict"]) == 1 and len(ran["evaluate"]) == 1 and len(ran["summarize"]) == 1


def test_another_choice_trains_the_final_runs_again(tmp_path, stub_env):
    env, calls = stub_env
    sweep_workdir(tmp_path)
    assert run_snakemake(tmp_path, PAGE, env=env).returncode == 0
    calls()
    trials = sweep_trials(C.load_workflow_config(tmp_path / "config.yaml"), "s")
    write_config(tmp_path, small_dataset_config(tmp_path, 2), sweeps={"s": {**SWEEP, "trials": 5}})
    p = run_snakemake(tmp_path, PAGE, env={**env, "ECMA_STUB_CHOOSE": "4"})  # the new trial wins
    assert p.returncode == 0, output_of(p)
    ran = jobs(calls)
    fifth = sweep_trials(C.load_workflow_config(tmp_path / "config.yaml"), "s")[4]
    assert fifth.name not in {t.name for t in trials}
    assert sorted(flag(a, "--output-dir") for a in ran["train"]) == [
        "results/mine/sweeps/s/final/seed-0", "results/mine/sweeps/s/final/seed-1", f"results/mine/sweeps/s/trials/{fifth.name}"]
    finals = [json.loads(flag(a, "--settings")) for a in ran["train"] if "/final/" in flag(a, "--output-dir")]
    assert all(f["loss"]["w_cma"] == fifth.settings["loss.w_cma"] for f in finals)
    assert len(ran["predict"]) == 2 and len(ran["evaluate"]) == 2


def test_a_path_of_another_dataset_or_an_unknown_trial_stops_before_any_job(tmp_path):
    sweep_workdir(tmp_path)
    p = run_snakemake(tmp_path, "-n", "results/mine/sweeps/s/trials/loss.w_cma=5.0,loss.cma_tau_a=0.5/model.pt")
    assert p.returncode == 2 and "not a trial of sweep s" in p.stderr, output_of(p)
    write_config(tmp_path, {**small_dataset_config(tmp_path, 2), "other": small_dataset_config(tmp_path, 2)["mine"]},
                 sweeps={"s": SWEEP})
    p = run_snakemake(tmp_path, "-n", "results/other/sweeps/s/sweep.html")
    assert p.returncode == 2 and "sweep s runs on dataset mine" in p.stderr, output_of(p)


# ---------------------------------------------------------------------------------------------------
# The command and the page


def test_ecma_sweep_lists_the_trials_the_workflow_would_train(capsys):
    from ecma.cli import main

    assert main(["sweep", "--config", str(REPO / "config.yaml"), "--name", "demo_sweep", "--list"]) == 0
    out = capsys.readouterr().out
    trials = sweep_trials(C.load_workflow_config(REPO / "config.yaml"), "demo_sweep")
    assert "sweep demo_sweep: dataset demo, variant ecma, sobol (seed 0, 8 points): 8 trial(s)" in out
    assert "validation type_av" in out and "seed(s) 0, 1, 2" in out
    for t in trials:
        assert f"trials/{t.name}" in out
    assert main(["sweep", "--config", str(REPO / "config.yaml"), "--name", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "ecma sweep: error: config: unknown sweep 'nope' (configured: demo_sweep, llp_valor_ecma, llp_valor_no_cma, llp_valor_no_ema)"


def page_inputs() -> tuple[pd.DataFrame, dict, dict]:
    from ecma.report.seeds import summarize_seeds

    space = {"loss.w_cma": {"low": 0.01, "high": 1.0, "scale": "log"}, "pseudo.k": [1, 2, 3]}
    rng = np.random.default_rng(0)
    results = [TrialResult(i, f"trials/t{i}", {"loss.w_cma": float(10 ** rng.uniform(-2, 0)), "pseudo.k": int(k)},
                           "ecma", int(rng.integers(1, 9)), metrics_block(float(s)), float(s))
               for i, (k, s) in enumerate(zip(rng.integers(1, 4, 12), rng.uniform(30, 60, 12)))]
    table = trials_table(results, list(space), "type_av")
    best = {"sweep": "s", "dataset": "demo", "variant": "ecma", "metric": "type_av", "trials": 12, "sampler": "sobol, seed 0",
            "tie_break": TIE_BREAK, "space": space, **{k: v for k, v in zip(("trial", "val_select", "best_epoch"), (
                int(table.loc[table["chosen"], "trial"].iloc[0]), float(table["val_select"].max()), 3))},
            "settings": {"loss.w_cma": 0.1, "pseudo.k": 2}}
    final = summarize_seeds({str(s): {**metrics_block(40.0 + s), "num_videos": 4, "split": "test"} for s in range(3)})
    return table, best, final


def test_the_page_marks_the_choice_and_says_that_selection_used_validation_only():
    from ecma.report.sweep import sweep_page

    table, best, final = page_inputs()
    html = sweep_page(table, best, final)
    assert html.count("data:image/png;base64,") == 2  # the figures travel inside the page
    assert "Selection used the validation split only" in html and "Validation split only." in html
    assert f"Chosen: trial {best['trial']}" in html and html.count('class="chosen"') == 1
    # the final table: one row per seed, then the mean ± sample std over them
    assert "seed 2" in html and "mean ± std (3 seeds)" in html
    assert f"{41.0:.2f}<span class=\"sd\">± {np.std([40, 41, 42], ddof=1):.2f}</span>" in html
    with pytest.raises(EcmaError, match="exactly one chosen"):
        sweep_page(table.assign(chosen=False), best, final)


def chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(chromium() is None, reason="Chromium is not installed (Debian: apt-get install chromium)")
def test_the_page_renders_in_headless_chromium(tmp_path):
    from PIL import Image

    from ecma.report.sweep import sweep_page

    table, best, final = page_inputs()
    (tmp_path / "sweep.html").write_text(sweep_page(table, best, final))
    shot = tmp_path / "sweep.png"
    cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1200,2400",
           "--hide-scrollbars", (tmp_path / "sweep.html").as_uri()]
    subprocess.run(cmd, capture_output=True, timeout=60, env={**os.environ, "HOME": str(tmp_path)})
    assert shot.is_file(), "Chromium wrote no screenshot of sweep.html"
    with Image.open(shot) as im:
        rgb = np.asarray(im.convert("RGB")).astype(int)
    assert rgb.shape == (2400, 1200, 3)
    assert (rgb.mean(axis=2) < 200).mean() > 0.02, "the page rendered (nearly) blank"
    # the figures were decoded and drawn: the chosen trial's red (#d1495b) is on the page
    red = (abs(rgb[..., 0] - 0xd1) < 12) & (abs(rgb[..., 1] - 0x49) < 12) & (abs(rgb[..., 2] - 0x5b) < 12)
    assert red.sum() > 200, red.sum()
    if os.environ.get("ECMA_KEEP_SCREENSHOTS"):
        shutil.copy(shot, Path(os.environ["ECMA_KEEP_SCREENSHOTS"]) / shot.name)


def test_the_caption_says_that_selection_used_validation_only():
    from snakemake.iocontainers import Wildcards
    from test_report import REPORT_DIR, assert_clean_rst, render_rst

    cfg = repo_config()
    snakemake_object = type("Snakemake", (), {"config": cfg, "wildcards": Wildcards(
        fromdict={"dataset": "demo", "sweep": "demo_sweep"})})
    rst, html = render_rst(REPORT_DIR / "sweep.rst", snakemake_object, [])
    assert_clean_rst(rst, "sweep.rst")
    assert "Selection used the validation split only" in html and "No other trial's test score" in html
    assert "sobol sampler, 8 trials, seed 0" in html and "loss.cma_tau_v" in html and "mailto:" not in html
