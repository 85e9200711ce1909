# Published features (VALOR's CLIP/CLAP, HAN's VGGish/ResNet-152/R(2+1)D, UnAV-100's I3D/VGGish) imported into shards, one job per
# shard, for datasets with `source: features`: the same shards as extraction makes, by the same stable
# hash, so everything downstream is unchanged.


rule import_shard:
    input:
        features=import_inputs,
        # UnAV-100's durations come from its JSON (LLP's formats need no annotation file with --names)
        annotations=import_annotations,
        # features.encoders: extract names the encoders by these files' sha256
        weights=import_weights,
    output:
        shard="results/{dataset}/features/shard-{shard}.h5",
        failures="results/{dataset}/features/shard-{shard}.h5.failures.tsv",
    log:
        "results/{dataset}/logs/import/shard-{shard}.log",
    benchmark:
        "results/{dataset}/benchmarks/import/shard-{shard}.tsv"
    wildcard_constraints:
        dataset=any_of(FEATURE_DATASETS),
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        format=lambda wildcards: dataset(wildcards).features_format,
        root=lambda wildcards: option("--root", dataset(wildcards).features_root),
        names=import_name_args,
        encoders=import_encoders_args,
        annotations=lambda wildcards, input: (
            option("--annotations", input.annotations) if input.annotations else ""
        ),
    shell:
        "ecma import --quiet --partial-ok --format {params.format} {params.root}"
        " {params.names} {params.encoders} {params.annotations} --output {output.shard} > {log} 2>&1"
