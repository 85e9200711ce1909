# What a person reads: the main variant's metrics (mean over seeds), the ablation of every variant with
# its spread and the score of predicting nothing, a per-class chart, timelines of a few test videos and a
# page of what was run; all in `snakemake --report`. The summaries are local rules (see the Snakefile):
# they take seconds, so they run where Snakemake runs instead of waiting in a cluster queue.


rule summarize_seeds:
    input:
        unpack(seed_metrics),
    output:
        "results/{dataset}/metrics/{variant}/{split}.json",
    log:
        "results/{dataset}/logs/summarize/{variant}-{split}.log",
    benchmark:
        "results/{dataset}/benchmarks/summarize/{variant}-{split}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        metrics=lambda wildcards, input: [
            f"{seed}={input[seed]}" for seed in input.keys()
        ],
    shell:
        "ecma summarize --quiet --metrics {params.metrics} --output {output} > {log} 2>&1"


rule main_metrics:
    input:
        main_test_metrics,
    output:
        report(
            "results/{dataset}/metrics.json",
            caption="../report/metrics.rst",
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


rule nothing_predicted:
    input:
        unpack(annotation_inputs("truth")),
    output:
        "results/{dataset}/metrics/nothing-predicted-test.json",
    log:
        "results/{dataset}/logs/nothing-predicted.log",
    benchmark:
        "results/{dataset}/benchmarks/nothing-predicted.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        annotations=annotation_flags("truth"),
    shell:
        "ecma baseline --quiet {params.annotations} --output {output} > {log} 2>&1"


rule ablation:
    input:
        unpack(variant_test_metrics),
        baseline="results/{dataset}/metrics/nothing-predicted-test.json",
    output:
        md="results/{dataset}/ablation.md",
        json="results/{dataset}/ablation.json",
        html=report(
            "results/{dataset}/ablation.html",
            caption="../report/ablation.rst",
            category="Ablation",
            labels={"dataset": "{dataset}", "result": "every variant, test split"},
        ),
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
        metrics=lambda wildcards, input: [
            f"{run.rsplit('-seed', 1)[0]}={input[run]}"
            for run in variant_test_metrics(wildcards)
        ],
    shell:
        "ecma ablation --quiet --metrics {params.metrics} --baseline {input.baseline} --dataset {wildcards.dataset:q}"
        " --output-md {output.md} --output-json {output.json} --output-html {output.html} > {log} 2>&1"


rule per_class_chart:
    input:
        unpack(variant_test_metrics),
    output:
        report(
            "results/{dataset}/report/per_class.png",
            caption="../report/per_class.rst",
            category="Per-class F1",
            labels={"dataset": "{dataset}", "result": "best variant, test split"},
        ),
    log:
        "results/{dataset}/logs/per_class_chart.log",
    benchmark:
        "results/{dataset}/benchmarks/per_class_chart.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        metrics=lambda wildcards, input: [
            f"{run.rsplit('-seed', 1)[0]}={input[run]}"
            for run in variant_test_metrics(wildcards)
        ],
    shell:
        "ecma per-class-chart --quiet --metrics {params.metrics} --output {output} > {log} 2>&1"


rule timelines:
    input:
        unpack(annotation_inputs("truth")),
        predictions=main_test_predictions,
    output:
        report(
            "results/{dataset}/report/timelines.png",
            caption="../report/timelines.rst",
            category="Timelines",
            labels={"dataset": "{dataset}", "result": "main variant, first seed"},
        ),
    log:
        "results/{dataset}/logs/timelines.log",
    benchmark:
        "results/{dataset}/benchmarks/timelines.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        annotations=annotation_flags("truth"),
        thresholds=lambda wildcards: (
            f"--video-threshold {ECMA.for_dataset(wildcards.dataset).eval.video_threshold}"
            f" --segment-threshold {ECMA.for_dataset(wildcards.dataset).eval.segment_threshold}"
        ),
    shell:
        "ecma timelines --quiet --predictions {input.predictions} {params.annotations}"
        " {params.thresholds} --output {output} > {log} 2>&1"


rule run_summary:
    input:
        unpack(variant_test_metrics),
    output:
        report(
            "results/{dataset}/report/run.html",
            caption="../report/run.rst",
            category="What was run",
            labels={"dataset": "{dataset}", "result": "commit, version, fingerprint"},
        ),
    log:
        "results/{dataset}/logs/run_summary.log",
    benchmark:
        "results/{dataset}/benchmarks/run_summary.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        metrics=lambda wildcards, input: [
            f"{run.rsplit('-seed', 1)[0]}={input[run]}"
            for run in variant_test_metrics(wildcards)
        ],
    shell:
        "ecma run-summary --quiet --metrics {params.metrics} --output {output} > {log} 2>&1"
