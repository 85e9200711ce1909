# Predictions of every model (variant and seed) on a split, and their scores with the benchmark's protocol.


rule predict_split:
    input:
        unpack(annotation_inputs("split")),
        model="results/{dataset}/models/{variant}/seed-{seed}/model.pt",
        features=feature_shards,
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
        annotations=annotation_flags("split"),
        # runtime settings: derived (they take threads), so changing them reruns nothing
        batch_size=lambda wildcards, threads: ECMA.for_dataset(
            wildcards.dataset
        ).eval.batch_size,
        device=lambda wildcards, threads: ECMA.for_dataset(
            wildcards.dataset
        ).train.device,
        missing=lambda wildcards: ECMA.for_dataset(
            wildcards.dataset
        ).train.missing_videos,
    shell:
        "ecma predict --quiet --checkpoint {input.model} --features {input.features}"
        " {params.annotations} --batch-size {params.batch_size} --device {params.device}"
        " --missing {params.missing} --output {output} > {log} 2>&1"


rule evaluate_split:
    input:
        unpack(annotation_inputs("truth")),
        predictions="results/{dataset}/predictions/{variant}/seed-{seed}/{split}.h5",
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
        annotations=annotation_flags("truth"),
        missing=lambda wildcards: ECMA.for_dataset(
            wildcards.dataset
        ).train.missing_videos,
    shell:
        "ecma evaluate --quiet --settings {params.settings:q}"
        " --predictions {input.predictions} {params.annotations}"
        " --missing {params.missing} --output {output} > {log} 2>&1"
