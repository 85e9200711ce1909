# Feature extraction, one job per shard. The CLI extracts new videos into the persistent store
# (not an output: Snakemake deletes outputs before a job runs) and publishes it as the shard.


rule extract_shard:
    input:
        shard_inputs,
    output:
        shard="results/{dataset}/features/shard-{shard}.h5",
        failures="results/{dataset}/features/shard-{shard}.h5.failures.tsv",
    log:
        "results/{dataset}/logs/extract/shard-{shard}.log",
    benchmark:
        "results/{dataset}/benchmarks/extract/shard-{shard}.tsv"
    conda:
        ENV
    threads: extract_threads
    resources:
        mem_mb=8000,
        runtime=240,
        gpu=gpus("extract"),
    params:
        config=EFFECTIVE_CONFIG,
        store="results/{dataset}/features/store/shard-{shard}.h5",
        settings=settings("extract"),
    shell:
        "ecma extract --quiet --config {params.config} --dataset {wildcards.dataset}"
        " --shard {wildcards.shard} --store {params.store} --output {output.shard} > {log} 2>&1"
