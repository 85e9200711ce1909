# One model per variant and seed (train.seeds), trained on every shard of the dataset.


rule train_variant:
    input:
        unpack(annotation_inputs("train")),
        features=feature_shards,
    output:
        model="results/{dataset}/models/{variant}/seed-{seed}/model.pt",
        history_csv="results/{dataset}/models/{variant}/seed-{seed}/history.csv",
        history_json="results/{dataset}/models/{variant}/seed-{seed}/history.json",
        curves=report(
            "results/{dataset}/models/{variant}/seed-{seed}/curves.png",
            caption="../report/curves.rst",
            category="Training curves",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "variant": "{variant}", "seed": "{seed}"},
        ),
    log:
        "results/{dataset}/logs/train/{variant}-seed{seed}.log",
    benchmark:
        "results/{dataset}/benchmarks/train/{variant}-seed{seed}.tsv"
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
        settings=settings(*TRAINING_SECTIONS),
        runtime=runtime_settings(*TRAINING_SECTIONS),
        output_dir="results/{dataset}/models/{variant}/seed-{seed}",
        annotations=annotation_flags("train"),
        overlap=lambda wildcards: (
            "--allow-split-overlap"
            if ECMA.dataset(wildcards.dataset).allow_split_overlap
            else ""
        ),
    shell:
        "ecma train --quiet --settings {params.settings:q} --runtime {params.runtime:q} --variant {wildcards.variant}"
        " --features {input.features} {params.annotations}"
        " --output-dir {params.output_dir} {params.overlap} > {log} 2>&1"
