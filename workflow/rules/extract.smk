# Feature extraction, one job per shard. The CLI extracts new and changed videos into the persistent
# store (not an output: Snakemake deletes outputs before a job runs), drops videos no longer listed, and
# publishes it as the shard.


rule extract_shard:
    input:
        videos=shard_video_files,
        weights=encoder_weights,
    output:
        shard="results/{dataset}/features/shard-{shard}.h5",
        failures="results/{dataset}/features/shard-{shard}.h5.failures.tsv",
    log:
        "results/{dataset}/logs/extract/shard-{shard}.log",
    benchmark:
        "results/{dataset}/benchmarks/extract/shard-{shard}.tsv"
    wildcard_constraints:
        dataset=any_of(VIDEO_DATASETS),
    conda:
        ENV
    threads: extract_threads
    resources:
        mem_mb=8000,
        runtime=240,
        gpu=gpus("extract"),
    params:
        settings=settings("extract"),
        runtime=runtime_settings("extract"),
        videos=shard_video_args,
        store="results/{dataset}/features/store/shard-{shard}.h5",
    shell:
        "ecma extract --quiet --settings {params.settings:q} --runtime {params.runtime:q}"
        " {params.videos} --prune --store {params.store} --output {output.shard} > {log} 2>&1"


# A dataset of published features with a video folder (format valor): the videos without published features
# are extracted with the valor profile beside the imported shards, one job per shard that has any (none builds
# the encoders for an empty shard); training reads both (common.smk feature_shards).
use rule extract_shard as extract_new_videos with:
    output:
        shard="results/{dataset}/features/extracted/shard-{shard}.h5",
        failures="results/{dataset}/features/extracted/shard-{shard}.h5.failures.tsv",
    log:
        "results/{dataset}/logs/extract/extracted-shard-{shard}.log",
    benchmark:
        "results/{dataset}/benchmarks/extract/extracted-shard-{shard}.tsv"
    wildcard_constraints:
        dataset=any_of(FEATURES_AND_VIDEOS_DATASETS),
    params:
        store="results/{dataset}/features/extracted/store/shard-{shard}.h5",


# One video, one place: an extracted shard whose shard index has no video to extract any more (its videos got
# published features, left the annotations, or the video folder left the config) is deleted when a run starts
# (not in a dry run); ecma.data.datasets decides which.
onstart:
    for path in remove_stale_extracted_shards("results", PLANNED_EXTRACTIONS):
        print(
            f"removed {path}: its shard has no video to extract any more",
            file=sys.stderr,
        )


# Encoder weights, fetched once by the libraries' own download paths where the network is (a local rule:
# on a cluster it runs on the login node), verified by the .sha256 written beside them.
rule fetch_weights:
    output:
        weights="resources/weights/{library}/{file}",
        sha256="resources/weights/{library}/{file}.sha256",
    log:
        "resources/weights/logs/{library}-{file}.log",
    benchmark:
        "resources/weights/logs/{library}-{file}.tsv"
    wildcard_constraints:
        library="open_clip|laion_clap",
        file=r"[^/]+\.pt",
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        spec=fetch_spec,
    shell:
        "ecma fetch-weights --spec {params.spec} --output {output.weights} > {log} 2>&1"
