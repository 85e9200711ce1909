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
        demo=lambda wildcards: ECMA.dataset(wildcards.dataset).demo,
    shell:
        "ecma demo --quiet --n-train {params.demo.n_train} --n-val {params.demo.n_val}"
        " --n-test {params.demo.n_test} --seed {params.demo.seed} --output {output} > {log} 2>&1"
