# The dataset's headline metrics (the main variant on the test split) and the ablation table of
# every variant, both in `snakemake --report`. Local rules (see the Snakefile): they take seconds, so they
# run where Snakemake runs instead of waiting in a cluster queue.


rule main_metrics:
    input:
        main_test_metrics,
    output:
        report(
            "results/{dataset}/metrics.json",
            category="Metrics",
            labels={"dataset": "{dataset}", "result": "main variant, test split"},
        ),
    log:
        "results/{dataset}/logs/metrics.log",
    benchmark:
        "results/{dataset}/benchmarks/metrics.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    shell:
        "cp {input} {output} 2> {log}"


rule ablation:
    input:
        unpack(variant_test_metrics),
    output:
        md=report(
            "results/{dataset}/ablation.md",
            category="Ablation",
            labels={"dataset": "{dataset}", "result": "every variant, test split"},
        ),
        json="results/{dataset}/ablation.json",
    log:
        "results/{dataset}/logs/ablation.log",
    benchmark:
        "results/{dataset}/benchmarks/ablation.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        metrics=lambda wildcards, input: [f"{v}={input[v]}" for v in ECMA.variants],
    shell:
        "ecma ablation --quiet --metrics {params.metrics} --output-md {output.md}"
        " --output-json {output.json} > {log} 2>&1"
