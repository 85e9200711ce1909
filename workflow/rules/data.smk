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
        # what the generator uses (not n_parse, which only picks videos to parse)
        demo=lambda wildcards: dataclasses.replace(
            ECMA.dataset(wildcards.dataset).demo, n_parse=0
        ),
    shell:
        "ecma demo --quiet --format {params.demo.format} --n-train {params.demo.n_train} --n-val {params.demo.n_val}"
        " --n-test {params.demo.n_test} --seed {params.demo.seed} --output {output} > {log} 2>&1"
