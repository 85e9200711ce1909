# The demo dataset: generated videos and LLP-format csvs. A checkpoint, because which videos fall into
# which shard is known only once they exist.


checkpoint demo_dataset:
    output:
        directory("results/{dataset}/data"),
    log:
        "results/{dataset}/logs/demo.log",
    benchmark:
        "results/{dataset}/benchmarks/demo.tsv"
    wildcard_constraints:
        dataset=any_of(DEMO_DATASETS),
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        config=EFFECTIVE_CONFIG,
        demo=lambda wildcards: dataclasses.asdict(ECMA.dataset(wildcards.dataset).demo),
    shell:
        "ecma demo --quiet --config {params.config} --dataset {wildcards.dataset}"
        " --output {output} > {log} 2>&1"
