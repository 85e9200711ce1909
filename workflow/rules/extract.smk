# Feature extraction, one job per shard. The CLI extracts new and changed videos into the persistent
# store (not an output: Snakemake deletes outputs before a job runs), drops videos no longer listed, and
# publishes it as the shard.


rule extract_shard:
    input:
        videos=shard_video_files,
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
        settings=settings("extract"),
        names=shard_video_names,
        store="results/{dataset}/features/store/shard-{shard}.h5",
    shell:
        "ecma extract --quiet --settings {params.settings:q} --videos {input.videos:q}"
        " --names {params.names:q} --prune --store {params.store} --output {output.shard} > {log} 2>&1"
