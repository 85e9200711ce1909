# Hyperparameter sweeps (`sweeps:` in config.yaml; ecma.sweeps): one training job per trial, in a folder named
# by its settings, each keeping its best epoch on validation as `ecma train` does; then trials.csv and
# best.yaml (the trial of best validation score: a checkpoint, since the final jobs' settings are its
# content); then the chosen settings trained once per final seed, scored on the test split and summarised
# (metrics.json); and the sweep's page. Only the final runs are ever predicted on the test split.


rule sweep_trial:
    input:
        unpack(annotation_inputs("train")),
        features=feature_shards,
    output:
        model="results/{dataset}/sweeps/{sweep}/trials/{trial}/model.pt",
        history_csv="results/{dataset}/sweeps/{sweep}/trials/{trial}/history.csv",
        history_json="results/{dataset}/sweeps/{sweep}/trials/{trial}/history.json",
        curves="results/{dataset}/sweeps/{sweep}/trials/{trial}/curves.png",
    log:
        "results/{dataset}/logs/sweeps/{sweep}/trials/{trial}.log",
    benchmark:
        "results/{dataset}/benchmarks/sweeps/{sweep}/trials/{trial}.tsv"
    # a lost node costs one more try with more time; the job resumes from last.pt
    retries: 2
    conda:
        ENV
    threads: train_threads
    resources:
        mem_mb=8000,
        runtime=lambda wildcards, attempt: 240 * attempt,
        gpu=gpus("train"),
    params:
        settings=settings(*TRAINING_SECTIONS, config=sweep_job_config),
        runtime=runtime_settings(*TRAINING_SECTIONS, config=sweep_job_config),
        variant=lambda wildcards: sweep_of(wildcards).variant,
        output_dir=lambda wildcards, output: os.path.dirname(output.model),
        annotations=annotation_flags("train"),
        overlap=lambda wildcards: (
            "--allow-split-overlap"
            if ECMA.dataset(wildcards.dataset).allow_split_overlap
            else ""
        ),
    shell:
        "ecma train --quiet --settings {params.settings:q} --runtime {params.runtime:q} --variant {params.variant}"
        " --features {input.features} {params.annotations}"
        " --output-dir {params.output_dir:q} {params.overlap} > {log:q} 2>&1"


# The chosen settings, once per final seed: the same job as a trial's, after the choice.
use rule sweep_trial as sweep_final with:
    input:
        unpack(annotation_inputs("train")),
        features=feature_shards,
        chosen=after_the_choice,
    output:
        model="results/{dataset}/sweeps/{sweep}/final/seed-{seed}/model.pt",
        history_csv="results/{dataset}/sweeps/{sweep}/final/seed-{seed}/history.csv",
        history_json="results/{dataset}/sweeps/{sweep}/final/seed-{seed}/history.json",
        curves="results/{dataset}/sweeps/{sweep}/final/seed-{seed}/curves.png",
    log:
        "results/{dataset}/logs/sweeps/{sweep}/final/seed-{seed}.log",
    benchmark:
        "results/{dataset}/benchmarks/sweeps/{sweep}/final/seed-{seed}.tsv"


checkpoint sweep_select:
    input:
        trial_models,
    output:
        table="results/{dataset}/sweeps/{sweep}/trials.csv",
        best="results/{dataset}/sweeps/{sweep}/best.yaml",
    log:
        "results/{dataset}/logs/sweeps/{sweep}/select.log",
    benchmark:
        "results/{dataset}/benchmarks/sweeps/{sweep}/select.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        trials=trial_args,
        metric=lambda wildcards: sweep_metric(ECMA, wildcards.sweep),
        space=lambda wildcards: json.dumps(sweep_of(wildcards).settings),
        sampler=lambda wildcards: (
            "grid"
            if sweep_of(wildcards).sampler == "grid"
            else f"{sweep_of(wildcards).sampler}, seed {sweep_of(wildcards).seed}"
        ),
    shell:
        "ecma sweep-select --quiet --name {wildcards.sweep} --dataset {wildcards.dataset:q} --metric {params.metric}"
        " --space {params.space:q} --sampler {params.sampler:q} {params.trials}"
        " --output-table {output.table} --output-best {output.best} > {log} 2>&1"


# The final runs on the test split: predicted, scored with the chosen settings' thresholds, summarised.
use rule predict_split as sweep_predict with:
    input:
        unpack(annotation_inputs("split")),
        model="results/{dataset}/sweeps/{sweep}/final/seed-{seed}/model.pt",
        features=feature_shards,
        chosen=after_the_choice,
    output:
        "results/{dataset}/sweeps/{sweep}/final/seed-{seed}/test.h5",
    log:
        "results/{dataset}/logs/sweeps/{sweep}/predict-seed{seed}.log",
    benchmark:
        "results/{dataset}/benchmarks/sweeps/{sweep}/predict-seed{seed}.tsv"


use rule evaluate_split as sweep_evaluate with:
    input:
        unpack(annotation_inputs("truth")),
        predictions="results/{dataset}/sweeps/{sweep}/final/seed-{seed}/test.h5",
        chosen=after_the_choice,
    output:
        "results/{dataset}/sweeps/{sweep}/final/seed-{seed}/test.json",
    log:
        "results/{dataset}/logs/sweeps/{sweep}/evaluate-seed{seed}.log",
    benchmark:
        "results/{dataset}/benchmarks/sweeps/{sweep}/evaluate-seed{seed}.tsv"
    params:
        settings=settings("eval", config=sweep_job_config),
        annotations=annotation_flags("truth"),
        missing=lambda wildcards: ECMA.for_dataset(
            wildcards.dataset
        ).train.missing_videos,


use rule summarize_seeds as sweep_summarize with:
    input:
        unpack(final_seed_metrics),
        chosen=after_the_choice,
    output:
        "results/{dataset}/sweeps/{sweep}/metrics.json",
    log:
        "results/{dataset}/logs/sweeps/{sweep}/summarize.log",
    benchmark:
        "results/{dataset}/benchmarks/sweeps/{sweep}/summarize.tsv"
    params:
        metrics=lambda wildcards, input: [
            f"{seed}={input[seed]}" for seed in final_seed_metrics(wildcards)
        ],


rule sweep_page:
    input:
        table="results/{dataset}/sweeps/{sweep}/trials.csv",
        best="results/{dataset}/sweeps/{sweep}/best.yaml",
        metrics="results/{dataset}/sweeps/{sweep}/metrics.json",
    output:
        report(
            "results/{dataset}/sweeps/{sweep}/sweep.html",
            caption="../report/sweep.rst",
            category="Sweeps",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "sweep": "{sweep}"},
        ),
    log:
        "results/{dataset}/logs/sweeps/{sweep}/page.log",
    benchmark:
        "results/{dataset}/benchmarks/sweeps/{sweep}/page.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    shell:
        "ecma sweep-page --quiet --table {input.table} --best {input.best} --metrics {input.metrics}"
        " --output {output} > {log} 2>&1"
