# Predictions of every model (variant and seed) on a split, and their scores with the benchmark's protocol.


rule predict_split:
    input:
        model="results/{dataset}/models/{variant}/seed-{seed}/model.pt",
        features=feature_shards,
        split_csv=split_csv,
    output:
        "results/{dataset}/predictions/{variant}/seed-{seed}/{split}.h5",
    log:
        "results/{dataset}/logs/predict/{variant}-seed{seed}-{split}.log",
    benchmark:
        "results/{dataset}/benchmarks/predict/{variant}-seed{seed}-{split}.tsv"
    conda:
        ENV
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        batch_size=lambda wildcards: ECMA.for_dataset(wildcards.dataset).eval.batch_size,
        device=lambda wildcards: ECMA.for_dataset(wildcards.dataset).train.device,
        missing=lambda wildcards: ECMA.for_dataset(
            wildcards.dataset
        ).train.missing_videos,
    shell:
        "ecma predict --quiet --checkpoint {input.model} --features {input.features}"
        " --split {input.split_csv} --batch-size {params.batch_size} --device {params.device}"
        " --missing {params.missing} --output {output} > {log} 2>&1"


rule evaluate_split:
    input:
        predictions="results/{dataset}/predictions/{variant}/seed-{seed}/{split}.h5",
        split_csv=split_csv,
        eval_audio_csv=annotation("eval_audio_csv"),
        eval_visual_csv=annotation("eval_visual_csv"),
    output:
        "results/{dataset}/metrics/{variant}/seed-{seed}/{split}.json",
    log:
        "results/{dataset}/logs/evaluate/{variant}-seed{seed}-{split}.log",
    benchmark:
        "results/{dataset}/benchmarks/evaluate/{variant}-seed{seed}-{split}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        settings=settings("eval"),
        missing=lambda wildcards: ECMA.for_dataset(
            wildcards.dataset
        ).train.missing_videos,
    shell:
        "ecma evaluate --quiet --settings {params.settings:q}"
        " --predictions {input.predictions} --split {input.split_csv}"
        " --eval-audio {input.eval_audio_csv} --eval-visual {input.eval_visual_csv}"
        " --missing {params.missing} --output {output} > {log} 2>&1"
